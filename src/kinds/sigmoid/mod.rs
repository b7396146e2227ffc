//! Sigmoid attention without normalisation (SPEC.md section 2): options, GPU set-up and f64
//! reference. Kernels: `shaders/sigmoid/forward.wgsl`, `shaders/sigmoid/weights.wgsl`.

use std::sync::Arc;

use num_traits::Float;
use serde::{Deserialize, Serialize};

use crate::attention::Attention;
use crate::contract::{FLAG_BIAS_LOG_KEYS, FLAG_CAUSAL, FLAG_NORMALIZE};
use crate::error::{Error, Result};
use crate::kinds::entry::KindEntry;
use crate::kinds::kind::{
    kind_boilerplate, parse_strict, AttentionKind, AuxOut, KindSetup, RefParts,
};
use crate::pass::PassId;
use crate::reference::math::{c, sigmoid, widen, Inputs, Precision};
use crate::shape::Shape;

/// The scalar bias b in sigmoid(z + b).
///
/// In JSON (CLI, JS): a number, or the string `"minus-log-n"`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[cfg_attr(
    target_arch = "wasm32",
    derive(tsify::Tsify),
    tsify(type = "number | \"minus-log-n\"")
)]
pub enum SigmoidBias {
    /// `b = -ln(n)` with `n` = Tk of the call, the number of keys (Apple's FlashSigmoid
    /// recipe). Default. Under decoding Tk grows, so a model trained with `-ln(T_train)` must
    /// pass that value explicitly (SPEC.md section 2).
    #[default]
    MinusLogKeys,
    /// An explicit value (the attention-sink paper uses 0). `-inf` is allowed and gives o = 0;
    /// `+inf` gives weight 1 to every allowed key; NaN is refused.
    Value(f32),
}

impl SigmoidBias {
    /// Parses a number or `minus-log-n`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "minus-log-n" | "-ln n" | "-log n" => Some(SigmoidBias::MinusLogKeys),
            x => x.parse().ok().map(SigmoidBias::Value),
        }
    }
}

impl Serialize for SigmoidBias {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            SigmoidBias::MinusLogKeys => s.serialize_str("minus-log-n"),
            SigmoidBias::Value(b) => s.serialize_f32(*b),
        }
    }
}

impl<'de> Deserialize<'de> for SigmoidBias {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f32),
            Name(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(b) => Ok(SigmoidBias::Value(b)),
            Raw::Name(n) => SigmoidBias::parse(&n).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "sigmoid bias '{n}' is neither a number nor \"minus-log-n\""
                ))
            }),
        }
    }
}

/// Options of sigmoid attention.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
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

impl AttentionKind for SigmoidOptions {
    fn name(&self) -> &'static str {
        ENTRY.name
    }

    fn shader(&self, pass: PassId) -> Option<&'static str> {
        Some(match pass {
            PassId::Forward => include_str!("../../../shaders/sigmoid/forward.wgsl"),
            PassId::Weights => include_str!("../../../shaders/sigmoid/weights.wgsl"),
            PassId::DecodePartial => concat!(
                include_str!("../../../shaders/sigmoid/decode.wgsl"),
                include_str!("../../../shaders/sigmoid/merge.wgsl")
            ),
            PassId::DecodeMerge => include_str!("../../../shaders/sigmoid/merge.wgsl"),
        })
    }

    fn forward_coop2(&self) -> Option<&'static str> {
        Some(include_str!("../../../shaders/sigmoid/forward_coop2.wgsl"))
    }

    // Normalised: with a negative bias every weight of a row can lie below f16's smallest
    // subnormal (o = 0 on the tensor cores) while o, divided by their sum, is of the size of v
    // (tests/gpu/f16.rs, f16_tiny_weights_keep_precision; failed on the H200 under the
    // automatic variant). Unnormalised, such an o is itself below f16's range.
    fn coop_weights_fit_f16(&self) -> bool {
        !self.normalize
    }

    fn setup(&self, s: &Shape) -> Result<KindSetup> {
        let mut flags = if self.causal { FLAG_CAUSAL } else { 0 };
        if self.normalize {
            flags |= FLAG_NORMALIZE;
        }
        if self.bias == SigmoidBias::MinusLogKeys {
            flags |= FLAG_BIAS_LOG_KEYS;
        }
        Ok(KindSetup {
            flags,
            bias: self.bias_value(s.kv_len)?,
            self_excl: 0,
            sinks: None,
            aux: AuxOut::None,
        })
    }

    fn reads_value(&self, x: &Inputs, i: usize, j: usize) -> bool {
        x.allowed(i, j, self.causal, false)
    }

    fn reference(&self, x: &Inputs, p: Precision) -> Result<RefParts> {
        Ok(match p {
            Precision::F64 => (weights::<f64>(x, self)?, None),
            Precision::F32 => (widen(weights::<f32>(x, self)?), None),
        })
    }

    fn with_causal(&self, causal: bool) -> Option<Arc<dyn AttentionKind>> {
        Some(Arc::new(SigmoidOptions {
            causal,
            ..self.clone()
        }))
    }

    kind_boilerplate!();
}

impl Attention {
    /// Sigmoid attention, non-causal, bias -ln(Tk), not normalised.
    pub fn sigmoid() -> Self {
        Attention::new(SigmoidOptions::default())
    }

    /// Sigmoid: the bias b. On another kind, the call fails with
    /// [`crate::Error::InvalidOption`].
    pub fn bias(self, bias: SigmoidBias) -> Self {
        self.edit("bias", |o: &mut SigmoidOptions| o.bias = bias)
    }

    /// Sigmoid: the row-normalised variant. On another kind, the call fails with
    /// [`crate::Error::InvalidOption`].
    pub fn normalize(self, normalize: bool) -> Self {
        self.edit("normalize", |o: &mut SigmoidOptions| {
            o.normalize = normalize
        })
    }
}

/// The registry entry.
pub static ENTRY: KindEntry = KindEntry {
    name: "sigmoid",
    aliases: &[],
    about: "sigmoid attention without normalisation (FlashSigmoid), bias -ln n or explicit",
    default: Attention::sigmoid,
    parse: |v| parse_strict::<SigmoidOptions>("sigmoid", v),
    option_sets,
};

fn option_sets(_s: &Shape) -> Vec<(String, Attention)> {
    let a = Attention::sigmoid;
    vec![
        ("sigmoid -ln n".into(), a()),
        (
            "sigmoid causal b=0".into(),
            a().causal(true).bias(SigmoidBias::Value(0.0)),
        ),
        (
            "sigmoid causal normalized".into(),
            a().causal(true)
                .bias(SigmoidBias::Value(0.3))
                .normalize(true),
        ),
        ("sigmoid causal window".into(), a().causal(true).window(6)),
    ]
}

/// Dense weights A_ij = sigmoid(z_ij + b) on S(i) (row-normalised when asked), in `R`.
fn weights<R: Float>(x: &Inputs, o: &SigmoidOptions) -> Result<Vec<R>> {
    let s = &x.s;
    let b = c::<R>(o.bias_value(s.kv_len)? as f64);
    let mut a = vec![R::zero(); x.units() * s.q_len * s.kv_len];
    for u in 0..x.units() {
        for i in 0..s.q_len {
            let row = &mut a[(u * s.q_len + i) * s.kv_len..][..s.kv_len];
            for (j, w) in row.iter_mut().enumerate() {
                if x.allowed(i, j, o.causal, false) {
                    *w = sigmoid(x.logit::<R>(u, i, j) + b);
                }
            }
            if o.normalize {
                let sum = row.iter().fold(R::zero(), |acc, &w| acc + w);
                let d = sum + c(1e-8);
                row.iter_mut().for_each(|w| *w = *w / d);
            }
        }
    }
    Ok(a)
}
