//! The plain objects that cross the boundary besides the call arguments (see `args.rs`):
//! results, device information, the kinds' list and the sink measure's arguments. Each is a
//! serde type with `#[derive(Tsify)]`, so `webattn.d.ts` declares it from this definition.

use js_sys::{Float32Array, Float64Array};
use serde::{Deserialize, Serialize};
use tsify::Tsify;
use wasm_bindgen::prelude::*;

use crate::attention::HostOutput;
use crate::reference::RefOutput;

/// GPU outputs (always f32; f16 results are widened).
#[derive(Serialize, Deserialize, Tsify)]
pub struct AttentionOutput {
    /// `[batch, qHeads, qLen, vDim]`
    #[serde(with = "serde_wasm_bindgen::preserve")]
    #[tsify(type = "Float32Array")]
    pub o: JsValue,
    /// Softmax: log-sum-exp per row `[batch, qHeads, qLen]` (`-Infinity` for a row without
    /// keys or sink).
    #[serde(
        with = "serde_wasm_bindgen::preserve",
        default,
        skip_serializing_if = "JsValue::is_undefined"
    )]
    #[tsify(optional, type = "Float32Array")]
    pub lse: JsValue,
    /// Stick-breaking: the stick left per row `[batch, qHeads, qLen]`.
    #[serde(
        with = "serde_wasm_bindgen::preserve",
        default,
        skip_serializing_if = "JsValue::is_undefined"
    )]
    #[tsify(optional, type = "Float32Array")]
    pub rem: JsValue,
}

impl From<HostOutput> for AttentionOutput {
    fn from(h: HostOutput) -> Self {
        let arr = |x: Option<Vec<f32>>| x.map_or(JsValue::UNDEFINED, |x| f32_array(&x).into());
        AttentionOutput {
            o: f32_array(&h.o).into(),
            lse: arr(h.lse),
            rem: arr(h.rem),
        }
    }
}

/// The f64 CPU reference's outputs (the same layout as [`AttentionOutput`]).
#[derive(Serialize, Tsify)]
pub struct ReferenceOutput {
    /// `[batch, qHeads, qLen, vDim]`
    #[serde(with = "serde_wasm_bindgen::preserve")]
    #[tsify(type = "Float64Array")]
    pub o: JsValue,
    /// Softmax: log-sum-exp per row.
    #[serde(
        with = "serde_wasm_bindgen::preserve",
        skip_serializing_if = "JsValue::is_undefined"
    )]
    #[tsify(optional, type = "Float64Array")]
    pub lse: JsValue,
    /// Stick-breaking: the stick left per row.
    #[serde(
        with = "serde_wasm_bindgen::preserve",
        skip_serializing_if = "JsValue::is_undefined"
    )]
    #[tsify(optional, type = "Float64Array")]
    pub rem: JsValue,
}

impl From<RefOutput> for ReferenceOutput {
    fn from(r: RefOutput) -> Self {
        let arr = |x: Option<Vec<f64>>| {
            x.map_or(JsValue::UNDEFINED, |x| Float64Array::from(&x[..]).into())
        };
        ReferenceOutput {
            o: Float64Array::from(&r.o[..]).into(),
            lse: arr(r.lse),
            rem: arr(r.rem),
        }
    }
}

/// A `Float32Array` copy of `x`.
pub fn f32_array(x: &[f32]) -> Float32Array {
    Float32Array::from(x)
}

/// Options of `WebAttn.create`.
#[derive(Deserialize, Default, Tsify)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateOptions {
    /// `"auto"` (default: the high-performance adapter) or `"software"` (the fallback
    /// adapter).
    #[tsify(optional, type = "\"auto\" | \"software\"")]
    pub adapter: Option<String>,
    /// Lower the storage-binding size webattn assumes (bytes, at least 4), to split the work
    /// over batch and heads.
    #[tsify(optional)]
    pub max_binding_size: Option<u64>,
}

/// What the adapter and device offer.
#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
pub struct DeviceInfo {
    /// Adapter name (browsers may hide it).
    pub name: String,
    /// Backend (`BrowserWebGpu` here).
    pub backend: String,
    /// Discrete, integrated, virtual, CPU (software) or other.
    pub device_type: String,
    /// Driver name and version.
    pub driver: String,
    /// `shader-f16` is available.
    pub shader_f16: bool,
    /// How f16 tensors are read: `"F16"` (shader-f16) or `"F16Packed"` (core WebGPU).
    pub f16_storage: String,
    /// The forward-kernel variant in use.
    pub variant: String,
    /// Subgroups are available.
    pub subgroups: bool,
    /// Smallest and largest subgroup size.
    pub subgroup_sizes: (u32, u32),
    /// Timestamp queries are enabled.
    pub timestamp_query: bool,
    /// Largest storage-buffer binding, bytes.
    pub max_storage_binding: f64,
    /// Largest buffer, bytes.
    pub max_buffer: f64,
    /// Workgroup memory, bytes.
    pub max_workgroup_storage: u32,
    /// Invocations per workgroup.
    pub max_invocations: u32,
    /// Workgroups per dispatch dimension.
    pub max_workgroups_per_dim: u32,
    /// Alignment of storage-binding offsets, bytes.
    pub storage_offset_alignment: u32,
    /// The multi-line text the Rust `DeviceInfo` prints.
    pub summary: String,
}

impl From<&crate::DeviceInfo> for DeviceInfo {
    fn from(i: &crate::DeviceInfo) -> Self {
        DeviceInfo {
            name: i.name.clone(),
            backend: i.backend.clone(),
            device_type: i.device_type.clone(),
            driver: i.driver.clone(),
            shader_f16: i.shader_f16,
            f16_storage: format!("{:?}", i.f16_storage),
            variant: format!("{:?}", i.variant),
            subgroups: i.subgroups,
            subgroup_sizes: i.subgroup_sizes,
            timestamp_query: i.timestamp_query,
            max_storage_binding: i.max_storage_binding as f64,
            max_buffer: i.max_buffer as f64,
            max_workgroup_storage: i.max_workgroup_storage,
            max_invocations: i.max_invocations,
            max_workgroups_per_dim: i.max_workgroups_per_dim,
            storage_offset_alignment: i.storage_offset_alignment,
            summary: i.to_string(),
        }
    }
}

/// Result of `WebAttn.bench`.
#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
pub struct BenchResult {
    /// Wall time of all iterations, milliseconds (GPU work awaited).
    pub ms: f64,
    /// Number of timed runs.
    pub iterations: u32,
    /// `ms / iterations`.
    pub ms_per_call: f64,
}

/// One registered attention kind.
#[derive(Serialize, Tsify)]
#[tsify(hashmap_as_object)]
pub struct KindInfo {
    /// The name `kind` takes.
    pub name: String,
    /// Other names accepted for it.
    pub aliases: Vec<String>,
    /// One line about it.
    pub about: String,
    /// Its default options (with `kind`), ready to spread into the arguments of a call.
    #[tsify(type = "AttentionOptions")]
    pub default: serde_json::Value,
}

/// Sizes of the weights handed to `sinkMeasure`: `[batch, heads, len, len]`.
#[derive(Deserialize, Tsify)]
#[serde(deny_unknown_fields)]
pub struct SinkShape {
    /// Sequences B (default 1).
    #[tsify(optional)]
    pub batch: Option<usize>,
    /// Heads H.
    pub heads: usize,
    /// Tokens T.
    pub len: usize,
}

/// Options of `sinkMeasure`.
#[derive(Deserialize, Default, Tsify)]
#[serde(deny_unknown_fields)]
pub struct SinkOptions {
    /// Row-normalise first: `A / (rowsum + 1e-8)` (default false).
    #[tsify(optional)]
    pub normalize: Option<bool>,
    /// The threshold ε (default 0.3).
    #[tsify(optional)]
    pub eps: Option<f64>,
}

/// Result of `sinkMeasure` (SPEC.md section 5).
#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
pub struct SinkMeasure {
    /// α_k averaged over the batch: `[heads, len]`.
    #[serde(with = "serde_wasm_bindgen::preserve")]
    #[tsify(type = "Float64Array")]
    pub alpha: JsValue,
    /// Sink_k^ε for every key k: the fraction (0 to 1) of heads with α_k > ε, `[len]`.
    #[serde(with = "serde_wasm_bindgen::preserve")]
    #[tsify(type = "Float64Array")]
    pub rate: JsValue,
    /// Sink_0^ε, the first-token sink rate (0 to 1).
    pub first_token: f64,
}

/// wgpu objects a `WebAttn` has created so far (`attn.objectsCreated()`): a decode loop
/// through a `DecodeSession` creates none after its first step.
#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
pub struct ObjectCounts {
    /// Buffers (tensors, uniforms, sinks, staging for read-back).
    pub buffers: f64,
    /// Bind groups.
    pub bind_groups: f64,
    /// Compute pipelines.
    pub pipelines: f64,
}

impl From<crate::ObjectCounts> for ObjectCounts {
    fn from(c: crate::ObjectCounts) -> Self {
        ObjectCounts {
            buffers: c.buffers as f64,
            bind_groups: c.bind_groups as f64,
            pipelines: c.pipelines as f64,
        }
    }
}
