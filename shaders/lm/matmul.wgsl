// Linear layer y = a W^T (PyTorch layout: W is [n, k]) with an epilogue chosen by p.mode:
// 0 store y, 1 add into y (the residual stream), 2 store gelu_tanh(y) (the MLP).
// a is [p.rows, p.k] f32; y is [p.rows, p.n] f32; the header declares the weights `w`
// (binding 1) and `w2(i)` (elements i, i + 1 as f32, from f32 or packed f16).
//
// Two entry points over the same bindings:
// - `tiled` (prefill): a workgroup of 256 owns a 32 x 64 tile of y; K is walked in steps of
//   16, staging a 32 x 16 tile of a and a 64 x 16 tile of W in workgroup memory; invocation
//   (tx, ty) = (li % 16, li / 16) owns rows 2 ty, 2 ty + 1 and columns tx + 16 j (j < 4).
// - `matvec` (decode, p.rows <= 8): a workgroup of 256 owns 8 output columns; 32 lanes per
//   column stride over K two elements at a time, so the 32 lanes read one contiguous run of
//   W (coalesced), for all rows at once; lane sums are reduced in workgroup memory.
// Invariants: p.k is a multiple of 16, p.n even (the config checks); rows and columns past
// the edges are never stored; accumulation is f32 in a fixed order.
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

const TM: u32 = 32u;
const TN: u32 = 64u;
const TK: u32 = 16u;
const MV_ROWS: u32 = 8u;

var<workgroup> at: array<f32, 512>;   // TM x TK
var<workgroup> wt: array<f32, 1024>;  // TN x TK
var<workgroup> red: array<f32, 2048>; // MV_ROWS x 256

fn gelu_tanh(x: f32) -> f32 {
    // tanh saturates in f32 long before |u| = 15; the clamp keeps exp-based tanh finite.
    let u = clamp(0.7978845608028654 * (x + 0.044715 * x * x * x), -15.0, 15.0);
    return 0.5 * x * (1.0 + tanh(u));
}

fn finish(r: u32, c: u32, acc: f32) {
    let i = r * p.n + c;
    switch p.mode {
        case 1u: {
            y[i] = y[i] + acc;
        }
        case 2u: {
            y[i] = gelu_tanh(acc);
        }
        default: {
            y[i] = acc;
        }
    }
}

@compute @workgroup_size(256)
fn tiled(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let r0 = wg.y * TM;
    let c0 = wg.x * TN;
    let tx = li % 16u;
    let ty = li / 16u;
    var acc: array<f32, 8>;
    for (var k0 = 0u; k0 < p.k; k0 += TK) {
        for (var j = 0u; j < 2u; j++) {
            let e = li + j * 256u;
            let row = r0 + e / TK;
            var v = 0.0;
            if row < p.rows {
                v = a[row * p.k + k0 + e % TK];
            }
            at[e] = v;
        }
        for (var j = 0u; j < 2u; j++) {
            let e = li + j * 256u; // pair index: 64 rows x 8 pairs
            let col = c0 + e / 8u;
            let kk = (e % 8u) * 2u;
            var v = vec2<f32>(0.0);
            if col < p.n {
                v = w2(col * p.k + k0 + kk);
            }
            wt[(e / 8u) * TK + kk] = v.x;
            wt[(e / 8u) * TK + kk + 1u] = v.y;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            let a0 = at[(2u * ty) * TK + kk];
            let a1 = at[(2u * ty + 1u) * TK + kk];
            for (var j = 0u; j < 4u; j++) {
                let wv = wt[(tx + 16u * j) * TK + kk];
                acc[j] += a0 * wv;
                acc[4u + j] += a1 * wv;
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 2u; i++) {
        let r = r0 + 2u * ty + i;
        for (var j = 0u; j < 4u; j++) {
            let c = c0 + tx + 16u * j;
            if r < p.rows && c < p.n {
                finish(r, c, acc[4u * i + j]);
            }
        }
    }
}

@compute @workgroup_size(256)
fn matvec(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let col = wg.x * 8u + li / 32u;
    let lane = li % 32u;
    var acc: array<f32, 8>;
    if col < p.n {
        for (var kk = lane * 2u; kk < p.k; kk += 64u) {
            let wv = w2(col * p.k + kk);
            for (var m = 0u; m < MV_ROWS; m++) {
                if m < p.rows {
                    let av = vec2<f32>(a[m * p.k + kk], a[m * p.k + kk + 1u]);
                    acc[m] += dot(wv, av);
                }
            }
        }
    }
    for (var m = 0u; m < MV_ROWS; m++) {
        red[m * 256u + li] = acc[m];
    }
    workgroupBarrier();
    if li < 64u {
        let m = li / 8u;
        let c = wg.x * 8u + li % 8u;
        if m < p.rows && c < p.n {
            var s = 0.0;
            for (var l = 0u; l < 32u; l++) {
                s += red[m * 256u + (li % 8u) * 32u + l];
            }
            finish(m, c, s);
        }
    }
}
