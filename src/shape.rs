//! Problem sizes (SPEC.md, "Shapes and layout") and their checks. Depends only on
//! [`crate::error`].

use crate::error::{Error, Result};

/// Problem sizes: q [B, Hq, Tq, D], k [B, Hkv, Tk, D], v [B, Hkv, Tk, Dv].
///
/// Build one with [`Shape::new`] (self-attention), [`Shape::gqa`] (grouped-query attention)
/// and the `with_*` methods (Tq != Tk, Dv != D), or fill the fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shape {
    /// Batch B.
    pub batch: usize,
    /// Query heads Hq (a multiple of `kv_heads`: grouped-query attention).
    pub q_heads: usize,
    /// Key/value heads Hkv.
    pub kv_heads: usize,
    /// Query length Tq.
    pub q_len: usize,
    /// Key length Tk (the cache length when decoding). 0 is valid: every row is empty.
    pub kv_len: usize,
    /// Query/key head dim D.
    pub head_dim: usize,
    /// Value head dim Dv.
    pub v_dim: usize,
}

impl Shape {
    /// Self-attention shape: Hq = Hkv = `heads`, Tq = Tk = `len`, Dv = D = `dim`.
    pub fn new(batch: usize, heads: usize, len: usize, dim: usize) -> Self {
        Shape {
            batch,
            q_heads: heads,
            kv_heads: heads,
            q_len: len,
            kv_len: len,
            head_dim: dim,
            v_dim: dim,
        }
    }

    /// Grouped-query shape: `q_heads` query heads share `kv_heads` key/value heads.
    pub fn gqa(batch: usize, q_heads: usize, kv_heads: usize, len: usize, dim: usize) -> Self {
        Shape {
            q_heads,
            kv_heads,
            ..Shape::new(batch, q_heads, len, dim)
        }
    }

    /// The same shape with `q_len` query rows (chunked prefill, decoding).
    pub fn with_q_len(self, q_len: usize) -> Self {
        Shape { q_len, ..self }
    }

    /// The same shape with `kv_len` keys.
    pub fn with_kv_len(self, kv_len: usize) -> Self {
        Shape { kv_len, ..self }
    }

    /// The same shape with value head dim `v_dim`.
    pub fn with_v_dim(self, v_dim: usize) -> Self {
        Shape { v_dim, ..self }
    }

    /// Query heads per kv head (Hq / Hkv).
    pub fn group(&self) -> usize {
        self.q_heads / self.kv_heads.max(1)
    }

    /// Shape of q.
    pub fn q(&self) -> [usize; 4] {
        [self.batch, self.q_heads, self.q_len, self.head_dim]
    }
    /// Shape of k.
    pub fn k(&self) -> [usize; 4] {
        [self.batch, self.kv_heads, self.kv_len, self.head_dim]
    }
    /// Shape of v.
    pub fn v(&self) -> [usize; 4] {
        [self.batch, self.kv_heads, self.kv_len, self.v_dim]
    }
    /// Shape of o.
    pub fn o(&self) -> [usize; 4] {
        [self.batch, self.q_heads, self.q_len, self.v_dim]
    }
    /// Shape of the per-row outputs (lse, rem).
    pub fn rows(&self) -> [usize; 3] {
        [self.batch, self.q_heads, self.q_len]
    }
    /// Shape of the attention weights A.
    pub fn weights(&self) -> [usize; 4] {
        [self.batch, self.q_heads, self.q_len, self.kv_len]
    }

    /// Reads the shape off q, k, v shapes, checking that they fit together.
    pub fn from_shapes(q: &[usize], k: &[usize], v: &[usize]) -> Result<Self> {
        let bad = |m: String| Err(Error::ShapeMismatch(m));
        if q.len() != 4 || k.len() != 4 || v.len() != 4 {
            return bad(format!(
                "q, k, v must be 4-D [B, H, T, D]; got {q:?}, {k:?}, {v:?}"
            ));
        }
        let s = Shape {
            batch: q[0],
            q_heads: q[1],
            kv_heads: k[1],
            q_len: q[2],
            kv_len: k[2],
            head_dim: q[3],
            v_dim: v[3],
        };
        if k[0] != s.batch || v[0] != s.batch {
            return bad(format!("batch differs: q {q:?}, k {k:?}, v {v:?}"));
        }
        if v[1] != k[1] || v[2] != k[2] {
            return bad(format!("k {k:?} and v {v:?} differ in heads or length"));
        }
        if k[3] != s.head_dim {
            return bad(format!("q {q:?} and k {k:?} differ in head dim"));
        }
        s.validate()?;
        Ok(s)
    }

    /// Checks sizes: every dimension >= 1 except Tk (0 is an empty cache: every row is
    /// empty, SPEC.md), and Hq a multiple of Hkv.
    pub fn validate(&self) -> Result<()> {
        let dims = [
            ("batch", self.batch),
            ("query heads", self.q_heads),
            ("kv heads", self.kv_heads),
            ("query length", self.q_len),
            ("head dim", self.head_dim),
            ("value dim", self.v_dim),
        ];
        if let Some((name, _)) = dims.iter().find(|d| d.1 == 0) {
            return Err(Error::ShapeMismatch(format!(
                "{name} must be at least 1 (B={} Hq={} Hkv={} Tq={} Tk={} D={} Dv={})",
                self.batch,
                self.q_heads,
                self.kv_heads,
                self.q_len,
                self.kv_len,
                self.head_dim,
                self.v_dim
            )));
        }
        if !self.q_heads.is_multiple_of(self.kv_heads) {
            return Err(Error::ShapeMismatch(format!(
                "query heads {} are not a multiple of kv heads {}",
                self.q_heads, self.kv_heads
            )));
        }
        Ok(())
    }

    /// Checks that a host slice named `what` has as many elements as `shape`.
    pub(crate) fn check_len(what: &str, shape: &[usize], len: usize) -> Result<()> {
        let n = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| Error::TensorTooLarge {
                what: format!("{what} of shape {shape:?}"),
                size: u64::MAX,
                limit: u64::MAX,
            })?;
        if n != len {
            return Err(Error::ShapeMismatch(format!(
                "{what} has {len} elements, shape {shape:?} needs {n}"
            )));
        }
        Ok(())
    }

    /// Checks that host q, k, v slices fit this shape.
    pub(crate) fn check_host(&self, q: usize, k: usize, v: usize) -> Result<()> {
        self.validate()?;
        Self::check_len("q", &self.q(), q)?;
        Self::check_len("k", &self.k(), k)?;
        Self::check_len("v", &self.v(), v)
    }
}
