// webattn common: the flash-attention tile machinery shared by the three forward kernels.
//
// Tile shape: a workgroup of WG = BQ * TPR invocations owns BQ consecutive query rows of one
// unit (batch, query head). The TPR invocations of a row split its columns: invocation `part`
// owns the vec4 columns part, part + TPR, part + 2 TPR, ... of q (QV vec4s, kept in registers)
// and of the output accumulator o (OV vec4s, f32). Key tiles of BK keys of K and V pass
// through workgroup memory; scores are reduced over the TPR parts through `partial`.
// Each invocation ends a tile holding the BK scaled logits of its row in `z` (all TPR parts of
// a row hold identical copies: they add the same partials in the same order).
//
// Invariants: no T x T matrix exists anywhere; every barrier sits in workgroup-uniform control
// flow (loop bounds come from workgroup_id and uniforms only); keys at or past Tk are
// zero-filled in the tiles and masked by key_allowed; rows at or past Tq are "dead": they
// take part in loads and barriers but never write.

var<workgroup> k_tile: array<vec4<f32>, BK * HEAD_D / 4u>;
var<workgroup> v_tile: array<vec4<f32>, BK * HEAD_DV / 4u>;
var<workgroup> partial: array<f32, BQ * BK * TPR>;

var<private> q_reg: array<vec4<f32>, QV>;
var<private> o_acc: array<vec4<f32>, OV>;
var<private> z: array<f32, BK>;
var<private> w: array<f32, BK>;

// What one invocation owns.
struct Row {
    unit: u32,     // absolute unit index b * Hq + h
    kv_unit: u32,  // b * Hkv + h / group
    i: u32,        // query row
    pos: i32,      // absolute position p_i
    part: u32,     // which column slice of the row
    lrow: u32,     // row within the workgroup tile
    live: bool,    // i < Tq
}

fn make_row(wg: vec3<u32>, lid: u32) -> Row {
    var r: Row;
    r.unit = params.unit0 + wg.y;
    r.kv_unit = r.unit / params.group;
    r.lrow = lid / TPR;
    r.part = lid % TPR;
    r.i = wg.x * BQ + r.lrow;
    r.pos = position(r.i);
    r.live = r.i < params.tq;
    return r;
}

// Key tiles [x, y) that the workgroup's rows can see (uniform across the workgroup).
fn key_tile_range(wg: vec3<u32>) -> vec2<u32> {
    let row0 = wg.x * BQ;
    let row_last = min(row0 + BQ, params.tq) - 1u;
    var hi = i32(params.tk);
    if (has_flag(FLAG_CAUSAL)) {
        hi = clamp(position(row_last) + 1, 0, i32(params.tk));
    }
    var lo = 0;
    if (params.window != 0u) {
        lo = clamp(position(row0) - i32(params.window) + 1, 0, i32(params.tk));
    }
    if (hi <= lo) {
        return vec2<u32>(0u, 0u);
    }
    return vec2<u32>(u32(lo) / BK, (u32(hi) + BK - 1u) / BK);
}

fn load_q_slice(r: Row) {
    let base = (r.unit * params.tq + r.i) * (HEAD_D / 4u);
    for (var t = 0u; t < QV; t++) {
        if (r.live) {
            q_reg[t] = load_q4(base + r.part + TPR * t);
        } else {
            q_reg[t] = vec4<f32>(0.0);
        }
    }
    for (var t = 0u; t < OV; t++) {
        o_acc[t] = vec4<f32>(0.0);
    }
}

// Cooperative load of key tile kb of K and V into workgroup memory; keys >= Tk become zero.
fn load_kv_tile(kb: u32, kv_unit: u32, lid: u32) {
    let d4 = HEAD_D / 4u;
    for (var e = lid; e < BK * d4; e += WG) {
        let j = kb * BK + e / d4;
        var x = vec4<f32>(0.0);
        if (j < params.tk) {
            x = load_k4((kv_unit * params.tk + j) * d4 + e % d4);
        }
        k_tile[e] = x;
    }
    let dv4 = HEAD_DV / 4u;
    for (var e = lid; e < BK * dv4; e += WG) {
        let j = kb * BK + e / dv4;
        var x = vec4<f32>(0.0);
        if (j < params.tk) {
            x = load_v4((kv_unit * params.tk + j) * dv4 + e % dv4);
        }
        v_tile[e] = x;
    }
}

// Loads key tile kb and leaves z[kk] = scale * dot(q_i, k_{kb*BK+kk}) in every invocation.
// Must be called from workgroup-uniform control flow.
fn score_tile(r: Row, kb: u32, lid: u32) {
    workgroupBarrier(); // the previous tile's readers are done
    load_kv_tile(kb, r.kv_unit, lid);
    workgroupBarrier();
    let d4 = HEAD_D / 4u;
    for (var kk = 0u; kk < BK; kk++) {
        var s = 0.0;
        for (var t = 0u; t < QV; t++) {
            s += dot(q_reg[t], k_tile[kk * d4 + r.part + TPR * t]);
        }
        partial[(r.lrow * BK + kk) * TPR + r.part] = s;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
        var s = 0.0;
        for (var p = 0u; p < TPR; p++) {
            s += partial[(r.lrow * BK + kk) * TPR + p];
        }
        z[kk] = s * params.scale;
    }
}

// Is key kk of tile kb visible to this invocation's row?
fn tile_key_ok(r: Row, kb: u32, kk: u32) -> bool {
    return r.live && key_allowed(r.pos, kb * BK + kk);
}

// o_acc = o_acc * alpha + sum_kk w[kk] * v_{kb*BK+kk} over this invocation's columns.
fn accumulate_pv(r: Row, alpha: f32) {
    let dv4 = HEAD_DV / 4u;
    for (var t = 0u; t < OV; t++) {
        var acc = o_acc[t] * alpha;
        for (var kk = 0u; kk < BK; kk++) {
            acc += w[kk] * v_tile[kk * dv4 + r.part + TPR * t];
        }
        o_acc[t] = acc;
    }
}

// Writes o_acc * factor (+ extra * v_j_extra when j_extra < Tk) for a live row.
fn write_o(r: Row, factor: f32, extra: f32, j_extra: i32) {
    if (!r.live) {
        return;
    }
    let dv4 = HEAD_DV / 4u;
    let obase = (r.unit * params.tq + r.i) * dv4;
    let use_extra = j_extra >= 0 && j_extra < i32(params.tk);
    let vbase = (r.kv_unit * params.tk + u32(max(j_extra, 0))) * dv4;
    for (var t = 0u; t < OV; t++) {
        let c = r.part + TPR * t;
        var x = o_acc[t] * factor;
        if (use_extra) {
            x += extra * load_v4(vbase + c);
        }
        store_o4(obase + c, x);
    }
}

// Writes the per-row auxiliary output (lse or rem) once per row, as raw f32 bits.
fn write_aux(r: Row, bits: u32) {
    if (r.live && r.part == 0u && has_flag(FLAG_WRITE_AUX)) {
        aux[r.unit * params.tq + r.i - params.aux_base] = bits;
    }
}
