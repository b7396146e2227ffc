// webattn storage snippet: f32 tensors. Declares q, k, v (read) and the vec4 load functions
// that every kernel uses, so that other storage types (packed f16) swap in by replacing this
// file alone. Indices are vec4 indices into the whole tensor; `*_base` of the bound range is
// subtracted here. Invariant: callers pass in-range indices (the host sizes the bindings).
// KvRaw / raw_k4 / raw_v4 / widen4: 4 elements of K or V as stored (here already f32), for
// the decode partial kernel.

fn load_q4(i: u32) -> vec4<f32> {
    return q[i - params.q_base];
}

fn load_k4(i: u32) -> vec4<f32> {
    return k[i - params.k_base];
}

fn load_v4(i: u32) -> vec4<f32> {
    return v[i - params.v_base];
}

alias KvRaw = vec4<f32>;

fn raw_k4(i: u32) -> KvRaw {
    return k[i - params.k_base];
}

fn raw_v4(i: u32) -> KvRaw {
    return v[i - params.v_base];
}

fn widen4(x: KvRaw) -> vec4<f32> {
    return x;
}

// Measuring only (WEBATTN_DECODE_ABLATE bit 1, wrong values): a widening with no conversion.
fn widen4_cheap(x: KvRaw) -> vec4<f32> {
    return x;
}
