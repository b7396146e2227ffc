//! Decoding calls of a [`Context`]: the outputs of a decode step ([`DecodeOutput`], reused from
//! step to step), the split plan, and recording the split-KV partial and merge passes
//! (`crate::pass::decode`) over a [`KvCache`].

use super::kvcache::KvCache;
use crate::attention::{Attention, Output};
use crate::contract::{Params, FLAG_WRITE_AUX};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kinds::AuxOut;
use crate::pass::decode::{self as dp, chunk_count, SplitPlan};
use crate::pass::PassId;
use crate::shader::{Storage, TileConfig, Variant};
use crate::shape::Shape;
use crate::tensor::Tensor;

use super::calls::{check_aliasing, check_out, check_u32_elems, elem_count};
use super::context::{Context, Counters};
use super::record::{Dispatch, Grid};

/// The outputs of decode steps: o [B, Hq, Tq, Dv] (the cache's dtype) and lse or rem
/// [B, Hq, Tq] (f32), plus the split-KV partials (f32 scratch) and the [`SplitPlan`] they
/// were sized for. Allocate once with [`Context::alloc_decode_output`] and pass to every
/// [`Context::record_decode`] of the same shape: steps then create no wgpu object.
#[derive(Debug, Clone)]
pub struct DecodeOutput {
    out: Output,
    part: Tensor,
    plan: SplitPlan,
    shape: Shape,
}

impl DecodeOutput {
    /// The outputs (o, and lse or rem), as a forward call's ([`Context::read_output`] reads
    /// them back).
    pub fn output(&self) -> &Output {
        &self.out
    }

    /// Attention output [B, Hq, Tq, Dv].
    pub fn o(&self) -> &Tensor {
        &self.out.o
    }

    /// Softmax log-sum-exp [B, Hq, Tq] (with a sink, it includes the sink).
    pub fn lse(&self) -> Option<&Tensor> {
        self.out.lse.as_ref()
    }

    /// Stick-breaking remainder [B, Hq, Tq].
    pub fn rem(&self) -> Option<&Tensor> {
        self.out.rem.as_ref()
    }

    /// The split plan the partials were sized for.
    pub fn plan(&self) -> SplitPlan {
        self.plan
    }

    /// The shape the outputs were allocated for (`kv_len` = the cache's capacity).
    pub fn shape(&self) -> &Shape {
        &self.shape
    }
}

impl Context {
    /// The `lens` buffer of a KV cache: [batch] u32, zeroed, at least 16 bytes.
    pub(crate) fn lens_buffer(&self, batch: usize) -> Result<wgpu::Buffer> {
        let size = (4 * batch as u64).max(16).next_multiple_of(16);
        if size > self.info.max_storage_binding {
            return Err(Error::TensorTooLarge {
                what: format!("a KV cache's lengths for a batch of {batch} (bytes)"),
                size,
                limit: self.info.max_storage_binding,
            });
        }
        let b = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("webattn kv lens"),
            size,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Counters::bump(&self.counters.buffers);
        Ok(b)
    }

    /// Tiles of the decode kernels for head dims `d`, `dv` and `rows` = (Hq / Hkv) * Tq query
    /// rows per kv head and a cache of `dtype` on this device: the subgroup partial kernel's
    /// ([`TileConfig::decode_subgroup`]) where [`crate::DeviceInfo::decode_variant`] is
    /// [`crate::Variant::Subgroup`] and they fit, the cooperative-matrix kernel's
    /// ([`TileConfig::decode_coop`]) for f16 caches where it is
    /// [`crate::Variant::CoopMatrix`] and they fit, else the portable ones
    /// ([`TileConfig::decode`]).
    pub fn decode_tiles(
        &self,
        d: usize,
        dv: usize,
        rows: usize,
        dtype: DType,
    ) -> Result<TileConfig> {
        let mem = self.info.max_workgroup_storage;
        if self.info.decode_variant == Variant::CoopMatrix
            && dtype == DType::F16
            && self.info.f16_storage == Storage::F16
        {
            let sg = self.info.subgroup_sizes.1;
            if let Some(mut t) = TileConfig::decode_coop(d, dv, rows, mem, sg, self.coop_decode_cm)
            {
                if let Some(l) = self.decode_tuning.loads {
                    t.vk = u32::from(l != 0);
                }
                return Ok(t);
            }
        }
        if self.info.decode_variant == Variant::Subgroup {
            let sg = self.info.subgroup_sizes.1;
            if let Some(t) = TileConfig::decode_subgroup(d, dv, rows, dtype, mem, sg) {
                return Ok(t);
            }
        }
        self.portable_decode_tiles(d, dv, rows, dtype)
    }

    /// The portable partial kernel's tiles ([`TileConfig::decode`]) on this device, with the
    /// overrides of [`DecodeTuning`] (measuring only) where they are set.
    fn portable_decode_tiles(
        &self,
        d: usize,
        dv: usize,
        rows: usize,
        dtype: DType,
    ) -> Result<TileConfig> {
        let mem = self.info.max_workgroup_storage;
        TileConfig::decode_tuned(d, dv, rows, dtype, mem, &self.decode_tuning)
    }

    /// The split plan [`Context::alloc_decode_output`] picks for `q_heads` query heads and
    /// `q_len` new rows on `cache`: enough chunks that B * Hkv * row blocks * chunks reaches
    /// [`SplitPlan::GPU_WORKGROUPS`] ([`SplitPlan::CPU_WORKGROUPS`] on a software adapter),
    /// never chunks under [`SplitPlan::MIN_CHUNK`] keys. wgpu cannot report a GPU's number of
    /// SMs / CUs, so the target is a documented constant, not a measurement.
    pub fn split_plan(&self, cache: &KvCache, q_heads: usize, q_len: usize) -> Result<SplitPlan> {
        let s = cache.shape(q_heads, q_len);
        s.validate()?;
        let rows = s.group() * q_len;
        let t = self.decode_tiles(s.head_dim, s.v_dim, rows, cache.dtype())?;
        let blocks = rows.div_ceil(t.bq as usize);
        let target = if self.info.device_type == format!("{:?}", wgpu::DeviceType::Cpu) {
            SplitPlan::CPU_WORKGROUPS
        } else {
            self.decode_tuning
                .workgroups
                .unwrap_or(SplitPlan::GPU_WORKGROUPS)
        };
        Ok(SplitPlan::for_target(target, s.batch * s.kv_heads * blocks))
    }

    /// Allocates the outputs of decode steps of `attn` with `q_heads` query heads and `q_len`
    /// new rows per step on `cache`, with the split plan of [`Context::split_plan`].
    pub fn alloc_decode_output(
        &self,
        attn: &Attention,
        cache: &KvCache,
        q_heads: usize,
        q_len: usize,
    ) -> Result<DecodeOutput> {
        let plan = self.split_plan(cache, q_heads, q_len)?;
        self.alloc_decode_output_with(attn, cache, q_heads, q_len, plan)
    }

    /// [`Context::alloc_decode_output`] with an explicit split plan (tests use small chunks
    /// to exercise the merge on short caches; benchmarks tune it).
    pub fn alloc_decode_output_with(
        &self,
        attn: &Attention,
        cache: &KvCache,
        q_heads: usize,
        q_len: usize,
        plan: SplitPlan,
    ) -> Result<DecodeOutput> {
        plan.validate()?;
        let shape = cache.shape(q_heads, q_len);
        shape.validate()?;
        let out = self.alloc_output(attn, &shape, cache.dtype())?;
        let rows = shape.group() * q_len;
        let part_shape = [
            shape.batch * shape.kv_heads,
            plan.max_chunks as usize,
            rows,
            shape.v_dim / 4 + 1,
            4,
        ];
        let part = self.empty(&part_shape, DType::F32)?;
        Ok(DecodeOutput {
            out,
            part,
            plan,
            shape,
        })
    }

    /// Records one decode step of `attn` into `encoder`: the new query rows `q`
    /// [B, Hq, Tq, D] (Tq >= 1: 1 for decoding, more for speculative or chunked prefill)
    /// attend to the keys `cache` holds, which include the rows of this step (append them
    /// first). Sequence b has its own Tk_b = `cache.lens()[b]`; query row i sits at position
    /// i + Tk_b - Tq (SPEC.md's bottom-right rule), so rows with a negative position, and
    /// every row of a sequence with Tk_b = 0, are empty rows.
    ///
    /// Long caches are split into chunks that run in parallel and are merged (SPEC.md section
    /// 4, [`SplitPlan`]); a step whose sequences all fit one chunk runs a single pass. Nothing
    /// per step is a uniform: the sequence lengths come from the cache's `lens` buffer, and
    /// only the grid follows them, so a decode loop creates no wgpu object
    /// ([`Context::objects_created`]).
    ///
    /// Fails with [`Error::ShapeMismatch`] when q does not fit the cache or `out`,
    /// [`Error::DTypeMismatch`] when q's dtype is not the cache's, [`Error::InvalidOption`]
    /// when `out` was allocated for another kind.
    pub fn record_decode(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        attn: &Attention,
        q: &Tensor,
        cache: &KvCache,
        out: &DecodeOutput,
    ) -> Result<()> {
        self.record_decode_timed(encoder, attn, q, cache, out, None)
    }

    /// [`Context::record_decode`] with GPU timestamps: query `index` is written when the
    /// first dispatch starts and `index + 1` when the last one ends (the merge's, when it
    /// runs; needs `TIMESTAMP_QUERY`).
    pub fn record_decode_timed(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        attn: &Attention,
        q: &Tensor,
        cache: &KvCache,
        out: &DecodeOutput,
        timestamps: Option<(&wgpu::QuerySet, u32)>,
    ) -> Result<()> {
        self.check()?;
        attn.validate()?;
        self.check_timestamps(timestamps)?;
        let qs = q.shape();
        if qs.len() != 4 || qs[0] != cache.batch() || qs[3] != cache.head_dim() {
            return Err(Error::ShapeMismatch(format!(
                "q has shape {qs:?}; a decode step on this cache needs [{}, Hq, Tq, {}]",
                cache.batch(),
                cache.head_dim()
            )));
        }
        if q.dtype() != cache.dtype() {
            return Err(Error::DTypeMismatch {
                what: "q (the cache's dtype)",
                expected: cache.dtype(),
                found: q.dtype(),
            });
        }
        let s = cache.shape(qs[1], qs[2]);
        s.validate()?;
        if out.shape != s {
            return Err(Error::ShapeMismatch(format!(
                "the decode output was allocated for {:?}; this step is {s:?}",
                out.shape
            )));
        }
        check_u32_elems(
            "a decode tensor",
            [s.q(), s.o()]
                .iter()
                .map(elem_count)
                .chain([out.part.len() as u64 / 4]),
        )?;
        let setup = attn.kind().setup(&s)?;
        let kernel = |pass: PassId| {
            attn.kind().shader(pass).ok_or_else(|| {
                Error::InvalidOption(format!(
                    "{} attention has no decode passes",
                    attn.kind().name()
                ))
            })
        };
        let (mut k_partial, k_merge) =
            (kernel(PassId::DecodePartial)?, kernel(PassId::DecodeMerge)?);
        let rows = s.group() * s.q_len;
        let mut tiles = self.decode_tiles(s.head_dim, s.v_dim, rows, cache.dtype())?;
        if tiles.variant == Variant::Subgroup {
            match attn.kind().decode_subgroup() {
                Some(k) => k_partial = k,
                // A kind without subgroup hooks: the portable kernel (same chunk rule).
                None => {
                    tiles = self.portable_decode_tiles(s.head_dim, s.v_dim, rows, cache.dtype())?;
                }
            }
        }
        let (aux, other, name) = match setup.aux {
            AuxOut::None => (None, out.out.lse.as_ref().or(out.out.rem.as_ref()), "none"),
            AuxOut::Lse => (out.out.lse.as_ref(), out.out.rem.as_ref(), "lse"),
            AuxOut::Rem => (out.out.rem.as_ref(), out.out.lse.as_ref(), "rem"),
        };
        if other.is_some() || (aux.is_none() && setup.aux != AuxOut::None) {
            return Err(Error::InvalidOption(format!(
                "the decode output was not allocated for {} attention (its per-row output is \
                 {name}); allocate it with alloc_decode_output for this attention",
                attn.kind().name()
            )));
        }
        check_out("o", &out.out.o, &s.o(), q.dtype())?;
        let mut flags = setup.flags;
        if let Some(a) = aux {
            check_out(name, a, &s.rows(), DType::F32)?;
            flags |= FLAG_WRITE_AUX;
        }
        check_aliasing(
            &[q, cache.k(), cache.v()],
            &[Some(&out.out.o), aux, Some(&out.part)],
        )?;
        let plan = out.plan;
        // A window of the capacity or more masks nothing (positions are below it), and
        // clamping keeps the kernels' i32 arithmetic in range.
        let window = attn
            .window_value()
            .filter(|&w| (w as u64) < s.kv_len as u64)
            .unwrap_or(0);
        let params = Params {
            tq: s.q_len as u32,
            tk: s.kv_len as u32,
            hq: s.q_heads as u32,
            group: s.group() as u32,
            flags,
            window,
            scale: attn.resolved_scale(&s)?,
            bias: setup.bias,
            self_excl: setup.self_excl,
            kv_heads: s.kv_heads as u32,
            capacity: s.kv_len as u32,
            rows: rows as u32,
            chunk_min: plan.min_chunk,
            max_chunks: plan.max_chunks,
            ..Params::default()
        };
        let sinks = setup
            .sinks
            .as_deref()
            .map(|sk| self.f32_buffer(sk))
            .transpose()?;
        let mut buffers = vec![None; 9];
        buffers[dp::Q] = Some(q.buffer());
        buffers[dp::K] = Some(cache.k().buffer());
        buffers[dp::V] = Some(cache.v().buffer());
        buffers[dp::O] = Some(out.out.o.buffer());
        buffers[dp::AUX] = aux.map(Tensor::buffer);
        buffers[dp::SINKS] = sinks.as_ref();
        buffers[dp::LENS] = Some(cache.lens_buffer());
        buffers[dp::PART] = Some(out.part.buffer());
        // The host knows every length, so it sizes the grid to the longest sequence's chunks
        // (the kernels derive each sequence's own from `lens`).
        let chunks = cache
            .lens()
            .iter()
            .map(|&tk| chunk_count(tk as u32, s.q_len as u32, window, &plan, tiles.bk).2)
            .max()
            .unwrap_or(0);
        let merge = chunks >= 2;
        let units = s.batch * s.kv_heads;
        let mut d = Dispatch {
            pass: PassId::DecodePartial,
            kernel: k_partial,
            storage: self.storage(q.dtype()),
            tiles,
            shape: &s,
            dtype: q.dtype(),
            params,
            buffers,
            timestamps,
        };
        let stamp = timestamps.map(|(_, i)| i);
        let partial = Grid {
            x: chunks.max(1),
            z: rows.div_ceil(tiles.bq as usize) as u32,
            units,
            group: 1,
            begin: stamp,
            end: stamp.filter(|_| !merge).map(|i| i + 1),
        };
        self.record_grid(encoder, &d, partial)?;
        d.pass = PassId::DecodeMerge;
        d.kernel = k_merge;
        if !merge {
            // The merge's pipeline and bind groups exist from the first step on, so that a
            // sequence growing past one chunk creates nothing either.
            return self.prepare_grid(&d, units, 1);
        }
        {
            let dv4 = s.v_dim as u32 / 4;
            let blocks = dv4.div_ceil(dv4.min(8));
            let grid = Grid {
                x: (rows as u32).saturating_mul(blocks),
                z: 1,
                units,
                group: 1,
                begin: None,
                end: stamp.map(|i| i + 1),
            };
            self.record_grid(encoder, &d, grid)?;
        }
        Ok(())
    }
}
