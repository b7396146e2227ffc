// webattn output snippet: f16 output `o` with shader-f16, narrowed from the f32 accumulator.
// Index: vec4 index into [B, Hq, Tq, Dv].

fn store_o4(i: u32, x: vec4<f32>) {
    o[i - params.o_base] = vec4<f16>(x);
}
