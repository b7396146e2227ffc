// webattn stick_breaking/forward: o_i = sum_j A_ij v_j and rem_i = prod_{l in V(i)} (1 - beta_il)
// (SPEC.md section 3), with A_ij = beta_ij prod_{l in V(i), l > j} (1 - beta_il), beta = sigmoid(z).
//
// Tile shape and ownership: see common/tile.wgsl (BQ rows per workgroup, TPR invocations per
// row, BK keys per tile). The workgroup walks key tiles from the diagonal down to key 0 (right
// to left). Each invocation carries its row's acc = -sum softplus(z_il) over the keys already
// visited (the log of the stick left, <= 0), and inside a tile walks the keys right to left
// with the running suffix sum, so log A_ij = log_sigmoid(z_ij) + acc_right(j) <= 0.
// acc is carried across tiles with Kahan compensation (rem_i = exp(acc) has the absolute error
// of acc as its relative error), and each tile sums its own suffix from 0.
// Invariants: weights are <= 1: no running max, no rescaling; 1 - sigmoid is never formed
// (log(1 - beta) = -softplus(z) = -(max(z, 0) + log1p(exp(-|z|)))); masked keys neither take
// weight nor break the stick; a row with no key writes o = 0 (plus policy) and rem = 1.

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = make_row(wg, lid);
    load_q_slice(r);
    var acc = 0.0;
    var comp = 0.0;
    let tiles = key_tile_range(wg);
    for (var t = tiles.y; t > tiles.x; t--) {
        let kb = t - 1u;
        score_tile(r, kb, lid);
        var suffix = 0.0;
        for (var c = BK; c > 0u; c--) {
            let kk = c - 1u;
            let x = z[kk];
            let l1p = log1p_exp_neg(abs(x));
            let ok = tile_key_ok(r, kb, kk);
            w[kk] = select(0.0, exp(min(x, 0.0) - l1p + (acc + suffix)), ok);
            suffix = select(suffix, suffix - (max(x, 0.0) + l1p), ok);
        }
        let kahan = kahan_add(acc, comp, suffix);
        acc = kahan.x;
        comp = kahan.y;
        accumulate_pv(r, 1.0);
    }
    let rem = exp(acc);
    if (has_flag(FLAG_REM_TO_CURRENT)) {
        write_o(r, 1.0, rem, r.pos);
    } else {
        write_o(r, 1.0, 0.0, -1);
    }
    write_aux(r, bitcast<u32>(rem));
}
