//! The GPU layer: the [`Context`] (device, info, caches) and, one concern per file, the
//! pipeline cache (`pipelines.rs`), tensors (`tensors.rs`), recording a pass with its chunk
//! planner and bind-group cache (`record.rs`) and the attention calls (`calls.rs`).

mod calls;
mod context;
mod options;
mod pipelines;
mod record;
mod tensors;

pub use context::{Context, ObjectCounts};
pub use options::{AdapterChoice, ContextOptions, DeviceInfo};
