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
// masks are decided in i32 positions so rows with no key (p_i < 0) work, and only from the
// positions (never from the value of a logit: a NaN must not pass for a masked key);
// non-finite values are recognised and made from bit patterns (nonfinite, nan_f32), never by
// float comparisons or 0 / 0, which compilers that assume finite floats may fold away.

// Most negative finite f32 stand-in for -inf in running maxima (WGSL may assume no infinities).
const NEG_BIG: f32 = -3.0e38;
// Bit pattern of f32 -inf, written to lse for rows with no key.
const NEG_INF_BITS: u32 = 0xff800000u;
// Bit pattern of a quiet f32 NaN (SPEC.md's NaN policy: a row whose statistic is NaN).
const NAN_BITS: u32 = 0x7fc00000u;

fn has_flag(f: u32) -> bool {
    return (params.flags & f) != 0u;
}

// Absolute position of query row i (bottom-right causal alignment).
fn position(i: u32) -> i32 {
    return i32(i) + params.diag;
}

// The keys of S(i) (softmax, sigmoid) or V(i) (stick-breaking) for a row at position p: the
// interval [lo, hi] = result.x ..= result.y, empty where lo > hi. A function of the position,
// Tk, causality, self-exclusion and the window only.
fn key_range(p: i32) -> vec2<i32> {
    var hi = i32(params.tk) - 1;
    if (has_flag(FLAG_CAUSAL)) {
        hi = min(hi, p - i32(params.self_excl));
    }
    var lo = 0;
    if (params.window != 0u) {
        lo = max(lo, p - i32(params.window) + 1);
    }
    return vec2<i32>(lo, hi);
}

// Does a row at position p have any allowed key? (If not, it is an empty row: SPEC.md's
// empty-row values, whatever q, k and v hold.)
fn row_has_key(p: i32) -> bool {
    let r = key_range(p);
    return r.x <= r.y;
}

// Is key j in S(i) (softmax, sigmoid) or V(i) (stick-breaking) for a row at position p?
fn key_allowed(p: i32, j: u32) -> bool {
    if (j >= params.tk) {
        return false;
    }
    let r = key_range(p);
    let jj = i32(j);
    return jj >= r.x && jj <= r.y;
}

// Is x NaN or +-Inf? Decided on the bits.
fn nonfinite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u;
}

// A quiet NaN, made at run time from its bits: a NaN const-expression is a shader-creation
// error in WGSL, and 0 / 0 may be folded by compilers that assume finite floats. (The
// `params.flags & 0u` only keeps the expression out of constant evaluation.)
fn nan_f32() -> f32 {
    return bitcast<f32>(NAN_BITS | (params.flags & 0u));
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
