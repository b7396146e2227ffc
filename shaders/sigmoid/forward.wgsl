// webattn sigmoid/forward: o_i = sum_j sigmoid(z_ij + b) v_j (SPEC.md section 2), optionally
// row-normalised: o_i / (sum_j sigmoid(z_ij + b) + 1e-8).
//
// Tile shape and ownership: common/tile.wgsl (BQ rows x BK keys per step, 16 x 16
// invocations, RA x RB logits and RA x VC output vec4s per invocation); phases A and C come
// from the variant's common/tile_portable.wgsl or common/tile_coop.wgsl.
// Per-row state: stat_b = sum of weights (row pass, normalised variant only).
// Invariants: sigmoid is not shift-invariant, so there is no running max and no rescaling:
// each tile adds straight into o; masked keys weigh exactly 0, selected by position, and
// their k and v never reach the row (common/tile.wgsl); a NaN in q, or in the k or v of an
// attended key, propagates to the row's o (sigmoid(NaN) is NaN), and a row with no key
// writes o = 0.

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, ids: Ids) {
    let t = tile_of(wg, ids);
    let lid = t.lid;
    if (lid < BQ) {
        stat_b[lid] = 0.0;
    }
    let tiles = key_tile_range(wg);
    for (var kb = tiles.x; kb < tiles.y; kb++) {
        let full = tile_full(t.row0, kb);
        score_tile(t, kb, full);
        for (var a = 0u; a < RA; a++) {
            var sum = 0.0;
            for (var b = 0u; b < RB; b++) {
                let w = select(0.0, sigmoid(s_acc[a * RB + b] + params.bias), elem_ok(t, a, kb, b, full));
                put_w(t, a, b, w);
                sum += w;
            }
            put_red_sum(t, a, sum);
        }
        workgroupBarrier();
        if (lid < BQ && has_flag(FLAG_NORMALIZE)) {
            stat_b[lid] += red_sum(lid);
        }
        accumulate_pv(t, kb, full);
    }
    workgroupBarrier();
    finish_o(t);
    for (var a = 0u; a < RA; a++) {
        var factor = 1.0;
        if (has_flag(FLAG_NORMALIZE)) {
            factor = 1.0 / (stat_b[lrow(t, a)] + 1.0e-8);
        }
        write_o(t, a, factor, 0.0, -1);
    }
}
