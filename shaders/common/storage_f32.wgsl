// webattn storage snippet: f32 tensors. Declares q, k, v (read) and the vec4 load functions
// that every kernel uses, so that other storage types (packed f16) swap in by replacing this
// file alone. Indices are vec4 indices into the whole tensor; `*_base` of the bound range is
// subtracted here. Invariant: callers pass in-range indices (the host sizes the bindings).

fn load_q4(i: u32) -> vec4<f32> {
    return q[i - params.q_base];
}

fn load_k4(i: u32) -> vec4<f32> {
    return k[i - params.k_base];
}

fn load_v4(i: u32) -> vec4<f32> {
    return v[i - params.v_base];
}
