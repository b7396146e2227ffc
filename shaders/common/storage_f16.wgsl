// webattn storage snippet: f16 tensors on adapters WITH shader-f16 (the generated header
// starts with `enable f16;`). Loads widen vec4<f16> to vec4<f32>: all arithmetic stays f32.
// Indices are vec4 indices into the whole tensor; the bound range's `*_base` is subtracted.

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
