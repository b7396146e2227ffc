//! [`Model`]: a model's config, its weights on the GPU in the chosen precision, and its
//! compiled kernels.

use std::sync::Arc;

use super::config::Config;
use super::error::LmResult;
use super::kernels::Pipelines;
use super::reference::rope_angle;
use super::weights::{GpuWeights, HostWeights};
use crate::dtype::DType;
use crate::gpu::Context;

#[derive(Debug)]
struct Inner {
    ctx: Arc<Context>,
    config: Config,
    weights: GpuWeights,
    pipes: Pipelines,
}

/// A model on the GPU: its config, its weights in the chosen precision and its kernels.
/// Cloning is cheap (shared).
#[derive(Debug, Clone)]
pub struct Model {
    inner: Arc<Inner>,
}

impl Model {
    /// Loads a model from its `config.json` text and `model.safetensors` bytes. `precision`
    /// f32: weights widened to f32, f32 KV caches and attention. f16: weights stay f16 (read
    /// as packed pairs), f16 KV caches and attention inputs; activations are f32 in both.
    pub fn load(
        ctx: Arc<Context>,
        config_json: &str,
        safetensors: &[u8],
        precision: DType,
    ) -> LmResult<Self> {
        let config = Config::from_json(config_json)?;
        let host = HostWeights::parse(&config, safetensors)?;
        Self::from_parts(ctx, config, &host, precision)
    }

    /// [`Model::load`] from a parsed config and weights.
    // On wasm, wgpu's objects are neither Send nor Sync (one thread); the Arc only shares.
    #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
    pub fn from_parts(
        ctx: Arc<Context>,
        config: Config,
        weights: &HostWeights,
        precision: DType,
    ) -> LmResult<Self> {
        ctx.check()?;
        let weights = GpuWeights::upload(&ctx, &config, weights, precision)?;
        let pipes = Pipelines::new(&ctx, precision == DType::F16);
        ctx.check()?;
        Ok(Model {
            inner: Arc::new(Inner {
                ctx,
                config,
                weights,
                pipes,
            }),
        })
    }

    /// The config.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The precision (f32 or f16) of weights, caches and attention.
    pub fn precision(&self) -> DType {
        self.inner.weights.dtype
    }

    /// The context the model lives on.
    pub fn context(&self) -> &Context {
        &self.inner.ctx
    }

    pub(crate) fn gpu(&self) -> &GpuWeights {
        &self.inner.weights
    }

    pub(crate) fn pipes(&self) -> &Pipelines {
        &self.inner.pipes
    }

    /// The RoPE table [positions, head_dim / 2, (cos, sin)] in f32, computed in f64 (a small
    /// dummy buffer for models without RoPE).
    pub(crate) fn rope_table(&self, positions: usize) -> LmResult<wgpu::Buffer> {
        let c = self.config();
        let data: Vec<f32> = match c.rope {
            Some(r) => (0..positions)
                .flat_map(|pos| {
                    (0..c.head_dim / 2).flat_map(move |d| {
                        let (cs, sn) = rope_angle(r.base, c.head_dim, pos, d);
                        [cs as f32, sn as f32]
                    })
                })
                .collect(),
            None => vec![0.0; 4],
        };
        Ok(self
            .context()
            .tensor_f32(&[data.len()], &data)?
            .buffer()
            .clone())
    }
}
