//! Passes as values, and the assembly of one kernel ([`source`]). A [`Pass`] owns everything about one GPU pass that is not a kind's maths:
//! its bindings (the contract's slot list, from which the bind-group layout and the WGSL
//! declarations are derived), the shared WGSL it assembles before a kind's kernel, its
//! dispatch grid and how its work splits into chunks when buffers exceed the device's
//! storage-binding limit. The pipeline cache and the recorder in `crate::gpu` only see
//! passes, never kinds.
//!
//! Adding a pass: see docs/ARCHITECTURE.md ("How to add a pass").

use crate::contract::{self, Access, Binding, Elem, Params};
use crate::dtype::DType;
use crate::shader::{Storage, TileConfig, Variant};
use crate::shape::Shape;

pub(crate) mod decode;
pub(crate) mod forward;
pub(crate) mod weights;

/// Names a pass (the file name of a kind's kernel, `shaders/<kind>/<pass>.wgsl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PassId {
    /// The tiled forward kernel: o, plus lse or rem.
    Forward,
    /// The kernel that materialises the attention weights A.
    Weights,
    /// Split-KV decoding, first pass: one workgroup per (key chunk, batch, kv head, row
    /// block) writes a partial output and statistic per query row (or, when the sequence has
    /// one chunk, the final outputs). `shaders/<kind>/decode.wgsl`, after the kind's
    /// `merge.wgsl` (its finishing functions).
    DecodePartial,
    /// Split-KV decoding, second pass: merges the chunks' partials of every query row
    /// (SPEC.md section 4). `shaders/<kind>/merge.wgsl`.
    DecodeMerge,
}

impl PassId {
    /// Every pass.
    pub const ALL: [PassId; 4] = [
        PassId::Forward,
        PassId::Weights,
        PassId::DecodePartial,
        PassId::DecodeMerge,
    ];

    /// The file name of a kind's kernel for this pass.
    pub fn name(self) -> &'static str {
        match self {
            PassId::Forward => "forward",
            PassId::Weights => "weights",
            PassId::DecodePartial => "decode",
            PassId::DecodeMerge => "merge",
        }
    }

    /// The pass's descriptor.
    pub(crate) fn pass(self) -> &'static Pass {
        match self {
            PassId::Forward => &forward::PASS,
            PassId::Weights => &weights::PASS,
            PassId::DecodePartial => &decode::PARTIAL,
            PassId::DecodeMerge => &decode::MERGE,
        }
    }
}

/// How much of a binding's buffer one unit (batch, query head) of work uses.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Extent {
    /// Bound whole: the parameter block, sinks, unused slots.
    Whole,
    /// `bytes` per unit, indexed by query unit or (`kv`) by kv unit; `elem` is the byte size of
    /// the element the kernel indexes with, and `base` stores the first bound element's index
    /// into the parameter block.
    PerUnit {
        bytes: u64,
        kv: bool,
        elem: u64,
        base: fn(&mut Params, u32),
    },
}

/// One GPU pass.
pub(crate) struct Pass {
    /// Which pass.
    pub id: PassId,
    /// The bindings; slot = index. Slot 0 is always the parameter block.
    pub bindings: &'static [Binding],
    /// The generated constants that open the kernel (tile sizes; `enable` directives).
    pub header: fn(&TileConfig, Storage) -> String,
    /// The shared WGSL snippets (after the generated declarations, before the kind's kernel).
    pub snippets: fn(&TileConfig, Storage) -> Vec<&'static str>,
    /// Query rows one workgroup owns: `record_pass`'s grid is ceil(Tq / rows) x
    /// units-of-the-chunk (the decode passes size their grids themselves, `record_grid`).
    pub rows_per_workgroup: fn(&TileConfig) -> u32,
    /// Per binding, the extent one unit uses (the chunk planner splits units over bindings).
    pub extents: fn(&Shape, DType) -> Vec<Extent>,
}

/// Bytes per unit of a tensor with `elems_per_unit` elements.
pub(crate) fn tensor_extent(
    elems_per_unit: usize,
    dtype: DType,
    kv: bool,
    base: fn(&mut Params, u32),
) -> Extent {
    Extent::PerUnit {
        bytes: elems_per_unit as u64 * dtype.size() as u64,
        kv,
        // Kernels index tensors by 4-element items (vec4 or packed vec2<u32>).
        elem: 4 * dtype.size() as u64,
        base,
    }
}

/// The generated declarations of a pass: the contract's struct and flags, then one
/// `@group(0) @binding(i)` per binding of the pass, element types per storage. The `coopmat2`
/// forward kernel reads its f16 input tensors as scalars (`array<f16>`: its cooperative-matrix
/// loads take them straight from storage, and need a pointer to a scalar).
fn declarations(pass: PassId, storage: Storage, tiles: &TileConfig) -> String {
    let mut s = Params::wgsl();
    s += &contract::flags_wgsl();
    // The cooperative-matrix decode kernel (and the merge, which shares its declarations)
    // likewise.
    let decode = matches!(pass, PassId::DecodePartial | PassId::DecodeMerge);
    let scalar_inputs = storage == Storage::F16
        && (tiles.variant == Variant::CoopMatrix2
            || (decode && tiles.variant == Variant::CoopMatrix));
    // With K and V staged (debugging), only q is read as scalars.
    let scalar = |name: &str| scalar_inputs && !(tiles.coop2_staged() && name != "q");
    for (i, b) in pass.pass().bindings.iter().enumerate() {
        let elem = match (b.elem, storage) {
            (Elem::Tensor, Storage::F16) if scalar(b.name) && b.access == Access::Read => "f16",
            (Elem::Tensor, Storage::F32) => "vec4<f32>",
            (Elem::Tensor, Storage::F16) => "vec4<f16>",
            (Elem::Tensor, Storage::F16Packed) => "vec2<u32>",
            (Elem::F32, _) => "f32",
            (Elem::Vec4F32, _) => "vec4<f32>",
            (Elem::U32, _) => "u32",
        };
        s += &match b.access {
            Access::Uniform => {
                format!("@group(0) @binding({i}) var<uniform> {}: Params;\n", b.name)
            }
            Access::Read => format!(
                "@group(0) @binding({i}) var<storage, read> {}: array<{elem}>;\n",
                b.name
            ),
            Access::ReadWrite => format!(
                "@group(0) @binding({i}) var<storage, read_write> {}: array<{elem}>;\n",
                b.name
            ),
        };
    }
    s
}

/// The complete WGSL source of one kernel, as the GPU compiles it: `kernel` (a kind's file for
/// `pass`) after the pass's generated declarations and shared snippets.
pub fn source(pass: PassId, kernel: &str, storage: Storage, tiles: &TileConfig) -> String {
    let mut s = (pass.pass().header)(tiles, storage);
    s += &declarations(pass, storage, tiles);
    for snippet in (pass.pass().snippets)(tiles, storage) {
        s.push_str(snippet);
    }
    s.push_str(kernel);
    s
}

#[cfg(test)]
mod tests;
