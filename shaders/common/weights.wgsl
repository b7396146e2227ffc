// webattn common: shared pieces of the weight-materialising kernels (*/weights.wgsl), which
// write the full attention matrix A [B, Hq, Tq, Tk] (f32) for small T, so users can look at
// attention maps.
//
// Tile shape: one invocation owns one query row of one unit and walks all its keys straight
// from storage (no workgroup memory); a workgroup holds WG consecutive rows of one unit.
// Invariants: every element of a live row is written (masked keys get 0); `a` is bound from
// scalar index params.o_base; `row_stat` holds per-row f32 bits (softmax lse) or is unused.

struct WRow {
    unit: u32,
    kv_unit: u32,
    i: u32,
    pos: i32,
    live: bool,
}

fn make_wrow(wg: vec3<u32>, lid: u32) -> WRow {
    var r: WRow;
    r.unit = params.unit0 + wg.y;
    r.kv_unit = r.unit / params.group;
    r.i = wg.x * WG + lid;
    r.pos = position(r.i);
    r.live = r.i < params.tq;
    return r;
}

fn wrow_logit(r: WRow, j: u32) -> f32 {
    return logit_global(r.unit * params.tq + r.i, r.kv_unit * params.tk + j);
}

fn store_a(r: WRow, j: u32, x: f32) {
    a[(r.unit * params.tq + r.i) * params.tk + j - params.o_base] = x;
}
