//! The weights pass: materialises the attention weights A [B, Hq, Tq, Tk] (f32) for looking at
//! attention maps of short sequences; one invocation per query row. Shared WGSL: the storage
//! snippet, `common/params.wgsl`, `common/weights.wgsl`; then `shaders/<kind>/weights.wgsl`.
//! Softmax reads the lse its forward pass wrote (`row_stat`).

use super::{Extent, Pass, PassId};
use crate::contract::{Binding, Elem};
use crate::dtype::DType;
use crate::shader::{snippets, Storage, TileConfig};
use crate::shape::Shape;

/// Slots of the weights pass.
pub(crate) const A: usize = 4;
pub(crate) const ROW_STAT: usize = 5;

static BINDINGS: [Binding; 6] = [
    Binding::params(),
    Binding::read("q", Elem::Tensor),
    Binding::read("k", Elem::Tensor),
    Binding::read("v", Elem::Tensor),
    Binding::write("a", Elem::F32),
    Binding::read("row_stat", Elem::U32),
];

pub(crate) static PASS: Pass = Pass {
    id: PassId::Weights,
    bindings: &BINDINGS,
    header: TileConfig::header,
    snippets: |_t: &TileConfig, st: Storage| {
        vec![snippets::load(st), snippets::PARAMS, snippets::WEIGHTS]
    },
    rows_per_workgroup: |_| TileConfig::WG,
    extents,
};

fn extents(s: &Shape, dtype: DType) -> Vec<Extent> {
    let fwd = (super::forward::PASS.extents)(s, dtype);
    vec![
        Extent::Whole,
        fwd[super::forward::Q],
        fwd[super::forward::K],
        fwd[super::forward::V],
        Extent::PerUnit {
            bytes: 4 * (s.q_len * s.kv_len) as u64,
            kv: false,
            elem: 4,
            base: |p, b| p.o_base = b,
        },
        fwd[super::forward::AUX],
    ]
}
