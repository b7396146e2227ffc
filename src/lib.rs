//! # webattn
//!
//! Tiled, flash-attention-style WGSL kernels for three attention mechanisms, running wherever
//! WebGPU does: natively through wgpu (Vulkan, Metal, DX12) and in the browser.
//!
//! - **stick-breaking attention** (Tan et al., ICLR 2025), [`stick_breaking`];
//! - **softmax attention** with log-sum-exp output and optional sink logits, [`softmax`];
//! - **sigmoid attention** without normalisation (FlashSigmoid), [`sigmoid`].
//!
//! No kernel ever builds the T x T matrix, except the explicit weights kernels
//! ([`Context::record_weights`]) meant for looking at attention maps of short sequences.
//! The maths follows the project's SPEC.md; every kernel has an f64 CPU reference
//! ([`reference`], [`reference_weights`]).
//!
//! ```no_run
//! use webattn::{Attention, Context, ContextOptions, Shape};
//! # fn main() -> webattn::Result<()> {
//! let ctx = Context::new_blocking(ContextOptions::from_env())?;
//! let shape = Shape::new(1, 2, 100, 64);
//! let n = shape.q().iter().product::<usize>();
//! let x: Vec<f32> = (0..n).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
//! let attn = Attention::stick_breaking();
//! let out = pollster::block_on(ctx.attention_f32(&attn, &shape, &x, &x, &x))?;
//! let want = webattn::reference(&attn, &shape, &x, &x, &x)?;
//! assert_eq!(out.o.len(), want.o.len());
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod attention;
mod context;
mod error;
pub mod reference;
pub mod shader;
pub mod sigmoid;
pub mod sink;
pub mod softmax;
pub mod stick_breaking;
mod tensor;
#[cfg(target_arch = "wasm32")]
mod wasm;

pub use attention::{reference, reference_weights, Attention, HostOutput, Kind, Output, Shape};
pub use context::{AdapterChoice, Context, ContextOptions, DeviceInfo, Variant};
pub use error::{Error, Result};
pub use reference::RefOutput;
pub use shader::{Storage, TileConfig};
pub use sigmoid::{SigmoidBias, SigmoidOptions};
pub use softmax::SoftmaxOptions;
pub use stick_breaking::{Remainder, StickBreakingOptions};
pub use tensor::{DType, Tensor};
