// webattn uniform/weights: the test-only toy kind's A_ij = 1 / n_i for j in S(i), else 0,
// with n_i = |S(i)|. Tile shape and ownership: common/weights.wgsl (one invocation per row).
// Invariant: a row with no key is all zeros.

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = make_wrow(wg, lid);
    if (!r.live) {
        return;
    }
    var n = 0u;
    for (var j = 0u; j < params.tk; j++) {
        if (key_allowed(r.pos, j)) {
            n++;
        }
    }
    for (var j = 0u; j < params.tk; j++) {
        store_a(r, j, select(0.0, 1.0 / f32(max(n, 1u)), key_allowed(r.pos, j)));
    }
}
