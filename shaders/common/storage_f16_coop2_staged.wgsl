// webattn storage snippet: the f16 tensors of the `coopmat2` kernel with staged K and V
// (common/tile_coop2_staged.wgsl, WEBATTN_COOP2_STAGE=1): q as a scalar array (its fragments
// still come by coopLoad straight from storage, which needs a pointer to a scalar), k and v
// as `array<vec4<f16>>` (staged with one 8-byte load per 4 halves). The `*_base` fields of
// `params` are vec4 indices, as for every tensor binding.

fn q_idx(i: u32) -> u32 {
    return i - 4u * params.q_base;
}

fn load_q4(i: u32) -> vec4<f32> {
    let j = q_idx(4u * i);
    return vec4<f32>(f32(q[j]), f32(q[j + 1u]), f32(q[j + 2u]), f32(q[j + 3u]));
}

fn load_k4h(i: u32) -> vec4<f16> {
    return k[i - params.k_base];
}

fn load_v4h(i: u32) -> vec4<f16> {
    return v[i - params.v_base];
}

fn load_k4(i: u32) -> vec4<f32> {
    return vec4<f32>(load_k4h(i));
}

fn load_v4(i: u32) -> vec4<f32> {
    return vec4<f32>(load_v4h(i));
}
