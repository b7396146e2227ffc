// webattn stick_breaking/forward_coop2: the stick-breaking hooks of the subgroup-tiled
// cooperative-matrix kernel (common/tile_coop2.wgsl): o_i = sum_j A_ij v_j and
// rem_i = prod_{l in V(i)} (1 - beta_il) (SPEC.md section 3), with
// A_ij = beta_ij prod_{l in V(i), l > j} (1 - beta_il), beta = sigmoid(z).
//
// Tile shape and ownership: tile_coop2's (16 rows per subgroup, 64 keys per tile; lane h of a
// row holds the KPL logits of keys h KPL .. h KPL + KPL - 1 in zt). The subgroup walks its key
// tiles from the diagonal down to key 0 (KIND_NEAREST_FIRST).
// Per-row state (registers, the same in the row's LPR lanes): acc = -sum softplus(z_il) over
// the keys already visited (the log of the stick left, <= 0) and its Kahan compensation.
// Per tile: each lane computes -softplus (0 where masked) of its keys and their exclusive
// suffix sums serially from its right end (sp); the lanes to its right in the row add their
// totals (row_sum_right); then log A_ij = log_sigmoid(z_ij) + (acc_i + (right + suffix_ij))
// <= 0 and the weight is exp of it; acc then adds the tile's total (Kahan).
// Invariants: weights are <= 1: no running max, no rescaling (alpha is always 1);
// 1 - sigmoid is never formed (log(1 - beta) = -softplus(z) = -(max(z, 0) + log1p(exp(-|z|))));
// masked keys neither take weight nor break the stick (selected by position); a NaN logit of a
// key in V(i) makes the row's o and rem NaN (the stick carries it); a row with no key writes
// o = 0 (plus the remainder policy) and rem = 1.

const KIND_NEAREST_FIRST: bool = true;
const KIND_SCALE_P: bool = true;
const KIND_AUX: bool = true;

var<private> sb_acc: f32;
var<private> sb_comp: f32;
var<private> sp: array<f32, KPL>;

fn kind_begin(t: Sub) {
    sb_acc = 0.0;
    sb_comp = 0.0;
}

fn kind_tile(t: Sub, full: bool, span: vec2<i32>) -> f32 {
    for (var c = 0u; c < KPL; c++) {
        let x = zt[c];
        let l1p = log1p_exp_neg(abs(x));
        zt[c] = min(x, 0.0) - l1p; // log sigmoid(z)
        sp[c] = select(0.0, -(max(x, 0.0) + l1p), key_ok(t, c, full, span));
    }
    // Exclusive suffix sums inside the lane, right to left; run ends as the lane's total.
    var run = 0.0;
    for (var n = KPL; n > 0u; n--) {
        let c = n - 1u;
        let x = sp[c];
        sp[c] = run;
        run += x;
    }
    let right = row_sum_right(t, run);
    for (var c = 0u; c < KPL; c++) {
        let la = zt[c] + (sb_acc + (right + sp[c]));
        zt[c] = select(0.0, exp(la), key_ok(t, c, full, span));
    }
    let k = kahan_add(sb_acc, sb_comp, row_sum(run));
    sb_acc = k.x;
    sb_comp = k.y;
    return 1.0;
}

fn kind_finish(t: Sub) -> RowOut {
    let rem = exp(sb_acc);
    var out: RowOut;
    out.factor = 1.0;
    out.extra = 0.0;
    out.j_extra = -1;
    if (has_flag(FLAG_REM_TO_CURRENT)) {
        out.extra = rem;
        out.j_extra = position(t.row0 + t.r);
    }
    out.aux = bitcast<u32>(rem);
    return out;
}
