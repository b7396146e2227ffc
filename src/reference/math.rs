//! The arithmetic the references share, below the kinds: the index arithmetic of SPEC.md
//! ([`Inputs`]), the careful scalar functions, and the float type and summation order a
//! reference computes in.

use num_traits::Float;

use crate::shape::Shape;

/// The float type a reference computes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Precision {
    /// f64: the reference.
    F64,
    /// f32 throughout (logits, weights, sums): the floor an f32 kernel is held against.
    F32,
}

/// The order in which a logit's dot product (and stick-breaking's sum of softplus terms for
/// rem) is summed. f64 makes it irrelevant; in f32 it
/// decides the rounding, and so the error of a "straightforward f32 computation" (SPEC.md
/// section 6) on few logits varies with it by more than 2x. [`crate::testing::judge`] takes
/// the largest error over the four orders as the floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SumOrder {
    /// d = 0, 1, 2, ... (a plain loop).
    #[default]
    Sequential,
    /// d = D-1, D-2, ... (a plain loop backwards).
    Reversed,
    /// Pairwise (tree) summation, as blocked GPU and BLAS kernels sum.
    Pairwise,
    /// The shape of a GPU kernel's dot products: a running sum of `dot(vec4, vec4)` terms,
    /// each a sum of 4 products. (Long sums along a row, such as stick-breaking's stick, are
    /// summed as with `Sequential`.)
    Vec4,
}

impl SumOrder {
    /// Every order.
    pub const ALL: [SumOrder; 4] = [
        SumOrder::Sequential,
        SumOrder::Reversed,
        SumOrder::Pairwise,
        SumOrder::Vec4,
    ];
}

/// Pairwise (tree) sum.
pub(crate) fn pairwise<R: Float>(x: &[R]) -> R {
    match x.len() {
        0 => R::zero(),
        1 => x[0],
        n => pairwise(&x[..n / 2]) + pairwise(&x[n / 2..]),
    }
}

/// Converts an f64 constant to the working float type.
pub(crate) fn c<R: Float>(x: f64) -> R {
    R::from(x).unwrap_or_else(R::nan)
}

/// Read-only view of the inputs with the index arithmetic of SPEC.md.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The problem sizes.
    pub s: Shape,
    /// q [B, Hq, Tq, D].
    pub q: &'a [f32],
    /// k [B, Hkv, Tk, D].
    pub k: &'a [f32],
    /// v [B, Hkv, Tk, Dv].
    pub v: &'a [f32],
    /// The resolved logit scale.
    pub scale: f64,
    /// Sliding window, if any.
    pub window: Option<u32>,
    /// How logits' dot products are summed (matters in f32 only).
    pub order: SumOrder,
}

impl Inputs<'_> {
    /// Scaled logit z_ij for unit u = b * Hq + h, computed in `R`.
    pub fn logit<R: Float>(&self, u: usize, i: usize, j: usize) -> R {
        let s = &self.s;
        let kv = u / s.group();
        let qr = &self.q[(u * s.q_len + i) * s.head_dim..][..s.head_dim];
        let kr = &self.k[(kv * s.kv_len + j) * s.head_dim..][..s.head_dim];
        let prod = |(&a, &b): (&f32, &f32)| c::<R>(a as f64) * c(b as f64);
        let dot = match self.order {
            SumOrder::Sequential => qr.iter().zip(kr).map(prod).fold(R::zero(), |a, x| a + x),
            SumOrder::Reversed => qr
                .iter()
                .zip(kr)
                .rev()
                .map(prod)
                .fold(R::zero(), |a, x| a + x),
            SumOrder::Pairwise => pairwise(&qr.iter().zip(kr).map(prod).collect::<Vec<R>>()),
            SumOrder::Vec4 => {
                let p: Vec<R> = qr.iter().zip(kr).map(prod).collect();
                p.chunks(4)
                    .map(|c| c.iter().fold(R::zero(), |a, &x| a + x))
                    .fold(R::zero(), |a, x| a + x)
            }
        };
        c::<R>(self.scale) * dot
    }

    /// Value row j of unit u's kv head.
    pub fn value(&self, u: usize, j: usize) -> &[f32] {
        let s = &self.s;
        let kv = u / s.group();
        &self.v[(kv * s.kv_len + j) * s.v_dim..][..s.v_dim]
    }

    /// Absolute position p_i of query row i (bottom-right alignment).
    pub fn position(&self, i: usize) -> i64 {
        i as i64 + self.s.kv_len as i64 - self.s.q_len as i64
    }

    /// Is key j allowed for row i: causal (with `self_excluded`: strictly before p_i) and window.
    pub fn allowed(&self, i: usize, j: usize, causal: bool, self_excluded: bool) -> bool {
        let p = self.position(i);
        let j = j as i64;
        if causal && (j > p || (self_excluded && j == p)) {
            return false;
        }
        if let Some(w) = self.window {
            if j <= p - w as i64 {
                return false;
            }
        }
        true
    }

    /// Units (b, h) in the problem.
    pub fn units(&self) -> usize {
        self.s.batch * self.s.q_heads
    }

    /// o = A v from dense weights `a` [units, Tq, Tk], summed in `R`, over the keys whose value
    /// row i reads (`reads(i, j)`, the kind's [`crate::AttentionKind::reads_value`]): a key the
    /// row attends to adds w * v_j even where w is 0 (so a NaN or Inf in v_j gives NaN, as
    /// SPEC.md asks), and any other key adds nothing, whatever v_j holds.
    pub fn apply<R: Float>(&self, a: &[R], reads: impl Fn(usize, usize) -> bool) -> Vec<R> {
        let s = &self.s;
        let mut o = vec![R::zero(); self.units() * s.q_len * s.v_dim];
        for u in 0..self.units() {
            for i in 0..s.q_len {
                let orow = &mut o[(u * s.q_len + i) * s.v_dim..][..s.v_dim];
                for j in (0..s.kv_len).filter(|&j| reads(i, j)) {
                    let w = a[(u * s.q_len + i) * s.kv_len + j];
                    for (x, &vv) in orow.iter_mut().zip(self.value(u, j)) {
                        *x = *x + w * c(vv as f64);
                    }
                }
            }
        }
        o
    }
}

/// softplus(x) = max(x, 0) + log1p(exp(-|x|)).
pub(crate) fn softplus<R: Float>(x: R) -> R {
    x.max(R::zero()) + (-x.abs()).exp().ln_1p()
}

/// log(sigmoid(x)) = x - softplus(x), computed without cancellation.
pub(crate) fn log_sigmoid<R: Float>(x: R) -> R {
    x.min(R::zero()) - (-x.abs()).exp().ln_1p()
}

/// sigmoid(x) without overflow.
pub(crate) fn sigmoid<R: Float>(x: R) -> R {
    if x >= R::zero() {
        R::one() / (R::one() + (-x).exp())
    } else {
        let e = x.exp();
        e / (R::one() + e)
    }
}

/// Widens a vector computed in `R` to f64.
pub(crate) fn widen<R: Float>(x: Vec<R>) -> Vec<f64> {
    x.into_iter()
        .map(|y| y.to_f64().unwrap_or(f64::NAN))
        .collect()
}
