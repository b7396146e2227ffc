// webattn softmax/forward: o_i = sum_j softmax_j(z_ij) v_j and lse_i (SPEC.md section 1),
// FlashAttention-2 style: one pass over the key tiles with a running max m and sum l per row.
//
// Tile shape and ownership: common/tile.wgsl (BQ rows x BK keys per step, 16 x 16
// invocations, RA x RB logits and RA x VC output vec4s per invocation); phases A and C come
// from the variant's common/tile_portable.wgsl or common/tile_coop.wgsl.
// Per-row state: stat_a = m (running max), stat_b = l (running sum), stat_c = alpha
// (rescale of this step), updated in row passes. The max is lazy: it moves only when a tile's
// logit exceeds it by more than RESCALE_SLACK (then alpha < 1 and rescale_tile marks the
// tile); otherwise alpha = 1 exactly and weights exp(z - m) stay <= e^8, safe in f16.
// Invariants: m starts at NEG_BIG (or at the sink logit s_h with l = 1, so the sink enters the
// denominator only); masked elements weigh exactly 0 whatever m is, and "masked" is decided
// by position (elem_ok), never by the value of z, so a NaN logit is a NaN weight, not a
// masked key. Epilogue: a row with no allowed key (row_has_key: position, Tk, causality,
// window) writes o = 0, lse = -inf (bits), or lse = s_h with a sink, never NaN; a row with
// keys whose l is 0 or not finite (a NaN logit; every logit overflowed to -inf; a +inf
// logit) writes NaN for o and lse, never the empty row's values; a NaN or Inf in the v of
// an attended key reaches o through P V (common/tile.wgsl), and lse stays as computed.

const RESCALE_SLACK: f32 = 8.0;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, ids: Ids) {
    let t = tile_of(wg, ids);
    let lid = t.lid;
    if (lid < BQ) {
        stat_a[lid] = NEG_BIG;
        stat_b[lid] = 0.0;
        if (has_flag(FLAG_SINK)) {
            stat_a[lid] = sinks[t.unit % params.hq];
            stat_b[lid] = 1.0;
        }
    }
    let tiles = key_tile_range(wg);
    for (var kb = tiles.x; kb < tiles.y; kb++) {
        let full = tile_full(t.row0, kb);
        score_tile(t, kb, full);
        // Masked logits become NEG_BIG; each invocation leaves its row maxima in `red`.
        for (var a = 0u; a < RA; a++) {
            var mx = NEG_BIG;
            for (var b = 0u; b < RB; b++) {
                let z = select(NEG_BIG, s_acc[a * RB + b], elem_ok(t, a, kb, b, full));
                s_acc[a * RB + b] = z;
                mx = max(mx, z);
            }
            put_red_max(t, a, mx);
        }
        workgroupBarrier();
        if (lid < BQ) {
            // Lazy rescale: the running max moves only when a logit exceeds it by more than
            // RESCALE_SLACK, so weights stay <= e^8 (f16-safe) and most tiles rescale nothing.
            let m_old = stat_a[lid];
            let m_new = red_max(lid, m_old);
            var alpha = 1.0;
            if (m_new > m_old + RESCALE_SLACK) {
                alpha = exp(m_old - m_new);
                stat_a[lid] = m_new;
                atomicMax(&rescale_tile, kb + 1u);
            }
            stat_c[lid] = alpha;
        }
        workgroupBarrier();
        rescale_o(t, kb);
        for (var a = 0u; a < RA; a++) {
            let m = stat_a[lrow(t, a)];
            var sum = 0.0;
            for (var b = 0u; b < RB; b++) {
                var p = exp(s_acc[a * RB + b] - m);
                if (!full) {
                    p = select(0.0, p, elem_ok(t, a, kb, b, false));
                }
                put_w(t, a, b, p);
                sum += p;
            }
            put_red_sum(t, a, sum);
        }
        workgroupBarrier();
        if (lid < BQ) {
            stat_b[lid] = stat_b[lid] * stat_c[lid] + red_sum(lid);
        }
        accumulate_pv(t, kb, full);
    }
    workgroupBarrier();
    finish_o(t);
    for (var a = 0u; a < RA; a++) {
        let r = lrow(t, a);
        write_o(t, a, o_factor(stat_b[r], row_has_key(position(t.row0 + r))), 0.0, -1);
    }
    if (lid < BQ) {
        let l = stat_b[lid];
        var bits = bitcast<u32>(stat_a[lid] + log(l));
        if (!l_ok(l)) {
            bits = select(NEG_INF_BITS, NAN_BITS, row_has_key(position(t.row0 + lid)));
        }
        write_aux(t, lid, bits);
    }
}

// Is the row sum l usable: finite and > 0? (Decided on the bits, not by comparing with inf.)
fn l_ok(l: f32) -> bool {
    return !nonfinite(l) && l > 0.0;
}

// The factor o_acc is multiplied by: 1 / l; 0 for an empty row (o_acc is exactly 0 there, and
// l is 0, or 1 with a sink); NaN for a row with keys whose l is 0 or not finite.
fn o_factor(l: f32, has_key: bool) -> f32 {
    if (l_ok(l)) {
        return 1.0 / l;
    }
    return select(0.0, nan_f32(), has_key);
}
