//! The KV cache of incremental decoding (SPEC.md section 4): one layer's keys and values for a
//! batch of sequences of different lengths, appended to step by step and read by
//! [`crate::Context::record_decode`].
//!
//! Layout: k is [B, Hkv, capacity, D] and v [B, Hkv, capacity, Dv], row-major, so the keys of
//! one (sequence, kv head) are one dense run of `capacity * D` elements. Decoding is bound by
//! memory bandwidth: each workgroup streams a contiguous piece of one head's run with
//! coalesced vec4 loads, and a cache prefix `[.., ..Tk_b, ..]` is exactly the layout the
//! forward kernels read (k [B, Hkv, Tk, D]) when Tk = capacity. Sequence `b` holds
//! `lens[b]` valid slots; the rest may hold anything (NaN included) and never reaches an
//! output.

use super::context::Context;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::shape::Shape;
use crate::tensor::Tensor;

/// One layer's KV cache for a batch of sequences (a model holds one per layer).
///
/// The host tracks each sequence's length; the GPU reads them from a small `lens` buffer
/// ([B] u32) that [`KvCache::append`], [`KvCache::reset`], [`KvCache::truncate`] and
/// [`KvCache::set_len`] update with `queue.write_buffer` (nothing is ever read back). Such a
/// write lands at the start of the next submit on the queue, so **record at most one append
/// per cache between submits**: one decode step (its append, then the decode calls that read
/// the new lengths) per submit. Every layer's step can share one encoder.
///
/// Nothing here creates a wgpu object after [`KvCache::new`]: appends are buffer copies
/// recorded into the caller's encoder.
#[derive(Debug)]
pub struct KvCache {
    k: Tensor,
    v: Tensor,
    lens_buf: wgpu::Buffer,
    lens: Vec<usize>,
    kv_heads: usize,
    capacity: usize,
    queue: wgpu::Queue,
}

impl KvCache {
    /// An empty cache (every length 0) of `capacity` slots per (sequence, kv head), for
    /// `batch` sequences, `kv_heads` kv heads, head dims `head_dim` (keys) and `v_dim`
    /// (values), stored as `dtype`. Head dims must be multiples of 4 from 4 to 256.
    pub fn new(
        ctx: &Context,
        batch: usize,
        kv_heads: usize,
        capacity: usize,
        head_dim: usize,
        v_dim: usize,
        dtype: DType,
    ) -> Result<Self> {
        ctx.check()?;
        let dims = [
            ("batch", batch),
            ("kv heads", kv_heads),
            ("capacity", capacity),
        ];
        if let Some((name, _)) = dims.iter().find(|d| d.1 == 0) {
            return Err(Error::ShapeMismatch(format!(
                "a KV cache's {name} must be at least 1"
            )));
        }
        let ok = |x: usize| x.is_multiple_of(4) && (4..=256).contains(&x);
        if !ok(head_dim) || !ok(v_dim) {
            return Err(Error::UnsupportedHeadDim {
                d: head_dim,
                dv: v_dim,
            });
        }
        let kshape = [batch, kv_heads, capacity, head_dim];
        let vshape = [batch, kv_heads, capacity, v_dim];
        for shape in [kshape, vshape] {
            let n = shape
                .iter()
                .try_fold(1u64, |a, &d| a.checked_mul(d as u64))
                .unwrap_or(u64::MAX);
            if n >= 1 << 32 {
                return Err(Error::TensorTooLarge {
                    what: format!("a KV cache of shape {shape:?} (kernels index with u32)"),
                    size: n,
                    limit: 1 << 32,
                });
            }
        }
        let k = ctx.empty(&kshape, dtype)?;
        let v = ctx.empty(&vshape, dtype)?;
        let lens_buf = ctx.lens_buffer(batch)?;
        Ok(KvCache {
            k,
            v,
            lens_buf,
            lens: vec![0; batch],
            kv_heads,
            capacity,
            queue: ctx.queue().clone(),
        })
    }

    /// Records the copy of new keys and values into the cache and advances the lengths.
    ///
    /// `k_new` is [B, Hkv, T, D] and `v_new` [B, Hkv, T, Dv] (any T >= 1, the cache's dtype,
    /// buffers with `COPY_SRC`). Sequence `b` appends `rows_per_seq[b]` <= T rows: the **last**
    /// `rows_per_seq[b]` rows of its blocks, the same bottom-right alignment as query rows (row
    /// i of a [.., T, ..] block is the token at position i + Tk_b - T once appended). A
    /// sequence may append 0 rows.
    ///
    /// Fails before recording anything: [`Error::CacheFull`] if a sequence would pass the
    /// capacity, [`Error::ShapeMismatch`] / [`Error::DTypeMismatch`] for inputs that do not fit,
    /// [`Error::Aliasing`] if an input is the cache itself. See the type's note on submits.
    pub fn append(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        k_new: &Tensor,
        v_new: &Tensor,
        rows_per_seq: &[usize],
    ) -> Result<()> {
        let (b, h, d, dv) = (self.batch(), self.kv_heads, self.head_dim(), self.v_dim());
        let t = k_new.shape().get(2).copied().unwrap_or(0);
        for (name, x, want) in [
            ("k_new", k_new, [b, h, t, d]),
            ("v_new", v_new, [b, h, t, dv]),
        ] {
            if x.shape() != want || t == 0 {
                return Err(Error::ShapeMismatch(format!(
                    "{name} has shape {:?}; this cache appends [{b}, {h}, T, {}] with T >= 1 \
                     (k_new and v_new with the same T)",
                    x.shape(),
                    want[3]
                )));
            }
            if x.dtype() != self.dtype() {
                return Err(Error::DTypeMismatch {
                    what: name,
                    expected: self.dtype(),
                    found: x.dtype(),
                });
            }
            if !x.buffer().usage().contains(wgpu::BufferUsages::COPY_SRC) {
                return Err(Error::InvalidOption(format!(
                    "{name}'s buffer needs COPY_SRC usage to be appended"
                )));
            }
            if x.buffer() == self.k.buffer() || x.buffer() == self.v.buffer() {
                return Err(Error::Aliasing(format!("{name} is the cache's own buffer")));
            }
        }
        if rows_per_seq.len() != b {
            return Err(Error::ShapeMismatch(format!(
                "rows_per_seq has {} entries for a batch of {b}",
                rows_per_seq.len()
            )));
        }
        for (seq, (&rows, &len)) in rows_per_seq.iter().zip(&self.lens).enumerate() {
            if rows > t {
                return Err(Error::ShapeMismatch(format!(
                    "sequence {seq} appends {rows} rows but k_new has {t}"
                )));
            }
            if len + rows > self.capacity {
                return Err(Error::CacheFull {
                    sequence: seq,
                    len,
                    adding: rows,
                    capacity: self.capacity,
                });
            }
        }
        let es = self.dtype().size() as u64;
        for (seq, &rows) in rows_per_seq.iter().enumerate() {
            if rows == 0 {
                continue;
            }
            let len = self.lens[seq] as u64;
            for head in 0..h {
                let block = (seq * h + head) as u64;
                for (src, dst, dim) in [(k_new, &self.k, d), (v_new, &self.v, dv)] {
                    let row = dim as u64 * es;
                    encoder.copy_buffer_to_buffer(
                        src.buffer(),
                        (block * t as u64 + (t - rows) as u64) * row,
                        dst.buffer(),
                        (block * self.capacity as u64 + len) * row,
                        rows as u64 * row,
                    );
                }
            }
        }
        for (len, &rows) in self.lens.iter_mut().zip(rows_per_seq) {
            *len += rows;
        }
        if rows_per_seq.iter().any(|&r| r > 0) {
            self.write_lens();
        }
        Ok(())
    }

    /// Empties every sequence (the slots keep their data, which no output will read).
    pub fn reset(&mut self) {
        self.lens.iter_mut().for_each(|l| *l = 0);
        self.write_lens();
    }

    /// Shortens sequence `seq` to `len` slots (`len` <= its length), e.g. to drop rejected
    /// speculative tokens. [`Error::InvalidOption`] otherwise.
    pub fn truncate(&mut self, seq: usize, len: usize) -> Result<()> {
        let cur = self.seq_len(seq)?;
        if len > cur {
            return Err(Error::InvalidOption(format!(
                "truncate: sequence {seq} has {cur} slots, cannot truncate to {len}"
            )));
        }
        self.set_len(seq, len)
    }

    /// Sets sequence `seq`'s length to `len` <= capacity (after writing its slots yourself,
    /// e.g. with a prefill kernel of your own into [`KvCache::k`] and [`KvCache::v`]); slots
    /// `[0, len)` must then hold valid keys and values. [`Error::CacheFull`] past the capacity.
    pub fn set_len(&mut self, seq: usize, len: usize) -> Result<()> {
        let cur = self.seq_len(seq)?;
        if len > self.capacity {
            return Err(Error::CacheFull {
                sequence: seq,
                len: cur,
                adding: len.saturating_sub(cur),
                capacity: self.capacity,
            });
        }
        self.lens[seq] = len;
        self.write_lens();
        Ok(())
    }

    fn seq_len(&self, seq: usize) -> Result<usize> {
        self.lens.get(seq).copied().ok_or_else(|| {
            Error::InvalidOption(format!(
                "sequence {seq} does not exist (batch {})",
                self.lens.len()
            ))
        })
    }

    fn write_lens(&self) {
        let lens: Vec<u32> = self.lens.iter().map(|&l| l as u32).collect();
        let mut bytes: Vec<u8> = bytemuck::cast_slice(&lens).to_vec();
        bytes.resize(self.lens_buf.size() as usize, 0);
        self.queue.write_buffer(&self.lens_buf, 0, &bytes);
    }

    /// The keys, [B, Hkv, capacity, D].
    pub fn k(&self) -> &Tensor {
        &self.k
    }

    /// The values, [B, Hkv, capacity, Dv].
    pub fn v(&self) -> &Tensor {
        &self.v
    }

    /// The host's copy of every sequence's length.
    pub fn lens(&self) -> &[usize] {
        &self.lens
    }

    /// The GPU's copy of the lengths ([B] u32, padded to 16 bytes), as the kernels bind it.
    pub fn lens_buffer(&self) -> &wgpu::Buffer {
        &self.lens_buf
    }

    /// Sequences B.
    pub fn batch(&self) -> usize {
        self.lens.len()
    }

    /// Kv heads Hkv.
    pub fn kv_heads(&self) -> usize {
        self.kv_heads
    }

    /// Slots per (sequence, kv head).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Key head dim D.
    pub fn head_dim(&self) -> usize {
        self.k.shape()[3]
    }

    /// Value head dim Dv.
    pub fn v_dim(&self) -> usize {
        self.v.shape()[3]
    }

    /// Storage type of k and v.
    pub fn dtype(&self) -> DType {
        self.k.dtype()
    }

    /// The attention shape of a decode call on this cache with `q_heads` query heads and
    /// `q_len` new rows (`kv_len` = the capacity).
    pub fn shape(&self, q_heads: usize, q_len: usize) -> Shape {
        Shape {
            batch: self.batch(),
            q_heads,
            kv_heads: self.kv_heads,
            q_len,
            kv_len: self.capacity,
            head_dim: self.head_dim(),
            v_dim: self.v_dim(),
        }
    }
}
