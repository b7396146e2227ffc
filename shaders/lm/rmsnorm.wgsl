// RMSNorm with a learned weight: h[r, :] = x[s, :] / sqrt(mean(x[s, :]^2) + eps) * g, where
// the source row s is r, or sel[r] when FLAG bit 0 is set (the final norm gathers each
// sequence's last position). p.rows output rows of p.n columns.
// Grid: one workgroup of 64 invocations per output row (x, then y for rows past 65535).
// Invocation i owns columns i, i + 64, ...; the sum of squares is reduced in workgroup
// memory (a fixed tree, so the result does not depend on timing). Invariant: f32 throughout.
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> sel: array<u32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read_write> h: array<f32>;

var<workgroup> red: array<f32, 64>;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nw: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let r = wg.x + wg.y * nw.x;
    if r >= p.rows {
        return;
    }
    var s = r;
    if (p.flags & 1u) != 0u {
        s = sel[r];
    }
    var acc = 0.0;
    for (var c = li; c < p.n; c += 64u) {
        let v = x[s * p.n + c];
        acc += v * v;
    }
    red[li] = acc;
    workgroupBarrier();
    for (var st = 32u; st > 0u; st >>= 1u) {
        if li < st {
            red[li] += red[li + st];
        }
        workgroupBarrier();
    }
    let inv = 1.0 / sqrt(red[0] / f32(p.n) + p.eps);
    for (var c = li; c < p.n; c += 64u) {
        h[r * p.n + c] = x[s * p.n + c] * inv * g[c];
    }
}
