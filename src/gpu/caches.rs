//! The caches a [`super::Context`] owns, as plain data: compiled pipelines and per-pass layouts
//! (filled by `pipelines.rs`), and bind groups with their uniforms and sinks buffers (filled by
//! `record.rs`). Defined here, below the context, so that neither file and the context import
//! each other.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::pass::PassId;
use crate::shader::{Storage, TileConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct PipelineKey {
    pub pass: PassId,
    /// Identity of the kernel's WGSL (a `&'static str` from `include_str!`).
    pub kernel: (usize, usize),
    pub storage: Storage,
    pub tiles: TileConfig,
}

/// Compiled pipelines and per-pass layouts of one [`Context`].
#[derive(Default)]
pub(crate) struct PipelineCache {
    pub layouts: Mutex<HashMap<PassId, (wgpu::BindGroupLayout, wgpu::PipelineLayout)>>,
    pub pipelines: Mutex<HashMap<PipelineKey, wgpu::ComputePipeline>>,
}

/// Cached bind groups (each holding its uniform buffer) and sinks buffers. Bounded: when it
/// holds `CAPACITY` entries it is cleared, so buffers of finished work are not kept alive.
#[derive(Default)]
pub(crate) struct BindCache {
    pub groups: Mutex<HashMap<BindKey, wgpu::BindGroup>>,
    pub sinks: Mutex<HashMap<Vec<u32>, wgpu::Buffer>>,
}

pub(crate) const CAPACITY: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct BindKey {
    pub pass: PassId,
    pub params: Vec<u8>,
    pub entries: Vec<(wgpu::Buffer, u64, u64)>,
}
