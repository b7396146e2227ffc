// webattn stick_breaking/decode: the stick-breaking hooks of the split-KV partial kernel
// (common/decode_partial.wgsl), SPEC.md sections 3 and 4. Each chunk is processed on its own,
// as if its nearest key were the first one visited: per row,
//   o_s   = sum_j exp(log sigmoid(z_j) - sum_{l in chunk, l > j} softplus(z_l)) v_j,
//   acc_s = -sum_{l in chunk} softplus(z_l)     (the log of the stick the chunk leaves),
// over the chunk's keys in V(i). The merge scales o_s by the stick the nearer chunks left.
//
// Tile shape and ownership: the partial kernel's (DQ rows x DK keys per tile; pair slots
// pz/pok per invocation), tiles walked from the chunk's last (nearest) to its first.
// Per row: row_a = acc over the tiles already visited (Kahan-summed, compensation in row_b),
// row_t = this tile's sum. Per tile, each pair puts -softplus(z) (0 when masked) in p_sh,
// then sums the entries of the keys right of it in its row (its in-tile suffix), and its
// weight is exp(log sigmoid(z) + acc + suffix) <= 1.
// Statistic written: (acc_s, its low-order part, 0, 0).
// Invariants: 1 - sigmoid is never formed (log(1 - beta) = -softplus(z)); masked pairs neither
// take weight nor break the stick; weights are <= 1, so no rescaling (row_f stays 1).

const KIND_NEAREST_FIRST: bool = true;

fn kind_begin(t: DTile) {
    if (t.lid < DQ) {
        row_a[t.lid] = 0.0;
        row_b[t.lid] = 0.0;
    }
}

fn kind_tile(t: DTile) {
    for (var s = 0u; s < NPAIR; s++) {
        if (pair_live(t, s)) {
            let z = pz[s];
            let l1p = log1p_exp_neg(abs(z));
            p_sh[pair_e(t, s)] = select(0.0, -(max(z, 0.0) + l1p), pok[s]);
            pz[s] = min(z, 0.0) - l1p; // log sigmoid(z)
        }
    }
    workgroupBarrier();
    var wv: array<f32, NPAIR>;
    for (var s = 0u; s < NPAIR; s++) {
        wv[s] = 0.0;
        if (pair_live(t, s)) {
            let r = pair_row(t, s);
            let key = pair_key(t, s);
            var suffix = 0.0;
            for (var k = key + 1u; k < DK; k++) {
                suffix += p_sh[r * DK + k];
            }
            wv[s] = select(0.0, exp(pz[s] + (row_a[r] + suffix)), pok[s]);
            if (key == 0u) {
                row_t[r] = suffix + p_sh[r * DK];
            }
        }
    }
    workgroupBarrier();
    for (var s = 0u; s < NPAIR; s++) {
        if (pair_live(t, s)) {
            p_sh[pair_e(t, s)] = wv[s];
        }
    }
    if (t.lid < DQ) {
        let k = kahan_add(row_a[t.lid], row_b[t.lid], row_t[t.lid]);
        row_a[t.lid] = k.x;
        row_b[t.lid] = k.y;
    }
    workgroupBarrier();
}

fn kind_end(t: DTile) {
    if (t.lid < DQ) {
        // Kahan: the sum is row_a - row_b.
        row_s[t.lid] = vec4<f32>(row_a[t.lid], -row_b[t.lid], 0.0, 0.0);
    }
}
