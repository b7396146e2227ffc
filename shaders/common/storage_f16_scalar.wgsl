// webattn storage snippet: f16 tensors declared as scalar arrays (`array<f16>`, the generated
// header starts with `enable f16;`), for the subgroup-tiled cooperative-matrix kernel
// (common/tile_coop2.wgsl), whose coopLoad reads q, k and v straight from storage: a
// cooperative-matrix load needs a pointer to a scalar, and WGSL cannot take the address of a
// vector component.
//
// The `*_base` fields of `params` stay vec4 indices (the host's contract for every tensor
// binding); q_idx / k_idx / v_idx turn a scalar index into the whole tensor into an index into
// the bound range. The vec4 loads below (4 scalar loads) keep the interface of the other
// storage snippets for the shared code (common/params.wgsl).

fn q_idx(i: u32) -> u32 {
    return i - 4u * params.q_base;
}

fn k_idx(i: u32) -> u32 {
    return i - 4u * params.k_base;
}

fn v_idx(i: u32) -> u32 {
    return i - 4u * params.v_base;
}

fn load_q4(i: u32) -> vec4<f32> {
    let j = q_idx(4u * i);
    return vec4<f32>(f32(q[j]), f32(q[j + 1u]), f32(q[j + 2u]), f32(q[j + 3u]));
}

fn load_k4(i: u32) -> vec4<f32> {
    let j = k_idx(4u * i);
    return vec4<f32>(f32(k[j]), f32(k[j + 1u]), f32(k[j + 2u]), f32(k[j + 3u]));
}

fn load_v4(i: u32) -> vec4<f32> {
    let j = v_idx(4u * i);
    return vec4<f32>(f32(v[j]), f32(v[j + 1u]), f32(v[j + 2u]), f32(v[j + 3u]));
}
