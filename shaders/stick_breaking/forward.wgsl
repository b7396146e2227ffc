// webattn stick_breaking/forward: o_i = sum_j A_ij v_j and rem_i = prod_{l in V(i)} (1 - beta_il)
// (SPEC.md section 3), with A_ij = beta_ij prod_{l in V(i), l > j} (1 - beta_il), beta = sigmoid(z).
//
// Tile shape and ownership: common/tile.wgsl (BQ rows x BK keys per step, 16 x 16
// invocations, RA x RB logits and RA x VC output vec4s per invocation); phases A and C come
// from the variant's common/tile_portable.wgsl or common/tile_coop.wgsl. The workgroup walks
// key tiles from the diagonal down to key 0 (right to left).
// Per-row state: stat_a = acc = -sum softplus(z_il) over the keys already visited (the log of
// the stick left, <= 0), stat_b = its Kahan compensation.
// Per tile: each element puts -softplus(z) in p_tile; a segmented scan turns each row into
// exclusive suffix sums (keys to its right in the tile); then log A_ij = log_sigmoid(z_ij) +
// acc_i + suffix_ij <= 0 and A goes into p_tile for phase C; acc then adds the tile's sum.
// Invariants: weights are <= 1: no running max, no rescaling; 1 - sigmoid is never formed
// (log(1 - beta) = -softplus(z) = -(max(z, 0) + log1p(exp(-|z|)))); masked keys neither take
// weight nor break the stick (selected by position, and their v never reaches the row: see
// common/tile.wgsl); a NaN logit of a key in V(i) makes the row's o and rem NaN (the stick
// carries it), a NaN or Inf in such a key's v makes its o non-finite and leaves rem alone;
// a row with no key writes o = 0 (plus policy) and rem = 1.

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, ids: Ids) {
    let t = tile_of(wg, ids);
    let lid = t.lid;
    if (lid < BQ) {
        stat_a[lid] = 0.0;
        stat_b[lid] = 0.0;
    }
    let tiles = key_tile_range(wg);
    for (var step = tiles.y; step > tiles.x; step--) {
        let kb = step - 1u;
        let full = tile_full(t.row0, kb);
        score_tile(t, kb, full);
        for (var a = 0u; a < RA; a++) {
            for (var b = 0u; b < RB; b++) {
                let x = s_acc[a * RB + b];
                let l1p = log1p_exp_neg(abs(x));
                s_acc[a * RB + b] = min(x, 0.0) - l1p; // log sigmoid(z)
                put_p(t, a, b, select(0.0, -(max(x, 0.0) + l1p), elem_ok(t, a, kb, b, full)));
            }
        }
        workgroupBarrier();
        // Segmented exclusive suffix scan. Key lkey(t, b) = tx + 16 b, so the keys right of
        // (tx, b) in the tile are segment b's lanes above tx plus every later segment. Each
        // invocation scans whole segments (row r, segment g) right to left, in place, and
        // leaves the segment's sum in red[r * RB + g].
        for (var e = lid; e < BQ * RB; e += WG) {
            let r = e / RB;
            let g = e % RB;
            var run = 0.0;
            for (var c = 16u; c > 0u; c--) {
                let idx = r * BK + (c - 1u) + 16u * g;
                let x = get_p_at(idx);
                put_p_at(idx, run);
                run += x;
            }
            red[r * RB + g] = run;
        }
        workgroupBarrier();
        for (var a = 0u; a < RA; a++) {
            let r = lrow(t, a);
            let acc = stat_a[r];
            var later = 0.0;
            for (var c = RB; c > 0u; c--) {
                let b = c - 1u;
                let la = s_acc[a * RB + b] + (acc + (later + get_p(t, a, b)));
                put_w(t, a, b, select(0.0, exp(la), elem_ok(t, a, kb, b, full)));
                later += red[r * RB + b];
            }
        }
        workgroupBarrier();
        if (lid < BQ) {
            var total = 0.0;
            for (var g = 0u; g < RB; g++) {
                total += red[lid * RB + g];
            }
            let k = kahan_add(stat_a[lid], stat_b[lid], total);
            stat_a[lid] = k.x;
            stat_b[lid] = k.y;
        }
        accumulate_pv(t, kb, full);
    }
    workgroupBarrier();
    finish_o(t);
    for (var a = 0u; a < RA; a++) {
        let i = t.row0 + lrow(t, a);
        let rem = exp(stat_a[lrow(t, a)]);
        if (has_flag(FLAG_REM_TO_CURRENT)) {
            write_o(t, a, 1.0, rem, position(i));
        } else {
            write_o(t, a, 1.0, 0.0, -1);
        }
    }
    if (lid < BQ) {
        write_aux(t, lid, bitcast<u32>(exp(stat_a[lid])));
    }
}
