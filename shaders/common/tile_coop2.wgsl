// webattn common/tile_coop2: the subgroup-tiled cooperative-matrix forward kernel (variant
// `coopmat2`, issue 12). It computes what every forward kernel computes (o, plus lse or rem),
// with the tensor cores of `wgpu_cooperative_matrix` (16 x 16 x 16, f16 inputs, f32
// accumulators), and keeps all synchronisation inside one subgroup. Each kind supplies small
// hooks (shaders/<kind>/forward_coop2.wgsl) around the shared loop here, as the decode
// partial kernel does: KIND_NEAREST_FIRST, KIND_AUX, kind_begin, kind_tile, kind_finish.
//
// Tile shape: a workgroup of WG = 128 invocations = NSG = 4 subgroups of SG = 32 lanes (the
// host selects this variant only where the subgroup size is fixed at 32: min == max == 32).
// The workgroup owns BQ = 64 query rows of one unit (batch, query head); subgroup g owns the
// 16 rows row0 = 64 wg.x + 16 g for the whole kernel and walks its own key tiles of BK = 64
// keys (the causal and window bounds of its own rows), independently of the other subgroups.
// Per key tile kb (keys j0 = 64 kb ..):
//   S (16 x 64) = Q K^T: four f32 accumulators, each DB = D / 16 multiply-adds of the Q
//     fragments (qf: DB A fragments, loaded once, kept in registers for the whole kernel)
//     with K^T fragments loaded by coopLoad (column-major) straight from the storage buffer
//     when every key of the tile exists (j0 + 64 <= Tk), else staged 16 x 16 at a time
//     through f_scr with zeros past Tk (a load never reaches past the bound range).
//   S goes to the subgroup's s_scr (f32, 16 x 64, row stride SH); lane l then owns row
//     r = l / LPR, keys h KPL .. h KPL + KPL - 1 with h = l % LPR (LPR = SG / 16 lanes per row,
//     KPL = BK / LPR keys per lane), and reads its KPL logits (times scale) into zt.
//   kind_tile (the kind's hook) turns zt into weights, updates the row's state (registers,
//     the same in the LPR lanes of the row; row reductions by subgroupShuffleXor) and returns
//     alpha, the factor the row's output takes before this tile's keys (softmax's lazy
//     rescale; 1 otherwise). Where some row's alpha is not 1 (subgroupAny), rescale_o moves
//     the output blocks through s_scr, 64 columns at a time, and back.
//   P (f16, 16 x 64) goes to the subgroup's p_scr, the A operand of P V.
//   O (16 x Dv) += P V: DVB = Dv / 16 f32 accumulators (om) in registers for the whole kernel;
//     per 16-key slab, the P fragment comes from p_scr and the V fragments (16 keys x 16
//     columns, row-major) straight from storage, or through f_scr in the tiles where that is
//     not allowed (below).
// K and V access (score, v_bad, accumulate_pv) follows this file: common/tile_coop2_direct.wgsl
// (the default, as described above) or common/tile_coop2_staged.wgsl (WEBATTN_COOP2_STAGE=1:
// 16-key slabs staged by the subgroup with vector loads). Sigmoid and stick-breaking
// (KIND_SCALE_P) scale each row's weights by 2^-p_exp before P becomes f16 (scale_p), and the
// epilogue multiplies by 2^p_exp.
// After the walk: kind_finish gives each row's factor, remainder term and auxiliary bits; the
// output blocks pass through s_scr 64 columns at a time and each lane writes its row's
// columns h KPL .. (vec4 stores, f32 or f16 by the output snippet).
//
// NaN and Inf (SPEC.md, "Shapes and layout"): masks are decided by position (the lane's row
// span, lane_span) and applied by selection inside the hooks, never as 0 * x. Inside the
// tensor-core product 0 * NaN is NaN, so in a tile that is not tile_full16 for the
// subgroup's 16 rows, the V rows of the tile are scanned first (v_bad: one bit per key,
// subgroupOr); if some key's v holds NaN or Inf, V is staged with those entries replaced by 0
// and the weight of every (row, key) pair whose key is flagged and in the row's span becomes
// NaN in p_scr: exactly the rows that attend to such a key turn NaN, the others see a finite
// 0. A tile_full16 tile masks nothing and checks nothing: every key is attended to there, and
// non-finite values propagate through the product by themselves.
//
// Invariants: no workgroupBarrier anywhere (the subgroups' loops have different trip
// counts); each subgroup's scratch (s_scr, p_scr, f_scr at sb, pb, fb) is touched by that
// subgroup only, and every hand-off between its lanes (a coopStore then lane reads, lane
// writes then a coopLoad, and every reuse) is separated by a subgroupBarrier(); cooperative-
// matrix operations run in subgroup-uniform control flow (every condition around them is a
// function of the subgroup's rows, the tile and uniforms, or a subgroupAny), written as loops
// that run at most once where naga's uniformity analysis would refuse an `if`; rows past Tq
// have zero q, weight exactly 0 and never write; keys past Tk are never loaded (staged as
// zeros) and never weighted; strides SH (f32), PH and FH (f16) are multiples of 16 bytes;
// HEAD_D and HEAD_DV are multiples of 16; the per-row state is kept identical in the LPR
// lanes of a row.

const NSG: u32 = WG / SG;
const NKS: u32 = BK / 16u;       // 16-key slabs per tile
const VBW: u32 = BK / 32u;       // words of v_bad's key mask
const EPL: u32 = 256u / SG;      // elements of a 16 x 16 fragment each lane stages

// Debugging ablations (COOP2_ABLATE, generated from WEBATTN_COOP2_ABLATE; 0 otherwise; see
// docs/perf.md): zero K^T fragments instead of loading them, zero V fragments, no phase B
// (kind_tile and the P scale), no S coopStore (kept live behind a condition that never
// holds) and zero P fragments. The results are wrong with any of them set: timing only.
const ABLATE_K: bool = (COOP2_ABLATE & 1u) != 0u;
const ABLATE_V: bool = (COOP2_ABLATE & 2u) != 0u;
const ABLATE_B: bool = (COOP2_ABLATE & 4u) != 0u;
const ABLATE_S: bool = (COOP2_ABLATE & 8u) != 0u;

// The binary exponent of P's row scale (KIND_SCALE_P): p_scr holds w 2^-p_exp; P_NONE before
// the row's first tile; the exponent moves up only past P_SLACK (weights <= 2^9 in f16).
const P_NONE: i32 = -1000;
const P_SLACK: i32 = 8;

var<workgroup> s_scr: array<f32, NSG * 16u * SH>;
var<workgroup> p_scr: array<f16, NSG * 16u * PH>;
var<workgroup> f_scr: array<f16, NSG * 16u * FH>;

var<private> qf: array<coop_mat16x16<f16, A>, DB>;
var<private> om: array<coop_mat16x16<f32, C>, DVB>;
// The lane's KPL logits of the current tile (keys h KPL + c), then their weights.
var<private> zt: array<f32, KPL>;
var<private> p_exp: i32;

// What one lane owns.
struct Sub {
    unit: u32,     // absolute unit index b * Hq + h
    kv_unit: u32,  // b * Hkv + h / group
    row0: u32,     // the subgroup's first query row
    lane: u32,     // subgroup_invocation_id
    r: u32,        // the lane's row, 0..16 (row0 + r)
    h: u32,        // the lane's part of the row, 0..LPR: keys / columns h KPL ..
    sb: u32,       // the subgroup's 16 x SH block of s_scr
    pb: u32,       // its 16 x PH block of p_scr
    fb: u32,       // its 16 x FH block of f_scr
}

// A row's epilogue, from kind_finish: o_i = o_acc * factor (+ extra * v_{j_extra} when
// 0 <= j_extra < Tk); aux (raw f32 bits) is written when KIND_AUX and FLAG_WRITE_AUX.
struct RowOut {
    factor: f32,
    extra: f32,
    j_extra: i32,
    aux: u32,
}

fn make_sub(wg: vec3<u32>, sg: u32, lane: u32) -> Sub {
    var t: Sub;
    t.unit = params.unit0 + wg.y;
    t.kv_unit = t.unit / params.group;
    t.row0 = wg.x * BQ + 16u * sg;
    t.lane = lane;
    t.r = lane / LPR;
    t.h = lane % LPR;
    t.sb = sg * 16u * SH;
    t.pb = sg * 16u * PH;
    t.fb = sg * 16u * FH;
    return t;
}

// Tile-relative key of the lane's c-th logit.
fn lane_key(t: Sub, c: u32) -> u32 {
    return t.h * KPL + c;
}

// The allowed keys of the lane's row inside the tile starting at key j0, relative to j0, as
// [lo, hi] (empty, lo > hi, for a row at or past Tq).
fn lane_span(t: Sub, j0: u32) -> vec2<i32> {
    let i = t.row0 + t.r;
    if (i >= params.tq) {
        return vec2<i32>(1, 0);
    }
    return key_range(position(i)) - vec2<i32>(i32(j0));
}

// Does the lane's c-th key carry weight? `full`: tile_full16 (then every key does).
fn key_ok(t: Sub, c: u32, full: bool, span: vec2<i32>) -> bool {
    let j = i32(lane_key(t, c));
    return full || (j >= span.x && j <= span.y);
}

// Row reductions over the LPR lanes of a row (consecutive lanes; xor masks below LPR stay
// inside the row).
fn row_max(x: f32) -> f32 {
    var m = x;
    for (var s = 1u; s < LPR; s *= 2u) {
        m = max(m, subgroupShuffleXor(m, s));
    }
    return m;
}

fn row_sum(x: f32) -> f32 {
    var m = x;
    for (var s = 1u; s < LPR; s *= 2u) {
        m += subgroupShuffleXor(m, s);
    }
    return m;
}

// Sum of x over the lanes of the row to the right of this one (h' > h): the keys after the
// lane's own in the tile.
fn row_sum_right(t: Sub, x: f32) -> f32 {
    var s = 0.0;
    for (var m = 1u; m < LPR; m++) {
        let y = subgroupShuffle(x, t.lane - t.h + (t.h + m) % LPR);
        if (t.h + m < LPR) {
            s += y;
        }
    }
    return s;
}

// Is every (row, key) pair of key tile kb allowed for the 16 rows from row0? Subgroup-
// uniform: then the per-element masks and the V checks are skipped.
fn tile_full16(row0: u32, kb: u32) -> bool {
    let key_hi = kb * BK + BK - 1u;
    if (row0 + 16u > params.tq || key_hi >= params.tk) {
        return false;
    }
    if (has_flag(FLAG_CAUSAL) && i32(key_hi) > position(row0) - i32(params.self_excl)) {
        return false;
    }
    if (params.window != 0u && i32(kb * BK) + i32(params.window) <= position(row0 + 15u)) {
        return false;
    }
    return true;
}

// Key tiles [x, y) that the subgroup's rows can see (subgroup-uniform).
fn sub_tile_range(t: Sub) -> vec2<u32> {
    if (t.row0 >= params.tq) {
        return vec2<u32>(0u, 0u);
    }
    let row_last = min(t.row0 + 16u, params.tq) - 1u;
    var hi = i32(params.tk);
    if (has_flag(FLAG_CAUSAL)) {
        hi = clamp(position(row_last) + 1, 0, i32(params.tk));
    }
    var lo = 0;
    if (params.window != 0u) {
        lo = clamp(position(t.row0) - i32(params.window) + 1, 0, i32(params.tk));
    }
    if (hi <= lo) {
        return vec2<u32>(0u, 0u);
    }
    return vec2<u32>(u32(lo) / BK, (u32(hi) + BK - 1u) / BK);
}

// Staging of one 16 x 16 f16 fragment into the subgroup's f_scr (row-major, stride FH): lane
// l writes elements l EPL .. l EPL + EPL - 1 (row e / 16, column e % 16).

// Q rows row0 .. row0 + 15, columns 16 i ..; zeros past Tq.
fn stage_q(t: Sub, i: u32) {
    for (var n = 0u; n < EPL; n++) {
        let e = t.lane * EPL + n;
        let row = t.row0 + e / 16u;
        var x = f16(0.0);
        if (row < params.tq) {
            x = q[q_idx((t.unit * params.tq + row) * HEAD_D + 16u * i + e % 16u)];
        }
        f_scr[t.fb + (e / 16u) * FH + e % 16u] = x;
    }
}

// The Q fragments of the subgroup's rows, once: straight from storage when all 16 rows exist.
fn load_q(t: Sub) {
    let direct = t.row0 + 16u <= params.tq;
    for (var once = direct; once; once = false) {
        let base = q_idx((t.unit * params.tq + t.row0) * HEAD_D);
        for (var i = 0u; i < DB; i++) {
            qf[i] = coopLoadT<coop_mat16x16<f16, A>>(&q[base + 16u * i], HEAD_D);
        }
    }
    for (var once = !direct; once; once = false) {
        for (var i = 0u; i < DB; i++) {
            stage_q(t, i);
            subgroupBarrier();
            qf[i] = coopLoadT<coop_mat16x16<f16, A>>(&f_scr[t.fb], FH);
            subgroupBarrier(); // f_scr is free again
        }
    }
}

// 2^e as f32, for e in -126 ..= 127.
fn exp2_i(e: i32) -> f32 {
    return bitcast<f32>(u32(e + 127) << 23u);
}

// KIND_SCALE_P (sigmoid, stick-breaking: weights in [0, 1] that are not normalised by a
// running max): scales the lane's weights (zt) by 2^-p_exp before they become f16, p_exp the
// binary exponent (clamped to -126 ..= 0) of the largest weight the row has seen, moved
// lazily like softmax's max (returns alpha times the rescale of the output rows, 1 mostly).
// Without it a row whose weights all lie below f16's smallest normal (6.1e-5) loses
// precision, and one whose weights lie below 6e-8 (sigmoid(z) for z < -17: the check's
// "sigmoid scale 200", Tq = Tk = 1) comes out 0 however large v is. The epilogue multiplies
// by 2^p_exp.
fn scale_p(alpha: f32) -> f32 {
    var mx = 0.0;
    for (var c = 0u; c < KPL; c++) {
        mx = max(mx, zt[c]);
    }
    mx = row_max(mx);
    let e = clamp(i32((bitcast<u32>(mx) >> 23u) & 0xffu) - 127, -126, 0);
    var a = alpha;
    if (e > p_exp + P_SLACK) {
        if (p_exp != P_NONE) {
            a *= exp2_i(p_exp - e);
        }
        p_exp = e;
    }
    let inv = exp2_i(-p_exp);
    for (var c = 0u; c < KPL; c++) {
        zt[c] *= inv;
    }
    return a;
}

// S (the four 16 x 16 accumulators of a tile) into s_scr. ABLATE_S: only under a condition
// that never holds at run time, so that the product stays live.
fn store_s(t: Sub, sa: array<coop_mat16x16<f32, C>, NKS>) {
    var go = true;
    if (ABLATE_S) {
        go = params.tq == 0xffffffffu;
    }
    for (var once = go; once; once = false) {
        for (var n = 0u; n < NKS; n++) {
            coopStoreT(sa[n], &s_scr[t.sb + 16u * n], SH);
        }
    }
}

// The P fragment of 16-key slab s from p_scr (zero under ABLATE_S).
fn load_p(t: Sub, s: u32) -> coop_mat16x16<f16, A> {
    if (ABLATE_S) {
        return coop_mat16x16<f16, A>();
    }
    return coopLoadT<coop_mat16x16<f16, A>>(&p_scr[t.pb + 16u * s], PH);
}

// Writes the lane's weights (zt) into p_scr as f16; in a tile that is not full, a pair whose
// key is flagged in `bad` and lies in the row's span gets NaN.
fn write_p(t: Sub, full: bool, span: vec2<i32>, bad: array<u32, VBW>) {
    let base = t.pb + t.r * PH + t.h * KPL;
    for (var c = 0u; c < KPL; c++) {
        var w = zt[c];
        if (!full) {
            let j = lane_key(t, c);
            if (((bad[j / 32u] >> (j % 32u)) & 1u) != 0u && key_ok(t, c, false, span)) {
                w = nan_f32();
            }
        }
        p_scr[base + c] = f16(w);
    }
}

// Output blocks of column group g (columns 64 g .. 64 g + 63) into s_scr, row-major from
// column 0. The caller separates this from earlier reads of s_scr by a subgroupBarrier.
fn o_group_store(t: Sub, g: u32) {
    for (var b = 4u * g; b < min(4u * g + 4u, DVB); b++) {
        coopStoreT(om[b], &s_scr[t.sb + 16u * (b - 4u * g)], SH);
    }
}

// Multiplies each row's output by its alpha (softmax's lazy rescale; rare).
fn rescale_o(t: Sub, alpha: f32) {
    let base = t.sb + t.r * SH + t.h * KPL;
    for (var g = 0u; g < NG; g++) {
        subgroupBarrier(); // s_scr is free
        o_group_store(t, g);
        subgroupBarrier();
        for (var c = 0u; c < KPL; c++) {
            s_scr[base + c] *= alpha;
        }
        subgroupBarrier();
        for (var b = 4u * g; b < min(4u * g + 4u, DVB); b++) {
            om[b] = coopLoadT<coop_mat16x16<f32, C>>(&s_scr[t.sb + 16u * (b - 4u * g)], SH);
        }
    }
}

// One key tile of the subgroup's walk.
fn run_tile(t: Sub, kb: u32) {
    let j0 = kb * BK;
    let full = tile_full16(t.row0, kb);
    let kin = j0 + BK <= params.tk;
    subgroupBarrier(); // the previous tile's reads of s_scr and p_scr are done
    score(t, j0, kin);
    subgroupBarrier(); // S is in s_scr
    let base = t.sb + t.r * SH + t.h * KPL;
    for (var c = 0u; c < KPL; c++) {
        zt[c] = s_scr[base + c] * params.scale;
    }
    let span = lane_span(t, j0);
    var alpha = 1.0;
    if (!ABLATE_B) {
        alpha = kind_tile(t, full, span);
        if (KIND_SCALE_P) {
            alpha = scale_p(alpha);
        }
    }
    for (var once = subgroupAny(alpha != 1.0); once; once = false) {
        rescale_o(t, alpha);
    }
    var bad: array<u32, VBW>;
    for (var m = 0u; m < VBW; m++) {
        bad[m] = 0u;
    }
    if (!full) {
        bad = v_bad(t, j0);
    }
    var clean = true;
    for (var m = 0u; m < VBW; m++) {
        clean = clean && bad[m] == 0u;
    }
    // p_scr's last readers (the previous tile's P V) finished before the barrier at the top.
    write_p(t, full, span, bad);
    subgroupBarrier(); // P is in p_scr
    accumulate_pv(t, j0, kin && clean);
}

// The rows' outputs: o (through s_scr, 64 columns at a time) and aux.
fn epilogue(t: Sub) {
    let i = t.row0 + t.r;
    let live = i < params.tq;
    var out = kind_finish(t);
    if (KIND_SCALE_P && p_exp != P_NONE) {
        out.factor *= exp2_i(p_exp);
    }
    let dv4 = HEAD_DV / 4u;
    let use_extra = out.j_extra >= 0 && out.j_extra < i32(params.tk);
    let vrow = (t.kv_unit * params.tk + u32(max(out.j_extra, 0))) * dv4;
    let obase = (t.unit * params.tq + i) * dv4;
    let base = t.sb + t.r * SH + t.h * KPL;
    for (var g = 0u; g < NG; g++) {
        subgroupBarrier(); // s_scr is free
        o_group_store(t, g);
        subgroupBarrier();
        if (live) {
            for (var c = 0u; c < KPL; c += 4u) {
                let col = 64u * g + t.h * KPL + c;
                if (col < HEAD_DV) {
                    var x = vec4<f32>(
                        s_scr[base + c],
                        s_scr[base + c + 1u],
                        s_scr[base + c + 2u],
                        s_scr[base + c + 3u],
                    ) * out.factor;
                    if (use_extra) {
                        x += out.extra * load_v4(vrow + col / 4u);
                    }
                    store_o4(obase + col / 4u, x);
                }
            }
        }
    }
    if (KIND_AUX && live && t.h == 0u && has_flag(FLAG_WRITE_AUX)) {
        aux[t.unit * params.tq + i - params.aux_base] = out.aux;
    }
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(subgroup_id) sg: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let t = make_sub(wg, sg, lane);
    for (var b = 0u; b < DVB; b++) {
        om[b] = coop_mat16x16<f32, C>();
    }
    p_exp = P_NONE;
    load_q(t);
    kind_begin(t);
    let tiles = sub_tile_range(t);
    let n = tiles.y - tiles.x;
    for (var step = 0u; step < n; step++) {
        var kb = tiles.x + step;
        if (KIND_NEAREST_FIRST) {
            kb = tiles.y - 1u - step;
        }
        run_tile(t, kb);
    }
    epilogue(t);
}
