// webattn common/tile_coop2_staged: the K and V access of common/tile_coop2.wgsl staged
// through the subgroup's own scratch (WEBATTN_COOP2_STAGE=1, docs/perf.md change 13): the
// alternative to common/tile_coop2_direct.wgsl, with the same functions (score, v_bad,
// accumulate_pv). k and v are declared `array<vec4<f16>>` (common/storage_f16_coop2_staged.wgsl)
// and read with one 8-byte load per 4 halves, coalesced across the lanes, instead of the
// cooperative loads straight from storage whose 2-byte alignment may force 16-bit loads.
//
// Tile shape: per 16-key slab, the subgroup's 32 lanes load the slab's 16 rows of K (16 x D)
// or V (16 x Dv) into registers (kv_pre, SPRE vec4s per lane), store them into f_scr (here
// 16 rows of FH = max(D, Dv) + 8 halves per subgroup), and the fragments come from there by
// coopLoad (K^T column-major, V row-major). The next slab's loads are issued before the
// current slab's multiply-adds; V's first slab is loaded at the end of score, so its latency
// hides behind phase B.
// Invariants: keys past Tk are staged as zeros; in a tile whose V is not `direct` (keys past
// Tk, or a non-finite v somewhere: run_tile's v_bad), non-finite v entries are staged as 0
// (the rows that attend to them get NaN weights in write_p); f_scr and kv_pre belong to the
// subgroup, and every store into f_scr is separated from the previous coopLoads and the next
// ones by a subgroupBarrier.

const SPRE: u32 = (16u * (max(HEAD_D, HEAD_DV) / 4u) + SG - 1u) / SG;

var<private> kv_pre: array<vec4<f16>, SPRE>;

// Loads the 16 rows of K (`is_v` false) or V from key j into kv_pre: lane l, element n is
// vec4 e = l + n SG (row e / w4, vec4 column e % w4); zeros past Tk.
fn slab_load(t: Sub, j: u32, is_v: bool) {
    let w4 = select(HEAD_D, HEAD_DV, is_v) / 4u;
    for (var n = 0u; n < SPRE; n++) {
        let e = t.lane + n * SG;
        var x = vec4<f16>();
        let key = j + e / w4;
        if (e < 16u * w4 && key < params.tk) {
            let idx = (t.kv_unit * params.tk + key) * w4 + e % w4;
            if (is_v) {
                x = load_v4h(idx);
            } else {
                x = load_k4h(idx);
            }
        }
        kv_pre[n] = x;
    }
}

// Stores kv_pre into f_scr (rows of FH halves); `zero_bad`: non-finite entries become 0.
fn slab_store(t: Sub, is_v: bool, zero_bad: bool) {
    let w4 = select(HEAD_D, HEAD_DV, is_v) / 4u;
    for (var n = 0u; n < SPRE; n++) {
        let e = t.lane + n * SG;
        if (e < 16u * w4) {
            var x = kv_pre[n];
            if (zero_bad) {
                let ex = vec4<u32>(0x7f800000u);
                let nf = (bitcast<vec4<u32>>(vec4<f32>(x)) & ex) == ex;
                x = select(x, vec4<f16>(), nf);
            }
            let o = t.fb + (e / w4) * FH + 4u * (e % w4);
            f_scr[o] = x.x;
            f_scr[o + 1u] = x.y;
            f_scr[o + 2u] = x.z;
            f_scr[o + 3u] = x.w;
        }
    }
}

// S = Q K^T over the 64 keys from j0 into s_scr (unscaled); then V's first slab into kv_pre.
fn score(t: Sub, j0: u32, kin: bool) {
    var sa: array<coop_mat16x16<f32, C>, NKS>;
    for (var n = 0u; n < NKS; n++) {
        sa[n] = coop_mat16x16<f32, C>();
    }
    if (!ABLATE_K) {
        slab_load(t, j0, false);
    }
    for (var n = 0u; n < NKS; n++) {
        if (!ABLATE_K) {
            subgroupBarrier(); // f_scr is free
            slab_store(t, false, false);
            subgroupBarrier();
            if (n + 1u < NKS) {
                slab_load(t, j0 + 16u * (n + 1u), false);
            }
        }
        for (var i = 0u; i < DB; i++) {
            var kt = coop_mat16x16<f16, B>();
            if (!ABLATE_K) {
                // Column-major: element (d, c) = key c of the slab, dim 16 i + d: K^T.
                kt = coopLoad<coop_mat16x16<f16, B>>(&f_scr[t.fb + 16u * i], FH);
            }
            sa[n] = coopMultiplyAdd(qf[i], kt, sa[n]);
        }
    }
    if (!ABLATE_V) {
        slab_load(t, j0, true);
    }
    store_s(t, sa);
}

// Keys of the tile from j0 whose v row holds NaN or Inf: bit j % 32 of word j / 32 for
// tile-relative key j (the same in every lane). Lane l checks keys l, l + 32 (SG = 32).
fn v_bad(t: Sub, j0: u32) -> array<u32, VBW> {
    var w: array<u32, VBW>;
    let w4 = HEAD_DV / 4u;
    for (var m = 0u; m < VBW; m++) {
        let key = j0 + 32u * m + t.lane;
        var bad = false;
        if (key < params.tk) {
            let base = (t.kv_unit * params.tk + key) * w4;
            let ex = vec4<u32>(0x7f800000u);
            for (var c = 0u; c < w4; c++) {
                let x = vec4<f32>(load_v4h(base + c));
                bad = bad || any((bitcast<vec4<u32>>(x) & ex) == ex);
            }
        }
        w[m] = subgroupOr(select(0u, 1u << t.lane, bad));
    }
    return w;
}

// O += P V over the 64 keys from j0 (V's first slab is in kv_pre). `direct`: every key < Tk
// and no non-finite v (then nothing is zeroed).
fn accumulate_pv(t: Sub, j0: u32, direct: bool) {
    for (var s = 0u; s < NKS; s++) {
        let pa = load_p(t, s);
        if (!ABLATE_V) {
            subgroupBarrier(); // f_scr is free
            slab_store(t, true, !direct);
            subgroupBarrier();
            if (s + 1u < NKS) {
                slab_load(t, j0 + 16u * (s + 1u), true);
            }
        }
        for (var b = 0u; b < DVB; b++) {
            var vb = coop_mat16x16<f16, B>();
            if (!ABLATE_V) {
                vb = coopLoadT<coop_mat16x16<f16, B>>(&f_scr[t.fb + 16u * b], FH);
            }
            om[b] = coopMultiplyAdd(pa, vb, om[b]);
        }
    }
}
