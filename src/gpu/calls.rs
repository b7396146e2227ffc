//! The attention calls of a [`Context`]: input and output checks, the parameter block, and
//! recording the forward and weights passes (plus the one-call forms that upload, submit and
//! read back).

use crate::attention::{Attention, HostOutput, Output};
use crate::contract::{Params, FLAG_WRITE_AUX};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kinds::{AuxOut, KindSetup};
use crate::pass::{forward, weights, PassId};
use crate::shader::{TileConfig, Variant};
use crate::shape::Shape;
use crate::tensor::Tensor;

use super::context::Context;
use super::record::Dispatch;

impl Context {
    /// The forward kernel (the kind's WGSL) and its tiles for `attn` on tensors of `dtype`
    /// with head dims `d`, `dv`: [`Context::forward_tiles`], except that a kind without
    /// `coopmat2` hooks takes the cooperative-matrix kernel where that variant was chosen, and
    /// a call whose weights unscaled f16 cannot hold
    /// ([`crate::kinds::AttentionKind::coop_weights_fit_f16`]) takes the subgroup variant
    /// where the cooperative-matrix one was chosen.
    pub(crate) fn forward_kernel(
        &self,
        attn: &Attention,
        dtype: DType,
        d: usize,
        dv: usize,
    ) -> Result<(&'static str, TileConfig)> {
        let kind = attn.kind();
        let tiles = self.forward_tiles(dtype, d, dv)?;
        if tiles.variant == Variant::CoopMatrix2 {
            if let Some(k) = kind.forward_coop2() {
                return Ok((k, tiles));
            }
        }
        let tiles = match tiles.variant {
            Variant::CoopMatrix2 => {
                let mem = self.info().max_workgroup_storage;
                TileConfig::choose_coop(d, dv, mem, self.info().subgroup_sizes.1)
                    .unwrap_or(self.tile_config(d, dv)?.with_variant(Variant::Subgroup))
            }
            _ => tiles,
        };
        // Weights that unscaled f16 cannot hold: the subgroup variant, f32 arithmetic.
        let tiles = if tiles.variant == Variant::CoopMatrix && !kind.coop_weights_fit_f16() {
            self.tile_config(d, dv)?.with_variant(Variant::Subgroup)
        } else {
            tiles
        };
        let kernel = kind
            .shader(PassId::Forward)
            .ok_or_else(|| Error::InvalidOption(format!("{} has no forward pass", kind.name())))?;
        Ok((kernel, tiles))
    }
}

/// A call's checked inputs.
struct Call {
    shape: Shape,
    setup: KindSetup,
    params: Params,
}

impl Context {
    fn prepare(&self, attn: &Attention, q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Call> {
        self.check()?;
        attn.validate()?;
        let s = Shape::from_shapes(q.shape(), k.shape(), v.shape())?;
        for (what, t) in [("k", k), ("v", v)] {
            if t.dtype() != q.dtype() {
                return Err(Error::DTypeMismatch {
                    what,
                    expected: q.dtype(),
                    found: t.dtype(),
                });
            }
        }
        check_u32_elems(
            "a tensor",
            [s.q(), s.k(), s.v(), s.o()].iter().map(elem_count),
        )?;
        let setup = attn.kind().setup(&s)?;
        let params = Params {
            tq: s.q_len as u32,
            tk: s.kv_len as u32,
            hq: s.q_heads as u32,
            group: s.group() as u32,
            flags: setup.flags,
            // A window of Tk or more masks nothing (p_i <= Tk - 1), and clamping it keeps the
            // kernels' i32 arithmetic in range (Tk < 2^30 since k has < 2^32 elements).
            window: attn
                .window_value()
                .filter(|&w| (w as u64) < s.kv_len as u64)
                .unwrap_or(0),
            scale: attn.resolved_scale(&s)?,
            bias: setup.bias,
            diag: (s.kv_len as i64 - s.q_len as i64) as i32,
            self_excl: setup.self_excl,
            ..Params::default()
        };
        Ok(Call {
            shape: s,
            setup,
            params,
        })
    }

    /// Timestamps need `TIMESTAMP_QUERY`, and queries `i` and `i + 1` must exist in the set.
    pub(super) fn check_timestamps(
        &self,
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
        Ok(())
    }

    /// Allocates the outputs of `attn` for inputs of `shape` and `dtype` (o, plus lse or rem).
    pub fn alloc_output(&self, attn: &Attention, shape: &Shape, dtype: DType) -> Result<Output> {
        shape.validate()?;
        attn.validate()?;
        let aux = attn.kind().setup(shape)?.aux;
        let o = self.empty(&shape.o(), dtype)?;
        let row = |want| -> Result<Option<Tensor>> {
            (aux == want)
                .then(|| self.empty(&shape.rows(), DType::F32))
                .transpose()
        };
        Ok(Output {
            o,
            lse: row(AuxOut::Lse)?,
            rem: row(AuxOut::Rem)?,
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
        let call = self.prepare(attn, q, k, v)?;
        let out = self.alloc_output(attn, &call.shape, q.dtype())?;
        self.record_into(encoder, attn, q, k, v, &out)?;
        Ok(out)
    }

    /// Records the forward kernel of `attn` writing into outputs the caller allocated (with
    /// [`Context::alloc_output`], or its own buffers of the same shapes), so a model reuses
    /// its buffers from step to step. A repeated call with the same tensors creates no wgpu
    /// object ([`Context::objects_created`]).
    ///
    /// Fails with [`Error::InvalidOption`] when `out` was allocated for another kind (it lacks
    /// the kind's lse or rem, or has one the kind does not write), and with
    /// [`Error::Aliasing`] when an output shares a buffer with an input or another output.
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
        self.check_timestamps(timestamps)?;
        let Call {
            shape: s,
            setup,
            mut params,
        } = self.prepare(attn, q, k, v)?;
        let (kernel, tiles) = self.forward_kernel(attn, q.dtype(), s.head_dim, s.v_dim)?;
        check_out("o", &out.o, &s.o(), q.dtype())?;
        let (aux, other, name) = match setup.aux {
            AuxOut::None => (None, out.lse.as_ref().or(out.rem.as_ref()), "none"),
            AuxOut::Lse => (out.lse.as_ref(), out.rem.as_ref(), "lse"),
            AuxOut::Rem => (out.rem.as_ref(), out.lse.as_ref(), "rem"),
        };
        if other.is_some() || (aux.is_none() && setup.aux != AuxOut::None) {
            return Err(Error::InvalidOption(format!(
                "the output was not allocated for {} attention (its per-row output is {name}); \
                 allocate it with alloc_output for this attention",
                attn.kind().name()
            )));
        }
        if let Some(a) = aux {
            check_out(name, a, &s.rows(), DType::F32)?;
            params.flags |= FLAG_WRITE_AUX;
        }
        check_aliasing(&[q, k, v], &[Some(&out.o), aux])?;
        let sinks = setup
            .sinks
            .as_deref()
            .map(|sk| self.f32_buffer(sk))
            .transpose()?;
        let mut buffers = vec![None; 7];
        buffers[forward::Q] = Some(q.buffer());
        buffers[forward::K] = Some(k.buffer());
        buffers[forward::V] = Some(v.buffer());
        buffers[forward::O] = Some(out.o.buffer());
        buffers[forward::AUX] = aux.map(Tensor::buffer);
        buffers[forward::SINKS] = sinks.as_ref();
        self.record_pass(
            encoder,
            Dispatch {
                pass: PassId::Forward,
                kernel,
                storage: self.storage(q.dtype()),
                tiles,
                shape: &s,
                dtype: q.dtype(),
                params,
                buffers,
                timestamps,
            },
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
        let call = self.prepare(attn, q, k, v)?;
        check_weights_size(&call.shape)?;
        let a = self.empty(&call.shape.weights(), DType::F32)?;
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
        let Call {
            shape: s,
            setup,
            params,
        } = self.prepare(attn, q, k, v)?;
        check_weights_size(&s)?;
        let tiles = self.tile_config(s.head_dim, s.v_dim)?;
        check_out("weights", a, &s.weights(), DType::F32)?;
        check_aliasing(&[q, k, v], &[Some(a)])?;
        let kernel = attn.kind().shader(PassId::Weights).ok_or_else(|| {
            Error::InvalidOption(format!("{} has no weights pass", attn.kind().name()))
        })?;
        let lse = match setup.aux {
            AuxOut::Lse => self.record(encoder, attn, q, k, v)?.lse,
            _ => None,
        };
        let mut buffers = vec![None; 6];
        buffers[forward::Q] = Some(q.buffer());
        buffers[forward::K] = Some(k.buffer());
        buffers[forward::V] = Some(v.buffer());
        buffers[weights::A] = Some(a.buffer());
        buffers[weights::ROW_STAT] = lse.as_ref().map(Tensor::buffer);
        self.record_pass(
            encoder,
            Dispatch {
                pass: PassId::Weights,
                kernel,
                storage: self.storage(q.dtype()),
                tiles,
                shape: &s,
                dtype: q.dtype(),
                params,
                buffers,
                timestamps: None,
            },
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
        shape.check_host(q.len(), k.len(), v.len())?;
        attn.validate()?;
        let qt = self.tensor_f32(&shape.q(), q)?;
        let kt = self.tensor_f32(&shape.k(), k)?;
        let vt = self.tensor_f32(&shape.v(), v)?;
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
        shape.check_host(q.len(), k.len(), v.len())?;
        attn.validate()?;
        let qt = self.tensor_f16(&shape.q(), q)?;
        let kt = self.tensor_f16(&shape.k(), k)?;
        let vt = self.tensor_f16(&shape.v(), v)?;
        self.read_output(&self.run(attn, &qt, &kt, &vt)?).await
    }

    /// Blocking form of [`Context::attention_f32`] (not on wasm).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn attention_f32_blocking(
        &self,
        attn: &Attention,
        shape: &Shape,
        q: &[f32],
        k: &[f32],
        v: &[f32],
    ) -> Result<HostOutput> {
        pollster::block_on(self.attention_f32(attn, shape, q, k, v))
    }

    /// Blocking form of [`Context::attention_f16`] (not on wasm).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn attention_f16_blocking(
        &self,
        attn: &Attention,
        shape: &Shape,
        q: &[half::f16],
        k: &[half::f16],
        v: &[half::f16],
    ) -> Result<HostOutput> {
        pollster::block_on(self.attention_f16(attn, shape, q, k, v))
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
    /// The size of A is checked before anything runs.
    pub async fn weights_f32(
        &self,
        attn: &Attention,
        shape: &Shape,
        q: &[f32],
        k: &[f32],
        v: &[f32],
    ) -> Result<Vec<f32>> {
        shape.check_host(q.len(), k.len(), v.len())?;
        attn.validate()?;
        self.check_weights_fit(shape)?;
        let qt = self.tensor_f32(&shape.q(), q)?;
        let kt = self.tensor_f32(&shape.k(), k)?;
        let vt = self.tensor_f32(&shape.v(), v)?;
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("webattn"),
            });
        let a = self.record_weights(&mut enc, attn, &qt, &kt, &vt)?;
        self.submit(enc)?;
        self.read_f32(&a).await
    }

    /// Checks that the attention weights of `shape` fit one buffer of this device (call it
    /// before a forward pass whose weights will be wanted: it fails fast).
    pub fn check_weights_fit(&self, shape: &Shape) -> Result<()> {
        check_weights_size(shape)?;
        let bytes = shape
            .weights()
            .iter()
            .try_fold(4u64, |a, &d| a.checked_mul(d as u64))
            .unwrap_or(u64::MAX);
        if bytes > self.info.max_buffer {
            return Err(Error::TensorTooLarge {
                what: format!("the attention weights {:?} (bytes)", shape.weights()),
                size: bytes,
                limit: self.info.max_buffer,
            });
        }
        Ok(())
    }
}

fn check_weights_size(s: &Shape) -> Result<()> {
    let n: u64 = s.weights().iter().map(|&d| d as u64).product();
    if n >= 1 << 32 {
        return Err(Error::TensorTooLarge {
            what: "the attention weights' element count (kernels index with u32)".into(),
            size: n,
            limit: 1 << 32,
        });
    }
    Ok(())
}

pub(super) fn check_out(what: &str, t: &Tensor, shape: &[usize], dtype: DType) -> Result<()> {
    if t.shape() != shape {
        return Err(Error::ShapeMismatch(format!(
            "output {what} has shape {:?}, the call needs {shape:?}",
            t.shape()
        )));
    }
    if t.dtype() != dtype {
        return Err(Error::DTypeMismatch {
            what: "output",
            expected: dtype,
            found: t.dtype(),
        });
    }
    Ok(())
}

/// Outputs must not share a buffer with an input or with each other: WebGPU forbids a buffer
/// bound for reading and writing in one dispatch, and the failure would surface later, on an
/// unrelated call.
pub(super) fn check_aliasing(inputs: &[&Tensor], outputs: &[Option<&Tensor>]) -> Result<()> {
    let outs: Vec<&Tensor> = outputs.iter().flatten().copied().collect();
    for (i, o) in outs.iter().enumerate() {
        if let Some(x) = inputs.iter().position(|t| t.buffer() == o.buffer()) {
            return Err(Error::Aliasing(format!(
                "output {i} shares its buffer with input {}",
                ["q", "k", "v"].get(x).unwrap_or(&"?")
            )));
        }
        if outs[..i].iter().any(|p| p.buffer() == o.buffer()) {
            return Err(Error::Aliasing(format!(
                "output {i} shares its buffer with another output"
            )));
        }
    }
    Ok(())
}

/// Elements of a 4-D shape, as u64.
pub(super) fn elem_count(shape: &[usize; 4]) -> u64 {
    shape.iter().map(|&d| d as u64).product()
}

/// Kernels index with u32: every tensor of a call must hold fewer than 2^32 elements.
pub(super) fn check_u32_elems(what: &str, counts: impl Iterator<Item = u64>) -> Result<()> {
    let elems = counts.max().unwrap_or(0);
    if elems >= 1 << 32 {
        return Err(Error::TensorTooLarge {
            what: format!("{what}'s element count (kernels index with u32)"),
            size: elems,
            limit: 1 << 32,
        });
    }
    Ok(())
}
