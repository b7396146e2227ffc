// webattn storage snippet: f16 tensors on adapters WITH shader-f16 (the generated header
// starts with `enable f16;`). Loads widen vec4<f16> to vec4<f32>: all arithmetic stays f32.
// Indices are vec4 indices into the whole tensor; the bound range's `*_base` is subtracted.
// KvRaw / raw_k4 / raw_v4 / widen4: 4 halves of K or V as stored, for the decode partial
// kernel.

fn load_q4(i: u32) -> vec4<f32> {
    return vec4<f32>(q[i - params.q_base]);
}

fn load_k4(i: u32) -> vec4<f32> {
    return vec4<f32>(k[i - params.k_base]);
}

fn load_v4(i: u32) -> vec4<f32> {
    return vec4<f32>(v[i - params.v_base]);
}

// Raw f16 loads (cooperative-matrix variant: tiles are staged as f16 for the tensor cores).
fn load_q4h(i: u32) -> vec4<f16> {
    return q[i - params.q_base];
}

fn load_k4h(i: u32) -> vec4<f16> {
    return k[i - params.k_base];
}

fn load_v4h(i: u32) -> vec4<f16> {
    return v[i - params.v_base];
}

alias KvRaw = vec4<f16>;

fn raw_k4(i: u32) -> KvRaw {
    return k[i - params.k_base];
}

fn raw_v4(i: u32) -> KvRaw {
    return v[i - params.v_base];
}

fn widen4(x: KvRaw) -> vec4<f32> {
    return vec4<f32>(x);
}

// Measuring only (WEBATTN_DECODE_ABLATE bit 1): naga cannot bitcast vec4<f16>, so this route
// keeps its conversion; the packed route (storage_f16_packed.wgsl) measures the ablation.
fn widen4_cheap(x: KvRaw) -> vec4<f32> {
    return vec4<f32>(x);
}
