//! Stick-breaking attention (SPEC.md section 3, causal only): options, GPU set-up and f64
//! reference. Kernels: `shaders/stick_breaking/forward.wgsl` (o and rem, walking key tiles from
//! the diagonal down to key 0) and `shaders/stick_breaking/weights.wgsl` (A).

use num_traits::Float;
use serde::{Deserialize, Serialize};

use crate::attention::Attention;
use crate::contract::{FLAG_CAUSAL, FLAG_REM_TO_CURRENT};
use crate::error::Result;
use crate::kinds::entry::KindEntry;
use crate::kinds::kind::{
    kind_boilerplate, parse_strict, AttentionKind, AuxOut, KindSetup, RefParts,
};
use crate::pass::PassId;
use crate::reference::math::{log_sigmoid, pairwise, softplus, widen, Inputs, Precision, SumOrder};
use crate::shape::Shape;

/// What happens to the stick left over after all keys took their share.
///
/// In JSON (CLI, JS): `"drop"` or `"to-current"` (also `"current"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
#[serde(rename_all = "kebab-case")]
pub enum Remainder {
    /// Keep it out: `o_i = sum_j A_ij v_j` (default).
    #[default]
    Drop,
    /// Give it to the current token: `o_i += rem_i * v_{p_i}` (the released 3B model does this).
    #[serde(alias = "current")]
    ToCurrent,
}

/// Options of stick-breaking attention (always causal).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct StickBreakingOptions {
    /// Let the current token take a share too: V(i) = { j <= p_i } instead of { j < p_i }.
    pub attend_current: bool,
    /// The remainder policy.
    pub remainder: Remainder,
}

impl AttentionKind for StickBreakingOptions {
    fn name(&self) -> &'static str {
        ENTRY.name
    }

    fn shader(&self, pass: PassId) -> Option<&'static str> {
        Some(match pass {
            PassId::Forward => include_str!("../../../shaders/stick_breaking/forward.wgsl"),
            PassId::Weights => include_str!("../../../shaders/stick_breaking/weights.wgsl"),
            PassId::DecodePartial => concat!(
                include_str!("../../../shaders/stick_breaking/decode.wgsl"),
                include_str!("../../../shaders/stick_breaking/merge.wgsl")
            ),
            PassId::DecodeMerge => include_str!("../../../shaders/stick_breaking/merge.wgsl"),
        })
    }

    fn forward_coop2(&self) -> Option<&'static str> {
        Some(include_str!(
            "../../../shaders/stick_breaking/forward_coop2.wgsl"
        ))
    }

    // The subgroup decode kernel (no workgroup barrier in the key loop), taken where
    // `ContextOptions::decode_variant` forces it. It measured faster than the portable one for
    // stick-breaking on the H100 (docs/perf.md change D3); since change D4 the portable
    // kernel is faster on the H200 and is the automatic choice.
    fn decode_subgroup(&self) -> Option<&'static str> {
        Some(concat!(
            include_str!("../../../shaders/stick_breaking/decode_sg.wgsl"),
            include_str!("../../../shaders/stick_breaking/merge.wgsl")
        ))
    }

    fn setup(&self, _s: &Shape) -> Result<KindSetup> {
        let mut flags = FLAG_CAUSAL;
        if self.remainder == Remainder::ToCurrent {
            flags |= FLAG_REM_TO_CURRENT;
        }
        Ok(KindSetup {
            flags,
            bias: 0.0,
            self_excl: u32::from(!self.attend_current),
            sinks: None,
            aux: AuxOut::Rem,
        })
    }

    fn reads_value(&self, x: &Inputs, i: usize, j: usize) -> bool {
        x.allowed(i, j, true, !self.attend_current)
            || (self.remainder == Remainder::ToCurrent && x.position(i) == j as i64)
    }

    fn reference(&self, x: &Inputs, p: Precision) -> Result<RefParts> {
        Ok(match p {
            Precision::F64 => {
                let (a, r) = weights::<f64>(x, self);
                (a, Some(r))
            }
            Precision::F32 => {
                let (a, r) = weights::<f32>(x, self);
                (widen(a), Some(widen(r)))
            }
        })
    }

    kind_boilerplate!();
}

impl Attention {
    /// Stick-breaking attention: current token excluded, remainder dropped.
    pub fn stick_breaking() -> Self {
        Attention::new(StickBreakingOptions::default())
    }

    /// Stick-breaking: let the current token take a share too. On another kind, the call
    /// fails with [`crate::Error::InvalidOption`].
    pub fn attend_current(self, on: bool) -> Self {
        self.edit("attend_current", |o: &mut StickBreakingOptions| {
            o.attend_current = on
        })
    }

    /// Stick-breaking: the remainder policy. On another kind, the call fails with
    /// [`crate::Error::InvalidOption`].
    pub fn remainder(self, policy: Remainder) -> Self {
        self.edit("remainder", |o: &mut StickBreakingOptions| {
            o.remainder = policy
        })
    }
}

/// The registry entry.
pub static ENTRY: KindEntry = KindEntry {
    name: "stick-breaking",
    aliases: &["stick_breaking", "sb"],
    about: "stick-breaking attention (Tan et al. 2025), causal, o and the remaining stick",
    default: Attention::stick_breaking,
    parse: |v| parse_strict::<StickBreakingOptions>("stick-breaking", v),
    option_sets,
};

fn option_sets(_s: &Shape) -> Vec<(String, Attention)> {
    let a = Attention::stick_breaking;
    vec![
        ("stick-breaking".into(), a()),
        (
            "stick-breaking attend_current".into(),
            a().attend_current(true),
        ),
        (
            "stick-breaking rem->current".into(),
            a().remainder(Remainder::ToCurrent),
        ),
        ("stick-breaking window".into(), a().window(9)),
    ]
}

/// Dense weights straight from the formula, per (i, j), in `R`:
/// log A_ij = log sigmoid(z_ij) - sum_{l in V(i), l > j} softplus(z_il), and
/// rem_i = exp(-sum_{l in V(i)} softplus(z_il)). With `Remainder::ToCurrent`,
/// A_{i,p_i} += rem_i. The sum of softplus over the keys right of j is accumulated right to
/// left along the row.
fn weights<R: Float>(x: &Inputs, o: &StickBreakingOptions) -> (Vec<R>, Vec<R>) {
    let s = &x.s;
    let excl = !o.attend_current;
    let mut a = vec![R::zero(); x.units() * s.q_len * s.kv_len];
    let mut rem = vec![R::zero(); x.units() * s.q_len];
    for u in 0..x.units() {
        for i in 0..s.q_len {
            let z: Vec<Option<R>> = (0..s.kv_len)
                .map(|j| x.allowed(i, j, true, excl).then(|| x.logit::<R>(u, i, j)))
                .collect();
            let row = &mut a[(u * s.q_len + i) * s.kv_len..][..s.kv_len];
            // Suffix sums of softplus over the allowed keys right of j.
            let mut broken = R::zero();
            for j in (0..s.kv_len).rev() {
                if let Some(zij) = z[j] {
                    row[j] = (log_sigmoid(zij) - broken).exp();
                    broken = broken + softplus(zij);
                }
            }
            // rem sums the same softplus terms; in f32 the order of that sum sets its rounding,
            // so the floor's summation order applies here too (`Inputs::order`).
            let total = match x.order {
                SumOrder::Sequential | SumOrder::Vec4 => broken,
                SumOrder::Reversed => z
                    .iter()
                    .flatten()
                    .fold(R::zero(), |a, &zl| a + softplus(zl)),
                SumOrder::Pairwise => pairwise(
                    &z.iter()
                        .flatten()
                        .map(|&zl| softplus(zl))
                        .collect::<Vec<R>>(),
                ),
            };
            let r = (-total).exp();
            rem[u * s.q_len + i] = r;
            let p = x.position(i);
            if o.remainder == Remainder::ToCurrent && p >= 0 && (p as usize) < s.kv_len {
                row[p as usize] = row[p as usize] + r;
            }
        }
    }
    (a, rem)
}
