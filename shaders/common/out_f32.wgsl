// webattn output snippet: f32 output `o` of the forward kernels. store_o4 takes a vec4 index
// into the whole output tensor [B, Hq, Tq, Dv]; the bound range's base is subtracted here.

@group(0) @binding(4) var<storage, read_write> o: array<vec4<f32>>;

fn store_o4(i: u32, x: vec4<f32>) {
    o[i - params.o_base] = x;
}
