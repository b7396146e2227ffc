//! # webattn
//!
//! Tiled, flash-attention-style WGSL kernels for three attention mechanisms, running wherever
//! WebGPU does: natively through wgpu (Vulkan, Metal, DX12) and in the browser.
//!
//! - **stick-breaking attention** (Tan et al., ICLR 2025), [`kinds::stick_breaking`];
//! - **softmax attention** with log-sum-exp output and optional sink logits, [`kinds::softmax`];
//! - **sigmoid attention** without normalisation (FlashSigmoid), [`kinds::sigmoid`].
//!
//! Incremental decoding runs over a [`KvCache`] (ragged batches, f32 or f16) with split-KV
//! partial and merge passes ([`Context::record_decode`], SPEC.md section 4).
//!
//! No kernel ever builds the T x T matrix, except the explicit weights kernels
//! ([`Context::record_weights`]) meant for looking at attention maps of short sequences.
//! The maths follows the project's SPEC.md; every kernel has an f64 CPU reference
//! ([`reference`], [`reference_weights`]).
//!
//! ```no_run
//! use webattn::{Attention, Context, ContextOptions, Shape};
//! # fn main() -> webattn::Result<()> {
//! let ctx = Context::new_blocking(ContextOptions::from_env()?)?;
//! let shape = Shape::new(1, 2, 100, 64);
//! let n = shape.q().iter().product::<usize>();
//! let x: Vec<f32> = (0..n).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
//! let attn = Attention::stick_breaking();
//! let out = ctx.attention_f32_blocking(&attn, &shape, &x, &x, &x)?;
//! let want = webattn::reference(&attn, &shape, &x, &x, &x)?;
//! assert_eq!(out.o.len(), want.o.len());
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

// Layers, lowest first (each imports only from the ones above it):
// dtype, error, shape -> contract -> pass, shader -> reference, kinds, attention, tensor
// -> gpu (Context) -> kvcache, testing, sink, wasm. See docs/ARCHITECTURE.md.
mod attention;
pub(crate) mod contract;
mod dtype;
mod error;
mod gpu;
pub mod kinds;
#[cfg(feature = "lm")]
pub mod lm;
pub mod pass;
pub mod reference;
pub mod shader;
mod shape;
pub mod sink;
mod tensor;
pub mod testing;
#[cfg(target_arch = "wasm32")]
mod wasm;

pub use attention::{Attention, HostOutput, Output};
pub use dtype::DType;
pub use error::{Error, Result};
pub use gpu::{
    AdapterChoice, Context, ContextOptions, DecodeOutput, DeviceInfo, KvCache, ObjectCounts,
};
pub use kinds::sigmoid::{SigmoidBias, SigmoidOptions};
pub use kinds::softmax::SoftmaxOptions;
pub use kinds::stick_breaking::{Remainder, StickBreakingOptions};
pub use kinds::{AttentionKind, AuxOut};
pub use pass::decode::SplitPlan;
pub use reference::{
    reference, reference_in, reference_ordered, reference_weights, Precision, RefOutput, SumOrder,
};
pub use shader::{Storage, TileConfig, Variant};
pub use shape::Shape;
pub use tensor::Tensor;
