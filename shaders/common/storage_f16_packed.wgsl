// webattn storage snippet: f16 tensors on adapters WITHOUT shader-f16 (SwiftShader, many
// browsers). Each vec2<u32> holds 4 halves; loads widen with unpack2x16float, stores narrow
// with pack2x16float. All arithmetic stays f32. Indices are vec4 (4-half) indices into the
// whole tensor; the bound range's `*_base` is subtracted here.
// Invariant: head dims are multiples of 4, so a vec4 never straddles two rows.

fn widen(x: vec2<u32>) -> vec4<f32> {
    return vec4<f32>(unpack2x16float(x.x), unpack2x16float(x.y));
}

fn load_q4(i: u32) -> vec4<f32> {
    return widen(q[i - params.q_base]);
}

fn load_k4(i: u32) -> vec4<f32> {
    return widen(k[i - params.k_base]);
}

fn load_v4(i: u32) -> vec4<f32> {
    return widen(v[i - params.v_base]);
}
