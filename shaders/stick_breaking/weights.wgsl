// webattn stick_breaking/weights: A_ij = beta_ij prod_{l in V(i), l > j} (1 - beta_il)
// (SPEC.md section 3), walking the keys from the nearest down to key 0 with the log of the
// stick left; with the remainder policy "to current", A_{i,p_i} += rem_i, so that A V = o.
// Tile shape and ownership: common/weights.wgsl (one invocation per query row).
// Invariant: log A <= 0 always; 1 - sigmoid is never formed; the log-stick is Kahan-summed.

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = make_wrow(wg, lid);
    if (!r.live) {
        return;
    }
    for (var j = 0u; j < params.tk; j++) {
        store_a(r, j, 0.0);
    }
    var run = 0.0;
    var comp = 0.0;
    for (var jj = i32(params.tk) - 1; jj >= 0; jj--) {
        let j = u32(jj);
        if (key_allowed(r.pos, j)) {
            let x = wrow_logit(r, j);
            let l1p = log1p_exp_neg(abs(x));
            store_a(r, j, exp(min(x, 0.0) - l1p + run));
            let kahan = kahan_add(run, comp, -(max(x, 0.0) + l1p));
            run = kahan.x;
            comp = kahan.y;
        }
    }
    if (has_flag(FLAG_REM_TO_CURRENT) && r.pos >= 0 && r.pos < i32(params.tk)) {
        let j = u32(r.pos);
        let prev = a[(r.unit * params.tq + r.i) * params.tk + j - params.o_base];
        store_a(r, j, prev + exp(run));
    }
}
