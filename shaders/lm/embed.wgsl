// Embedding gather: x[r, c] = tok_emb[tok[r], c] for rows r < p.rows and columns c < p.n
// (d_model). The header (src/lm/kernels.rs) declares `p`, the weights `w` (binding 1) and
// `w2(i)`, which returns elements i and i + 1 of the weights as f32 (f32 or packed f16).
// Grid: 1-D over (row, column pair), 256 invocations per workgroup, folded into x and y
// (`num_workgroups.x * 256` invocations per y row). Each invocation owns the two columns
// (c, c + 1) of one row. Invariants: tok[r] < vocab (the host checks the bytes); n is even.
@group(0) @binding(2) var<storage, read> tok: array<u32>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = g.x + g.y * nw.x * 256u;
    let pairs = p.n / 2u;
    if i >= p.rows * pairs {
        return;
    }
    let r = i / pairs;
    let c = (i % pairs) * 2u;
    let v = w2(tok[r] * p.n + c);
    x[r * p.n + c] = v.x;
    x[r * p.n + c + 1u] = v.y;
}
