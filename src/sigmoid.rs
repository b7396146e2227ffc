//! Sigmoid attention without normalisation (SPEC.md section 2): options, f64 reference and
//! GPU set-up. Kernels: `shaders/sigmoid/forward.wgsl`, `shaders/sigmoid/weights.wgsl`.

use crate::attention::{AuxOut, KindSetup, FLAG_CAUSAL, FLAG_NORMALIZE};
use crate::reference::Inputs;
use crate::shader::KindId;
use crate::{Error, Result, Shape};

/// The scalar bias b in sigmoid(z + b).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum SigmoidBias {
    /// `b = -ln(n)` with `n` = Tk, the number of keys (Apple's FlashSigmoid recipe). Default.
    #[default]
    MinusLogKeys,
    /// An explicit value (the attention-sink paper uses 0). `-inf` is allowed and gives o = 0;
    /// `+inf` gives weight 1 to every allowed key; NaN is refused.
    Value(f32),
}

/// Options of sigmoid attention.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SigmoidOptions {
    /// Causal mask, bottom-right aligned.
    pub causal: bool,
    /// The bias b.
    pub bias: SigmoidBias,
    /// Row-normalised variant: o_i = sum_j w_ij v_j / (sum_j w_ij + 1e-8).
    pub normalize: bool,
}

impl SigmoidOptions {
    /// The bias value for `kv_len` keys (infinite explicit values clamped to +-1e30, which
    /// gives the same weights in f32 and f64).
    pub fn bias_value(&self, kv_len: usize) -> Result<f32> {
        match self.bias {
            SigmoidBias::MinusLogKeys => Ok(-(kv_len.max(1) as f32).ln()),
            SigmoidBias::Value(b) if b.is_nan() => {
                Err(Error::InvalidOption("sigmoid bias is NaN".into()))
            }
            SigmoidBias::Value(b) => Ok(b.clamp(-1e30, 1e30)),
        }
    }
}

pub(crate) fn setup(o: &SigmoidOptions, s: &Shape) -> Result<KindSetup> {
    let mut flags = if o.causal { FLAG_CAUSAL } else { 0 };
    if o.normalize {
        flags |= FLAG_NORMALIZE;
    }
    Ok(KindSetup {
        kind: KindId::Sigmoid,
        flags,
        bias: o.bias_value(s.kv_len)?,
        self_excl: 0,
        sinks: None,
        aux: AuxOut::None,
    })
}

fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// Dense weights A_ij = sigmoid(z_ij + b) on S(i) (row-normalised when asked).
pub(crate) fn weights(x: &Inputs, o: &SigmoidOptions) -> Result<Vec<f64>> {
    let s = &x.s;
    let b = o.bias_value(s.kv_len)? as f64;
    let mut a = vec![0.0; x.units() * s.q_len * s.kv_len];
    for u in 0..x.units() {
        for i in 0..s.q_len {
            let row = &mut a[(u * s.q_len + i) * s.kv_len..][..s.kv_len];
            for (j, w) in row.iter_mut().enumerate() {
                if x.allowed(i, j, o.causal, false) {
                    *w = sigmoid(x.logit(u, i, j) + b);
                }
            }
            if o.normalize {
                let sum: f64 = row.iter().sum();
                row.iter_mut().for_each(|w| *w /= sum + 1e-8);
            }
        }
    }
    Ok(a)
}
