// webattn common/decode: what both split-KV decoding passes share (SPEC.md section 4):
// sequences and their chunks, query rows, key masks, the layout of the partials and the
// writers of the final outputs.
//
// Computes nothing on its own. It comes after the generated header of src/pass/decode.rs
// (HEAD_D, HEAD_DV, WG, D4, DV4, DQ, DK, KL, DPL, KG, NPAIR, MC, MG, MCB), the contract's
// declarations (`params`, q, k, v, o, aux, sinks, lens, part), a storage snippet (load_q4,
// load_k4, load_v4), common/params.wgsl and an output snippet (store_o4).
//
// Layout. The cache: k [B, Hkv, capacity, D], v [B, Hkv, capacity, Dv], contiguous per kv
// unit u = b * Hkv + h (one dense stream per head); sequence b holds lens[b] valid slots, the
// rest may be garbage and is never read. q [B, Hq, Tq, D]: the query rows of kv unit u (query
// heads u * group .. u * group + group - 1, Tq rows each) are rows u * R .. u * R + R - 1 of
// q viewed as [B * Hq * Tq, D], with R = params.rows = group * Tq; row rr of the unit is query
// head u * group + rr / Tq, row i = rr % Tq, at position p = i + Tk_b - Tq (bottom-right).
// o and aux use the same row numbering. Partials: part[((u * max_chunks + c) * R + rr) *
// (DV4 + 1) + ...]: DV4 vec4s of the chunk's output, then one vec4 statistic (per kind).
//
// Invariants: the keys of sequence b that any row can see are [lo, Tk_b) (lo > 0 only with a
// window); chunks cut exactly that range, so no chunk lies wholly outside a window; every
// index into k and v is below Tk_b (slots past a sequence's length are never loaded); the
// host evaluates the same chunk rule (src/pass/decode.rs, chunk_count) for the grid size.

// One sequence's keys and chunks, the same for every invocation of a workgroup.
struct Seq {
    b: u32,
    tk: u32,    // keys of the sequence, Tk_b (lens[b], never above the capacity)
    lo: u32,    // first key any row's window can see
    clen: u32,  // keys per chunk
    n: u32,     // chunks (0 only when Tk_b = 0)
}

fn seq_of(kv_unit: u32) -> Seq {
    var s: Seq;
    s.b = kv_unit / params.kv_heads;
    s.tk = min(lens[s.b], params.capacity);
    var lo = 0;
    if (params.window != 0u) {
        lo = max(i32(s.tk) - i32(params.tq) - i32(params.window) + 1, 0);
    }
    s.lo = u32(lo);
    let len = s.tk - s.lo;
    let l = max(params.chunk_min, (len + params.max_chunks - 1u) / params.max_chunks);
    s.clen = (l + DK - 1u) / DK * DK;
    s.n = (len + s.clen - 1u) / s.clen;
    return s;
}

// One query row of a kv unit.
struct DRow {
    kv_unit: u32,
    qrow: u32,  // row index into q, o, aux viewed as [B * Hq * Tq, ...]
    head: u32,  // query head, 0..Hq (sinks)
    pos: i32,   // absolute position p
}

fn drow(kv_unit: u32, rr: u32, seq: Seq) -> DRow {
    var r: DRow;
    r.kv_unit = kv_unit;
    r.qrow = kv_unit * params.rows + rr;
    r.head = (kv_unit * params.group + rr / params.tq) % params.hq;
    r.pos = i32(rr % params.tq) + i32(seq.tk) - i32(params.tq);
    return r;
}

// Position of row rr of a sequence.
fn row_pos(rr: u32, seq: Seq) -> i32 {
    return i32(rr % params.tq) + i32(seq.tk) - i32(params.tq);
}

// Is key j (< Tk_b) in S(i) / V(i) of a row at position p: causal (with the current token
// excluded when self_excl) and window.
fn dec_allowed(p: i32, j: u32) -> bool {
    let jj = i32(j);
    if (has_flag(FLAG_CAUSAL) && jj > p - i32(params.self_excl)) {
        return false;
    }
    if (params.window != 0u && jj + i32(params.window) <= p) {
        return false;
    }
    return true;
}

// A chunk's partial of one row: `s` the kind's statistic, `o` one vec4 column of its output.
struct Part {
    s: vec4<f32>,
    o: vec4<f32>,
}

// Index of row rr's partial of chunk c (its DV4 output vec4s, then the statistic).
fn part_index(kv_unit: u32, c: u32, rr: u32) -> u32 {
    return ((kv_unit * params.max_chunks + c) * params.rows + rr) * (DV4 + 1u);
}

// Final output: vec4 column `col` of row `row`.
fn write_row_o(row: DRow, col: u32, x: vec4<f32>) {
    store_o4(row.qrow * DV4 + col, x);
}

// Final per-row output (lse, rem) as raw f32 bits, when the call wants it.
fn write_row_aux(row: DRow, bits: u32) {
    if (has_flag(FLAG_WRITE_AUX)) {
        aux[row.qrow - params.aux_base] = bits;
    }
}

// Writes row rr's final outputs from its merged partial (column col; the aux from col 0).
fn finish_row(kv_unit: u32, rr: u32, seq: Seq, p: Part, col: u32) {
    let row = drow(kv_unit, rr, seq);
    write_row_o(row, col, part_finish(row, seq, p, col));
    if (col == 0u) {
        write_row_aux(row, part_aux(row, seq, p));
    }
}
