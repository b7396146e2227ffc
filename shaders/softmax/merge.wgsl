// webattn softmax/merge: the softmax functions of the split-KV merge (SPEC.md section 4),
// used by common/decode_merge.wgsl and, for a sequence with one chunk, by the partial kernel.
// A partial is Part(s = (m, l, 0, 0), o = one vec4 column of sum exp(z - m) v).
//
//   combine:  M = max(m_a, m_b), l = l_a e^(m_a - M) + l_b e^(m_b - M),
//             o = o_a e^(m_a - M) + o_b e^(m_b - M)       (order-free: a log-sum-exp merge)
//   finish:   with a sink s_h: M' = max(M, s_h), L = l e^(M - M') + e^(s_h - M'), else
//             M' = M, L = l; o = o e^(M - M') / L, lse = M' + ln L; a row with L = 0 (no key,
//             no sink) writes o = 0 and lse = -inf.
//
// The sink enters here only, once per row, in the denominator (SPEC.md section 1).
// Invariants: every exponent is <= 0; an empty partial (m = NEG_BIG, l = 0, o = 0) is the
// identity of combine.

fn part_empty() -> Part {
    return Part(vec4<f32>(NEG_BIG, 0.0, 0.0, 0.0), vec4<f32>(0.0));
}

fn part_combine(a: Part, b: Part) -> Part {
    let m = max(a.s.x, b.s.x);
    let fa = exp(a.s.x - m);
    let fb = exp(b.s.x - m);
    return Part(vec4<f32>(m, a.s.y * fa + b.s.y * fb, 0.0, 0.0), a.o * fa + b.o * fb);
}

// (factor of o, the row's final max M', final sum L).
fn softmax_final(row: DRow, p: Part) -> vec3<f32> {
    var m = p.s.x;
    var l = p.s.y;
    var f = 1.0;
    if (has_flag(FLAG_SINK)) {
        let sk = sinks[row.head];
        let mn = max(m, sk);
        f = exp(m - mn);
        l = l * f + exp(sk - mn);
        m = mn;
    }
    return vec3<f32>(select(0.0, f / l, l > 0.0), m, l);
}

fn part_finish(row: DRow, seq: Seq, p: Part, col: u32) -> vec4<f32> {
    return p.o * softmax_final(row, p).x;
}

fn part_aux(row: DRow, seq: Seq, p: Part) -> u32 {
    let f = softmax_final(row, p);
    return select(NEG_INF_BITS, bitcast<u32>(f.y + log(f.z)), f.z > 0.0);
}
