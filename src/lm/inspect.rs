//! Looking inside a model on one text: per layer and head the attention weights, the
//! stick-breaking remainder per token, and the attention-sink measure of SPEC.md section 5.

use super::error::{LmError, LmResult};
use super::graph::{Graph, InspectBufs};
use super::model::Model;
use crate::dtype::DType;
use crate::gpu::KvCache;
use crate::kinds::AuxOut;
use crate::shape::Shape;
use crate::sink;

/// One layer's view of a text of T tokens (H query heads).
#[derive(Debug, Clone, PartialEq)]
pub struct LayerInspection {
    /// Attention weights A [H, T, T] (row i: query token i; column j: key token j).
    pub weights: Vec<f32>,
    /// Stick-breaking remainder per head and token [H, T] (`None` for other kinds).
    pub rem: Option<Vec<f32>>,
    /// `alpha_k` per head and key [H, T] (mean attention key k receives; SPEC.md section 5).
    pub alpha: Vec<f64>,
    /// `alpha_k` after row normalisation, `A / (rowsum + 1e-8)`.
    pub alpha_normalized: Vec<f64>,
    /// Fraction of heads with `alpha_0 > 0.3` (the first token as a sink).
    pub sink_rate: f64,
    /// The same on row-normalised weights.
    pub sink_rate_normalized: f64,
}

/// [`Model::inspect`]'s result.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspection {
    /// Tokens T.
    pub tokens: usize,
    /// Query heads H.
    pub heads: usize,
    /// Per layer.
    pub layers: Vec<LayerInspection>,
}

impl Model {
    /// Runs `text` (1 to 1024 tokens) through the model and reads back, for every layer, the
    /// attention weights, the remainder (stick-breaking) and the sink measure.
    pub async fn inspect(&self, text: &[u8]) -> LmResult<Inspection> {
        let (ctx, c) = (self.context(), self.config());
        let t = text.len();
        if t == 0 || t > 1024 {
            return Err(LmError::Usage(format!(
                "inspect takes 1 to 1024 tokens, got {t}"
            )));
        }
        if let Some(b) = text.iter().find(|&&b| b as usize >= c.vocab) {
            return Err(LmError::Usage(format!(
                "token {b} is outside the vocabulary"
            )));
        }
        let nh = c.n_head;
        let shape = Shape::gqa(1, nh, c.n_kv_head, t, c.head_dim);
        ctx.check_weights_fit(&shape)?;
        let rem_on = c.attention.aux(&shape)? == AuxOut::Rem;
        let bufs = InspectBufs {
            weights: (0..c.n_layer)
                .map(|_| ctx.empty(&[1, nh, t, t], DType::F32))
                .collect::<crate::error::Result<_>>()?,
            rem: (0..c.n_layer)
                .map(|_| {
                    rem_on
                        .then(|| ctx.empty(&[1, nh, t], DType::F32))
                        .transpose()
                })
                .collect::<crate::error::Result<_>>()?,
        };
        let mut caches = (0..c.n_layer)
            .map(|_| {
                KvCache::new(
                    ctx,
                    1,
                    c.n_kv_head,
                    t,
                    c.head_dim,
                    c.head_dim,
                    self.precision(),
                )
            })
            .collect::<crate::error::Result<Vec<_>>>()?;
        let rope = self.rope_table(t)?;
        let g = Graph::new(self, 1, t, &rope, None)?;
        let toks: Vec<u32> = text.iter().map(|&b| b as u32).collect();
        let q = ctx.queue();
        q.write_buffer(&g.tok, 0, bytemuck::cast_slice(&toks));
        q.write_buffer(&g.pos0, 0, &[0u8; 4]);
        q.write_buffer(&g.sel, 0, bytemuck::cast_slice(&[t as u32 - 1]));
        let mut enc = ctx
            .device()
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("webattn lm inspect"),
            });
        g.record(self, &mut enc, &mut caches, &[t], Some(&bufs))?;
        ctx.submit(enc)?;
        let mut layers = Vec::with_capacity(c.n_layer);
        for (w, r) in bufs.weights.iter().zip(&bufs.rem) {
            let weights = ctx.read_f32(w).await?;
            let rem = match r {
                Some(r) => Some(ctx.read_f32(r).await?),
                None => None,
            };
            let alpha = sink::alpha(&weights, nh, t, false)?;
            let alpha_normalized = sink::alpha(&weights, nh, t, true)?;
            layers.push(LayerInspection {
                sink_rate: sink::sink_rate(&alpha, t, 0, sink::DEFAULT_EPS)?,
                sink_rate_normalized: sink::sink_rate(&alpha_normalized, t, 0, sink::DEFAULT_EPS)?,
                weights,
                rem,
                alpha,
                alpha_normalized,
            });
        }
        Ok(Inspection {
            tokens: t,
            heads: nh,
            layers,
        })
    }

    /// Blocking form of [`Model::inspect`] (not on wasm).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn inspect_blocking(&self, text: &[u8]) -> LmResult<Inspection> {
        pollster::block_on(self.inspect(text))
    }
}
