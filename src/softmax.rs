//! Softmax attention (SPEC.md section 1): options, f64 reference and GPU set-up.
//! Kernels: `shaders/softmax/forward.wgsl` (o and lse), `shaders/softmax/weights.wgsl` (A).

use crate::attention::{AuxOut, KindSetup, FLAG_CAUSAL, FLAG_SINK};
use crate::reference::Inputs;
use crate::shader::KindId;
use crate::{Error, Result, Shape};

/// Options of softmax attention.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SoftmaxOptions {
    /// Causal mask, bottom-right aligned.
    pub causal: bool,
    /// Optional per-query-head sink logit `s_h` (length Hq): enters the denominator only.
    pub sinks: Option<Vec<f32>>,
}

pub(crate) fn setup(o: &SoftmaxOptions, s: &Shape) -> Result<KindSetup> {
    let mut flags = if o.causal { FLAG_CAUSAL } else { 0 };
    if let Some(sk) = &o.sinks {
        if sk.len() != s.q_heads {
            return Err(Error::InvalidOption(format!(
                "softmax sinks: {} values for {} query heads",
                sk.len(),
                s.q_heads
            )));
        }
        if let Some(x) = sk.iter().find(|x| !x.is_finite()) {
            return Err(Error::InvalidOption(format!(
                "softmax sink logit {x} is not finite"
            )));
        }
        flags |= FLAG_SINK;
    }
    Ok(KindSetup {
        kind: KindId::Softmax,
        flags,
        bias: 0.0,
        self_excl: 0,
        sinks: o.sinks.clone(),
        aux: AuxOut::Lse,
    })
}

/// Per-row max over allowed keys and the sink; None when the row has nothing.
fn row_lse(x: &Inputs, o: &SoftmaxOptions, u: usize, i: usize) -> f64 {
    let sink = o.sinks.as_ref().map(|s| s[u % x.s.q_heads] as f64);
    let logits: Vec<f64> = (0..x.s.kv_len)
        .filter(|&j| x.allowed(i, j, o.causal, false))
        .map(|j| x.logit(u, i, j))
        .chain(sink)
        .collect();
    if logits.is_empty() {
        return f64::NEG_INFINITY;
    }
    let m = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    m + logits.iter().map(|z| (z - m).exp()).sum::<f64>().ln()
}

/// Dense weights A_ij = exp(z_ij - lse_i) (zero off S(i)), and lse.
pub(crate) fn weights(x: &Inputs, o: &SoftmaxOptions) -> (Vec<f64>, Vec<f64>) {
    let s = &x.s;
    let mut a = vec![0.0; x.units() * s.q_len * s.kv_len];
    let mut lse = vec![0.0; x.units() * s.q_len];
    for u in 0..x.units() {
        for i in 0..s.q_len {
            let l = row_lse(x, o, u, i);
            lse[u * s.q_len + i] = l;
            if l == f64::NEG_INFINITY {
                continue;
            }
            for j in 0..s.kv_len {
                if x.allowed(i, j, o.causal, false) {
                    a[(u * s.q_len + i) * s.kv_len + j] = (x.logit(u, i, j) - l).exp();
                }
            }
        }
    }
    (a, lse)
}
