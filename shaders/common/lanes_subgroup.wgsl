// webattn common (lanes, subgroups): the invocation ids of a forward kernel and the row
// reductions of phase B through subgroup shuffles. Used by the subgroup and cooperative-matrix
// variants, on devices whose subgroups have at least 16 invocations.
//
// Ownership: invocations are numbered by subgroup, linear = subgroup_id * subgroup_size +
// subgroup_invocation_id, and (ty, tx) = (linear / 16, linear % 16), so the 16 invocations of
// a row (one ty) are 16 consecutive lanes of one subgroup, whatever its width (16, 32, 64,
// 128: never assumed).
// Row reductions: put_red_max / put_red_sum fold the row's 16 partials with subgroupShuffleXor
// (lane masks 1, 2, 4, 8 stay inside the aligned 16-lane group) and lane tx = 0 leaves the
// result at red[r * 16]; the row pass then reads one value instead of 16.
// Invariants: the host selects these snippets only where the smallest subgroup size is >= 16
// and divides WG, so subgroups are full and `linear` is a permutation of 0..WG; shuffles run
// in uniform control flow (every invocation of the workgroup calls them).

struct Ids {
    @builtin(subgroup_id) sg: u32,
    @builtin(num_subgroups) nsg: u32,
    @builtin(subgroup_size) sg_size: u32,
    @builtin(subgroup_invocation_id) sg_lane: u32,
}

// workgroup_id stays a separate entry-point argument: uniformity analyses (Tint's) treat a
// struct argument as one value, and Ids holds per-invocation builtins.
fn tile_of(wg: vec3<u32>, ids: Ids) -> Tile {
    let t = make_tile(wg, ids.sg * ids.sg_size + ids.sg_lane, ids.sg, ids.nsg);
    init_phases(t);
    return t;
}

// Row max of this invocation's partial x of its a-th row, left at red[r * 16].
fn put_red_max(t: Tile, a: u32, x: f32) {
    var m = x;
    for (var mask = 1u; mask < 16u; mask *= 2u) {
        m = max(m, subgroupShuffleXor(m, mask));
    }
    if (t.tx == 0u) {
        red[lrow(t, a) * 16u] = m;
    }
}

// Row sum of this invocation's partial x of its a-th row, left at red[r * 16].
fn put_red_sum(t: Tile, a: u32, x: f32) {
    var s = x;
    for (var mask = 1u; mask < 16u; mask *= 2u) {
        s += subgroupShuffleXor(s, mask);
    }
    if (t.tx == 0u) {
        red[lrow(t, a) * 16u] = s;
    }
}

// Row pass: the row sum of row r.
fn red_sum(r: u32) -> f32 {
    return red[r * 16u];
}

// Row pass: the row max of row r and `init`.
fn red_max(r: u32, init: f32) -> f32 {
    return max(init, red[r * 16u]);
}
