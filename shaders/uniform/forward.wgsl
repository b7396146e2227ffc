// webattn uniform/forward: a test-only toy kind (registered under #[cfg(test)], src/kinds/uniform)
// that shows a kind is one folder plus one registration line. o_i = (1 / n_i) sum_{j in S(i)} v_j
// with n_i = |S(i)|; a row with no key writes o = 0.
//
// Tile shape and ownership: common/tile.wgsl (BQ rows x BK keys per step, 16 x 16
// invocations); phases A and C come from the variant's snippet (phase A's logits are unused,
// but it also stages what phase C needs in some variants).
// Per-row state: stat_b = n_i, summed in row passes.
// Invariants: masked keys weigh exactly 0 and their k and v never reach the row
// (common/tile.wgsl); weights are 1 before the final division.

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
            var n = 0.0;
            for (var b = 0u; b < RB; b++) {
                let w = select(0.0, 1.0, elem_ok(t, a, kb, b, full));
                put_w(t, a, b, w);
                n += w;
            }
            put_red_sum(t, a, n);
        }
        workgroupBarrier();
        if (lid < BQ) {
            stat_b[lid] += red_sum(lid);
        }
        accumulate_pv(t, kb, full);
    }
    workgroupBarrier();
    finish_o(t);
    for (var a = 0u; a < RA; a++) {
        let n = stat_b[lrow(t, a)];
        write_o(t, a, select(0.0, 1.0 / n, n > 0.0), 0.0, -1);
    }
}
