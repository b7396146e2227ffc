// webattn sigmoid/weights: A_ij = sigmoid(z_ij + b) for j in S(i), else 0, divided by
// (sum_j A_ij + 1e-8) in the row-normalised variant (SPEC.md section 2).
// Tile shape and ownership: common/weights.wgsl (one invocation per query row).
// Invariant: the normalising sum is taken over exactly the weights written.

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = make_wrow(wg, lid);
    if (!r.live) {
        return;
    }
    var factor = 1.0;
    if (has_flag(FLAG_NORMALIZE)) {
        var s = 0.0;
        for (var j = 0u; j < params.tk; j++) {
            if (key_allowed(r.pos, j)) {
                s += sigmoid(wrow_logit(r, j) + params.bias);
            }
        }
        factor = 1.0 / (s + 1.0e-8);
    }
    for (var j = 0u; j < params.tk; j++) {
        var x = 0.0;
        if (key_allowed(r.pos, j)) {
            x = sigmoid(wrow_logit(r, j) + params.bias) * factor;
        }
        store_a(r, j, x);
    }
}
