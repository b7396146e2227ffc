// webattn sigmoid/decode: the sigmoid hooks of the split-KV partial kernel
// (common/decode_partial.wgsl): per row and chunk, o_s = sum sigmoid(z + b) v and
// w_s = sum sigmoid(z + b) over the chunk's allowed keys (SPEC.md sections 2 and 4).
//
// Tile shape and ownership: the partial kernel's (DQ rows x DK keys per tile; pair slots
// pz/pok per invocation). Each pair slot keeps its own running share of w_s in wpart; kind_end
// sums them per row. Statistic written: (w_s, 0, 0, 0).
// The bias: sigmoid_bias (sigmoid/merge.wgsl, shared with the subgroup kernel's hook).
// Invariants: no running max, no rescaling (row_f stays 1); masked pairs weigh exactly 0.

const KIND_NEAREST_FIRST: bool = false;

var<private> wpart: array<f32, NPAIR>;

fn kind_begin(t: DTile) {
    for (var s = 0u; s < NPAIR; s++) {
        wpart[s] = 0.0;
    }
}

fn kind_tile(t: DTile) {
    let b = sigmoid_bias(t.seq);
    for (var s = 0u; s < NPAIR; s++) {
        if (pair_live(t, s)) {
            let w = select(0.0, sigmoid(pz[s] + b), pok[s]);
            p_sh[pair_e(t, s)] = w;
            wpart[s] += w;
        }
    }
    workgroupBarrier();
}

fn kind_end(t: DTile) {
    for (var s = 0u; s < NPAIR; s++) {
        if (pair_live(t, s)) {
            p_sh[pair_e(t, s)] = wpart[s];
        }
    }
    workgroupBarrier();
    if (t.lid < DQ) {
        var w = 0.0;
        for (var k = 0u; k < DK; k++) {
            w += p_sh[t.lid * DK + k];
        }
        row_s[t.lid] = vec4<f32>(w, 0.0, 0.0, 0.0);
    }
}
