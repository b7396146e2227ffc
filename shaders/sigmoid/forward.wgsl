// webattn sigmoid/forward: o_i = sum_j sigmoid(z_ij + b) v_j (SPEC.md section 2), optionally
// row-normalised: o_i / (sum_j sigmoid(z_ij + b) + 1e-8).
//
// Tile shape and ownership: see common/tile.wgsl (BQ rows per workgroup, TPR invocations per
// row, BK keys per tile). Each invocation keeps OV vec4 output columns and its row's weight sum.
// Invariants: sigmoid is not shift-invariant, so there is no running max and no rescaling:
// each tile adds straight into o (alpha = 1); masked keys weigh exactly 0.

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = make_row(wg, lid);
    load_q_slice(r);
    var wsum = 0.0;
    let tiles = key_tile_range(wg);
    for (var kb = tiles.x; kb < tiles.y; kb++) {
        score_tile(r, kb, lid);
        for (var kk = 0u; kk < BK; kk++) {
            w[kk] = select(0.0, sigmoid(z[kk] + params.bias), tile_key_ok(r, kb, kk));
            wsum += w[kk];
        }
        accumulate_pv(r, 1.0);
    }
    var factor = 1.0;
    if (has_flag(FLAG_NORMALIZE)) {
        factor = 1.0 / (wsum + 1.0e-8);
    }
    write_o(r, factor, 0.0, -1);
}
