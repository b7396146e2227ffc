//! Stick-breaking attention (SPEC.md section 3, causal only): options, f64 reference and GPU
//! set-up. Kernels: `shaders/stick_breaking/forward.wgsl` (o and rem, walking key tiles from
//! the diagonal down to key 0) and `shaders/stick_breaking/weights.wgsl` (A).

use crate::attention::{AuxOut, KindSetup, FLAG_CAUSAL, FLAG_REM_TO_CURRENT};
use crate::reference::{log_sigmoid, softplus, Inputs};
use crate::shader::KindId;
use crate::Result;

/// What happens to the stick left over after all keys took their share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Remainder {
    /// Keep it out: `o_i = sum_j A_ij v_j` (default).
    #[default]
    Drop,
    /// Give it to the current token: `o_i += rem_i * v_{p_i}` (the released 3B model does this).
    ToCurrent,
}

/// Options of stick-breaking attention (always causal).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StickBreakingOptions {
    /// Let the current token take a share too: V(i) = { j <= p_i } instead of { j < p_i }.
    pub attend_current: bool,
    /// The remainder policy.
    pub remainder: Remainder,
}

pub(crate) fn setup(o: &StickBreakingOptions) -> Result<KindSetup> {
    let mut flags = FLAG_CAUSAL;
    if o.remainder == Remainder::ToCurrent {
        flags |= FLAG_REM_TO_CURRENT;
    }
    Ok(KindSetup {
        kind: KindId::StickBreaking,
        flags,
        bias: 0.0,
        self_excl: u32::from(!o.attend_current),
        sinks: None,
        aux: AuxOut::Rem,
    })
}

/// Dense weights straight from the formula, per (i, j):
/// log A_ij = log sigmoid(z_ij) - sum_{l in V(i), l > j} softplus(z_il), and
/// rem_i = exp(-sum_{l in V(i)} softplus(z_il)). With `Remainder::ToCurrent`,
/// A_{i,p_i} += rem_i. No recurrence is shared between (i, j) pairs.
pub(crate) fn weights(x: &Inputs, o: &StickBreakingOptions) -> (Vec<f64>, Vec<f64>) {
    let s = &x.s;
    let excl = !o.attend_current;
    let mut a = vec![0.0; x.units() * s.q_len * s.kv_len];
    let mut rem = vec![0.0; x.units() * s.q_len];
    for u in 0..x.units() {
        for i in 0..s.q_len {
            let z: Vec<Option<f64>> = (0..s.kv_len)
                .map(|j| x.allowed(i, j, true, excl).then(|| x.logit(u, i, j)))
                .collect();
            let row = &mut a[(u * s.q_len + i) * s.kv_len..][..s.kv_len];
            for j in 0..s.kv_len {
                if let Some(zij) = z[j] {
                    let broken: f64 = z[j + 1..].iter().flatten().map(|&zl| softplus(zl)).sum();
                    row[j] = (log_sigmoid(zij) - broken).exp();
                }
            }
            let r = (-z.iter().flatten().map(|&zl| softplus(zl)).sum::<f64>()).exp();
            rem[u * s.q_len + i] = r;
            let p = x.position(i);
            if o.remainder == Remainder::ToCurrent && p >= 0 && (p as usize) < s.kv_len {
                row[p as usize] += r;
            }
        }
    }
    (a, rem)
}
