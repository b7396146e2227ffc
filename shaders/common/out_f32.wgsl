// webattn output snippet: f32 output `o` of the forward kernels. store_o4 takes a vec4 index
// into the whole output tensor [B, Hq, Tq, Dv]; the bound range's base is subtracted here.

fn store_o4(i: u32, x: vec4<f32>) {
    o[i - params.o_base] = x;
}
