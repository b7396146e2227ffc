// Head merge: the attention output src [B, p.heads, p.t, p.hd] (attention dtype; the header
// declares `src` at binding 1 and `get2(i)`, elements i, i + 1 as f32) becomes
// dst [p.rows, p.heads * p.hd] f32 (binding 2) with rows r = b * p.t + t and head-major columns
// c = h * hd + d, the input of the output projection.
// Grid: 1-D (folded into x, y) over element pairs of dst; an invocation owns one pair.
// Invariant: hd is even.
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = g.x + g.y * nw.x * 256u;
    let hp = p.hd / 2u;
    if i >= p.rows * p.heads * hp {
        return;
    }
    let d = (i % hp) * 2u;
    let h = (i / hp) % p.heads;
    let r = i / (hp * p.heads);
    let b = r / p.t;
    let t = r % p.t;
    let v = get2(((b * p.heads + h) * p.t + t) * p.hd + d);
    let o = r * p.heads * p.hd + h * p.hd + d;
    dst[o] = v.x;
    dst[o + 1u] = v.y;
}
