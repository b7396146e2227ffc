// webattn common (phases, portable and subgroup variants): phases A and C of common/tile.wgsl
// with f32 FMAs in core WebGPU: no f16 arithmetic, no subgroups, no extensions.
//
// Tile shape: as common/tile.wgsl (BQ x BK per step, 16 x 16 invocations).
//   Phase A: Q and K pass through `stage` (f32) in chunks of DC columns (rows padded to KS
//     vec4s against bank conflicts); each invocation accumulates its RA x RB logits with dot().
//   Phase B writes P (f32) into p_tile, row-major as vec4s of 4 consecutive keys.
//   Phase C: V passes through `stage` in chunks of VK keys; each invocation reads 4 keys of P
//     at once and accumulates its RA x VC output vec4s. In a tile that is not tile_full, each
//     product p * v is selected by the row's key span (row_key_span), so a masked key's v
//     never reaches the row, even NaN or Inf (0 * NaN is NaN); tile_full tiles take the plain
//     loop, with no mask.
// Invariants: `stage` is reused between phases only across a barrier; the caller puts a
// barrier between writing p_tile and phase C.

var<workgroup> stage: array<vec4<f32>, STAGE4>;
var<workgroup> p_tile: array<vec4<f32>, BQ * BK / 4u>;

// Zeroes the output accumulators.
fn init_phases(t: Tile) {
    for (var e = 0u; e < RA * VC; e++) {
        o_acc[e] = vec4<f32>(0.0);
    }
}

// Softmax: multiplies the output rows by this tile's alpha (stat_c; 1 where the max stayed).
fn rescale_o(t: Tile, kb: u32) {
    scale_o_rows_by_stat_c(t);
}

// The output already lives in o_acc.
fn finish_o(t: Tile) {}

// Phase A: s_acc = scale * Q K^T over key tile kb (`full` = tile_full(t.row0, kb); unused
// here). Workgroup-uniform control flow only.
fn score_tile(t: Tile, kb: u32, full: bool) {
    let d4 = HEAD_D / 4u;
    for (var e = 0u; e < RA * RB; e++) {
        s_acc[e] = 0.0;
    }
    for (var c = 0u; c < NDC; c++) {
        workgroupBarrier(); // everyone is done with `stage`
        for (var e = t.lid; e < BQ * DC4; e += WG) {
            let r = e / DC4;
            let dd = c * DC4 + e % DC4;
            let i = t.row0 + r;
            var x = vec4<f32>(0.0);
            if (i < params.tq && dd < d4) {
                x = load_q4((t.unit * params.tq + i) * d4 + dd);
            }
            stage[r * KS + e % DC4] = x;
        }
        for (var e = t.lid; e < BK * DC4; e += WG) {
            let r = e / DC4;
            let dd = c * DC4 + e % DC4;
            let j = kb * BK + r;
            var x = vec4<f32>(0.0);
            if (j < params.tk && dd < d4) {
                x = load_k4((t.kv_unit * params.tk + j) * d4 + dd);
            }
            stage[(BQ + r) * KS + e % DC4] = x;
        }
        workgroupBarrier();
        for (var k4 = 0u; k4 < DC4; k4++) {
            var kv: array<vec4<f32>, RB>;
            for (var b = 0u; b < RB; b++) {
                kv[b] = stage[(BQ + lkey(t, b)) * KS + k4];
            }
            for (var a = 0u; a < RA; a++) {
                let qv = stage[lrow(t, a) * KS + k4];
                for (var b = 0u; b < RB; b++) {
                    s_acc[a * RB + b] += dot(qv, kv[b]);
                }
            }
        }
    }
    for (var e = 0u; e < RA * RB; e++) {
        s_acc[e] *= params.scale;
    }
}

// p_tile holds P row-major as vec4s of 4 consecutive keys (phase C reads 4 keys at once).
fn put_p_at(idx: u32, x: f32) {
    p_tile[idx / 4u][idx % 4u] = x;
}

fn get_p_at(idx: u32) -> f32 {
    return p_tile[idx / 4u][idx % 4u];
}

// Writes the final weight x of element (a, b) for phase C.
fn put_w(t: Tile, a: u32, b: u32, x: f32) {
    put_p_at(lrow(t, a) * BK + lkey(t, b), x);
}

// Phase C: o_acc += P V over key tile kb (`full` = tile_full(t.row0, kb)). The caller put a
// barrier after writing p_tile.
fn accumulate_pv(t: Tile, kb: u32, full: bool) {
    let dv4 = HEAD_DV / 4u;
    for (var vc = 0u; vc < BK / VK; vc++) {
        workgroupBarrier(); // `stage` is free
        for (var e = t.lid; e < VK * dv4; e += WG) {
            let j = kb * BK + vc * VK + e / dv4;
            var x = vec4<f32>(0.0);
            if (j < params.tk) {
                x = load_v4((t.kv_unit * params.tk + j) * dv4 + e % dv4);
            }
            stage[e] = x;
        }
        workgroupBarrier();
        if (full) {
            pv_chunk(t, vc);
        } else {
            pv_chunk_masked(t, kb, vc);
        }
    }
}

// o_acc += P V over the VK staged keys of chunk vc, every key attended to (tile_full).
fn pv_chunk(t: Tile, vc: u32) {
    let dv4 = HEAD_DV / 4u;
    for (var j4 = 0u; j4 < VK / 4u; j4++) {
        var p: array<vec4<f32>, RA>;
        for (var a = 0u; a < RA; a++) {
            p[a] = p_tile[(lrow(t, a) * BK + vc * VK) / 4u + j4];
        }
        for (var kk = 0u; kk < 4u; kk++) {
            for (var c = 0u; c < VC; c++) {
                let col = t.tx + 16u * c;
                if (col < dv4) {
                    let vv = stage[(4u * j4 + kk) * dv4 + col];
                    for (var a = 0u; a < RA; a++) {
                        o_acc[a * VC + c] += p[a][kk] * vv;
                    }
                }
            }
        }
    }
}

// pv_chunk for key tile kb when it is not full: a key outside row a's span adds exactly
// nothing (selected out, so its v is never multiplied into the row, whatever it holds).
fn pv_chunk_masked(t: Tile, kb: u32, vc: u32) {
    let dv4 = HEAD_DV / 4u;
    var span: array<vec2<i32>, RA>;
    for (var a = 0u; a < RA; a++) {
        span[a] = row_key_span(t, lrow(t, a), kb);
    }
    for (var j4 = 0u; j4 < VK / 4u; j4++) {
        var p: array<vec4<f32>, RA>;
        for (var a = 0u; a < RA; a++) {
            p[a] = p_tile[(lrow(t, a) * BK + vc * VK) / 4u + j4];
        }
        for (var kk = 0u; kk < 4u; kk++) {
            let j = i32(vc * VK + 4u * j4 + kk);
            var ok: array<bool, RA>;
            for (var a = 0u; a < RA; a++) {
                ok[a] = j >= span[a].x && j <= span[a].y;
            }
            for (var c = 0u; c < VC; c++) {
                let col = t.tx + 16u * c;
                if (col < dv4) {
                    let vv = stage[(4u * j4 + kk) * dv4 + col];
                    for (var a = 0u; a < RA; a++) {
                        o_acc[a * VC + c] += select(vec4<f32>(0.0), p[a][kk] * vv, ok[a]);
                    }
                }
            }
        }
    }
}

