// webattn softmax/weights: A_ij = exp(z_ij - lse_i) for j in S(i), else 0 (SPEC.md section 1),
// using the lse the softmax forward kernel wrote (so rows sum to 1 - exp(s_h - lse_i) with a
// sink). Tile shape and ownership: common/weights.wgsl (one invocation per query row).
// Invariant: a row whose lse is -inf (no allowed key) is all zeros.

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = make_wrow(wg, lid);
    if (!r.live) {
        return;
    }
    let bits = row_stat[r.unit * params.tq + r.i - params.aux_base];
    let empty = bits == NEG_INF_BITS;
    let lse = bitcast<f32>(select(bits, 0u, empty));
    for (var j = 0u; j < params.tk; j++) {
        var x = 0.0;
        if (!empty && key_allowed(r.pos, j)) {
            x = exp(wrow_logit(r, j) - lse);
        }
        store_a(r, j, x);
    }
}
