// webattn sigmoid/decode_sg: the sigmoid hook of the subgroup split-KV partial kernel
// (common/decode_partial_sg.wgsl), SPEC.md sections 2 and 4. Each key group of that kernel
// keeps, per row, st[r] = (w, 0, 0, 0) with w = sum sigmoid(z + b) over its allowed keys so far,
// and acc = sum sigmoid(z + b) v: a partial in the algebra of sigmoid/merge.wgsl (which also
// holds sigmoid_bias, the per-sequence bias shared with the portable hooks).
//
// Tile shape and ownership: one row's NKS logits of a step (lz, lok), every lane of the group
// holding the same values; kind_lane_step leaves their weights in lw.
// Invariants: no running max, no rescaling (the factor is 1); masked pairs weigh exactly 0.

fn kind_lane_step(r: u32, seq: Seq) -> f32 {
    let b = sigmoid_bias(seq);
    var w_sum = st[r].x;
    for (var s = 0u; s < NKS; s++) {
        let w = select(0.0, sigmoid(lz[s] + b), lok[s]);
        lw[s] = w;
        w_sum += w;
    }
    st[r] = vec4<f32>(w_sum, 0.0, 0.0, 0.0);
    return 1.0;
}
