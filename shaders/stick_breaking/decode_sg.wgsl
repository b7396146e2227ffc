// webattn stick_breaking/decode_sg: the stick-breaking hook of the subgroup split-KV partial
// kernel (common/decode_partial_sg.wgsl), SPEC.md sections 3 and 4. Each key group of that
// kernel owns a contiguous sub-chunk and processes it as its own mini-chunk, nearest key first
// (steps from the sub-chunk's end down, keys within a step from the last down): per row,
//   acc = sum_j exp(log sigmoid(z_j) - sum_{l in sub-chunk, l > j} softplus(z_l)) v_j,
//   st[r] = (a, a_lo, 0, 0), a + a_lo = -sum_{l in sub-chunk} softplus(z_l) (double-f32),
// over the keys in V(i): a partial in the algebra of stick_breaking/merge.wgsl, so the kernel's
// end combines the groups nearest to farthest with part_combine exactly as the merge pass
// combines chunks.
//
// Tile shape and ownership: one row's NKS logits of a step (lz, lok), every lane of the group
// holding the same values; kind_lane_step leaves their weights in lw. The in-step suffix is a
// running sum over the step's nearer keys (NKS <= 4: serial, in registers).
// Invariants: 1 - sigmoid is never formed (log(1 - beta) = -softplus(z)); masked pairs neither
// take weight nor break the stick; weights are <= 1, so no rescaling (the factor is 1).

fn kind_lane_step(r: u32, seq: Seq) -> f32 {
    let a = st[r].x + st[r].y;
    var suffix = 0.0;
    for (var s = NKS; s > 0u; s--) {
        let z = lz[s - 1u];
        let ok = lok[s - 1u];
        let l1p = log1p_exp_neg(abs(z));
        lw[s - 1u] = select(0.0, exp(min(z, 0.0) - l1p + (a + suffix)), ok);
        suffix += select(0.0, -(max(z, 0.0) + l1p), ok);
    }
    st[r] = vec4<f32>(dd_add(st[r].xy, vec2<f32>(suffix, 0.0)), 0.0, 0.0);
    return 1.0;
}
