// webattn common: key masks and the numerically careful scalar functions of SPEC.md (softplus
// pieces, sigmoid) that every kernel shares.
//
// Computes nothing on its own. It is concatenated after the generated header (src/shader.rs):
// tile constants (HEAD_D, HEAD_DV, BQ, BK, WG, RA, RB, VC, ...), then the GPU contract of
// src/contract.rs: `struct Params` (tq, tk, hq, group, unit0, *_base, flags, window, scale,
// bias, diag, self_excl), the FLAG_* constants and the pass's bindings (`params`, q, k, v, ...).
// A storage snippet (common/storage_*.wgsl) supplies the q/k/v load functions.
//
// Layout (SPEC.md): q [B, Hq, Tq, D], k [B, Hkv, Tk, D], v [B, Hkv, Tk, Dv], row-major.
// A "unit" is one (batch, query head) pair, u = b * Hq + h; its kv unit is u / group.
// Offsets in `params` (`*_base`) are subtracted from every index: the host may bind a
// sub-range of a large buffer (split over units), starting at element `*_base`.
// Invariants: every index is computed in u32 and stays below 2^32 (the host checks);
// masks are decided in i32 positions so rows with no key (p_i < 0) work.

// Most negative finite f32 stand-in for -inf in running maxima (WGSL may assume no infinities).
const NEG_BIG: f32 = -3.0e38;
// Bit pattern of f32 -inf, written to lse for rows with no key.
const NEG_INF_BITS: u32 = 0xff800000u;

fn has_flag(f: u32) -> bool {
    return (params.flags & f) != 0u;
}

// Absolute position of query row i (bottom-right causal alignment).
fn position(i: u32) -> i32 {
    return i32(i) + params.diag;
}

// Is key j in S(i) (softmax, sigmoid) or V(i) (stick-breaking) for a row at position p?
fn key_allowed(p: i32, j: u32) -> bool {
    if (j >= params.tk) {
        return false;
    }
    let jj = i32(j);
    if (has_flag(FLAG_CAUSAL) && jj > p - i32(params.self_excl)) {
        return false;
    }
    if (params.window != 0u && jj + i32(params.window) <= p) {
        return false;
    }
    return true;
}

// log1p(exp(-a)) for a >= 0, accurate where exp(-a) is tiny (WGSL has no log1p).
fn log1p_exp_neg(a: f32) -> f32 {
    let e = exp(-a);
    if (e < 1.0e-3) {
        return e * (1.0 - e * (0.5 - e * (1.0 / 3.0)));
    }
    return log(1.0 + e);
}

// Kahan summation step: returns (sum + x, new compensation) for a running (sum, comp).
fn kahan_add(sum: f32, comp: f32, x: f32) -> vec2<f32> {
    let y = x - comp;
    let t = sum + y;
    return vec2<f32>(t, (t - sum) - y);
}

// sigmoid(x) without overflow for any finite x.
fn sigmoid(x: f32) -> f32 {
    if (x >= 0.0) {
        return 1.0 / (1.0 + exp(-x));
    }
    let e = exp(x);
    return e / (1.0 + e);
}

// Scaled logit z_ij = scale * dot(q_i, k_j) straight from storage (weights kernels).
fn logit_global(q_row: u32, k_row: u32) -> f32 {
    var s = 0.0;
    for (var c = 0u; c < HEAD_D / 4u; c++) {
        s += dot(load_q4(q_row * (HEAD_D / 4u) + c), load_k4(k_row * (HEAD_D / 4u) + c));
    }
    return s * params.scale;
}
