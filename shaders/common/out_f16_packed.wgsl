// webattn output snippet: f16 output `o` without shader-f16: 4 halves per vec2<u32>, narrowed
// from the f32 accumulator with pack2x16float. Index: vec4 index into [B, Hq, Tq, Dv].

fn store_o4(i: u32, x: vec4<f32>) {
    o[i - params.o_base] = vec2<u32>(pack2x16float(x.xy), pack2x16float(x.zw));
}
