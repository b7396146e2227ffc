// webattn common/decode_partial_coop: the split-KV partial kernel on cooperative matrices
// (tensor cores; variant `coopmat` of the decode passes, issue 10). It computes exactly what
// common/decode_partial.wgsl computes (the same grid, chunks, partial layout and kind hooks,
// shaders/<kind>/decode.wgsl), with the two products of a key tile, S = Q K^T and O_t = P V,
// on `wgpu_cooperative_matrix` fragments of CM x CM x CM (16 on the H100/H200, 8 on lavapipe),
// f16 inputs and f32 accumulators. f16 caches only (q, k, v declared `array<f16>`:
// common/storage_f16_scalar.wgsl, so that coopLoad reads K and V straight from storage).
//
// Grid: (chunk c, kv unit - params.unit0, row block). Workgroup: WG = 256 invocations = NSG
// subgroups of SG lanes (a fixed subgroup size). DQ query rows (a multiple of CM: NRB row
// blocks of CM rows; rows past R are zero and never written), key tiles of DK = NKS x CM keys.
// Per key tile (chunk order as the kind says, KIND_NEAREST_FIRST):
//   logits: units (row block rb, key slab n), NRB x NKS of them, dealt to the subgroups
//     round-robin; a unit's S fragment is the sum over the DB = D / CM column blocks of the Q
//     fragment (q16, workgroup memory, loaded once per chunk) times the K^T fragment: coopLoad
//     straight from storage when the tile holds DK keys (nk = DK), else staged by the subgroup
//     through its f_scr block with zeros past nk (a load never reaches past the chunk's end).
//     S goes to red (row stride SS); invocation lid then owns the (row, key) pairs e = lid +
//     s WG (s < NPAIR) exactly as in the portable kernel: pz[s] = S * scale, pok[s].
//   weights: the kind's hook kind_tile, unchanged (p_sh[r * DK + key], row_f).
//   P scale: f16 weights would lose precision below 2^-14 (and vanish below 2^-24), so each
//     row's weights are scaled by 2^-e_r before they become f16, e_r the binary exponent of
//     the row's largest weight in the tile (clamped to -126 ..= 0; subgroupMax over the SG
//     pairs of a row that a subgroup holds, then atomicMax on the float's bits into row_e).
//   P V: units (row block, column block b of Dv), NRB x DVB of them, round-robin over the
//     subgroups; O_t = sum over the NKS slabs of P (p16, f16) times V: coopLoad straight from
//     storage when every pair of the tile is attended to (tile_full_dec and nk = DK), else
//     staged with zeros past nk and non-finite values replaced by 0 (then the weight of every
//     allowed pair whose key's v holds NaN or Inf is NaN: kbad, scanned before the logits'
//     barrier, so exactly the rows that attend to such a key turn NaN). O_t goes to red (row
//     stride OS).
//   merge: invocation lid owns output column col = lid % DV4 of rows g + n KG (g = lid / DV4,
//     n < NRI): acc[n] = acc[n] * row_f[r] + O_t[r][col] * 2^e_r, in f32 registers.
// After the chunk: kind_end leaves each row's statistic in row_s; each invocation writes its
// rows' column as a partial or, with one chunk, as final outputs (finish_row).
//
// Invariants: every workgroupBarrier is in workgroup-uniform control flow (bounds come from
// workgroup_id, uniforms and lens); cooperative-matrix operations run in subgroup-uniform
// control flow (loops over units start at the subgroup's id and step by NSG; the conditions
// around them are workgroup-uniform, written as loops that run at most once); each
// subgroup's f_scr block is touched by that subgroup only, and a staged fragment is
// separated from its coopLoad and from the next staging by a workgroupBarrier() that every
// subgroup reaches (never subgroupBarrier(): lavapipe runs it as a workgroup barrier, which
// pairs it with whatever barrier the other subgroups wait at); loads of k and
// v stay below the tile's nk keys (so below Tk_b); DQ x DK is a multiple of WG and DK of SG
// (a subgroup's pairs at one slot lie in one row); strides QS, PS, FS (f16) and SS, OS (f32)
// are multiples of 16 bytes.

var<workgroup> q16: array<f16, DQ * QS>;           // the block's query rows (f16, unscaled)
var<workgroup> red: array<f32, RED>;               // S, the kinds' scratch, then O_t
var<workgroup> p_sh: array<f32, DQ * DK>;          // the tile's logits / weights, [row][key]
var<workgroup> p16: array<f16, DQ * PS>;           // the weights times 2^-e_r, as f16
var<workgroup> f_scr: array<f16, NSG * CM * FS>;   // per subgroup: one staged fragment
var<workgroup> row_a: array<f32, DQ>;              // kind state per row
var<workgroup> row_b: array<f32, DQ>;              // kind state per row
var<workgroup> row_t: array<f32, DQ>;              // kind scratch per row
var<workgroup> row_f: array<f32, DQ>;              // factor of acc before this tile's keys
var<workgroup> row_s: array<vec4<f32>, DQ>;        // the row's statistic after the chunk
var<workgroup> row_e: array<atomic<u32>, DQ>;      // bits of the row's largest weight
var<workgroup> kbad: array<u32, DK>;               // the key's v holds NaN or Inf

var<private> acc: array<vec4<f32>, NRI>;
var<private> pz: array<f32, NPAIR>;
var<private> pok: array<bool, NPAIR>;
var<private> vfr: array<CmB, VPN>;   // VPRE: the subgroup's V fragments of the tile

// What a workgroup works on, and the current tile (as in common/decode_partial.wgsl).
struct DTile {
    kv_unit: u32,
    row0: u32,   // first row (of R) of the block
    c: u32,      // chunk
    k0: u32,     // the chunk's keys [k0, k1)
    k1: u32,
    j0: u32,     // the tile's first key
    nk: u32,     // keys in the tile (<= DK)
    lid: u32,
    sg: u32,     // subgroup id
    lane: u32,   // subgroup invocation id
    seq: Seq,
}

// Row and key slot of pair slot s of this invocation.
fn pair_e(t: DTile, s: u32) -> u32 {
    return t.lid + s * WG;
}

// Every slot holds a pair (DQ x DK = NPAIR x WG); kept for the kinds' hooks.
fn pair_live(t: DTile, s: u32) -> bool {
    return pair_e(t, s) < DQ * DK;
}

fn pair_row(t: DTile, s: u32) -> u32 {
    return pair_e(t, s) / DK;
}

fn pair_key(t: DTile, s: u32) -> u32 {
    return pair_e(t, s) % DK;
}

// Does every row of the block see every key of the tile? (common/decode_partial.wgsl)
fn tile_full_dec(t: DTile) -> bool {
    let pmin = i32(t.seq.tk) - i32(params.tq);
    let pmax = i32(t.seq.tk) - 1;
    return dec_allowed(pmin, t.j0 + t.nk - 1u) && dec_allowed(pmax, t.j0);
}

// Staging of one CM x CM f16 fragment into the subgroup's f_scr block (row-major, stride
// FS): lane l writes elements l EPL .. l EPL + EPL - 1 (row e / CM, column e % CM).

// K rows (keys) j0 + j .. j0 + j + CM - 1 of the tile, columns d0 ..; zeros past nk.
fn stage_k(t: DTile, j: u32, d0: u32) {
    let fb = t.sg * CM * FS;
    for (var n = 0u; n < EPL; n++) {
        let e = t.lane * EPL + n;
        let key = j + e / CM;
        var x = f16(0.0);
        if (key < t.nk) {
            x = k[k_idx((t.kv_unit * params.capacity + t.j0 + key) * HEAD_D + d0 + e % CM)];
        }
        f_scr[fb + (e / CM) * FS + e % CM] = x;
    }
}

// V rows (keys) j0 + j .. of the tile, columns c0 ..; zeros past nk, NaN and Inf replaced by
// 0 (the allowed pairs of such a key weigh NaN: kbad).
fn stage_v(t: DTile, j: u32, c0: u32) {
    let fb = t.sg * CM * FS;
    for (var n = 0u; n < EPL; n++) {
        let e = t.lane * EPL + n;
        let key = j + e / CM;
        var x = f16(0.0);
        if (key < t.nk) {
            x = v[v_idx((t.kv_unit * params.capacity + t.j0 + key) * HEAD_DV + c0 + e % CM)];
            if (nonfinite(f32(x))) {
                x = f16(0.0);
            }
        }
        f_scr[fb + (e / CM) * FS + e % CM] = x;
    }
}

// Tile keys whose v row holds NaN or Inf (tiles with a masked pair or fewer than DK keys).
fn scan_kbad(t: DTile) {
    for (var j = t.lid; j < DK; j += WG) {
        var bad = 0u;
        if (j < t.nk) {
            let base = v_idx((t.kv_unit * params.capacity + t.j0 + j) * HEAD_DV);
            for (var c = 0u; c < HEAD_DV; c++) {
                if (nonfinite(f32(v[base + c]))) {
                    bad = 1u;
                }
            }
        }
        kbad[j] = bad;
    }
}

// S = Q K^T of the tile into red (unscaled): see the file comment. Unit n (key slab n) of
// subgroup sg is n = sg, sg + NSG, ...; each K^T fragment serves the NRB row blocks. The
// staged form runs in rounds that every subgroup takes part in (unit sg + round NSG, live
// or not), so that its workgroupBarriers are uniform: no subgroupBarrier (lavapipe executes
// one as a workgroup barrier, which pairs it with another subgroup's barrier elsewhere).
fn tile_scores(t: DTile) {
    let direct = t.nk == DK;
    for (var once = direct; once; once = false) {
        for (var n = t.sg; n < NKS; n += NSG) {
            var sacc: array<CmC, NRB>;
            for (var rb = 0u; rb < NRB; rb++) {
                sacc[rb] = CmC();
            }
            let base = k_idx((t.kv_unit * params.capacity + t.j0 + n * CM) * HEAD_D);
            for (var i = 0u; i < DB; i++) {
                // Column-major: element (d, c) = k[key j0 + CM n + c][dim CM i + d], K^T.
                let kt = coopLoad<CmB>(&k[base + i * CM], HEAD_D);
                for (var rb = 0u; rb < NRB; rb++) {
                    let qa = coopLoadT<CmA>(&q16[rb * CM * QS + i * CM], QS);
                    sacc[rb] = coopMultiplyAdd(qa, kt, sacc[rb]);
                }
            }
            for (var rb = 0u; rb < NRB; rb++) {
                coopStoreT(sacc[rb], &red[rb * CM * SS + n * CM], SS);
            }
        }
    }
    for (var once = !direct; once; once = false) {
        for (var round = 0u; round < (NKS + NSG - 1u) / NSG; round++) {
            let n = t.sg + round * NSG;
            let live = n < NKS;
            var sacc: array<CmC, NRB>;
            for (var rb = 0u; rb < NRB; rb++) {
                sacc[rb] = CmC();
            }
            for (var i = 0u; i < DB; i++) {
                if (live) {
                    stage_k(t, n * CM, i * CM);
                }
                workgroupBarrier();
                for (var go = live; go; go = false) {
                    let kt = coopLoad<CmB>(&f_scr[t.sg * CM * FS], FS);
                    for (var rb = 0u; rb < NRB; rb++) {
                        let qa = coopLoadT<CmA>(&q16[rb * CM * QS + i * CM], QS);
                        sacc[rb] = coopMultiplyAdd(qa, kt, sacc[rb]);
                    }
                }
                workgroupBarrier(); // f_scr is free again
            }
            for (var go = live; go; go = false) {
                for (var rb = 0u; rb < NRB; rb++) {
                    coopStoreT(sacc[rb], &red[rb * CM * SS + n * CM], SS);
                }
            }
        }
    }
}

// Does the tile take the direct P V (every pair attended to, DK keys)? Workgroup-uniform.
fn tile_vdirect(t: DTile) -> bool {
    return tile_full_dec(t) && t.nk == DK;
}

// VPRE: a subgroup's V fragments of its column block (sg < DVB, the only unit it has),
// loaded with the tile's K (before the logits' barrier) when the P V is direct.
fn prefetch_v(t: DTile) {
    for (var once = VPRE && tile_vdirect(t) && t.sg < DVB; once; once = false) {
        let base = v_idx((t.kv_unit * params.capacity + t.j0) * HEAD_DV + t.sg * CM);
        for (var n = 0u; n < VPN; n++) {
            vfr[n] = coopLoadT<CmB>(&v[base + n * CM * HEAD_DV], HEAD_DV);
        }
    }
}

// The logits of the tile: S on the cooperative matrices, then the pairs' pz and pok.
fn tile_logits(t: DTile) {
    if (t.lid < DQ) {
        atomicStore(&row_e[t.lid], 0u);
    }
    if (!tile_vdirect(t)) {
        scan_kbad(t);
    }
    prefetch_v(t);
    tile_scores(t);
    workgroupBarrier();
    for (var s = 0u; s < NPAIR; s++) {
        let r = pair_row(t, s);
        let key = pair_key(t, s);
        pz[s] = red[r * SS + key] * params.scale;
        let rr = t.row0 + r;
        pok[s] = rr < params.rows && key < t.nk && dec_allowed(row_pos(rr, t.seq), t.j0 + key);
    }
}

// 2^e as f32, for e in -126 ..= 127.
fn exp2_i(e: i32) -> f32 {
    return bitcast<f32>(u32(e + 127) << 23u);
}

// The binary exponent e_r of a row's largest weight (raw f32 bits), clamped to -126 ..= 0
// (NaN: 0).
fn row_exp(bits: u32) -> i32 {
    return clamp(i32((bits >> 23u) & 0xffu) - 127, -126, 0);
}

// P as f16 in p16, each row times 2^-e_r; in a tile that is not full, the allowed pairs of a
// key flagged in kbad weigh NaN. Two barriers inside.
fn tile_p16(t: DTile) {
    for (var s = 0u; s < NPAIR; s++) {
        // The SG pairs of slot s in this subgroup lie in one row (DK is a multiple of SG).
        let m = subgroupMax(abs(p_sh[pair_e(t, s)]));
        if (t.lane == 0u) {
            atomicMax(&row_e[pair_row(t, s)], bitcast<u32>(m));
        }
    }
    workgroupBarrier();
    let full = tile_vdirect(t);
    for (var s = 0u; s < NPAIR; s++) {
        let r = pair_row(t, s);
        let key = pair_key(t, s);
        var x = p_sh[pair_e(t, s)] * exp2_i(-row_exp(atomicLoad(&row_e[r])));
        if (!full && kbad[key] != 0u && pok[s]) {
            x = nan_f32();
        }
        p16[r * PS + key] = f16(x);
    }
    workgroupBarrier();
}

// O_t = P V of the tile into red: see the file comment. Unit b (column block b of Dv) of
// subgroup sg is b = sg, sg + NSG, ...; each V fragment serves the NRB row blocks (with VPRE
// it was loaded by prefetch_v). The staged form in rounds, as in tile_scores.
fn tile_pv(t: DTile) {
    let direct = tile_vdirect(t);
    for (var once = direct; once; once = false) {
        for (var b = t.sg; b < DVB; b += NSG) {
            var oacc: array<CmC, NRB>;
            for (var rb = 0u; rb < NRB; rb++) {
                oacc[rb] = CmC();
            }
            let base = v_idx((t.kv_unit * params.capacity + t.j0) * HEAD_DV + b * CM);
            for (var n = 0u; n < NKS; n++) {
                var vb: CmB;
                if (VPRE) {
                    vb = vfr[min(n, VPN - 1u)];
                } else {
                    vb = coopLoadT<CmB>(&v[base + n * CM * HEAD_DV], HEAD_DV);
                }
                for (var rb = 0u; rb < NRB; rb++) {
                    let pa = coopLoadT<CmA>(&p16[rb * CM * PS + n * CM], PS);
                    oacc[rb] = coopMultiplyAdd(pa, vb, oacc[rb]);
                }
            }
            for (var rb = 0u; rb < NRB; rb++) {
                coopStoreT(oacc[rb], &red[rb * CM * OS + b * CM], OS);
            }
        }
    }
    for (var once = !direct; once; once = false) {
        for (var round = 0u; round < (DVB + NSG - 1u) / NSG; round++) {
            let b = t.sg + round * NSG;
            let live = b < DVB;
            var oacc: array<CmC, NRB>;
            for (var rb = 0u; rb < NRB; rb++) {
                oacc[rb] = CmC();
            }
            for (var n = 0u; n < NKS; n++) {
                if (live) {
                    stage_v(t, n * CM, b * CM);
                }
                workgroupBarrier();
                for (var go = live; go; go = false) {
                    let vb = coopLoadT<CmB>(&f_scr[t.sg * CM * FS], FS);
                    for (var rb = 0u; rb < NRB; rb++) {
                        let pa = coopLoadT<CmA>(&p16[rb * CM * PS + n * CM], PS);
                        oacc[rb] = coopMultiplyAdd(pa, vb, oacc[rb]);
                    }
                }
                workgroupBarrier(); // f_scr is free again
            }
            for (var go = live; go; go = false) {
                for (var rb = 0u; rb < NRB; rb++) {
                    coopStoreT(oacc[rb], &red[rb * CM * OS + b * CM], OS);
                }
            }
        }
    }
    workgroupBarrier();
}

// acc = acc * row_f + O_t 2^e_r for the invocation's rows (branch-free: rows past DQ read
// row DQ - 1 and are never written).
fn tile_merge(t: DTile) {
    let col = t.lid % DV4;
    let g = t.lid / DV4;
    for (var n = 0u; n < NRI; n++) {
        let r = min(g + n * KG, DQ - 1u);
        let b = r * OS + 4u * col;
        let x = vec4<f32>(red[b], red[b + 1u], red[b + 2u], red[b + 3u]);
        let sc = exp2_i(row_exp(atomicLoad(&row_e[r])));
        acc[n] = fma(acc[n], vec4<f32>(row_f[r]), x * sc);
    }
}

// The tile processed at step `step` of `ntiles` (common/decode_partial.wgsl).
fn tile_at(step: u32, ntiles: u32) -> u32 {
    if (KIND_NEAREST_FIRST) {
        return ntiles - 1u - step;
    }
    return step;
}

// A sequence with no key: chunk 0 writes the kind's empty rows.
fn write_empty_rows(t: DTile) {
    for (var e = t.lid; e < DQ * DV4; e += WG) {
        let rr = t.row0 + e / DV4;
        if (rr < params.rows) {
            finish_row(t.kv_unit, rr, t.seq, part_empty(), e % DV4);
        }
    }
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_id) sg: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    // Only workgroup-uniform values in `t` until the early returns are decided (the
    // uniformity analysis tracks a struct as one value; common/decode_partial.wgsl).
    var t: DTile;
    t.kv_unit = params.unit0 + wg.y;
    t.row0 = wg.z * DQ;
    t.c = wg.x;
    t.seq = seq_of(t.kv_unit);
    if (t.seq.n == 0u) {
        if (t.c == 0u) {
            t.lid = lid;
            write_empty_rows(t);
        }
        return;
    }
    if (t.c >= t.seq.n) {
        return;
    }
    t.k0 = t.seq.lo + t.c * t.seq.clen;
    t.k1 = min(t.k0 + t.seq.clen, t.seq.tk);
    let ntiles = (t.k1 - t.k0 + DK - 1u) / DK;
    t.lid = lid;
    t.sg = sg;
    t.lane = lane;
    for (var e = lid; e < DQ * HEAD_D; e += WG) {
        let rr = t.row0 + e / HEAD_D;
        var x = f16(0.0);
        if (rr < params.rows) {
            x = q[q_idx((t.kv_unit * params.rows + rr) * HEAD_D + e % HEAD_D)];
        }
        q16[(e / HEAD_D) * QS + e % HEAD_D] = x;
    }
    for (var n = 0u; n < NRI; n++) {
        acc[n] = vec4<f32>(0.0);
    }
    if (lid < DQ) {
        row_f[lid] = 1.0;
    }
    kind_begin(t);
    workgroupBarrier();
    for (var step = 0u; step < ntiles; step++) {
        t.j0 = t.k0 + tile_at(step, ntiles) * DK;
        t.nk = min(DK, t.k1 - t.j0);
        tile_logits(t);
        kind_tile(t);
        tile_p16(t);
        tile_pv(t);
        tile_merge(t);
        workgroupBarrier(); // red and row_e are free for the next tile
    }
    kind_end(t);
    workgroupBarrier();
    let col = lid % DV4;
    let g = lid / DV4;
    for (var n = 0u; n < NRI; n++) {
        let r = g + n * KG;
        let rr = t.row0 + r;
        if (g < KG && r < DQ && rr < params.rows) {
            let p = Part(row_s[r], acc[n]);
            if (t.seq.n == 1u) {
                finish_row(t.kv_unit, rr, t.seq, p, col);
            } else {
                let base = part_index(t.kv_unit, t.c, rr);
                part[base + col] = acc[n];
                if (col == 0u) {
                    part[base + DV4] = row_s[r];
                }
            }
        }
    }
}
