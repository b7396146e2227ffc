// webattn stick_breaking/merge: the stick-breaking functions of the split-KV merge
// (SPEC.md section 4), used by common/decode_merge.wgsl and, for a sequence with one chunk,
// by the partial kernel. A partial is Part(s = (acc, acc_lo, 0, 0), o = one vec4 column of the
// chunk's o_s), acc + acc_lo = the log of the stick the chunk leaves (a double-f32 sum).
//
//   combine(near, far): acc = acc_near + acc_far, o = o_near + exp(acc_near) o_far
//     (associative; folding nearest to farthest gives o = sum_s o_s exp(sum_{t nearer} acc_t));
//   finish: rem = exp(acc); o, plus rem * v_{p_i} with the remainder policy "to current"
//     when p_i >= 0; the per-row output is rem.
//
// Invariants: an empty partial (acc = 0, o = 0) is the identity, so a row with no key ends
// with o = 0 and rem = 1; acc <= 0, so every factor is <= 1.

fn part_empty() -> Part {
    return Part(vec4<f32>(0.0), vec4<f32>(0.0));
}

// (hi, lo) + (hi, lo) in double-f32 arithmetic (TwoSum, then renormalise).
fn dd_add(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    let s = a.x + b.x;
    let bb = s - a.x;
    let e = (a.x - (s - bb)) + (b.x - bb);
    let lo = e + a.y + b.y;
    let hi = s + lo;
    return vec2<f32>(hi, lo - (hi - s));
}

fn part_combine(near: Part, far: Part) -> Part {
    let a = dd_add(near.s.xy, far.s.xy);
    return Part(vec4<f32>(a, 0.0, 0.0), near.o + exp(near.s.x + near.s.y) * far.o);
}

fn part_finish(row: DRow, seq: Seq, p: Part, col: u32) -> vec4<f32> {
    var o = p.o;
    if (has_flag(FLAG_REM_TO_CURRENT) && row.pos >= 0) {
        let rem = exp(p.s.x + p.s.y);
        o += rem * load_v4((row.kv_unit * params.capacity + u32(row.pos)) * DV4 + col);
    }
    return o;
}

fn part_aux(row: DRow, seq: Seq, p: Part) -> u32 {
    return bitcast<u32>(exp(p.s.x + p.s.y));
}
