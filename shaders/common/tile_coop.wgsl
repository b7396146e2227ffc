// webattn common (cooperative-matrix variant): phases A and C of common/tile.wgsl on tensor
// cores, through `wgpu_cooperative_matrix` (16 x 16 x 16, f16 inputs, f32 accumulators). Used
// for f16 tensors on devices with shader-f16, subgroups and 16x16x16 f16 -> f32 cooperative
// matrices; phase B (each kind's kernel) is the same code as in the portable variant.
//
// Tile shape: BQ query rows (16, 32 or 64) x BK = 64 keys per step; WG = 256 invocations in
// subgroups of whatever size the device uses: subgroup g works on 16 x 16 blocks g, g + nsg,
// g + 2 nsg, ... (subgroup_id and num_subgroups, never an assumed width).
//   Phase A (score_tile): Q (BQ x D, f16) is staged once per workgroup in `qs`; each key tile
//     stages K (BK x D, f16) in `kvs`. Each 16 x 16 block of S = Q K^T takes D / 16
//     multiply-adds (f32 accumulator) and is stored into p_tile (f32, BQ x BK, row stride PT).
//     Each invocation then reads its RA x RB logits (the portable ownership) into s_acc.
//   Phase B: final weights go to p16 (f16, the A operand of P V) through put_w; f32 scratch
//     (stick-breaking's scan) stays in p_tile through put_p_at / get_p_at.
//   Phase C (accumulate_pv): V (BK x Dv, f16), loaded into registers (v_pre) at the start of
//     phase A so its latency hides behind phases A and B, is staged in `kvs`; subgroup g owns output
//     blocks g, g + nsg, ... (o_mat, f32 accumulators in registers for the whole kernel) and
//     adds BK / 16 multiply-adds into each. Softmax's per-row rescale (rescale_o) moves the
//     blocks through p_tile only in tiles where some row's lazy max moved; finish_o moves them
//     once into o_acc for the shared epilogue (write_o).
//   NaN and Inf in V (tiles that are not tile_full only): a masked key's v cannot be selected
//     out inside the tensor-core product, where 0 * NaN is NaN. So phase C, storing V into
//     kvs, replaces non-finite entries by 0 and records their keys in vbad (one bit per key);
//     after a barrier, every (row, key) pair whose key is in vbad and in the row's span
//     (row_key_span) gets the weight NaN in p16, so exactly the rows that attend to such a key
//     turn NaN (NaN * 0), and the other rows see a finite 0. tile_full tiles skip all of this
//     (every key is attended to there, and non-finite values propagate through the product by
//     themselves), and the V prefetch never waits on its loads to check them (that cost the
//     D = 128 kernel 65% on the H100, docs/perf.md).
// Invariants: cooperative-matrix operations run in subgroup-uniform control flow only (the
// block loops depend on subgroup_id, num_subgroups and constants); every reuse of qs, kvs,
// p_tile and p16 is separated by a workgroupBarrier in workgroup-uniform control flow; rows
// past Tq and keys past Tk are staged as zeros; row strides (QS, KVS, PS halves; PT floats)
// are multiples of 16 bytes; HEAD_D and HEAD_DV are multiples of 16 (the host checks);
// vbad is set while phase C stores V (not-full tiles), read after the barrier that follows,
// and cleared after the next barrier (init_phases clears it before the first tile).

var<workgroup> qs: array<f16, BQ * QS>;
var<workgroup> kvs: array<f16, BK * KVS>;
var<workgroup> p_tile: array<f32, BQ * PT>;
var<workgroup> p16: array<f16, BQ * PS>;
// Keys of the current (not full) key tile whose V row holds NaN or Inf: bit j % 32 of word
// j / 32 for tile-relative key j. Accounted in TileConfig::workgroup_bytes.
const VBW: u32 = (BK + 31u) / 32u;
var<workgroup> vbad: array<atomic<u32>, VBW>;

// The subgroup's 16 x 16 output blocks: block i is blk = sg + i * nsg of the RA x DVB grid
// (row block blk / DVB, column block blk % DVB); OB covers the fewest subgroups the device's
// largest subgroup size allows.
var<private> o_mat: array<coop_mat16x16<f32, C>, OB>;

// Stores 4 halves at qs[o..o+4] (`which` = 0) or kvs[o..o+4] (1).
fn put4h(which: u32, o: u32, x: vec4<f16>) {
    if (which == 0u) {
        qs[o] = x.x;
        qs[o + 1u] = x.y;
        qs[o + 2u] = x.z;
        qs[o + 3u] = x.w;
    } else {
        kvs[o] = x.x;
        kvs[o + 1u] = x.y;
        kvs[o + 2u] = x.z;
        kvs[o + 3u] = x.w;
    }
}

// Zeroes the output blocks and stages the workgroup's Q rows into qs (the first score_tile's
// barrier publishes them).
fn init_phases(t: Tile) {
    for (var i = 0u; i < OB; i++) {
        o_mat[i] = coop_mat16x16<f32, C>();
    }
    if (t.lid < VBW) {
        atomicStore(&vbad[t.lid], 0u);
    }
    let d4 = HEAD_D / 4u;
    for (var e = t.lid; e < BQ * d4; e += WG) {
        let r = e / d4;
        let i = t.row0 + r;
        var x = vec4<f16>(0.0);
        if (i < params.tq) {
            x = load_q4h((t.unit * params.tq + i) * d4 + e % d4);
        }
        put4h(0u, r * QS + 4u * (e % d4), x);
    }
}

// V rows of the current key tile, loaded from storage at the start of phase A so that their
// latency hides behind phases A and B; phase C stores them into kvs.
var<private> v_pre: array<vec4<f16>, VPRE>;

// Loads element e (row e / w4, vec4 column e % w4) of K (`is_v` false) or V rows
// [kb * BK, kb * BK + BK); zeros past Tk.
fn kv_elem(t: Tile, kb: u32, e: u32, is_v: bool) -> vec4<f16> {
    let w4 = select(HEAD_D, HEAD_DV, is_v) / 4u;
    let j = kb * BK + e / w4;
    var x = vec4<f16>(0.0);
    if (j < params.tk) {
        let idx = (t.kv_unit * params.tk + j) * w4 + e % w4;
        if (is_v) {
            x = load_v4h(idx);
        } else {
            x = load_k4h(idx);
        }
    }
    return x;
}

// Which components of x are NaN or +-Inf (decided on the bits of the exact f32 widening).
fn nonfinite4h(x: vec4<f16>) -> vec4<bool> {
    let e = vec4<u32>(0x7f800000u);
    return (bitcast<vec4<u32>>(vec4<f32>(x)) & e) == e;
}

// Stages the K rows of key tile kb into kvs.
fn stage_k(t: Tile, kb: u32) {
    let w4 = HEAD_D / 4u;
    for (var e = t.lid; e < BK * w4; e += WG) {
        put4h(1u, (e / w4) * KVS + 4u * (e % w4), kv_elem(t, kb, e, false));
    }
}

// Phase A: s_acc = scale * Q K^T over key tile kb (`full` = tile_full(t.row0, kb), unused
// here: the V prefetch must not wait on its loads, so the non-finite check of V happens when
// phase C stores it). Workgroup-uniform control flow outside the subgroup block loop. Also
// prefetches V (v_pre).
fn score_tile(t: Tile, kb: u32, full: bool) {
    for (var n = 0u; n < VPRE; n++) {
        let e = t.lid + n * WG;
        if (e < BK * (HEAD_DV / 4u)) {
            v_pre[n] = kv_elem(t, kb, e, true);
        }
    }
    workgroupBarrier(); // everyone is done with kvs and p_tile
    stage_k(t, kb);
    workgroupBarrier();
    for (var blk = t.sg; blk < RA * RB; blk += t.nsg) {
        let rb = blk / RB;
        let cb = blk % RB;
        var acc = coop_mat16x16<f32, C>();
        for (var d0 = 0u; d0 < HEAD_D; d0 += 16u) {
            let qa = coopLoadT<coop_mat16x16<f16, A>>(&qs[16u * rb * QS + d0], QS);
            let kt = coopLoad<coop_mat16x16<f16, B>>(&kvs[16u * cb * KVS + d0], KVS);
            acc = coopMultiplyAdd(qa, kt, acc);
        }
        coopStoreT(acc, &p_tile[16u * rb * PT + 16u * cb], PT);
    }
    workgroupBarrier();
    for (var a = 0u; a < RA; a++) {
        for (var b = 0u; b < RB; b++) {
            s_acc[a * RB + b] = p_tile[lrow(t, a) * PT + lkey(t, b)] * params.scale;
        }
    }
}

// f32 scratch of phase B, indexed row * BK + key.
fn put_p_at(idx: u32, x: f32) {
    p_tile[(idx / BK) * PT + idx % BK] = x;
}

fn get_p_at(idx: u32) -> f32 {
    return p_tile[(idx / BK) * PT + idx % BK];
}

// Writes the final weight x of element (a, b) for phase C (f16: it is in [0, 1]).
fn put_w(t: Tile, a: u32, b: u32, x: f32) {
    p16[lrow(t, a) * PS + lkey(t, b)] = f16(x);
}

// Phase C: O += P V over key tile kb (`full` = tile_full(t.row0, kb)), into the subgroup's
// output blocks in registers.
fn accumulate_pv(t: Tile, kb: u32, full: bool) {
    workgroupBarrier(); // p16 is complete; kvs (K) is free
    let w4 = HEAD_DV / 4u;
    if (full) {
        // Every key is attended to: non-finite values propagate through the product.
        for (var n = 0u; n < VPRE; n++) {
            let e = t.lid + n * WG;
            if (e < BK * w4) {
                put4h(1u, (e / w4) * KVS + 4u * (e % w4), v_pre[n]);
            }
        }
    } else {
        // The loads of v_pre have landed by now (they are being stored), so the check costs
        // no latency; it runs in diagonal and window-edge tiles only.
        for (var n = 0u; n < VPRE; n++) {
            let e = t.lid + n * WG;
            if (e < BK * w4) {
                var x = v_pre[n];
                let nf = nonfinite4h(x);
                if (any(nf)) {
                    x = select(x, vec4<f16>(0.0), nf);
                    let j = e / w4;
                    atomicOr(&vbad[j / 32u], 1u << (j % 32u));
                }
                put4h(1u, (e / w4) * KVS + 4u * (e % w4), x);
            }
        }
        workgroupBarrier(); // vbad is complete
        poison_weights(t, kb);
    }
    workgroupBarrier();
    if (!full && t.lid < VBW) {
        atomicStore(&vbad[t.lid], 0u); // read above; set again only after the next barrier
    }
    for (var i = 0u; i < OB; i++) {
        // `if (blk < RA * DVB)` written as a loop that runs at most once: the condition is
        // subgroup-uniform, which naga's (workgroup) uniformity analysis accepts only in loops.
        for (var blk = t.sg + i * t.nsg; blk < RA * DVB; blk = RA * DVB) {
            let rb = blk / DVB;
            let cb = blk % DVB;
            var acc = o_mat[i];
            for (var k0 = 0u; k0 < BK; k0 += 16u) {
                let pa = coopLoadT<coop_mat16x16<f16, A>>(&p16[16u * rb * PS + k0], PS);
                let vb = coopLoadT<coop_mat16x16<f16, B>>(&kvs[k0 * KVS + 16u * cb], KVS);
                acc = coopMultiplyAdd(pa, vb, acc);
            }
            o_mat[i] = acc;
        }
    }
}

// Not-full tiles, between phase B and the product: the weight of every (row, key) pair whose
// key is in vbad (its v staged as 0) and in the row's span becomes NaN, so exactly the rows
// that attend to a non-finite v come out NaN.
fn poison_weights(t: Tile, kb: u32) {
    var any_bad = 0u;
    var words: array<u32, VBW>;
    for (var w = 0u; w < VBW; w++) {
        words[w] = atomicLoad(&vbad[w]);
        any_bad |= words[w];
    }
    if (any_bad == 0u) {
        return;
    }
    let nan = f16(nan_f32());
    for (var e = t.lid; e < BQ * BK; e += WG) {
        let r = e / BK;
        let j = e % BK;
        if (((words[j / 32u] >> (j % 32u)) & 1u) != 0u) {
            let span = row_key_span(t, r, kb);
            if (i32(j) >= span.x && i32(j) <= span.y) {
                p16[r * PS + j] = nan;
            }
        }
    }
}

// The p_tile offset of the subgroup's i-th output block if it exists and lies in column chunk
// c (columns 64 c .. 64 c + 63), else NO_BLOCK. Subgroup-uniform.
const NO_BLOCK: u32 = 0xffffffffu;

fn o_block_at(t: Tile, i: u32, c: u32) -> u32 {
    let blk = t.sg + i * t.nsg;
    let cb = blk % DVB;
    if (blk >= RA * DVB || cb / 4u != c) {
        return NO_BLOCK;
    }
    return 16u * (blk / DVB) * PT + 16u * (cb % 4u);
}

// Stores the subgroup's output blocks of column chunk c into p_tile. (The loops over `at` run
// at most once; see accumulate_pv.)
fn o_blocks_store(t: Tile, c: u32) {
    for (var i = 0u; i < OB; i++) {
        for (var at = o_block_at(t, i, c); at != NO_BLOCK; at = NO_BLOCK) {
            coopStoreT(o_mat[i], &p_tile[at], PT);
        }
    }
}

// Loads the subgroup's output blocks of column chunk c back from p_tile.
fn o_blocks_load(t: Tile, c: u32) {
    for (var i = 0u; i < OB; i++) {
        for (var at = o_block_at(t, i, c); at != NO_BLOCK; at = NO_BLOCK) {
            o_mat[i] = coopLoadT<coop_mat16x16<f32, C>>(&p_tile[at], PT);
        }
    }
}

// Puts the output blocks of column chunk c into p_tile (rows of PT floats, the chunk's 64
// columns from 0) for the invocations to read; true where this invocation's vec4 column
// 4 tx .. 4 tx + 3 exists in the chunk. Workgroup-uniform (it holds barriers).
fn o_chunk_to_tile(t: Tile, c: u32) -> bool {
    workgroupBarrier(); // p_tile is free
    o_blocks_store(t, c);
    workgroupBarrier();
    return 4u * t.tx < min(64u, HEAD_DV - 64u * c);
}

// Softmax: multiplies the output rows by this tile's alpha (stat_c) when some row's max moved
// in tile kb (rare: the max is lazy); the blocks pass through p_tile one column chunk at a time.
fn rescale_o(t: Tile, kb: u32) {
    if (workgroupUniformLoad(&rescale_tile) != kb + 1u) {
        return;
    }
    for (var c = 0u; c < VC; c++) {
        if (o_chunk_to_tile(t, c)) {
            for (var a = 0u; a < RA; a++) {
                let f = stat_c[lrow(t, a)];
                let base = lrow(t, a) * PT + 4u * t.tx;
                for (var e = 0u; e < 4u; e++) {
                    p_tile[base + e] *= f;
                }
            }
        }
        workgroupBarrier();
        o_blocks_load(t, c);
    }
}

// Copies the output blocks into o_acc (the ownership the shared epilogue, write_o, reads).
fn finish_o(t: Tile) {
    for (var c = 0u; c < VC; c++) {
        if (o_chunk_to_tile(t, c)) {
            for (var a = 0u; a < RA; a++) {
                let base = lrow(t, a) * PT + 4u * t.tx;
                o_acc[a * VC + c] = vec4<f32>(
                    p_tile[base],
                    p_tile[base + 1u],
                    p_tile[base + 2u],
                    p_tile[base + 3u],
                );
            }
        }
    }
}
