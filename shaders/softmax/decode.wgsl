// webattn softmax/decode: the softmax hooks of the split-KV partial kernel
// (common/decode_partial.wgsl): per row and chunk, m_s = max of the allowed logits,
// l_s = sum exp(z - m_s) and o_s = sum exp(z - m_s) v, online over the chunk's key tiles
// (SPEC.md sections 1 and 4). The sink logit is not here: it enters at the merge only
// (part_finish in softmax/merge.wgsl), so a chunk's partial is the same with or without it.
//
// Tile shape and ownership: the partial kernel's (DQ rows x DK keys per tile; pair slots
// pz/pok per invocation; rows' state in row_a = m, row_f = the rescale of this tile).
// Each pair slot keeps its own running share of l in lpart, rescaled with its row; kind_end
// sums them per row. Statistic written: (m_s, l_s, 0, 0); a row with no allowed key in the
// chunk has m_s = NEG_BIG, l_s = 0, o_s = 0.
// Invariants: masked pairs have weight exactly 0 (selection, never exp of a masked logit);
// m only grows, so every factor exp(m_old - m_new) is <= 1.

const KIND_NEAREST_FIRST: bool = false;

var<private> lpart: array<f32, NPAIR>;

fn kind_begin(t: DTile) {
    for (var s = 0u; s < NPAIR; s++) {
        lpart[s] = 0.0;
    }
    if (t.lid < DQ) {
        row_a[t.lid] = NEG_BIG;
    }
}

fn kind_tile(t: DTile) {
    for (var s = 0u; s < NPAIR; s++) {
        if (pair_live(t, s)) {
            p_sh[pair_e(t, s)] = select(NEG_BIG, pz[s], pok[s]);
        }
    }
    workgroupBarrier();
    if (t.lid < DQ) {
        var mx = NEG_BIG;
        for (var k = 0u; k < DK; k++) {
            mx = max(mx, p_sh[t.lid * DK + k]);
        }
        let m_old = row_a[t.lid];
        let m_new = max(m_old, mx);
        row_f[t.lid] = exp(m_old - m_new);
        row_a[t.lid] = m_new;
    }
    workgroupBarrier();
    for (var s = 0u; s < NPAIR; s++) {
        if (pair_live(t, s)) {
            let r = pair_row(t, s);
            let w = select(0.0, exp(pz[s] - row_a[r]), pok[s]);
            p_sh[pair_e(t, s)] = w;
            lpart[s] = lpart[s] * row_f[r] + w;
        }
    }
    workgroupBarrier();
}

fn kind_end(t: DTile) {
    for (var s = 0u; s < NPAIR; s++) {
        if (pair_live(t, s)) {
            p_sh[pair_e(t, s)] = lpart[s];
        }
    }
    workgroupBarrier();
    if (t.lid < DQ) {
        var l = 0.0;
        for (var k = 0u; k < DK; k++) {
            l += p_sh[t.lid * DK + k];
        }
        row_s[t.lid] = vec4<f32>(row_a[t.lid], l, 0.0, 0.0);
    }
}
