// webattn sigmoid/forward_coop2: the sigmoid hooks of the subgroup-tiled cooperative-matrix
// kernel (common/tile_coop2.wgsl): o_i = sum_j sigmoid(z_ij + b) v_j (SPEC.md section 2),
// optionally row-normalised: o_i / (sum_j sigmoid(z_ij + b) + 1e-8).
//
// Tile shape and ownership: tile_coop2's (16 rows per subgroup, 64 keys per tile; each lane
// holds KPL logits of one row in zt). Per-row state: w_run = the sum of the row's weights
// (normalised variant only), the same in the row's LPR lanes.
// Invariants: sigmoid is not shift-invariant: no running max, no rescaling (alpha is always
// 1); masked keys weigh exactly 0, selected by position; a NaN in q, or in the k or v of an
// attended key, propagates to the row's o; a row with no key writes o = 0.

const KIND_NEAREST_FIRST: bool = false;
const KIND_SCALE_P: bool = true;
const KIND_AUX: bool = false;

var<private> w_run: f32;

fn kind_begin(t: Sub) {
    w_run = 0.0;
}

fn kind_tile(t: Sub, full: bool, span: vec2<i32>) -> f32 {
    var sum = 0.0;
    for (var c = 0u; c < KPL; c++) {
        let w = select(0.0, sigmoid(zt[c] + params.bias), key_ok(t, c, full, span));
        zt[c] = w;
        sum += w;
    }
    if (has_flag(FLAG_NORMALIZE)) {
        w_run += row_sum(sum);
    }
    return 1.0;
}

fn kind_finish(t: Sub) -> RowOut {
    var out: RowOut;
    out.factor = 1.0;
    if (has_flag(FLAG_NORMALIZE)) {
        out.factor = 1.0 / (w_run + 1.0e-8);
    }
    out.extra = 0.0;
    out.j_extra = -1;
    out.aux = 0u;
    return out;
}
