// webattn softmax/decode: the softmax hooks of the split-KV partial kernel
// (common/decode_partial.wgsl): per row and chunk, m_s = max of the allowed logits,
// l_s = sum exp(z - m_s) and o_s = sum exp(z - m_s) v, online over the chunk's key tiles
// (SPEC.md sections 1 and 4). The sink logit is not here: it enters at the merge only
// (part_finish in softmax/merge.wgsl), so a chunk's partial is the same with or without it.
//
// Tile shape and ownership: the partial kernel's (DQ rows x DK keys per tile; pair slots
// pz/pok per invocation). Rows' state: row_b = m after the tiles so far, row_a = m before this
// tile (copied from row_b as the tile starts), row_f = the rescale of this tile. The tile's
// row max takes two steps: MXP invocations per row each scan DK / MXP masked logits into red
// (free once the logits are summed), then every pair slot reads its row's MXP maxima, so
// that no invocation scans a whole row. Each pair slot keeps its own running share of l in
// lpart, rescaled with its row; kind_end sums them per row. Statistic written: (m_s, l_s, 0,
// 0); a row with no allowed key in the chunk has m_s = NEG_BIG, l_s = 0, o_s = 0.
// Invariants: masked pairs have weight exactly 0 (selection, never exp of a masked logit);
// m only grows, so every factor exp(m_old - m_new) is <= 1; row_a and row_b are each written
// only while no invocation reads them (row_a before the tile's first barrier, row_b between
// its second and third).

const KIND_NEAREST_FIRST: bool = false;
// Invocations per row in the tile's max (DK is a power of two >= 16).
const MXP: u32 = 8u;

var<private> lpart: array<f32, NPAIR>;

fn kind_begin(t: DTile) {
    for (var s = 0u; s < NPAIR; s++) {
        lpart[s] = 0.0;
    }
    if (t.lid < DQ) {
        row_b[t.lid] = NEG_BIG;
    }
}

// Row r's max after this tile: m before it, and the MXP partial maxima in red.
fn tile_row_max(r: u32) -> f32 {
    var m = row_a[r];
    for (var p = 0u; p < MXP; p++) {
        m = max(m, red[r * MXP + p]);
    }
    return m;
}

fn kind_tile(t: DTile) {
    if (t.lid < DQ) {
        row_a[t.lid] = row_b[t.lid];
    }
    for (var s = 0u; s < NPAIR; s++) {
        if (pair_live(t, s)) {
            p_sh[pair_e(t, s)] = select(NEG_BIG, pz[s], pok[s]);
        }
    }
    workgroupBarrier();
    if (t.lid < DQ * MXP) {
        let base = (t.lid / MXP) * DK + (t.lid % MXP) * (DK / MXP);
        var mx = NEG_BIG;
        for (var k = 0u; k < DK / MXP; k++) {
            mx = max(mx, p_sh[base + k]);
        }
        red[t.lid] = mx;
    }
    workgroupBarrier();
    for (var s = 0u; s < NPAIR; s++) {
        if (pair_live(t, s)) {
            let r = pair_row(t, s);
            let m_new = tile_row_max(r);
            let w = select(0.0, exp(pz[s] - m_new), pok[s]);
            p_sh[pair_e(t, s)] = w;
            lpart[s] = lpart[s] * exp(row_a[r] - m_new) + w;
        }
    }
    if (t.lid < DQ) {
        let m_new = tile_row_max(t.lid);
        row_f[t.lid] = exp(row_a[t.lid] - m_new);
        row_b[t.lid] = m_new;
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
        row_s[t.lid] = vec4<f32>(row_b[t.lid], l, 0.0, 0.0);
    }
}
