// webattn sigmoid/merge: the sigmoid functions of the split-KV merge (SPEC.md section 4),
// used by common/decode_merge.wgsl and, for a sequence with one chunk, by the partial kernel.
// A partial is Part(s = (w, 0, 0, 0), o = one vec4 column of sum sigmoid(z + b) v).
//
//   combine: partials add (w = w_a + w_b, o = o_a + o_b);
//   finish:  o, or with the row-normalised variant o / (w + 1e-8).
//
// Also sigmoid_bias, the bias both partial kernels add to the logits: params.bias, or with
// FLAG_BIAS_LOG_KEYS -ln(Tk_b) of the row's own sequence (SPEC.md section 2: "minus log of the
// key count" is per sequence).
//
// Invariants: an empty partial (all zeros) is the identity; no per-row output.

fn part_empty() -> Part {
    return Part(vec4<f32>(0.0), vec4<f32>(0.0));
}

fn part_combine(a: Part, b: Part) -> Part {
    return Part(a.s + b.s, a.o + b.o);
}

fn part_finish(row: DRow, seq: Seq, p: Part, col: u32) -> vec4<f32> {
    if (has_flag(FLAG_NORMALIZE)) {
        return p.o / (p.s.x + 1.0e-8);
    }
    return p.o;
}

fn part_aux(row: DRow, seq: Seq, p: Part) -> u32 {
    return 0u;
}

fn sigmoid_bias(seq: Seq) -> f32 {
    if (has_flag(FLAG_BIAS_LOG_KEYS)) {
        return -log(f32(max(seq.tk, 1u)));
    }
    return params.bias;
}
