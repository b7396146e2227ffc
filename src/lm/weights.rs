//! The weights of a model: `model.safetensors` bytes parsed and checked against the
//! [`Config`] ([`HostWeights`]: every name, shape and dtype; f16 values kept as they are), and
//! their GPU copies ([`GpuWeights`]: f32, or f16 packed two per u32 word).

use half::f16;
use safetensors::{Dtype, SafeTensors};

use super::config::Config;
use super::error::{LmError, LmResult};
use crate::dtype::DType;
use crate::gpu::Context;
use crate::tensor::Tensor;

/// One block's weights (f16, PyTorch layout `[out, in]`).
#[derive(Debug, Clone)]
pub struct LayerWeights {
    /// RMSNorm weight before attention, [d_model].
    pub attn_norm: Vec<f16>,
    /// Query projection, [n_head * head_dim, d_model].
    pub wq: Vec<f16>,
    /// Key projection, [n_kv_head * head_dim, d_model].
    pub wk: Vec<f16>,
    /// Value projection, [n_kv_head * head_dim, d_model].
    pub wv: Vec<f16>,
    /// Output projection, [d_model, n_head * head_dim].
    pub wo: Vec<f16>,
    /// RMSNorm weight before the MLP, [d_model].
    pub mlp_norm: Vec<f16>,
    /// MLP up projection, [d_ff, d_model].
    pub w1: Vec<f16>,
    /// MLP down projection, [d_model, d_ff].
    pub w2: Vec<f16>,
}

/// A model's weights on the host, checked against its config.
#[derive(Debug, Clone)]
pub struct HostWeights {
    /// Token embedding, tied with the LM head, [vocab, d_model].
    pub tok_emb: Vec<f16>,
    /// The blocks.
    pub layers: Vec<LayerWeights>,
    /// Final RMSNorm weight, [d_model].
    pub norm: Vec<f16>,
}

impl HostWeights {
    /// Parses safetensors bytes: every tensor of [`Config::tensors`] must be present, F16 and
    /// of its shape, and no other tensor may be there.
    pub fn parse(config: &Config, bytes: &[u8]) -> LmResult<Self> {
        let st =
            SafeTensors::deserialize(bytes).map_err(|e| LmError::Safetensors(e.to_string()))?;
        let wanted = config.tensors();
        let mut names: Vec<String> = st.names().into_iter().map(str::to_string).collect();
        names.sort();
        if let Some(extra) = names.iter().find(|n| !wanted.iter().any(|(w, _)| w == *n)) {
            return Err(LmError::UnexpectedTensor(extra.clone()));
        }
        let get = |name: &str, shape: &[usize]| -> LmResult<Vec<f16>> {
            let t = st
                .tensor(name)
                .map_err(|_| LmError::MissingTensor(name.to_string()))?;
            if t.dtype() != Dtype::F16 {
                return Err(LmError::DType {
                    name: name.to_string(),
                    found: format!("{:?}", t.dtype()),
                });
            }
            if t.shape() != shape {
                return Err(LmError::Shape {
                    name: name.to_string(),
                    expected: shape.to_vec(),
                    found: t.shape().to_vec(),
                });
            }
            Ok(t.data()
                .chunks_exact(2)
                .map(|b| f16::from_le_bytes([b[0], b[1]]))
                .collect())
        };
        let mut it = wanted.iter();
        let mut next = || -> LmResult<Vec<f16>> {
            let (n, s) = it
                .next()
                .ok_or_else(|| LmError::Config("tensor list ended early".into()))?;
            get(n, s)
        };
        let tok_emb = next()?;
        let mut layers = Vec::with_capacity(config.n_layer);
        for _ in 0..config.n_layer {
            layers.push(LayerWeights {
                attn_norm: next()?,
                wq: next()?,
                wk: next()?,
                wv: next()?,
                wo: next()?,
                mlp_norm: next()?,
                w1: next()?,
                w2: next()?,
            });
        }
        let norm = next()?;
        Ok(HostWeights {
            tok_emb,
            layers,
            norm,
        })
    }
}

/// Widens f16 values to f64 (the reference's view of the weights).
pub fn widen(x: &[f16]) -> Vec<f64> {
    x.iter().map(|v| v.to_f64()).collect()
}

/// One block's weights on the GPU. Norm weights are always f32; matrices follow the
/// precision ([`GpuWeights::dtype`]).
#[derive(Debug)]
pub(crate) struct GpuLayer {
    pub attn_norm: Tensor,
    pub wq: Tensor,
    pub wk: Tensor,
    pub wv: Tensor,
    pub wo: Tensor,
    pub mlp_norm: Tensor,
    pub w1: Tensor,
    pub w2: Tensor,
}

/// The weights on the GPU: matrices as f32 (upcast on load) or f16 (read by the kernels as
/// packed u32 pairs, so no shader-f16 feature is needed).
#[derive(Debug)]
pub(crate) struct GpuWeights {
    pub tok_emb: Tensor,
    pub layers: Vec<GpuLayer>,
    pub norm: Tensor,
    pub dtype: DType,
}

impl GpuWeights {
    pub fn upload(ctx: &Context, c: &Config, w: &HostWeights, dtype: DType) -> LmResult<Self> {
        let (d, hq, hkv) = (c.d_model, c.n_head * c.head_dim, c.n_kv_head * c.head_dim);
        let mat = |x: &[f16], rows: usize, cols: usize| -> LmResult<Tensor> {
            Ok(match dtype {
                DType::F32 => {
                    let v: Vec<f32> = x.iter().map(|h| h.to_f32()).collect();
                    ctx.tensor_f32(&[rows, cols], &v)?
                }
                DType::F16 => ctx.tensor_f16(&[rows, cols], x)?,
            })
        };
        let vecf = |x: &[f16]| -> LmResult<Tensor> {
            let v: Vec<f32> = x.iter().map(|h| h.to_f32()).collect();
            Ok(ctx.tensor_f32(&[v.len()], &v)?)
        };
        let layers = w
            .layers
            .iter()
            .map(|l| {
                Ok(GpuLayer {
                    attn_norm: vecf(&l.attn_norm)?,
                    wq: mat(&l.wq, hq, d)?,
                    wk: mat(&l.wk, hkv, d)?,
                    wv: mat(&l.wv, hkv, d)?,
                    wo: mat(&l.wo, d, hq)?,
                    mlp_norm: vecf(&l.mlp_norm)?,
                    w1: mat(&l.w1, c.d_ff, d)?,
                    w2: mat(&l.w2, d, c.d_ff)?,
                })
            })
            .collect::<LmResult<Vec<_>>>()?;
        Ok(GpuWeights {
            tok_emb: mat(&w.tok_emb, c.vocab, d)?,
            layers,
            norm: vecf(&w.norm)?,
            dtype,
        })
    }
}
