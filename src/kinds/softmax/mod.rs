//! Softmax attention (SPEC.md section 1): options, GPU set-up and f64 reference.
//! Kernels: `shaders/softmax/forward.wgsl` (o and lse), `shaders/softmax/weights.wgsl` (A).

use std::sync::Arc;

use num_traits::Float;
use serde::{Deserialize, Serialize};

use crate::attention::Attention;
use crate::contract::{FLAG_CAUSAL, FLAG_SINK};
use crate::error::Result;
use crate::kinds::entry::KindEntry;
use crate::kinds::kind::{
    check_per_head, kind_boilerplate, parse_strict, AttentionKind, AuxOut, KindSetup, RefParts,
};
use crate::pass::PassId;
use crate::reference::math::{c, widen, Inputs, Precision};
use crate::shape::Shape;

/// Options of softmax attention.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct SoftmaxOptions {
    /// Causal mask, bottom-right aligned.
    pub causal: bool,
    /// Optional per-query-head sink logit `s_h` (length Hq): enters the denominator only.
    #[cfg_attr(target_arch = "wasm32", tsify(type = "number[] | Float32Array | null"))]
    pub sinks: Option<Vec<f32>>,
}

impl AttentionKind for SoftmaxOptions {
    fn name(&self) -> &'static str {
        ENTRY.name
    }

    fn shader(&self, pass: PassId) -> Option<&'static str> {
        Some(match pass {
            PassId::Forward => include_str!("../../../shaders/softmax/forward.wgsl"),
            PassId::Weights => include_str!("../../../shaders/softmax/weights.wgsl"),
            PassId::DecodePartial => concat!(
                include_str!("../../../shaders/softmax/decode.wgsl"),
                include_str!("../../../shaders/softmax/merge.wgsl")
            ),
            PassId::DecodeMerge => include_str!("../../../shaders/softmax/merge.wgsl"),
        })
    }

    fn forward_coop2(&self) -> Option<&'static str> {
        Some(include_str!("../../../shaders/softmax/forward_coop2.wgsl"))
    }

    fn setup(&self, s: &Shape) -> Result<KindSetup> {
        let mut flags = if self.causal { FLAG_CAUSAL } else { 0 };
        if let Some(sk) = &self.sinks {
            check_per_head("softmax sinks", sk, s)?;
            flags |= FLAG_SINK;
        }
        Ok(KindSetup {
            flags,
            bias: 0.0,
            self_excl: 0,
            sinks: self.sinks.clone(),
            aux: AuxOut::Lse,
        })
    }

    fn reads_value(&self, x: &Inputs, i: usize, j: usize) -> bool {
        x.allowed(i, j, self.causal, false)
    }

    fn reference(&self, x: &Inputs, p: Precision) -> Result<RefParts> {
        Ok(match p {
            Precision::F64 => {
                let (a, l) = weights::<f64>(x, self);
                (a, Some(l))
            }
            Precision::F32 => {
                let (a, l) = weights::<f32>(x, self);
                (widen(a), Some(widen(l)))
            }
        })
    }

    fn with_causal(&self, causal: bool) -> Option<Arc<dyn AttentionKind>> {
        Some(Arc::new(SoftmaxOptions {
            causal,
            ..self.clone()
        }))
    }

    kind_boilerplate!();
}

impl Attention {
    /// Softmax attention, non-causal, no sink.
    pub fn softmax() -> Self {
        Attention::new(SoftmaxOptions::default())
    }

    /// Softmax: per-query-head sink logits `s_h` (length Hq), in the denominator only.
    /// On another kind, the call fails with [`crate::Error::InvalidOption`].
    pub fn sinks(self, sinks: Vec<f32>) -> Self {
        self.edit("sinks", |o: &mut SoftmaxOptions| o.sinks = Some(sinks))
    }
}

/// The registry entry.
pub static ENTRY: KindEntry = KindEntry {
    name: "softmax",
    aliases: &[],
    about: "softmax attention with log-sum-exp output and optional sink logits",
    default: Attention::softmax,
    parse: |v| parse_strict::<SoftmaxOptions>("softmax", v),
    option_sets,
};

fn option_sets(s: &Shape) -> Vec<(String, Attention)> {
    let sinks: Vec<f32> = (0..s.q_heads).map(|h| 0.5 * h as f32 - 1.0).collect();
    let a = Attention::softmax;
    vec![
        ("softmax".into(), a()),
        ("softmax causal".into(), a().causal(true)),
        ("softmax causal window".into(), a().causal(true).window(7)),
        ("softmax window".into(), a().window(5)),
        (
            "softmax causal sink".into(),
            a().causal(true).sinks(sinks.clone()),
        ),
        ("softmax sink".into(), a().sinks(sinks)),
    ]
}

/// Dense weights A_ij = exp(z_ij - lse_i) (zero off S(i)), and lse, in `R`.
fn weights<R: Float>(x: &Inputs, o: &SoftmaxOptions) -> (Vec<R>, Vec<R>) {
    let s = &x.s;
    let mut a = vec![R::zero(); x.units() * s.q_len * s.kv_len];
    let mut lse = vec![R::zero(); x.units() * s.q_len];
    for u in 0..x.units() {
        for i in 0..s.q_len {
            let sink = o.sinks.as_ref().map(|sk| c::<R>(sk[u % s.q_heads] as f64));
            let keys: Vec<usize> = (0..s.kv_len)
                .filter(|&j| x.allowed(i, j, o.causal, false))
                .collect();
            let logits: Vec<R> = keys.iter().map(|&j| x.logit::<R>(u, i, j)).collect();
            let all: Vec<R> = logits.iter().copied().chain(sink).collect();
            let l = if all.is_empty() {
                R::neg_infinity()
            } else if all.iter().any(|z| z.is_nan()) {
                R::nan()
            } else {
                let m = all.iter().copied().fold(R::neg_infinity(), R::max);
                m + all
                    .iter()
                    .fold(R::zero(), |acc, &z| acc + (z - m).exp())
                    .ln()
            };
            lse[u * s.q_len + i] = l;
            if keys.is_empty() {
                continue;
            }
            for (&j, &z) in keys.iter().zip(&logits) {
                a[(u * s.q_len + i) * s.kv_len + j] = (z - l).exp();
            }
        }
    }
    (a, lse)
}
