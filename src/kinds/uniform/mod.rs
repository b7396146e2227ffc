//! A test-only toy kind, "uniform attention": weights 1/n over the allowed keys. It is
//! registered under `#[cfg(test)]` (one line in `kinds::REGISTRY`) and runs through the same
//! option matrix, references and GPU checks as the real kinds, which shows that a kind is one
//! folder here, one folder of shaders (`shaders/uniform/`) and one registration line.

use std::sync::Arc;

use num_traits::Float;
use serde::{Deserialize, Serialize};

use crate::attention::Attention;
use crate::contract::FLAG_CAUSAL;
use crate::error::Result;
use crate::kinds::entry::KindEntry;
use crate::kinds::kind::{
    kind_boilerplate, parse_strict, AttentionKind, AuxOut, KindSetup, RefParts,
};
use crate::pass::PassId;
use crate::reference::math::{widen, Inputs, Precision};
use crate::shape::Shape;

/// Options of uniform attention.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct UniformOptions {
    /// Causal mask, bottom-right aligned.
    pub causal: bool,
}

impl AttentionKind for UniformOptions {
    fn name(&self) -> &'static str {
        ENTRY.name
    }

    fn shader(&self, pass: PassId) -> Option<&'static str> {
        match pass {
            PassId::Forward => Some(include_str!("../../../shaders/uniform/forward.wgsl")),
            PassId::Weights => Some(include_str!("../../../shaders/uniform/weights.wgsl")),
            // No decode passes: a kind may leave passes out.
            PassId::DecodePartial | PassId::DecodeMerge => None,
        }
    }

    fn setup(&self, _s: &Shape) -> Result<KindSetup> {
        Ok(KindSetup {
            flags: if self.causal { FLAG_CAUSAL } else { 0 },
            bias: 0.0,
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
            Precision::F64 => (weights::<f64>(x, self), None),
            Precision::F32 => (widen(weights::<f32>(x, self)), None),
        })
    }

    fn with_causal(&self, causal: bool) -> Option<Arc<dyn AttentionKind>> {
        Some(Arc::new(UniformOptions { causal }))
    }

    kind_boilerplate!();
}

/// The registry entry.
pub static ENTRY: KindEntry = KindEntry {
    name: "uniform",
    aliases: &[],
    about: "test-only: weights 1/n over the allowed keys",
    default: || Attention::new(UniformOptions::default()),
    parse: |v| parse_strict::<UniformOptions>("uniform", v),
    option_sets: |_s| {
        let a = || Attention::new(UniformOptions::default());
        vec![
            ("uniform".into(), a()),
            ("uniform causal window".into(), a().causal(true).window(5)),
        ]
    },
};

fn weights<R: Float>(x: &Inputs, o: &UniformOptions) -> Vec<R> {
    let s = &x.s;
    let mut a = vec![R::zero(); x.units() * s.q_len * s.kv_len];
    for u in 0..x.units() {
        for i in 0..s.q_len {
            let keys: Vec<usize> = (0..s.kv_len)
                .filter(|&j| x.allowed(i, j, o.causal, false))
                .collect();
            let w = R::one() / R::from(keys.len().max(1)).unwrap_or_else(R::one);
            for j in keys {
                a[(u * s.q_len + i) * s.kv_len + j] = w;
            }
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use crate::testing::{fresh_seed, judge, option_matrix, Rng};
    use crate::{Context, ContextOptions, DType, Shape};

    /// The toy kind runs through the same matrix, references and verdicts as the real kinds,
    /// on the GPU (lavapipe in CI).
    #[test]
    fn the_toy_kind_runs_through_the_shared_matrix() {
        let ctx = Context::new_blocking(ContextOptions::from_env().expect("env")).expect("GPU");
        let seed = fresh_seed("uniform");
        let mut rng = Rng(seed);
        let mut names = Vec::new();
        for s in [
            Shape::gqa(2, 4, 2, 37, 32),
            Shape::new(1, 1, 1, 16).with_kv_len(70),
        ] {
            let (q, k, v) = rng.qkv(&s);
            for (name, attn) in option_matrix(&s) {
                let got = ctx
                    .attention_f32_blocking(&attn, &s, &q, &k, &v)
                    .expect("runs");
                for verdict in judge(&attn, &s, [&q, &k, &v], &got, DType::F32).expect("judge") {
                    assert!(verdict.ok, "{name} {s:?} seed {seed}: {verdict:?}");
                }
                let a =
                    pollster::block_on(ctx.weights_f32(&attn, &s, &q, &k, &v)).expect("weights");
                let want = crate::reference_weights(&attn, &s, &q, &k, &v).expect("ref");
                let e = crate::testing::compare(&a, &want);
                assert!(
                    e.finite && e.rel < 1e-5,
                    "{name} weights seed {seed}: {e:?}"
                );
                names.push(name);
            }
        }
        assert!(names.iter().any(|n| n.starts_with("uniform")), "{names:?}");
    }
}
