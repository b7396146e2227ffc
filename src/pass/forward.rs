//! The forward pass: the tiled flash-attention kernel of every kind (o, plus lse or rem).
//! Shared WGSL: the storage snippets, `common/params.wgsl`, `common/tile.wgsl`, a lanes snippet
//! and a phases snippet per variant; then `shaders/<kind>/forward.wgsl`. The `coopmat2` variant
//! instead assembles `common/tile_coop2.wgsl` (the loop and entry point) and the kind's hooks,
//! `shaders/<kind>/forward_coop2.wgsl` ([`crate::kinds::kind::AttentionKind::forward_coop2`]).

use super::{tensor_extent, Extent, Pass, PassId};
use crate::contract::{Binding, Elem};
use crate::dtype::DType;
use crate::shader::{snippets, Storage, TileConfig, Variant};
use crate::shape::Shape;

/// Slots of the forward pass.
pub(crate) const Q: usize = 1;
pub(crate) const K: usize = 2;
pub(crate) const V: usize = 3;
pub(crate) const O: usize = 4;
pub(crate) const AUX: usize = 5;
pub(crate) const SINKS: usize = 6;

static BINDINGS: [Binding; 7] = [
    Binding::params(),
    Binding::read("q", Elem::Tensor),
    Binding::read("k", Elem::Tensor),
    Binding::read("v", Elem::Tensor),
    Binding::write("o", Elem::Tensor),
    Binding::write("aux", Elem::U32),
    Binding::read("sinks", Elem::F32),
];

pub(crate) static PASS: Pass = Pass {
    id: PassId::Forward,
    bindings: &BINDINGS,
    header: TileConfig::header,
    snippets: |t: &TileConfig, st: Storage| {
        let (lanes, phases) = match t.variant {
            Variant::Portable => (snippets::LANES_PLAIN, snippets::TILE_PORTABLE),
            Variant::Subgroup => (snippets::LANES_SUBGROUP, snippets::TILE_PORTABLE),
            Variant::CoopMatrix => (snippets::LANES_SUBGROUP, snippets::TILE_COOP),
            Variant::CoopMatrix2 => {
                // Its own loop and entry point (the kind's file holds hooks only); f16 inputs
                // read as scalars.
                // K and V staged (debugging, WEBATTN_COOP2_STAGE=1): k and v read as vec4s.
                let staged = t.coop2_staged();
                let load = match st {
                    Storage::F16 if staged => snippets::STORAGE_F16_COOP2_STAGED,
                    Storage::F16 => snippets::STORAGE_F16_SCALAR,
                    _ => snippets::load(st),
                };
                let kv = if staged {
                    snippets::TILE_COOP2_STAGED
                } else {
                    snippets::TILE_COOP2_DIRECT
                };
                return vec![
                    load,
                    snippets::PARAMS,
                    snippets::store(st),
                    snippets::TILE_COOP2,
                    kv,
                ];
            }
        };
        vec![
            snippets::load(st),
            snippets::PARAMS,
            snippets::store(st),
            snippets::TILE,
            lanes,
            phases,
        ]
    },
    rows_per_workgroup: |t| t.bq,
    extents,
};

fn extents(s: &Shape, dtype: DType) -> Vec<Extent> {
    vec![
        Extent::Whole,
        tensor_extent(s.q_len * s.head_dim, dtype, false, |p, b| p.q_base = b),
        tensor_extent(s.kv_len * s.head_dim, dtype, true, |p, b| p.k_base = b),
        tensor_extent(s.kv_len * s.v_dim, dtype, true, |p, b| p.v_base = b),
        tensor_extent(s.q_len * s.v_dim, dtype, false, |p, b| p.o_base = b),
        Extent::PerUnit {
            bytes: 4 * s.q_len as u64,
            kv: false,
            elem: 4,
            base: |p, b| p.aux_base = b,
        },
        Extent::Whole,
    ]
}
