//! The GPU layer: the [`Context`] (device, info, caches) and, one concern per file, the
//! pipeline cache (`pipelines.rs`), tensors (`tensors.rs`), recording a pass with its chunk
//! planner and bind-group cache (`record.rs`), the attention calls (`calls.rs`) and the
//! decoding calls over a KV cache (`decode.rs`).

mod caches;
mod calls;
mod context;
mod decode;
mod kvcache;
mod options;
mod pipelines;
mod record;
mod tensors;

pub use context::{Context, ObjectCounts};
pub use decode::DecodeOutput;
pub use kvcache::KvCache;
pub use options::{AdapterChoice, ContextOptions, DeviceInfo};
