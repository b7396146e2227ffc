// webattn common/tile_coop2_direct: the K and V access of common/tile_coop2.wgsl in its
// default form (WEBATTN_COOP2_STAGE unset): K^T and V fragments by coopLoad straight from the
// storage buffers (q, k, v declared `array<f16>`: common/storage_f16_scalar.wgsl) where every
// key of the tile exists, else staged 16 x 16 at a time through the subgroup's f_scr.
// common/tile_coop2_staged.wgsl is the alternative with the same four functions (score,
// v_bad, accumulate_pv, and what they call). ABLATE_K / ABLATE_V (debugging only,
// docs/perf.md) replace the loaded fragments by zero fragments.

// K rows (keys) j .. j + 15, columns d0 ..; zeros past Tk.
fn stage_k(t: Sub, j: u32, d0: u32) {
    for (var n = 0u; n < EPL; n++) {
        let e = t.lane * EPL + n;
        let key = j + e / 16u;
        var x = f16(0.0);
        if (key < params.tk) {
            x = k[k_idx((t.kv_unit * params.tk + key) * HEAD_D + d0 + e % 16u)];
        }
        f_scr[t.fb + (e / 16u) * FH + e % 16u] = x;
    }
}

// V rows (keys) j .. j + 15, columns c0 ..; zeros past Tk, and NaN or Inf replaced by 0 (the
// weights of the rows that attend to such a key are NaN: write_p).
fn stage_v(t: Sub, j: u32, c0: u32) {
    for (var n = 0u; n < EPL; n++) {
        let e = t.lane * EPL + n;
        let key = j + e / 16u;
        var x = f16(0.0);
        if (key < params.tk) {
            x = v[v_idx((t.kv_unit * params.tk + key) * HEAD_DV + c0 + e % 16u)];
            if (nonfinite(f32(x))) {
                x = f16(0.0);
            }
        }
        f_scr[t.fb + (e / 16u) * FH + e % 16u] = x;
    }
}

// S = Q K^T over the 64 keys from j0 into s_scr (unscaled). `kin`: every key is < Tk.
fn score(t: Sub, j0: u32, kin: bool) {
    var sa: array<coop_mat16x16<f32, C>, NKS>;
    for (var n = 0u; n < NKS; n++) {
        sa[n] = coop_mat16x16<f32, C>();
    }
    for (var once = kin; once; once = false) {
        let base = k_idx((t.kv_unit * params.tk + j0) * HEAD_D);
        for (var i = 0u; i < DB; i++) {
            for (var n = 0u; n < NKS; n++) {
                // Column-major: element (d, c) = k[key j0 + 16 n + c][dim 16 i + d], K^T.
                var kt = coop_mat16x16<f16, B>();
                if (!ABLATE_K) {
                    kt = coopLoad<coop_mat16x16<f16, B>>(&k[base + 16u * n * HEAD_D + 16u * i], HEAD_D);
                }
                sa[n] = coopMultiplyAdd(qf[i], kt, sa[n]);
            }
        }
    }
    for (var once = !kin; once; once = false) {
        for (var i = 0u; i < DB; i++) {
            for (var n = 0u; n < NKS; n++) {
                stage_k(t, j0 + 16u * n, 16u * i);
                subgroupBarrier();
                let kt = coopLoad<coop_mat16x16<f16, B>>(&f_scr[t.fb], FH);
                sa[n] = coopMultiplyAdd(qf[i], kt, sa[n]);
                subgroupBarrier(); // f_scr is free again
            }
        }
    }
    store_s(t, sa);
}

// Keys of the tile from j0 whose v row holds NaN or Inf: bit j % 32 of word j / 32 for
// tile-relative key j (the same in every lane). Lane l checks keys l, l + 32 (SG = 32).
fn v_bad(t: Sub, j0: u32) -> array<u32, VBW> {
    var w: array<u32, VBW>;
    for (var m = 0u; m < VBW; m++) {
        let key = j0 + 32u * m + t.lane;
        var bad = false;
        if (key < params.tk) {
            let base = v_idx((t.kv_unit * params.tk + key) * HEAD_DV);
            for (var c = 0u; c < HEAD_DV; c++) {
                if (nonfinite(f32(v[base + c]))) {
                    bad = true;
                }
            }
        }
        w[m] = subgroupOr(select(0u, 1u << t.lane, bad));
    }
    return w;
}

// O += P V over the 64 keys from j0. `direct`: V may be read straight from storage (every
// key < Tk, and no non-finite v that would need zeroing).
fn accumulate_pv(t: Sub, j0: u32, direct: bool) {
    for (var once = direct; once; once = false) {
        let base = v_idx((t.kv_unit * params.tk + j0) * HEAD_DV);
        for (var s = 0u; s < NKS; s++) {
            let pa = load_p(t, s);
            for (var b = 0u; b < DVB; b++) {
                var vb = coop_mat16x16<f16, B>();
                if (!ABLATE_V) {
                    vb = coopLoadT<coop_mat16x16<f16, B>>(&v[base + 16u * s * HEAD_DV + 16u * b], HEAD_DV);
                }
                om[b] = coopMultiplyAdd(pa, vb, om[b]);
            }
        }
    }
    for (var once = !direct; once; once = false) {
        for (var s = 0u; s < NKS; s++) {
            let pa = load_p(t, s);
            for (var b = 0u; b < DVB; b++) {
                stage_v(t, j0 + 16u * s, 16u * b);
                subgroupBarrier();
                let vb = coopLoadT<coop_mat16x16<f16, B>>(&f_scr[t.fb], FH);
                om[b] = coopMultiplyAdd(pa, vb, om[b]);
                subgroupBarrier(); // f_scr is free again
            }
        }
    }
}

