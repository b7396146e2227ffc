//! Shared pieces of the f64 CPU references. Each kind's formula lives in its own module
//! ([`crate::softmax`], [`crate::sigmoid`], [`crate::stick_breaking`]); the public entry
//! points are [`crate::reference()`] and [`crate::reference_weights()`]. They follow SPEC.md
//! literally, with no tiling.

use crate::stick_breaking::Remainder;
use crate::{Kind, Shape};

/// Reference outputs in f64. `o` is [B, Hq, Tq, Dv]; `lse` / `rem` are [B, Hq, Tq].
#[derive(Debug, Clone, PartialEq)]
pub struct RefOutput {
    /// The attention output.
    pub o: Vec<f64>,
    /// Softmax log-sum-exp per row (`-inf` for a row with no key and no sink).
    pub lse: Option<Vec<f64>>,
    /// Stick-breaking remainder per row.
    pub rem: Option<Vec<f64>>,
}

/// Read-only view of the inputs with the index arithmetic of SPEC.md.
pub(crate) struct Inputs<'a> {
    pub s: Shape,
    pub q: &'a [f32],
    pub k: &'a [f32],
    pub v: &'a [f32],
    pub scale: f64,
    pub window: Option<u32>,
}

impl Inputs<'_> {
    /// Scaled logit z_ij for unit u = b * Hq + h.
    pub fn logit(&self, u: usize, i: usize, j: usize) -> f64 {
        let s = &self.s;
        let kv = u / (s.q_heads / s.kv_heads);
        let qr = &self.q[(u * s.q_len + i) * s.head_dim..][..s.head_dim];
        let kr = &self.k[(kv * s.kv_len + j) * s.head_dim..][..s.head_dim];
        self.scale
            * qr.iter()
                .zip(kr)
                .map(|(&a, &b)| a as f64 * b as f64)
                .sum::<f64>()
    }

    /// Value row j of unit u's kv head.
    pub fn value(&self, u: usize, j: usize) -> impl Iterator<Item = f64> + '_ {
        let s = &self.s;
        let kv = u / (s.q_heads / s.kv_heads);
        self.v[(kv * s.kv_len + j) * s.v_dim..][..s.v_dim]
            .iter()
            .map(|&x| x as f64)
    }

    /// Absolute position p_i of query row i (bottom-right alignment).
    pub fn position(&self, i: usize) -> i64 {
        i as i64 + self.s.kv_len as i64 - self.s.q_len as i64
    }

    /// Is key j allowed for row i: causal (with `self_excluded`: strictly before p_i) and window.
    pub fn allowed(&self, i: usize, j: usize, causal: bool, self_excluded: bool) -> bool {
        let p = self.position(i);
        let j = j as i64;
        if causal && (j > p || (self_excluded && j == p)) {
            return false;
        }
        if let Some(w) = self.window {
            if j <= p - w as i64 {
                return false;
            }
        }
        true
    }

    /// Units (b, h) in the problem.
    pub fn units(&self) -> usize {
        self.s.batch * self.s.q_heads
    }

    /// Does row i's output read v_j? Keys in S(i) (or V(i)), plus the current token p_i for
    /// stick-breaking with the remainder given to it.
    pub fn reads_value(&self, kind: &Kind, i: usize, j: usize) -> bool {
        match kind {
            Kind::Softmax(o) => self.allowed(i, j, o.causal, false),
            Kind::Sigmoid(o) => self.allowed(i, j, o.causal, false),
            Kind::StickBreaking(o) => {
                self.allowed(i, j, true, !o.attend_current)
                    || (o.remainder == Remainder::ToCurrent && self.position(i) == j as i64)
            }
        }
    }

    /// Computes o = A v from dense weights `a` [units, Tq, Tk], over the keys whose value row
    /// i reads (`reads(i, j)`): a key the row attends to adds w * v_j even where w is 0 (so a
    /// NaN or Inf in v_j gives NaN, as SPEC.md asks), and any other key adds nothing, whatever
    /// v_j holds.
    pub fn apply(&self, a: &[f64], reads: impl Fn(usize, usize) -> bool) -> Vec<f64> {
        let s = &self.s;
        let mut o = vec![0.0; self.units() * s.q_len * s.v_dim];
        for u in 0..self.units() {
            for i in 0..s.q_len {
                let orow = &mut o[(u * s.q_len + i) * s.v_dim..][..s.v_dim];
                for j in (0..s.kv_len).filter(|&j| reads(i, j)) {
                    let w = a[(u * s.q_len + i) * s.kv_len + j];
                    for (x, vv) in orow.iter_mut().zip(self.value(u, j)) {
                        *x += w * vv;
                    }
                }
            }
        }
        o
    }
}

/// softplus(x) = max(x, 0) + log1p(exp(-|x|)) in f64.
pub(crate) fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// log(sigmoid(x)) = x - softplus(x), computed without cancellation.
pub(crate) fn log_sigmoid(x: f64) -> f64 {
    x.min(0.0) - (-x.abs()).exp().ln_1p()
}
