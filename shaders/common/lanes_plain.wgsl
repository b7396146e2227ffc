// webattn common (lanes, core WebGPU): the invocation ids of a forward kernel and the row
// reductions of phase B through workgroup memory. Used by the portable variant.
//
// Ownership: invocation lid is (ty, tx) = (lid / 16, lid % 16) of the 16 x 16 grid.
// Row reductions: each invocation puts its partial for row r at red[r * 16 + tx]; after a
// barrier, a row pass (invocation lid < BQ) folds the 16 partials of row lid (red_max, red_sum).
// Invariants: no subgroup operation; red is only read across a barrier from its writes.

struct Ids {
    @builtin(local_invocation_index) lid: u32,
}

// workgroup_id stays a separate entry-point argument: uniformity analyses (Tint's) treat a
// struct argument as one value, and Ids holds per-invocation builtins.
fn tile_of(wg: vec3<u32>, ids: Ids) -> Tile {
    let t = make_tile(wg, ids.lid, 0u, 1u);
    init_phases(t);
    return t;
}

// This invocation's partial x of its a-th row, for a row max (the row pass folds it).
fn put_red_max(t: Tile, a: u32, x: f32) {
    red[lrow(t, a) * 16u + t.tx] = x;
}

// This invocation's partial x of its a-th row, for a row sum (the row pass folds it).
fn put_red_sum(t: Tile, a: u32, x: f32) {
    put_red_max(t, a, x);
}

// Row pass: sum of the 16 partials of row r.
fn red_sum(r: u32) -> f32 {
    var s = 0.0;
    for (var l = 0u; l < 16u; l++) {
        s += red[r * 16u + l];
    }
    return s;
}

// Row pass: max of the 16 partials of row r and `init`.
fn red_max(r: u32, init: f32) -> f32 {
    var m = init;
    for (var l = 0u; l < 16u; l++) {
        m = max(m, red[r * 16u + l]);
    }
    return m;
}
