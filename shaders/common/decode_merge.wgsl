// webattn common/decode_merge: the split-KV merge kernel (SPEC.md section 4). Folds the
// partials the partial kernel left for each chunk of a sequence into the final outputs of one
// query row, with the kind's part_combine (near, far) and part_finish (shaders/<kind>/merge.wgsl).
//
// Grid: (row rr * MCB + column block, kv unit - params.unit0). Workgroup: WG = 256
// invocations, MC output columns (vec4) x MG chunk groups: invocation lid owns column
// col = block * MC + lid % MC and the contiguous chunks [g * per, (g + 1) * per) of group
// g = lid / MC, folded nearest first (highest chunk first: chunks are numbered from the
// oldest keys). The MG group results meet in workgroup memory and invocations lid < MC fold
// them, nearest group first, then write.
//
// Invariants: a sequence with at most one chunk was finished by the partial kernel, so its
// workgroups return at once (before any barrier: the condition is workgroup-uniform); only
// chunks c < n of the sequence, all written by this step's partial pass, are read; the fold
// order is nearest to farthest for every kind (softmax and sigmoid do not depend on it,
// stick-breaking does).

var<workgroup> ms: array<vec4<f32>, WG>;
var<workgroup> mo: array<vec4<f32>, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let kv_unit = params.unit0 + wg.y;
    let rr = wg.x / MCB;
    let seq = seq_of(kv_unit);
    if (seq.n <= 1u || rr >= params.rows) {
        return;
    }
    let col = (wg.x % MCB) * MC + lid % MC;
    let g = lid / MC;
    let per = (seq.n + MG - 1u) / MG;
    var a = part_empty();
    if (col < DV4) {
        let c_lo = g * per;
        let c_hi = min(c_lo + per, seq.n);
        for (var c = c_hi; c > c_lo; c--) {
            let base = part_index(kv_unit, c - 1u, rr);
            a = part_combine(a, Part(part[base + DV4], part[base + col]));
        }
    }
    ms[lid] = a.s;
    mo[lid] = a.o;
    workgroupBarrier();
    if (lid < MC && col < DV4) {
        var total = part_empty();
        for (var gg = MG; gg > 0u; gg--) {
            let i = (gg - 1u) * MC + lid;
            total = part_combine(total, Part(ms[i], mo[i]));
        }
        finish_row(kv_unit, rr, seq, total, col);
    }
}
