// webattn common: the register-tiled flash-attention machinery shared by the three forward
// kernels and every variant. A kernel is assembled from this file, one lanes snippet
// (common/lanes_plain.wgsl: core WebGPU; common/lanes_subgroup.wgsl: subgroup operations),
// which maps invocations to (ty, tx) and reduces rows, and one phases snippet for phases A
// and C (common/tile_portable.wgsl: f32 FMAs; common/tile_coop.wgsl: cooperative matrices).
//
// Tile shape: a workgroup of WG = 256 invocations, a 16 x 16 grid (ty, tx), owns BQ query rows
// of one unit (batch, query head) and walks key tiles of BK keys.
//   Phase A (score_tile, per variant): S = scale * Q K^T for the BQ x BK tile. Invocation
//     (ty, tx) owns the RA x RB elements rows ty + 16a, keys tx + 16b, in registers (s_acc).
//   Phase B (in each kind's kernel): turns s_acc into weights P (put_w); f32 scratch per element
//     goes through put_p/get_p (p_tile). Per-row statistics live in stat_a..stat_c and are
//     updated by "row passes" in which invocation lid < BQ handles row lid alone, reducing the
//     16 per-lane partials that the invocations of the row left in `red` (never a serial walk
//     over BK keys).
//   Phase C (accumulate_pv, per variant): O += P V. Invocation (ty, tx) owns rows ty + 16a and
//     the vec4 columns tx + 16c of O (RA x VC vec4s in registers, f32).
//
// Invariants: no T x T matrix exists anywhere; every barrier sits in workgroup-uniform control
// flow (loop bounds come from workgroup_id and uniforms only; row passes hold no barrier);
// rows at or past Tq and keys at or past Tk are staged as zeros and get weight exactly 0, and
// dead rows never write; staging memory is reused between phases only across a barrier.
// NaN and Inf (SPEC.md, "Shapes and layout"): only the keys a row attends to may reach it.
// Masks are decided by position (elem_ok, row_key_span), never by a value, and applied by
// selection, never as 0 * x: phase B selects 0 for a masked logit, and phase C of a tile that
// is not tile_full keeps a masked key's v out of the row (portable: a select per element;
// cooperative matrices: V staged with non-finite entries zeroed and the weights of the rows
// that attend to such a key set to NaN). A tile_full tile masks nothing and adds no work:
// there every key is attended to, and non-finite values propagate by plain arithmetic.

var<workgroup> stat_a: array<f32, BQ>;
var<workgroup> stat_b: array<f32, BQ>;
var<workgroup> stat_c: array<f32, BQ>;
// Per-row partials of phase B: red[r * 16 + tx] (one per key lane; put_red_* and red_* of the
// lanes snippet), or stick-breaking's segment sums.
var<workgroup> red: array<f32, BQ * 16u>;

// Softmax: the last key tile + 1 in which some row's running max moved (rescale_o reads it).
var<workgroup> rescale_tile: atomic<u32>;

var<private> s_acc: array<f32, RA * RB>;
var<private> o_acc: array<vec4<f32>, RA * VC>;

// What one invocation owns.
struct Tile {
    unit: u32,     // absolute unit index b * Hq + h
    kv_unit: u32,  // b * Hkv + h / group
    row0: u32,     // first query row of the workgroup
    tx: u32,       // key / output-column lane, 0..16
    ty: u32,       // row lane, 0..16
    lid: u32,      // local invocation index (row passes: the row it handles)
    sg: u32,       // subgroup index (cooperative-matrix variant; 0 otherwise)
    nsg: u32,      // number of subgroups in the workgroup (1 where unused)
}

fn make_tile(wg: vec3<u32>, lid: u32, sg: u32, nsg: u32) -> Tile {
    var t: Tile;
    t.unit = params.unit0 + wg.y;
    t.kv_unit = t.unit / params.group;
    t.row0 = wg.x * BQ;
    t.tx = lid % 16u;
    t.ty = lid / 16u;
    t.lid = lid;
    t.sg = sg;
    t.nsg = nsg;
    return t;
}

// Local row (0..BQ) of this invocation's a-th row.
fn lrow(t: Tile, a: u32) -> u32 {
    return t.ty + 16u * a;
}

// Local key (0..BK) of this invocation's b-th key.
fn lkey(t: Tile, b: u32) -> u32 {
    return t.tx + 16u * b;
}

// Is every (row, key) pair of key tile kb allowed? Workgroup-uniform: then the per-element
// masks are skipped. Rows and keys must all exist, and the tile must lie inside the causal
// bound of the first row and inside the window of the last row.
fn tile_full(row0: u32, kb: u32) -> bool {
    let key_hi = kb * BK + BK - 1u;
    if (row0 + BQ > params.tq || key_hi >= params.tk) {
        return false;
    }
    if (has_flag(FLAG_CAUSAL) && i32(key_hi) > position(row0) - i32(params.self_excl)) {
        return false;
    }
    if (params.window != 0u && i32(kb * BK) + i32(params.window) <= position(row0 + BQ - 1u)) {
        return false;
    }
    return true;
}

// Does element (a, b) of the invocation's block carry weight in key tile kb? `full` is
// tile_full(row0, kb).
fn elem_ok(t: Tile, a: u32, kb: u32, b: u32, full: bool) -> bool {
    if (full) {
        return true;
    }
    let i = t.row0 + lrow(t, a);
    return i < params.tq && key_allowed(position(i), kb * BK + lkey(t, b));
}

// The allowed keys of local row r inside key tile kb, relative to the tile's first key, as
// [lo, hi] = result.x ..= result.y (empty, lo > hi, for a row at or past Tq).
fn row_key_span(t: Tile, r: u32, kb: u32) -> vec2<i32> {
    let i = t.row0 + r;
    if (i >= params.tq) {
        return vec2<i32>(1, 0);
    }
    return key_range(position(i)) - vec2<i32>(i32(kb * BK));
}

// Is local row r (row pass) a real query row?
fn row_live(t: Tile, r: u32) -> bool {
    return t.row0 + r < params.tq;
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

// Writes weight x of element (a, b) into p_tile.
fn put_p(t: Tile, a: u32, b: u32, x: f32) {
    put_p_at(lrow(t, a) * BK + lkey(t, b), x);
}

fn get_p(t: Tile, a: u32, b: u32) -> f32 {
    return get_p_at(lrow(t, a) * BK + lkey(t, b));
}

// Multiplies this invocation's output rows by per-row factors stat[lrow].
fn scale_o_rows_by_stat_c(t: Tile) {
    for (var a = 0u; a < RA; a++) {
        let f = stat_c[lrow(t, a)];
        for (var c = 0u; c < VC; c++) {
            o_acc[a * VC + c] *= f;
        }
    }
}

// Writes row a of the output: o_acc * factor (+ extra * v_{j_extra} when 0 <= j_extra < Tk).
fn write_o(t: Tile, a: u32, factor: f32, extra: f32, j_extra: i32) {
    let i = t.row0 + lrow(t, a);
    if (i >= params.tq) {
        return;
    }
    let dv4 = HEAD_DV / 4u;
    let obase = (t.unit * params.tq + i) * dv4;
    let use_extra = j_extra >= 0 && j_extra < i32(params.tk);
    let vbase = (t.kv_unit * params.tk + u32(max(j_extra, 0))) * dv4;
    for (var c = 0u; c < VC; c++) {
        let col = t.tx + 16u * c;
        if (col < dv4) {
            var x = o_acc[a * VC + c] * factor;
            if (use_extra) {
                x += extra * load_v4(vbase + col);
            }
            store_o4(obase + col, x);
        }
    }
}

// Row pass: writes the per-row auxiliary output (lse or rem) of local row r, as raw f32 bits.
fn write_aux(t: Tile, r: u32, bits: u32) {
    if (row_live(t, r) && has_flag(FLAG_WRITE_AUX)) {
        aux[t.unit * params.tq + t.row0 + r - params.aux_base] = bits;
    }
}
