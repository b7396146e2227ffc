//! The tiny byte-level language-model runner (cargo feature `lm`; the contract is
//! docs/lm.md): load a model ([`Model::load`]: `config.json` text and `model.safetensors`
//! bytes), open a [`Session`] of B sequences, [`Session::prefill`] the prompts, then
//! [`Session::step`] and [`Session::logits`] per token, drawing tokens with a [`Sampler`].
//! Everything but the logits stays on the GPU; attention is webattn's (forward pass for the
//! prompt, split-KV decode passes over a [`crate::KvCache`] per layer), the rest is the
//! runner's own kernels (`shaders/lm/`). [`Model::inspect`] reads attention maps, the
//! stick-breaking remainder and the sink measure of one text. [`Reference`] is the f64 CPU
//! model the tests compare with.
//!
//! ```no_run
//! # #[cfg(not(target_arch = "wasm32"))]
//! # fn main() -> Result<(), webattn::lm::LmError> {
//! use std::sync::Arc;
//! use webattn::lm::{Model, Sampler, Session};
//! use webattn::{Context, ContextOptions, DType};
//! let ctx = Arc::new(Context::new_blocking(ContextOptions::from_env()?)?);
//! let config = std::fs::read_to_string("models/sb-nope/config.json").unwrap();
//! let weights = std::fs::read("models/sb-nope/model.safetensors").unwrap();
//! let model = Model::load(ctx, &config, &weights, DType::F32)?;
//! let mut session = Session::new(&model, 1, 256)?;
//! session.prefill(&[b"And God said"])?;
//! let mut sampler = Sampler::greedy();
//! for _ in 0..100 {
//!     let logits = session.logits_blocking()?;
//!     let next = sampler.sample(&logits);
//!     print!("{}", next as char);
//!     session.step(&[next])?;
//! }
//! # Ok(())
//! # }
//! # #[cfg(target_arch = "wasm32")]
//! # fn main() {}
//! ```

mod config;
mod error;
mod graph;
mod inspect;
pub mod kernels;
mod model;
pub mod random;
mod reference;
mod runner;
mod sample;
mod weights;

pub use config::{Config, RopeConfig};
pub use error::{LmError, LmResult};
pub use inspect::{Inspection, LayerInspection};
pub use model::Model;
pub use reference::{gelu_tanh, top2, Reference};
pub use runner::Session;
pub use sample::Sampler;
pub use weights::{HostWeights, LayerWeights};
