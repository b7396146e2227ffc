// webattn storage snippet: f16 tensors on adapters WITHOUT shader-f16 (SwiftShader, many
// browsers). Each vec2<u32> holds 4 halves; loads widen with unpack2x16float, stores narrow
// with pack2x16float. All arithmetic stays f32. Indices are vec4 (4-half) indices into the
// whole tensor; the bound range's `*_base` is subtracted here.
// Invariant: head dims are multiples of 4, so a vec4 never straddles two rows.
// KvRaw / raw_k4 / raw_v4 / widen4: 4 halves of K or V as stored (two u32), for the decode
// partial kernel.

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

alias KvRaw = vec2<u32>;

fn raw_k4(i: u32) -> KvRaw {
    return k[i - params.k_base];
}

fn raw_v4(i: u32) -> KvRaw {
    return v[i - params.v_base];
}

fn widen4(x: KvRaw) -> vec4<f32> {
    return widen(x);
}

// Measuring only (WEBATTN_DECODE_ABLATE bit 1, wrong values): a widening with no conversion.
fn widen4_cheap(x: KvRaw) -> vec4<f32> {
    return widen_bits(x);
}

fn widen_bits(u: vec2<u32>) -> vec4<f32> {
    return vec4<f32>(bitcast<f32>(u.x << 16u), bitcast<f32>(u.x & 0xffff0000u),
        bitcast<f32>(u.y << 16u), bitcast<f32>(u.y & 0xffff0000u));
}
