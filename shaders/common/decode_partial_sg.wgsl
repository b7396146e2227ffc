// webattn common/decode_partial_sg: the split-KV partial kernel of the subgroup variant
// (SPEC.md section 4), with no workgroup barrier in the key loop. The same job, grid, outputs
// and chunk rule as common/decode_partial.wgsl (the portable kernel, kept for devices without
// subgroups): one workgroup computes, for one chunk of one sequence's keys and one kv head, the
// partial output and statistic of up to DQ query rows of that kv head's GQA group (or, when the
// sequence has one chunk, the final outputs; with no key, empty rows).
//
// FlashDecoding inside the workgroup. Grid: (chunk c, kv unit - params.unit0, row block).
// Workgroup: WGS = NSG subgroups of SG lanes (SG fixed: the host selects this kernel only where
// the adapter's smallest and largest subgroup sizes are equal). A key group is KL consecutive
// lanes of one subgroup (NGS groups per subgroup, NGW = NSG * NGS per workgroup). Group
// gi = subgroup_id * NGS + lane / KL owns the contiguous sub-chunk [k0 + gi * SUB,
// k0 + (gi + 1) * SUB) of the chunk's keys [k0, k1) (SUB a multiple of NKS) and keeps its own
// running state per row: st[r], the kind's statistic (a Part's s: softmax (m, l), sigmoid (w),
// stick-breaking (acc, its low part)), and acc (the Part's o): exactly a partial of its
// sub-chunk, in the algebra of shaders/<kind>/merge.wgsl.
// Per step a group takes NKS consecutive keys of its sub-chunk, steps walked nearest first
// (from the sub-chunk's end down; stick-breaking needs that order, the others do not care):
//   loads: lane kl = lane % KL of the group reads vec4s kl, kl + KL, ... of each key's K row
//     (QPL of them) and V row (CPL of them), so the KL lanes read a row in contiguous runs;
//   logits: the lane's part of each (row r, key s) dot product with q (QPL vec4s per row in
//     registers, times scale, loaded once), summed over the group's KL lanes by
//     subgroupShuffleXor (log2 KL steps): every lane of the group then holds every logit;
//   weights: the kind's kind_lane_step (shaders/<kind>/decode_sg.wgsl) folds row r's NKS logits
//     (lz, with lok = the pair is attended) into st[r] and leaves their weights in lw (0 for
//     masked pairs, by selection) and returns the factor acc takes first (softmax's rescale;
//     1 otherwise). Every lane of a group computes the same values: nothing to exchange;
//   P V: acc[r * CPL + i] (output columns kl + i * KL, vec4, f32) = acc * f + sum_s w_s v_s,
//     a plain fma in steps where every pair is attended (step_full), elsewhere with a weight
//     of 0 selected out (SPEC: a masked key's NaN never reaches a row).
// After the loop: the NGS groups of a subgroup combine by subgroupShuffleXor butterflies
// (part_combine, the higher group being the nearer), then, in rounds of RC rows separated by
// barriers, subgroup sg leaves its partial in xs / xo and invocations fold the NSG partials
// nearest first (highest subgroup first) and write the chunk's partial, or with one chunk the
// final outputs (part_finish), as the portable kernel does.
//
// Invariants: loads of k and v stay below the group's end <= k1 <= Tk_b (slots past a
// sequence's length are never read); the step count (SUB / NKS) and every branch around a
// shuffle or a barrier are workgroup-uniform (bounds from workgroup_id, uniforms and the
// read-only lens), so every lane of a subgroup takes part in every shuffle; rows at or past R
// have zero q and are never written.

var<private> qreg: array<vec4<f32>, DQ * QPL>;   // q rows (times scale), this lane's columns
var<private> acc: array<vec4<f32>, DQ * CPL>;    // the group's o per row, this lane's columns
var<private> st: array<vec4<f32>, DQ>;           // the group's statistic per row
var<private> kk: array<vec4<f32>, NKS * QPL>;    // the step's K, this lane's columns
var<private> vv: array<vec4<f32>, NKS * CPL>;    // the step's V, this lane's columns
var<private> zz: array<f32, NKS * DQ>;           // the step's logits, [key][row]
var<private> lz: array<f32, NKS>;                // one row's logits of the step
var<private> lok: array<bool, NKS>;              // one row's attended pairs of the step
var<private> lw: array<f32, NKS>;                // one row's weights of the step

var<workgroup> xs: array<vec4<f32>, NSG * RC>;         // per subgroup and row: statistic
var<workgroup> xo: array<vec4<f32>, NSG * RC * DV4>;   // per subgroup and row: output

// Does every row of the block see every key of [jb, jb + NKS) (all below the group's end ghi)?
// The same test as the portable kernel's tile_full_dec: the first row sits at Tk_b - Tq at
// the lowest, the last at Tk_b - 1 at the highest; causal and window bounds are monotone.
fn step_full(seq: Seq, jb: u32, ghi: u32) -> bool {
    let pmin = i32(seq.tk) - i32(params.tq);
    let pmax = i32(seq.tk) - 1;
    return jb + NKS <= ghi && dec_allowed(pmin, jb + NKS - 1u) && dec_allowed(pmax, jb);
}

@compute @workgroup_size(WGS)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_id) sgid: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let kv_unit = params.unit0 + wg.y;
    let row0 = wg.z * DQ;
    let c = wg.x;
    let seq = seq_of(kv_unit);
    if (seq.n == 0u) {
        if (c == 0u) {
            for (var e = lid; e < DQ * DV4; e += WGS) {
                let rr = row0 + e / DV4;
                if (rr < params.rows) {
                    finish_row(kv_unit, rr, seq, part_empty(), e % DV4);
                }
            }
        }
        return;
    }
    if (c >= seq.n) {
        return;
    }
    let k0 = seq.lo + c * seq.clen;
    let k1 = min(k0 + seq.clen, seq.tk);
    let sub = ((k1 - k0 + NGW - 1u) / NGW + NKS - 1u) / NKS * NKS;
    let kl = lane % KL;
    let gi = sgid * NGS + lane / KL;
    let glo = min(k0 + gi * sub, k1);
    let ghi = min(glo + sub, k1);
    for (var r = 0u; r < DQ; r++) {
        let rr = row0 + r;
        for (var i = 0u; i < QPL; i++) {
            let col = kl + i * KL;
            var x = vec4<f32>(0.0);
            if (rr < params.rows && col < D4) {
                x = load_q4((kv_unit * params.rows + rr) * D4 + col) * params.scale;
            }
            qreg[r * QPL + i] = x;
        }
        st[r] = part_empty().s;
        for (var i = 0u; i < CPL; i++) {
            acc[r * CPL + i] = vec4<f32>(0.0);
        }
    }
    let kbase = kv_unit * params.capacity;
    for (var t = sub / NKS; t > 0u; t--) {
        let jb = glo + (t - 1u) * NKS;
        for (var s = 0u; s < NKS; s++) {
            let j = jb + s;
            let live = j < ghi;
            for (var i = 0u; i < QPL; i++) {
                let col = kl + i * KL;
                var x = vec4<f32>(0.0);
                if (live && col < D4) {
                    x = load_k4((kbase + j) * D4 + col);
                }
                kk[s * QPL + i] = x;
            }
            for (var i = 0u; i < CPL; i++) {
                let col = kl + i * KL;
                var x = vec4<f32>(0.0);
                if (live && col < DV4) {
                    x = load_v4((kbase + j) * DV4 + col);
                }
                vv[s * CPL + i] = x;
            }
        }
        for (var s = 0u; s < NKS; s++) {
            for (var r = 0u; r < DQ; r++) {
                var z = 0.0;
                for (var i = 0u; i < QPL; i++) {
                    z += dot(qreg[r * QPL + i], kk[s * QPL + i]);
                }
                zz[s * DQ + r] = z;
            }
        }
        for (var m = 1u; m < KL; m *= 2u) {
            for (var e = 0u; e < NKS * DQ; e++) {
                zz[e] += subgroupShuffleXor(zz[e], m);
            }
        }
        let full = step_full(seq, jb, ghi);
        for (var r = 0u; r < DQ; r++) {
            let rr = row0 + r;
            let p = row_pos(rr, seq);
            for (var s = 0u; s < NKS; s++) {
                lz[s] = zz[s * DQ + r];
                lok[s] = full || (jb + s < ghi && rr < params.rows && dec_allowed(p, jb + s));
            }
            let f = kind_lane_step(r, seq);
            for (var i = 0u; i < CPL; i++) {
                var a = acc[r * CPL + i] * f;
                if (full) {
                    for (var s = 0u; s < NKS; s++) {
                        a = fma(vec4<f32>(lw[s]), vv[s * CPL + i], a);
                    }
                } else {
                    for (var s = 0u; s < NKS; s++) {
                        let w = lw[s];
                        a += select(vec4<f32>(0.0), w * vv[s * CPL + i], w != 0.0);
                    }
                }
                acc[r * CPL + i] = a;
            }
        }
    }
    // The groups of the subgroup: butterflies over the group bits of the lane index; in each
    // pair the lane with the bit set holds the nearer keys.
    for (var m = KL; m < SG; m *= 2u) {
        let near = (lane & m) != 0u;
        for (var r = 0u; r < DQ; r++) {
            let ps = subgroupShuffleXor(st[r], m);
            var ns = st[r];
            for (var i = 0u; i < CPL; i++) {
                let po = subgroupShuffleXor(acc[r * CPL + i], m);
                let mine = Part(st[r], acc[r * CPL + i]);
                let other = Part(ps, po);
                var pc: Part;
                if (near) {
                    pc = part_combine(mine, other);
                } else {
                    pc = part_combine(other, mine);
                }
                acc[r * CPL + i] = pc.o;
                ns = pc.s;
            }
            st[r] = ns;
        }
    }
    // The subgroups, RC rows at a time (every group of a subgroup now holds its partial).
    for (var rd = 0u; rd < DQ / RC; rd++) {
        if (lane < KL) {
            for (var rl = 0u; rl < RC; rl++) {
                let r = rd * RC + rl;
                for (var i = 0u; i < CPL; i++) {
                    let col = kl + i * KL;
                    if (col < DV4) {
                        xo[(sgid * RC + rl) * DV4 + col] = acc[r * CPL + i];
                    }
                }
                if (lane == 0u) {
                    xs[sgid * RC + rl] = st[r];
                }
            }
        }
        workgroupBarrier();
        for (var e = lid; e < RC * DV4; e += WGS) {
            let rl = e / DV4;
            let col = e % DV4;
            let rr = row0 + rd * RC + rl;
            if (rr < params.rows) {
                var total = part_empty();
                for (var g = NSG; g > 0u; g--) {
                    let x = (g - 1u) * RC + rl;
                    total = part_combine(total, Part(xs[x], xo[x * DV4 + col]));
                }
                if (seq.n == 1u) {
                    finish_row(kv_unit, rr, seq, total, col);
                } else {
                    let base = part_index(kv_unit, c, rr);
                    part[base + col] = total.o;
                    if (col == 0u) {
                        part[base + DV4] = total.s;
                    }
                }
            }
        }
        workgroupBarrier();
    }
}
