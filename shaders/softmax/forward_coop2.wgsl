// webattn softmax/forward_coop2: the softmax hooks of the subgroup-tiled cooperative-matrix
// kernel (common/tile_coop2.wgsl): o_i = sum_j softmax_j(z_ij) v_j and lse_i (SPEC.md
// section 1), FlashAttention-2 style, one pass over the subgroup's key tiles.
//
// Tile shape and ownership: tile_coop2's (16 rows per subgroup, 64 keys per tile; each lane
// holds KPL logits of one row in zt). Per-row state in registers, the same in the row's
// LPR lanes: m_run (running max), l_run (running sum). The max is lazy: it moves only when a
// tile's logit exceeds it by more than RESCALE_SLACK (then alpha = exp(m_old - m_new) < 1 and
// tile_coop2 rescales the output rows); otherwise alpha = 1 exactly and the weights
// exp(z - m) stay <= e^8, safe in f16.
// Invariants: m starts at NEG_BIG (or at the sink logit s_h with l = 1, so the sink enters the
// denominator only); masked elements weigh exactly 0 whatever m is, and "masked" is decided
// by position (key_ok), never by the value of z, so a NaN logit is a NaN weight, not a
// masked key. Epilogue as softmax/forward.wgsl: a row with no allowed key writes o = 0,
// lse = -inf (bits), or lse = s_h with a sink; a row with keys whose l is 0 or not finite
// writes NaN for o and lse.

const KIND_NEAREST_FIRST: bool = false;
const KIND_SCALE_P: bool = false;
const KIND_AUX: bool = true;
const RESCALE_SLACK: f32 = 8.0;

var<private> m_run: f32;
var<private> l_run: f32;

fn kind_begin(t: Sub) {
    m_run = NEG_BIG;
    l_run = 0.0;
    if (has_flag(FLAG_SINK)) {
        m_run = sinks[t.unit % params.hq];
        l_run = 1.0;
    }
}

fn kind_tile(t: Sub, full: bool, span: vec2<i32>) -> f32 {
    var mx = NEG_BIG;
    for (var c = 0u; c < KPL; c++) {
        let z = select(NEG_BIG, zt[c], key_ok(t, c, full, span));
        zt[c] = z;
        mx = max(mx, z);
    }
    mx = row_max(mx);
    var alpha = 1.0;
    if (mx > m_run + RESCALE_SLACK) {
        alpha = exp(m_run - mx);
        m_run = mx;
    }
    var sum = 0.0;
    for (var c = 0u; c < KPL; c++) {
        var p = exp(zt[c] - m_run);
        if (!full) {
            p = select(0.0, p, key_ok(t, c, false, span));
        }
        zt[c] = p;
        sum += p;
    }
    l_run = l_run * alpha + row_sum(sum);
    return alpha;
}

// Is the row sum l usable: finite and > 0? (Decided on the bits.)
fn l_ok(l: f32) -> bool {
    return !nonfinite(l) && l > 0.0;
}

fn kind_finish(t: Sub) -> RowOut {
    let has_key = row_has_key(position(t.row0 + t.r));
    var out: RowOut;
    out.extra = 0.0;
    out.j_extra = -1;
    if (l_ok(l_run)) {
        out.factor = 1.0 / l_run;
        out.aux = bitcast<u32>(m_run + log(l_run));
    } else {
        out.factor = select(0.0, nan_f32(), has_key);
        out.aux = select(NEG_INF_BITS, NAN_BITS, has_key);
    }
    return out;
}
