// webattn softmax/forward: o_i = sum_j softmax_j(z_ij) v_j and lse_i (SPEC.md section 1),
// FlashAttention-2 style: one pass over the key tiles with a running max m and sum l.
//
// Tile shape and ownership: see common/tile.wgsl (BQ rows per workgroup, TPR invocations per
// row, BK keys per tile). Each invocation keeps its row's m and l (identical across the TPR
// parts) and OV vec4 columns of the unnormalised output.
// Invariants: m starts at NEG_BIG (or at the sink logit s_h with l = 1, so the sink enters the
// denominator only); w = 0 for masked keys, so fully masked tiles change nothing; a row with
// no allowed key and no sink ends with l = 0 and writes o = 0, lse = -inf (bits), never NaN.

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = make_row(wg, lid);
    load_q_slice(r);
    var m = NEG_BIG;
    var l = 0.0;
    if (has_flag(FLAG_SINK)) {
        m = sinks[r.unit % params.hq];
        l = 1.0;
    }
    let tiles = key_tile_range(wg);
    for (var kb = tiles.x; kb < tiles.y; kb++) {
        score_tile(r, kb, lid);
        var m_new = m;
        for (var kk = 0u; kk < BK; kk++) {
            if (tile_key_ok(r, kb, kk)) {
                m_new = max(m_new, z[kk]);
            }
        }
        for (var kk = 0u; kk < BK; kk++) {
            w[kk] = select(0.0, exp(z[kk] - m_new), tile_key_ok(r, kb, kk));
        }
        let alpha = exp(m - m_new);
        var tile_sum = 0.0;
        for (var kk = 0u; kk < BK; kk++) {
            tile_sum += w[kk];
        }
        l = l * alpha + tile_sum;
        accumulate_pv(r, alpha);
        m = m_new;
    }
    if (l > 0.0) {
        write_o(r, 1.0 / l, 0.0, -1);
        write_aux(r, bitcast<u32>(m + log(l)));
    } else {
        write_o(r, 0.0, 0.0, -1);
        write_aux(r, NEG_INF_BITS);
    }
}
