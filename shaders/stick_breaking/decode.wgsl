// webattn stick_breaking/decode: the stick-breaking hooks of the split-KV partial kernel
// (common/decode_partial.wgsl), SPEC.md sections 3 and 4. Each chunk is processed on its own,
// as if its nearest key were the first one visited: per row,
//   o_s   = sum_j exp(log sigmoid(z_j) - sum_{l in chunk, l > j} softplus(z_l)) v_j,
//   acc_s = -sum_{l in chunk} softplus(z_l)     (the log of the stick the chunk leaves),
// over the chunk's keys in V(i). The merge scales o_s by the stick the nearer chunks left.
//
// Tile shape and ownership: the partial kernel's (DQ rows x DK keys per tile; pair slots
// pz/pok per invocation), tiles walked from the chunk's last (nearest) to its first.
// Per row: row_a = acc over the tiles already visited (Kahan-summed, compensation in row_b).
// Per tile, each pair puts -softplus(z) (0 when masked) in p_sh; a segmented scan (16-key
// segments, one invocation each, right to left) turns each row into exclusive suffix sums and
// leaves the segment sums in `red` (free once the logits are summed); a pair's in-tile suffix
// is its own entry plus the sums of the segments right of it (at most DK / 16 - 1), and its
// weight is exp(log sigmoid(z) + acc + suffix) <= 1. The row pass adds the segment sums into
// acc. (Before: each pair summed every key right of it, DK / 2 reads on average.)
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

// Segments of 16 keys per row in the in-tile suffix scan (DK is a multiple of 16).
const SEGS: u32 = DK / 16u;

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
    // Segmented exclusive suffix scan, in place: (row r, segment g) walks its 16 keys right to
    // left and leaves the segment's sum in red[r * SEGS + g] (red is free after the logits).
    for (var e = t.lid; e < DQ * SEGS; e += WG) {
        let base = (e / SEGS) * DK + (e % SEGS) * 16u;
        var run = 0.0;
        for (var c = 16u; c > 0u; c--) {
            let x = p_sh[base + c - 1u];
            p_sh[base + c - 1u] = run;
            run += x;
        }
        red[e] = run;
    }
    workgroupBarrier();
    // The row's tile sum, read now: the next tile's logits overwrite `red` after the barrier.
    var total = 0.0;
    if (t.lid < DQ) {
        for (var g = SEGS; g > 0u; g--) {
            total += red[t.lid * SEGS + g - 1u];
        }
    }
    for (var s = 0u; s < NPAIR; s++) {
        if (pair_live(t, s)) {
            let r = pair_row(t, s);
            var suffix = p_sh[pair_e(t, s)];
            for (var g = pair_key(t, s) / 16u + 1u; g < SEGS; g++) {
                suffix += red[r * SEGS + g];
            }
            p_sh[pair_e(t, s)] = select(0.0, exp(pz[s] + (row_a[r] + suffix)), pok[s]);
        }
    }
    // acc changes only after every pair has read it; it is next read after this tile.
    workgroupBarrier();
    if (t.lid < DQ) {
        let k = kahan_add(row_a[t.lid], row_b[t.lid], total);
        row_a[t.lid] = k.x;
        row_b[t.lid] = k.y;
    }
}

fn kind_end(t: DTile) {
    if (t.lid < DQ) {
        // Kahan: the sum is row_a - row_b.
        row_s[t.lid] = vec4<f32>(row_a[t.lid], -row_b[t.lid], 0.0, 0.0);
    }
}
