//! The attention call: parameters shared by every kind, shape checks, the split of the work
//! over batch and heads when tensors exceed the storage-binding limit, and the dispatches.

use wgpu::util::DeviceExt;

use crate::reference::{Inputs, RefOutput};
use crate::shader::{Entry, KindId, TileConfig};
use crate::sigmoid::SigmoidOptions;
use crate::softmax::SoftmaxOptions;
use crate::stick_breaking::StickBreakingOptions;
use crate::{Context, DType, Error, Result, Tensor};

pub(crate) const FLAG_CAUSAL: u32 = 1;
pub(crate) const FLAG_REM_TO_CURRENT: u32 = 2;
pub(crate) const FLAG_NORMALIZE: u32 = 4;
pub(crate) const FLAG_SINK: u32 = 8;
pub(crate) const FLAG_WRITE_AUX: u32 = 16;

/// Problem sizes: q [B, Hq, Tq, D], k [B, Hkv, Tk, D], v [B, Hkv, Tk, Dv].
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
    /// Key length Tk (the cache length when decoding).
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

    /// Checks sizes: every dimension >= 1 and Hq a multiple of Hkv.
    pub fn validate(&self) -> Result<()> {
        let dims = [
            self.batch,
            self.q_heads,
            self.kv_heads,
            self.q_len,
            self.kv_len,
            self.head_dim,
            self.v_dim,
        ];
        if dims.contains(&0) {
            return Err(Error::ShapeMismatch(format!(
                "every dimension must be >= 1: {self:?}"
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

    fn check_len(&self, what: &str, shape: [usize; 4], len: usize) -> Result<()> {
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
}

/// Which mechanism, with its own options.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// Softmax attention.
    Softmax(SoftmaxOptions),
    /// Sigmoid attention.
    Sigmoid(SigmoidOptions),
    /// Stick-breaking attention (always causal).
    StickBreaking(StickBreakingOptions),
}

/// One attention call's parameters. Build with [`Attention::softmax`], [`Attention::sigmoid`]
/// or [`Attention::stick_breaking`] and the builder methods, or fill the fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Attention {
    /// Mechanism and its options.
    pub kind: Kind,
    /// Logit scale; `None` = 1 / sqrt(D).
    pub scale: Option<f32>,
    /// Sliding window W: row i sees keys j > p_i - W only. `None` = no window.
    pub window: Option<u32>,
}

impl Attention {
    /// Softmax attention, non-causal, no sink.
    pub fn softmax() -> Self {
        Self::of(Kind::Softmax(SoftmaxOptions::default()))
    }
    /// Sigmoid attention, non-causal, bias -ln(Tk), not normalised.
    pub fn sigmoid() -> Self {
        Self::of(Kind::Sigmoid(SigmoidOptions::default()))
    }
    /// Stick-breaking attention: current token excluded, remainder dropped.
    pub fn stick_breaking() -> Self {
        Self::of(Kind::StickBreaking(StickBreakingOptions::default()))
    }
    /// Parameters of `kind` with the default scale and no window.
    pub fn of(kind: Kind) -> Self {
        Attention {
            kind,
            scale: None,
            window: None,
        }
    }
    /// Sets the causal mask (softmax, sigmoid; stick-breaking is always causal).
    pub fn causal(mut self, causal: bool) -> Self {
        match &mut self.kind {
            Kind::Softmax(o) => o.causal = causal,
            Kind::Sigmoid(o) => o.causal = causal,
            Kind::StickBreaking(_) => {}
        }
        self
    }
    /// Sets the logit scale.
    pub fn scale(mut self, scale: f32) -> Self {
        self.scale = Some(scale);
        self
    }
    /// Sets a sliding window of `w` keys.
    pub fn window(mut self, w: u32) -> Self {
        self.window = Some(w);
        self
    }
    /// Which kernel family this call uses.
    pub fn kind_id(&self) -> KindId {
        match self.kind {
            Kind::Softmax(_) => KindId::Softmax,
            Kind::Sigmoid(_) => KindId::Sigmoid,
            Kind::StickBreaking(_) => KindId::StickBreaking,
        }
    }

    fn resolved_scale(&self, s: &Shape) -> Result<f32> {
        let scale = self.scale.unwrap_or(1.0 / (s.head_dim as f32).sqrt());
        if !scale.is_finite() {
            return Err(Error::InvalidOption(format!("scale {scale} is not finite")));
        }
        if self.window == Some(0) {
            return Err(Error::InvalidOption("window must be at least 1".into()));
        }
        Ok(scale)
    }

    pub(crate) fn setup(&self, s: &Shape) -> Result<KindSetup> {
        match &self.kind {
            Kind::Softmax(o) => crate::softmax::setup(o, s),
            Kind::Sigmoid(o) => crate::sigmoid::setup(o, s),
            Kind::StickBreaking(o) => crate::stick_breaking::setup(o),
        }
    }
}

/// Per-row output of a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuxOut {
    None,
    Lse,
    Rem,
}

/// What a kind's module hands the shared dispatch.
pub(crate) struct KindSetup {
    pub kind: KindId,
    pub flags: u32,
    pub bias: f32,
    pub self_excl: u32,
    pub sinks: Option<Vec<f32>>,
    pub aux: AuxOut,
}

/// GPU outputs of a forward call.
#[derive(Debug, Clone)]
pub struct Output {
    /// Attention output [B, Hq, Tq, Dv].
    pub o: Tensor,
    /// Softmax log-sum-exp [B, Hq, Tq] (`-inf` for rows with no key and no sink).
    pub lse: Option<Tensor>,
    /// Stick-breaking remainder [B, Hq, Tq].
    pub rem: Option<Tensor>,
}

/// Host copies of a forward call's outputs.
#[derive(Debug, Clone, PartialEq)]
pub struct HostOutput {
    /// Attention output [B, Hq, Tq, Dv].
    pub o: Vec<f32>,
    /// Softmax log-sum-exp [B, Hq, Tq].
    pub lse: Option<Vec<f32>>,
    /// Stick-breaking remainder [B, Hq, Tq].
    pub rem: Option<Vec<f32>>,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct GpuParams {
    tq: u32,
    tk: u32,
    hq: u32,
    group: u32,
    unit0: u32,
    q_base: u32,
    k_base: u32,
    v_base: u32,
    o_base: u32,
    aux_base: u32,
    flags: u32,
    window: u32,
    scale: f32,
    bias: f32,
    diag: i32,
    self_excl: u32,
}

/// A tensor taking part in a dispatch: bytes per unit, and whether it is indexed by kv unit.
struct Part<'a> {
    buf: &'a wgpu::Buffer,
    per_unit: u64,
    kv: bool,
    base_div: u64,
    what: &'static str,
}

struct Bound {
    offset: u64,
    size: u64,
    base: u32,
}

/// Units [u0, u1) and each part's binding.
struct Chunk {
    u0: usize,
    u1: usize,
    bound: Vec<Bound>,
}

fn bind_range(p: &Part, u0: usize, u1: usize, group: usize, align: u64) -> Bound {
    let (a, b) = if p.kv {
        (u0 / group, u1 / group)
    } else {
        (u0, u1)
    };
    let start = a as u64 * p.per_unit;
    let end = b as u64 * p.per_unit;
    let offset = start - start % align;
    Bound {
        offset,
        size: end - offset,
        base: (offset / p.base_div) as u32,
    }
}

/// Splits units (b, h) into chunks whose bindings all fit the storage-binding limit and whose
/// unit count fits one dispatch dimension; chunks are whole GQA groups.
fn plan_chunks(parts: &[Part], units: usize, group: usize, ctx: &Context) -> Result<Vec<Chunk>> {
    let limit = ctx.info.max_storage_binding;
    let align = ctx.info.storage_offset_alignment.max(4) as u64;
    let max_units = ctx.info.max_workgroups_per_dim as usize;
    let fits = |u0: usize, u1: usize| -> Option<Vec<Bound>> {
        let b: Vec<Bound> = parts
            .iter()
            .map(|p| bind_range(p, u0, u1, group, align))
            .collect();
        (u1 - u0 <= max_units && b.iter().all(|x| x.size <= limit)).then_some(b)
    };
    let mut chunks = Vec::new();
    let mut u0 = 0;
    while u0 < units {
        let mut u1 = u0 + group;
        let mut bound = match fits(u0, u1) {
            Some(b) => b,
            None => {
                let (what, size) = parts
                    .iter()
                    .map(|p| (p.what, bind_range(p, u0, u1, group, align).size))
                    .max_by_key(|x| x.1)
                    .unwrap_or(("a unit", 0));
                return Err(Error::TensorTooLarge {
                    what: format!(
                        "one (batch, kv-head) group of {what} (bytes; the work cannot be split \
                         finer than a group)"
                    ),
                    size,
                    limit,
                });
            }
        };
        // Grow by doubling, then step down, to keep planning cheap for many heads.
        let mut step = group;
        while u1 < units {
            let next = (u1 + step).min(units);
            match fits(u0, next) {
                Some(b) => {
                    u1 = next;
                    bound = b;
                    step *= 2;
                }
                None if step > group => step /= 2,
                None => break,
            }
        }
        chunks.push(Chunk { u0, u1, bound });
        u0 = u1;
    }
    Ok(chunks)
}

impl Context {
    fn check_inputs(&self, q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Shape> {
        self.check()?;
        let s = Shape::from_shapes(&q.shape, &k.shape, &v.shape)?;
        for (what, t) in [("k", k), ("v", v)] {
            if t.dtype != q.dtype {
                return Err(Error::DTypeMismatch {
                    what,
                    expected: q.dtype,
                    found: t.dtype,
                });
            }
        }
        let elems = [s.q(), s.k(), s.v(), s.o()]
            .iter()
            .map(|x| x.iter().map(|&d| d as u64).product::<u64>())
            .max()
            .unwrap_or(0);
        if elems >= 1 << 32 {
            return Err(Error::TensorTooLarge {
                what: "a tensor's element count (kernels index with u32)".into(),
                size: elems,
                limit: 1 << 32,
            });
        }
        Ok(s)
    }

    fn params(&self, attn: &Attention, s: &Shape, setup: &KindSetup) -> Result<GpuParams> {
        Ok(GpuParams {
            tq: s.q_len as u32,
            tk: s.kv_len as u32,
            hq: s.q_heads as u32,
            group: (s.q_heads / s.kv_heads) as u32,
            unit0: 0,
            q_base: 0,
            k_base: 0,
            v_base: 0,
            o_base: 0,
            aux_base: 0,
            flags: setup.flags,
            // A window of Tk or more masks nothing (p_i <= Tk - 1), and clamping it keeps the
            // kernels' i32 arithmetic in range (Tk < 2^30 since k has < 2^32 elements).
            window: attn
                .window
                .filter(|&w| (w as u64) < s.kv_len as u64)
                .unwrap_or(0),
            scale: attn.resolved_scale(s)?,
            bias: setup.bias,
            diag: (s.kv_len as i64 - s.q_len as i64) as i32,
            self_excl: setup.self_excl,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn dispatch(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        entry: Entry,
        s: &Shape,
        tiles: TileConfig,
        mut params: GpuParams,
        setup: &KindSetup,
        ins: [&Tensor; 3],
        out: &Tensor,
        aux: Option<&Tensor>,
        timestamps: Option<(&wgpu::QuerySet, u32)>,
    ) -> Result<()> {
        let storage = self.storage(ins[0].dtype);
        let (pipeline, layout) = self.pipeline(setup.kind, entry, storage, tiles)?;
        let rows_per_wg = match entry {
            Entry::Forward => tiles.bq,
            Entry::Weights => TileConfig::WG,
        } as usize;
        let groups_x = s.q_len.div_ceil(rows_per_wg);
        if groups_x > self.info.max_workgroups_per_dim as usize {
            return Err(Error::TensorTooLarge {
                what: "query length (workgroups in one dispatch dimension)".into(),
                size: groups_x as u64,
                limit: self.info.max_workgroups_per_dim as u64,
            });
        }
        let es = ins[0].dtype.size() as u64;
        let (o_per_unit, o_div) = match entry {
            Entry::Forward => ((s.q_len * s.v_dim) as u64 * es, 4 * es),
            Entry::Weights => ((s.q_len * s.kv_len) as u64 * 4, 4),
        };
        let mut parts = vec![
            Part {
                buf: &ins[0].buffer,
                per_unit: (s.q_len * s.head_dim) as u64 * es,
                kv: false,
                base_div: 4 * es,
                what: "q",
            },
            Part {
                buf: &ins[1].buffer,
                per_unit: (s.kv_len * s.head_dim) as u64 * es,
                kv: true,
                base_div: 4 * es,
                what: "k",
            },
            Part {
                buf: &ins[2].buffer,
                per_unit: (s.kv_len * s.v_dim) as u64 * es,
                kv: true,
                base_div: 4 * es,
                what: "v",
            },
            Part {
                buf: &out.buffer,
                per_unit: o_per_unit,
                kv: false,
                base_div: o_div,
                what: "the output",
            },
        ];
        if let Some(a) = aux {
            parts.push(Part {
                buf: &a.buffer,
                per_unit: s.q_len as u64 * 4,
                kv: false,
                base_div: 4,
                what: "lse/rem",
            });
        }
        let group = s.q_heads / s.kv_heads;
        let chunks = plan_chunks(&parts, s.batch * s.q_heads, group, self)?;
        let sinks = setup.sinks.as_ref().map(|sk| {
            self.device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("webattn sinks"),
                    contents: bytemuck::cast_slice(sk),
                    usage: wgpu::BufferUsages::STORAGE,
                })
        });
        for (ci, c) in chunks.iter().enumerate() {
            params.unit0 = c.u0 as u32;
            params.q_base = c.bound[0].base;
            params.k_base = c.bound[1].base;
            params.v_base = c.bound[2].base;
            params.o_base = c.bound[3].base;
            params.aux_base = c.bound.get(4).map_or(0, |b| b.base);
            let ubuf = self
                .device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("webattn params"),
                    contents: bytemuck::bytes_of(&params),
                    usage: wgpu::BufferUsages::UNIFORM,
                });
            let res = |i: usize| {
                wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: parts[i].buf,
                    offset: c.bound[i].offset,
                    size: wgpu::BufferSize::new(c.bound[i].size),
                })
            };
            let aux_res = if aux.is_some() {
                res(4)
            } else {
                self.dummy_rw.as_entire_binding()
            };
            let sink_res = sinks
                .as_ref()
                .map_or(self.dummy_ro.as_entire_binding(), |b| b.as_entire_binding());
            let bg = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("webattn"),
                layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: ubuf.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: res(0),
                    },
                    wgpu::BindGroupEntry {
                        binding: 2,
                        resource: res(1),
                    },
                    wgpu::BindGroupEntry {
                        binding: 3,
                        resource: res(2),
                    },
                    wgpu::BindGroupEntry {
                        binding: 4,
                        resource: res(3),
                    },
                    wgpu::BindGroupEntry {
                        binding: 5,
                        resource: aux_res,
                    },
                    wgpu::BindGroupEntry {
                        binding: 6,
                        resource: sink_res,
                    },
                ],
            });
            // Timestamps: the first pass writes index i at its start, the last i + 1 at its end.
            let ts = timestamps.and_then(|(qs, i)| {
                let begin = (ci == 0).then_some(i);
                let end = (ci + 1 == chunks.len()).then_some(i.saturating_add(1));
                (begin.is_some() || end.is_some()).then_some(wgpu::ComputePassTimestampWrites {
                    query_set: qs,
                    beginning_of_pass_write_index: begin,
                    end_of_pass_write_index: end,
                })
            });
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("webattn"),
                timestamp_writes: ts,
            });
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bg, &[]);
            pass.dispatch_workgroups(groups_x as u32, (c.u1 - c.u0) as u32, 1);
        }
        Ok(())
    }

    /// Allocates the outputs of `attn` for inputs of `shape` and `dtype` (o, plus lse or rem).
    pub fn alloc_output(&self, attn: &Attention, shape: &Shape, dtype: DType) -> Result<Output> {
        shape.validate()?;
        let setup = attn.setup(shape)?;
        let o = self.empty(&shape.o(), dtype)?;
        let aux = match setup.aux {
            AuxOut::None => None,
            _ => Some(self.empty(&shape.rows(), DType::F32)?),
        };
        Ok(match setup.aux {
            AuxOut::None => Output {
                o,
                lse: None,
                rem: None,
            },
            AuxOut::Lse => Output {
                o,
                lse: aux,
                rem: None,
            },
            AuxOut::Rem => Output {
                o,
                lse: None,
                rem: aux,
            },
        })
    }

    /// Records the forward kernel of `attn` into `encoder` (nothing is submitted), allocating
    /// the outputs. An application batches many layers into one submit this way.
    pub fn record(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        attn: &Attention,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
    ) -> Result<Output> {
        let s = self.check_inputs(q, k, v)?;
        let out = self.alloc_output(attn, &s, q.dtype)?;
        self.record_into(encoder, attn, q, k, v, &out)?;
        Ok(out)
    }

    /// Records the forward kernel of `attn` writing into outputs the caller allocated (with
    /// [`Context::alloc_output`], or its own buffers of the same shapes), so a model reuses
    /// its buffers from step to step.
    pub fn record_into(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        attn: &Attention,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        out: &Output,
    ) -> Result<()> {
        self.record_into_timed(encoder, attn, q, k, v, out, None)
    }

    /// [`Context::record_into`] with GPU timestamps: query `index` is written when the first
    /// dispatch starts and `index + 1` when the last one ends (needs `TIMESTAMP_QUERY`; see
    /// `webattn bench`).
    #[allow(clippy::too_many_arguments)]
    pub fn record_into_timed(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        attn: &Attention,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        out: &Output,
        timestamps: Option<(&wgpu::QuerySet, u32)>,
    ) -> Result<()> {
        if timestamps.is_some() && !self.info.timestamp_query {
            return Err(Error::MissingFeature(
                "timestamps need TIMESTAMP_QUERY".into(),
            ));
        }
        if let Some((qs, i)) = timestamps {
            if i.checked_add(1).is_none_or(|end| end >= qs.count()) {
                return Err(Error::InvalidOption(format!(
                    "timestamp index {i}: queries {i} and {i} + 1 must exist in a set of {}",
                    qs.count()
                )));
            }
        }
        let s = self.check_inputs(q, k, v)?;
        let setup = attn.setup(&s)?;
        let mut params = self.params(attn, &s, &setup)?;
        let tiles = self.forward_tiles(q.dtype, s.head_dim, s.v_dim)?;
        check_out("o", &out.o, &s.o(), q.dtype)?;
        let aux = match setup.aux {
            AuxOut::None => None,
            AuxOut::Lse => out.lse.as_ref(),
            AuxOut::Rem => out.rem.as_ref(),
        };
        if let Some(a) = aux {
            check_out("lse/rem", a, &s.rows(), DType::F32)?;
            params.flags |= FLAG_WRITE_AUX;
        }
        self.dispatch(
            encoder,
            Entry::Forward,
            &s,
            tiles,
            params,
            &setup,
            [q, k, v],
            &out.o,
            aux,
            timestamps,
        )
    }

    /// Records the kernels that materialise the attention weights A [B, Hq, Tq, Tk] (f32) of
    /// `attn` (for softmax, the forward pass first, for its lse). Meant for small T: A must
    /// fit one buffer.
    pub fn record_weights(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        attn: &Attention,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
    ) -> Result<Tensor> {
        let s = self.check_inputs(q, k, v)?;
        let a = self.empty(&s.weights(), DType::F32)?;
        self.record_weights_into(encoder, attn, q, k, v, &a)?;
        Ok(a)
    }

    /// [`Context::record_weights`] into a caller-allocated f32 tensor of shape [B, Hq, Tq, Tk].
    pub fn record_weights_into(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        attn: &Attention,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        a: &Tensor,
    ) -> Result<()> {
        let s = self.check_inputs(q, k, v)?;
        let setup = attn.setup(&s)?;
        let params = self.params(attn, &s, &setup)?;
        let tiles = self.tile_config(s.head_dim, s.v_dim)?;
        let n: u64 = s.weights().iter().map(|&d| d as u64).product();
        if n >= 1 << 32 {
            return Err(Error::TensorTooLarge {
                what: "the attention weights' element count (kernels index with u32)".into(),
                size: n,
                limit: 1 << 32,
            });
        }
        check_out("weights", a, &s.weights(), DType::F32)?;
        let lse = match setup.aux {
            AuxOut::Lse => self.record(encoder, attn, q, k, v)?.lse,
            _ => None,
        };
        self.dispatch(
            encoder,
            Entry::Weights,
            &s,
            tiles,
            params,
            &setup,
            [q, k, v],
            a,
            lse.as_ref(),
            None,
        )
    }

    /// Records and submits the forward kernel; the outputs stay on the GPU.
    pub fn run(&self, attn: &Attention, q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Output> {
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("webattn"),
            });
        let out = self.record(&mut enc, attn, q, k, v)?;
        self.submit(enc)?;
        Ok(out)
    }

    /// Uploads host f32 inputs of `shape`, runs `attn`, and reads every output back.
    pub async fn attention_f32(
        &self,
        attn: &Attention,
        shape: &Shape,
        q: &[f32],
        k: &[f32],
        v: &[f32],
    ) -> Result<HostOutput> {
        let (qt, kt, vt) = self.upload_qkv(shape, q, k, v)?;
        self.read_output(&self.run(attn, &qt, &kt, &vt)?).await
    }

    /// Uploads host f16 inputs (the `half` crate), runs `attn` with f16 storage and f32
    /// accumulation, and reads every output back (o widened to f32). Works with or without
    /// `SHADER_F16` (see [`crate::DeviceInfo::f16_storage`]).
    pub async fn attention_f16(
        &self,
        attn: &Attention,
        shape: &Shape,
        q: &[half::f16],
        k: &[half::f16],
        v: &[half::f16],
    ) -> Result<HostOutput> {
        shape.validate()?;
        shape.check_len("q", shape.q(), q.len())?;
        shape.check_len("k", shape.k(), k.len())?;
        shape.check_len("v", shape.v(), v.len())?;
        let qt = self.tensor_f16(&shape.q(), q)?;
        let kt = self.tensor_f16(&shape.k(), k)?;
        let vt = self.tensor_f16(&shape.v(), v)?;
        self.read_output(&self.run(attn, &qt, &kt, &vt)?).await
    }

    /// Reads every tensor of a forward call's output back to the host (o widened to f32).
    pub async fn read_output(&self, out: &Output) -> Result<HostOutput> {
        let o = self.read_f32(&out.o).await?;
        let lse = match &out.lse {
            Some(t) => Some(self.read_f32(t).await?),
            None => None,
        };
        let rem = match &out.rem {
            Some(t) => Some(self.read_f32(t).await?),
            None => None,
        };
        Ok(HostOutput { o, lse, rem })
    }

    /// Uploads host f32 inputs, materialises the attention weights A and reads them back.
    pub async fn weights_f32(
        &self,
        attn: &Attention,
        shape: &Shape,
        q: &[f32],
        k: &[f32],
        v: &[f32],
    ) -> Result<Vec<f32>> {
        let (qt, kt, vt) = self.upload_qkv(shape, q, k, v)?;
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("webattn"),
            });
        let a = self.record_weights(&mut enc, attn, &qt, &kt, &vt)?;
        self.submit(enc)?;
        self.read_f32(&a).await
    }

    fn upload_qkv(
        &self,
        s: &Shape,
        q: &[f32],
        k: &[f32],
        v: &[f32],
    ) -> Result<(Tensor, Tensor, Tensor)> {
        s.validate()?;
        s.check_len("q", s.q(), q.len())?;
        s.check_len("k", s.k(), k.len())?;
        s.check_len("v", s.v(), v.len())?;
        Ok((
            self.tensor_f32(&s.q(), q)?,
            self.tensor_f32(&s.k(), k)?,
            self.tensor_f32(&s.v(), v)?,
        ))
    }
}

fn check_out(what: &str, t: &Tensor, shape: &[usize], dtype: DType) -> Result<()> {
    if t.shape != shape {
        return Err(Error::ShapeMismatch(format!(
            "output {what} has shape {:?}, the call needs {shape:?}",
            t.shape
        )));
    }
    if t.dtype != dtype {
        return Err(Error::DTypeMismatch {
            what: "output",
            expected: dtype,
            found: t.dtype,
        });
    }
    Ok(())
}

/// f64 CPU reference of `attn` on host inputs (SPEC.md, no tiling): o, and lse or rem.
pub fn reference(
    attn: &Attention,
    shape: &Shape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
) -> Result<RefOutput> {
    let (a, lse, rem) = reference_parts(attn, shape, q, k, v)?;
    let x = inputs(attn, shape, q, k, v)?;
    Ok(RefOutput {
        o: x.apply(&a, |i, j| x.reads_value(&attn.kind, i, j)),
        lse,
        rem,
    })
}

/// f64 CPU reference of the attention weights A [B, Hq, Tq, Tk] of `attn`.
pub fn reference_weights(
    attn: &Attention,
    shape: &Shape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
) -> Result<Vec<f64>> {
    Ok(reference_parts(attn, shape, q, k, v)?.0)
}

fn inputs<'a>(
    attn: &Attention,
    s: &Shape,
    q: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
) -> Result<Inputs<'a>> {
    s.validate()?;
    s.check_len("q", s.q(), q.len())?;
    s.check_len("k", s.k(), k.len())?;
    s.check_len("v", s.v(), v.len())?;
    attn.setup(s)?;
    Ok(Inputs {
        s: *s,
        q,
        k,
        v,
        scale: attn.resolved_scale(s)? as f64,
        window: attn.window,
    })
}

type Parts = (Vec<f64>, Option<Vec<f64>>, Option<Vec<f64>>);

fn reference_parts(attn: &Attention, s: &Shape, q: &[f32], k: &[f32], v: &[f32]) -> Result<Parts> {
    let x = inputs(attn, s, q, k, v)?;
    Ok(match &attn.kind {
        Kind::Softmax(o) => {
            let (a, lse) = crate::softmax::weights(&x, o);
            (a, Some(lse), None)
        }
        Kind::Sigmoid(o) => (crate::sigmoid::weights(&x, o)?, None, None),
        Kind::StickBreaking(o) => {
            let (a, rem) = crate::stick_breaking::weights(&x, o);
            (a, None, Some(rem))
        }
    })
}
