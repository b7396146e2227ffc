// webattn common/decode_partial: the split-KV partial kernel (SPEC.md section 4). One
// workgroup computes, for one chunk of one sequence's keys and one kv head, the partial
// output and statistic of up to DQ query rows of that kv head's GQA group (all its query
// heads, all Tq new rows), streaming the chunk's K and V once. A sequence with a single
// chunk writes its final outputs here (no merge); one with no key writes empty rows.
//
// Grid: (chunk c, kv unit - params.unit0, row block). Workgroup: WG = 256 invocations.
// Per key tile of DK keys (chunk order: first to last, or last to first when the kind sets
// KIND_NEAREST_FIRST):
//   logits: invocation lid owns key slot ks = lid / KL and lane kl = lid % KL, i.e. the NKL
//     keys ks + n * KS of the tile (KS = WG / KL slots, DK = NKL * KS); it loads vec4s kl,
//     kl + KL, ... (DPL of them) of each of its keys' rows (KL lanes read one row in
//     contiguous runs) and leaves, per row r and key j, its part of the dot product in
//     red[(r * DK + j) * KLP + kl]. With QREG (WEBATTN_DECODE_QREG=1; off by default: its
//     registers cost more occupancy than the reads it saves, docs/perf.md D7) its DPL vec4
//     columns of every query row are held in registers (qreg, loaded once per chunk), so the
//     logits read no workgroup memory for q; otherwise they read q_sh (NKL = 1 unless
//     WEBATTN_DECODE_KL asks for more lanes). Then invocation lid owns the (row, key) pairs
//     e = lid + s * WG (s < NPAIR) of the DQ x DK tile and sums the KL parts into pz[s], with
//     pok[s] = the pair is allowed (KLP = KL + 1 with QREG: consecutive keys' parts in
//     different banks).
//   weights: the kind's hook kind_tile turns pz into weights in p_sh[r * DK + ks] (masked
//     pairs by selection: weight 0 whatever the logit) and sets row_f[r], the factor the
//     rows' accumulators take before this tile (softmax's rescale; 1 otherwise).
//   P V: invocation lid owns output column col = lid % DV4 for key group g = lid / DV4
//     (g < KG): keys g, g + KG, ... of the tile (VPL of them at most); acc[r] (vec4, f32) per
//     row r. A weight of 0 adds nothing even if v is NaN (SPEC: mask before multiplying),
//     except in tiles where every pair is attended to (tile_full_dec), which add w * v plain.
// Loads (tile_logits and tile_fetch_v, before the tile's first barrier): an invocation's DPL
//   K vec4s of its key slot and, with VWITHK, its V vec4s of P V (VPF = VPL of them): a tile
//   waits on memory once. Without VWITHK, P V loads its values itself (fewer registers held,
//   a second wait). K is widened to f32 as it is loaded, V (vreg, as stored) as it is used.
//   A key slot past the tile's nk keys loads the tile's last key (never past k1) and is
//   weighed 0. Every loop over a private array has a constant trip count and a body without
//   branches, so the arrays stay in registers (tools/vkstats: 0 bytes of local memory on the
//   H200; docs/perf.md, change D4).
// PREFETCH (with VWITHK; measured slower, off by default): the loads of tile n + 1 are issued
//   (tile_prefetch, into kpre / vpre, as stored) when tile n starts.
// ABLATE (measuring only, wrong results; 0 otherwise): bit 1 widens packed f16 with no
//   conversion, bit 2 replaces the logits' dot products by a sum of k, bit 4 adds v to acc
//   unweighted.
// After the chunk: kind_end leaves each row's statistic in row_s; the key groups' acc are
// summed through xo, one row at a time, and written as a partial or, with one chunk, as
// final outputs (the kind's part_finish, the merge of one partial).
//
// Invariants: loads of k and v stay below the chunk's end k1 <= Tk_b; every barrier is in
// workgroup-uniform control flow (bounds come from workgroup_id, uniforms and lens, which is
// read-only); rows at or past R have zero q and weight 0 and are never written.

var<workgroup> q_sh: array<vec4<f32>, DQ * D4>;   // the block's query rows, times scale
var<workgroup> red: array<f32, DQ * DK * KLP>;    // per-lane parts of the dot products
var<workgroup> p_sh: array<f32, DQ * DK>;         // the tile's logits / weights, [row][key]
var<workgroup> xo: array<vec4<f32>, WG>;          // cross-key-group sums of the outputs
var<workgroup> row_a: array<f32, DQ>;             // kind state per row
var<workgroup> row_b: array<f32, DQ>;             // kind state per row
var<workgroup> row_t: array<f32, DQ>;             // kind scratch per row
var<workgroup> row_f: array<f32, DQ>;             // factor of acc before this tile's keys
var<workgroup> row_s: array<vec4<f32>, DQ>;       // the row's statistic after the chunk

var<private> acc: array<vec4<f32>, DQ>;
var<private> pz: array<f32, NPAIR>;
var<private> pok: array<bool, NPAIR>;
var<private> vreg: array<KvRaw, VPF>;   // the tile's V of this invocation's P V (VWITHK)
var<private> qreg: array<vec4<f32>, QRN>; // QREG: q_sh[r * D4 + kl + i * KL] at [r * DPL + i]
var<private> kpre: array<KvRaw, NKL * DPL>; // PREFETCH: the next tile's K, as stored
var<private> vpre: array<KvRaw, VPF>;   // PREFETCH: the next tile's V, as stored

// What a workgroup works on, and the current tile.
struct DTile {
    kv_unit: u32,
    row0: u32,   // first row (of R) of the block
    c: u32,      // chunk
    k0: u32,     // the chunk's keys [k0, k1)
    k1: u32,
    j0: u32,     // the tile's first key
    nk: u32,     // keys in the tile (<= DK)
    jn: u32,     // PREFETCH: the next tile's first key and keys (nkn = 0: no next tile)
    nkn: u32,
    lid: u32,
    seq: Seq,
}

// Row and key slot of pair slot s of this invocation (valid when pair_live).
fn pair_e(t: DTile, s: u32) -> u32 {
    return t.lid + s * WG;
}

fn pair_live(t: DTile, s: u32) -> bool {
    return pair_e(t, s) < DQ * DK;
}

fn pair_row(t: DTile, s: u32) -> u32 {
    return pair_e(t, s) / DK;
}

fn pair_key(t: DTile, s: u32) -> u32 {
    return pair_e(t, s) % DK;
}

// K or V vec4 i as f32 (ABLATE bit 1: without a conversion). The plain loads widen in the
// same expression: f16 values carried through functions made the f16 kernel 4x slower on
// the H200 (docs/perf.md, D4).
fn kv_k4(i: u32) -> vec4<f32> {
    if ((ABLATE & 1u) != 0u) {
        return widen4_cheap(raw_k4(i));
    }
    return load_k4(i);
}

fn kv_v4(i: u32) -> vec4<f32> {
    if ((ABLATE & 1u) != 0u) {
        return widen4_cheap(raw_v4(i));
    }
    return load_v4(i);
}

// Loads this invocation's V of P V of the tile [j0, j0 + nk) into vreg, with VWITHK. Keys
// past nk (and lanes past KG key groups) load a clamped, valid row instead: tile_pv weighs
// them 0 (the loop stays branch-free, so vreg stays in registers).
fn tile_fetch_v(t: DTile, j0: u32, nk: u32) {
    if (VWITHK) {
        let g = min(t.lid / DV4, KG - 1u);
        let vbase = (t.kv_unit * params.capacity + j0) * DV4 + t.lid % DV4;
        for (var i = 0u; i < VPF; i++) {
            vreg[i] = raw_v4(vbase + min(g + i * KG, nk - 1u) * DV4);
        }
    }
}

// PREFETCH: issues this invocation's loads of the tile [j0, j0 + nk) into kpre / vpre (rows
// clamped as in tile_logits and tile_fetch_v); they are used one tile later.
fn tile_prefetch(t: DTile, j0: u32, nk: u32) {
    let ks = t.lid / KL;
    for (var n = 0u; n < NKL; n++) {
        let kbase = (t.kv_unit * params.capacity + j0 + min(ks + n * KS, nk - 1u)) * D4
            + t.lid % KL;
        for (var i = 0u; i < DPL; i++) {
            kpre[n * DPL + i] = raw_k4(kbase + i * KL);
        }
    }
    let g = min(t.lid / DV4, KG - 1u);
    let vbase = (t.kv_unit * params.capacity + j0) * DV4 + t.lid % DV4;
    for (var i = 0u; i < VPF; i++) {
        vpre[i] = raw_v4(vbase + min(g + i * KG, nk - 1u) * DV4);
    }
}

// Query row r's vec4 column kl + i * KL (times scale): from registers with QREG (r and i are
// constants once the callers' loops unroll), else from q_sh.
fn q_at(r: u32, i: u32, kl: u32) -> vec4<f32> {
    if (QREG) {
        return qreg[r * DPL + i];
    }
    return q_sh[r * D4 + kl + i * KL];
}

// Logits of the tile: see the file comment. Loads the tile's K (and V, tile_fetch_v) first;
// a key slot past nk loads the tile's last key (its pairs are not allowed). Ends with pz, pok
// set (one barrier inside).
fn tile_logits(t: DTile) {
    let ks = t.lid / KL;
    let kl = t.lid % KL;
    var kreg: array<vec4<f32>, NKL * DPL>;
    if (PREFETCH) {
        for (var i = 0u; i < NKL * DPL; i++) {
            kreg[i] = widen4(kpre[i]);
        }
        vreg = vpre;
        if (t.nkn > 0u) {
            tile_prefetch(t, t.jn, t.nkn);
        }
    } else {
        for (var n = 0u; n < NKL; n++) {
            let kbase = (t.kv_unit * params.capacity + t.j0 + min(ks + n * KS, t.nk - 1u)) * D4
                + kl;
            for (var i = 0u; i < DPL; i++) {
                kreg[n * DPL + i] = kv_k4(kbase + i * KL);
            }
        }
        tile_fetch_v(t, t.j0, t.nk);
    }
    for (var n = 0u; n < NKL; n++) {
        for (var r = 0u; r < DQ; r++) {
            var z = 0.0;
            for (var i = 0u; i < DPL; i++) {
                if ((ABLATE & 2u) != 0u) {
                    z += kreg[n * DPL + i].x;
                } else {
                    z += dot(q_at(r, i, kl), kreg[n * DPL + i]);
                }
            }
            red[(r * DK + ks + n * KS) * KLP + kl] = z;
        }
    }
    workgroupBarrier();
    for (var s = 0u; s < NPAIR; s++) {
        pz[s] = 0.0;
        pok[s] = false;
        if (pair_live(t, s)) {
            let r = pair_row(t, s);
            let key = pair_key(t, s);
            var z = 0.0;
            for (var l = 0u; l < KL; l++) {
                z += red[(r * DK + key) * KLP + l];
            }
            pz[s] = z;
            let rr = t.row0 + r;
            pok[s] = rr < params.rows && key < t.nk && dec_allowed(row_pos(rr, t.seq), t.j0 + key);
        }
    }
}

// Does every row of the block see every key of the tile? Workgroup-uniform (from the
// sequence and the tile only): the first row sits at Tk_b - Tq at the lowest, the last at
// Tk_b - 1 at the highest, and causal and window bounds are monotone in the position.
fn tile_full_dec(t: DTile) -> bool {
    let pmin = i32(t.seq.tk) - i32(params.tq);
    let pmax = i32(t.seq.tk) - 1;
    return dec_allowed(pmin, t.j0 + t.nk - 1u) && dec_allowed(pmax, t.j0);
}

// Weight of (row r, tile key j) for P V: 0 past the tile's keys.
fn pv_w(t: DTile, r: u32, j: u32) -> f32 {
    return select(0.0, p_sh[r * DK + min(j, DK - 1u)], j < t.nk);
}

// Value of P V's i-th key j of the tile (clamped to a valid row past nk; pv_w weighs it 0).
fn pv_v(t: DTile, i: u32, j: u32, vbase: u32) -> vec4<f32> {
    if (VWITHK) {
        if ((ABLATE & 1u) != 0u) {
            return widen4_cheap(vreg[min(i, VPF - 1u)]);
        }
        return widen4(vreg[min(i, VPF - 1u)]);
    }
    return kv_v4(vbase + min(j, t.nk - 1u) * DV4);
}

// acc = acc * row_f + P V over the tile's keys (see the file comment). In a tile that is
// tile_full_dec every pair is attended to, so w * v adds with no select (a NaN or Inf in v
// propagates by plain arithmetic, as SPEC.md wants for attended keys; a clamped key past nk
// repeats an attended one); elsewhere a weight of 0 (a masked pair, or a key past nk) is
// selected out so that a masked key's NaN never reaches the row. The key loops have no
// branch in their bodies, so the driver unrolls them and vreg and acc stay in registers
// (docs/perf.md, D4: a loop that breaks put them in local memory, 3-4x slower).
fn tile_pv(t: DTile) {
    let full = tile_full_dec(t);
    for (var r = 0u; r < DQ; r++) {
        acc[r] *= row_f[r];
    }
    let col = t.lid % DV4;
    let g = t.lid / DV4;
    if (g >= KG) {
        return;
    }
    let vbase = (t.kv_unit * params.capacity + t.j0) * DV4 + col;
    if ((ABLATE & 4u) != 0u) {
        for (var i = 0u; i < VPL; i++) {
            let v4 = pv_v(t, i, g + i * KG, vbase);
            for (var r = 0u; r < DQ; r++) {
                acc[r] += v4;
            }
        }
    } else if (full) {
        for (var i = 0u; i < VPL; i++) {
            let j = g + i * KG;
            let v4 = pv_v(t, i, j, vbase);
            for (var r = 0u; r < DQ; r++) {
                acc[r] = fma(vec4<f32>(pv_w(t, r, j)), v4, acc[r]);
            }
        }
    } else {
        for (var i = 0u; i < VPL; i++) {
            let j = g + i * KG;
            let v4 = pv_v(t, i, j, vbase);
            for (var r = 0u; r < DQ; r++) {
                let w = pv_w(t, r, j);
                acc[r] += select(vec4<f32>(0.0), w * v4, w != 0.0);
            }
        }
    }
}

// Row r's accumulator for a dynamic r: a branch-free scan with constant indices, so that
// acc is never indexed dynamically (which would put it in local memory).
fn acc_row(r: u32) -> vec4<f32> {
    var a = acc[0];
    for (var k = 1u; k < DQ; k++) {
        a = select(a, acc[k], k == r);
    }
    return a;
}

// The tile processed at step `step` of `ntiles`: first to last, or last to first when the kind
// sets KIND_NEAREST_FIRST.
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
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    // `t` holds only workgroup-uniform values until the early returns and the tile count are
    // decided: the uniformity analysis of WGSL (Tint's, in browsers) tracks a struct as one
    // value, so setting t.lid first would make every branch on t non-uniform, and the
    // barriers after them invalid.
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
    for (var e = lid; e < DQ * D4; e += WG) {
        let rr = t.row0 + e / D4;
        var x = vec4<f32>(0.0);
        if (rr < params.rows) {
            x = load_q4((t.kv_unit * params.rows + rr) * D4 + e % D4) * params.scale;
        }
        q_sh[e] = x;
    }
    for (var r = 0u; r < DQ; r++) {
        acc[r] = vec4<f32>(0.0);
    }
    if (lid < DQ) {
        row_f[lid] = 1.0;
    }
    kind_begin(t);
    workgroupBarrier();
    if (QREG) {
        for (var r = 0u; r < DQ; r++) {
            for (var i = 0u; i < DPL; i++) {
                qreg[r * DPL + i] = q_sh[r * D4 + lid % KL + i * KL];
            }
        }
    }
    if (PREFETCH) {
        let j0 = t.k0 + tile_at(0u, ntiles) * DK;
        tile_prefetch(t, j0, min(DK, t.k1 - j0));
    }
    for (var step = 0u; step < ntiles; step++) {
        t.j0 = t.k0 + tile_at(step, ntiles) * DK;
        t.nk = min(DK, t.k1 - t.j0);
        t.nkn = 0u;
        if (step + 1u < ntiles) {
            t.jn = t.k0 + tile_at(step + 1u, ntiles) * DK;
            t.nkn = min(DK, t.k1 - t.jn);
        }
        tile_logits(t);
        kind_tile(t);
        tile_pv(t);
    }
    workgroupBarrier();
    kind_end(t);
    workgroupBarrier();
    for (var r = 0u; r < DQ; r++) {
        xo[lid] = acc_row(r);
        workgroupBarrier();
        let rr = t.row0 + r;
        if (lid < DV4 && rr < params.rows) {
            var o = vec4<f32>(0.0);
            for (var g = 0u; g < KG; g++) {
                o += xo[g * DV4 + lid];
            }
            let p = Part(row_s[r], o);
            if (t.seq.n == 1u) {
                finish_row(t.kv_unit, rr, t.seq, p, lid);
            } else {
                let base = part_index(t.kv_unit, t.c, rr);
                part[base + lid] = o;
                if (lid == 0u) {
                    part[base + DV4] = row_s[r];
                }
            }
        }
        workgroupBarrier();
    }
}
