// Head split with RoPE: src [p.rows, p.heads * p.hd] (f32, rows r = b * p.t + t, columns
// head-major: c = h * hd + d) becomes dst [B, p.heads, p.t, p.hd] in the attention dtype
// (the header declares `dst` at binding 3 and `put2(i, v)`, which stores elements i, i + 1
// as f32 or as one packed f16 word). With FLAG bit 0, rotate-half RoPE at position
// pos0[b] + t: x'[d] = x[d] cos a - x[d + hd/2] sin a, x'[d + hd/2] = x[d + hd/2] cos a +
// x[d] sin a, with (cos a, sin a) read from `rope` [positions, hd / 2, 2] (computed in f64
// on the host; positions past the table clamp to its last row, which only padding reaches).
// Grid: 1-D (folded into x, y) over (row, head, j < hd / 4); an invocation owns dims
// 2j, 2j + 1 and their partners 2j + hd/2, 2j + 1 + hd/2. Invariant: hd % 4 == 0.
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> pos0: array<u32>;
@group(0) @binding(4) var<storage, read> rope: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = g.x + g.y * nw.x * 256u;
    let q4 = p.hd / 4u;
    if i >= p.rows * p.heads * q4 {
        return;
    }
    let j = i % q4;
    let h = (i / q4) % p.heads;
    let r = i / (q4 * p.heads);
    let b = r / p.t;
    let t = r % p.t;
    let half = p.hd / 2u;
    let d0 = 2u * j;
    let base = r * p.heads * p.hd + h * p.hd;
    var x0 = vec2<f32>(src[base + d0], src[base + d0 + 1u]);
    var x1 = vec2<f32>(src[base + d0 + half], src[base + d0 + half + 1u]);
    if (p.flags & 1u) != 0u {
        let rows = arrayLength(&rope) / p.hd;
        let pos = min(pos0[b] + t, rows - 1u);
        let e = (pos * half + d0) * 2u;
        let cs = vec2<f32>(rope[e], rope[e + 2u]);
        let sn = vec2<f32>(rope[e + 1u], rope[e + 3u]);
        let y0 = x0 * cs - x1 * sn;
        let y1 = x1 * cs + x0 * sn;
        x0 = y0;
        x1 = y1;
    }
    let out = ((b * p.heads + h) * p.t + t) * p.hd + d0;
    put2(out, x0);
    put2(out + half, x1);
}
