// webattn softmax/decode_sg: the softmax hook of the subgroup split-KV partial kernel
// (common/decode_partial_sg.wgsl), SPEC.md sections 1 and 4. Each key group of that kernel
// keeps, per row, the online state of its own sub-chunk: st[r] = (m, l, 0, 0) with m the max of
// the allowed logits so far and l = sum exp(z - m), and acc = sum exp(z - m) v: a partial in
// the algebra of softmax/merge.wgsl (the sink enters only at part_finish).
//
// Tile shape and ownership: one row's NKS logits of a step (lz, lok), every lane of the group
// holding the same values; kind_lane_step leaves their weights in lw and returns the factor
// exp(m_old - m_new) <= 1 that the row's acc takes before the step's keys.
// Invariants: masked pairs weigh exactly 0 (selection, never exp of a masked logit); m only
// grows; a row with no allowed key so far keeps m = NEG_BIG, l = 0 (part_empty).

fn kind_lane_step(r: u32, seq: Seq) -> f32 {
    var mx = NEG_BIG;
    for (var s = 0u; s < NKS; s++) {
        mx = max(mx, select(NEG_BIG, lz[s], lok[s]));
    }
    let m_old = st[r].x;
    let m_new = max(m_old, mx);
    let f = exp(m_old - m_new);
    var l = st[r].y * f;
    for (var s = 0u; s < NKS; s++) {
        let w = select(0.0, exp(lz[s] - m_new), lok[s]);
        lw[s] = w;
        l += w;
    }
    st[r] = vec4<f32>(m_new, l, 0.0, 0.0);
    return f;
}
