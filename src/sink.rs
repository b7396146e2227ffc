//! The attention-sink measure of Gu et al. (ICLR 2025), SPEC.md section 5.
//!
//! For one attention unit (a layer and head, or a sequence of a head) with causal weights
//! `A[i, j]` over `T` tokens, the attention that key `k` (0-based) receives is
//!
//! ```text
//! alpha_k = 1 / (T - k) * sum_{i >= k} A[i, k]
//! ```
//!
//! the mean over the queries that can see it. `Sink_k^eps` is the fraction of units with
//! `alpha_k > eps` (the paper uses `eps = 0.3` and reports percent). For kinds whose rows do
//! not sum to 1 (sigmoid, stick-breaking) the paper first row-normalises,
//! `A[i, j] / (sum_j A[i, j] + 1e-8)`; [`alpha`] does so when asked.
//!
//! ```
//! use webattn::sink;
//! // One unit, T = 2: query 0 sees key 0 only; query 1 splits 0.75 / 0.25.
//! let a = [1.0f32, 0.0, 0.75, 0.25];
//! let alpha = sink::alpha(&a, 1, 2, false).unwrap();
//! assert_eq!(alpha, vec![(1.0 + 0.75) / 2.0, 0.25]);
//! assert_eq!(sink::sink_rate(&alpha, 2, 0, sink::DEFAULT_EPS).unwrap(), 1.0);
//! ```

use crate::error::{Error, Result};

/// The threshold the paper uses for `Sink_1^eps` (0.3).
pub const DEFAULT_EPS: f64 = 0.3;

/// The constant added to row sums before row normalisation (`A / (rowsum + 1e-8)`).
pub const ROW_EPS: f64 = 1e-8;

fn check_dense(len: usize, units: usize, t: usize) -> Result<()> {
    if units == 0 || t == 0 {
        return Err(Error::ShapeMismatch(format!(
            "sink measure needs at least one unit and one token; got {units} units of T = {t}"
        )));
    }
    let need = units.checked_mul(t).and_then(|x| x.checked_mul(t));
    if need != Some(len) {
        return Err(Error::ShapeMismatch(format!(
            "attention weights have {len} elements, {units} units of T x T with T = {t} need {}",
            need.map_or_else(|| "more than usize".to_string(), |n| n.to_string())
        )));
    }
    Ok(())
}

/// Row-normalises dense weights `[units, T, T]` (any leading dims folded into `units`):
/// `A[i, j] / (sum_j A[i, j] + 1e-8)`, as the paper's code does for sigmoid and stick-breaking.
pub fn row_normalize<T: Copy + Into<f64>>(
    weights: &[T],
    units: usize,
    t: usize,
) -> Result<Vec<f64>> {
    check_dense(weights.len(), units, t)?;
    let mut out: Vec<f64> = weights.iter().map(|&w| w.into()).collect();
    for row in out.chunks_exact_mut(t) {
        let sum: f64 = row.iter().sum();
        let d = sum + ROW_EPS;
        row.iter_mut().for_each(|w| *w /= d);
    }
    Ok(out)
}

/// `alpha_k` per unit and key from dense causal weights `[units, T, T]` (for a tensor
/// `[B, H, T, T]`, `units = B * H`): the mean of column `k` over the rows `i >= k`.
/// Returns `[units, T]`. With `normalize`, rows are first normalised as in [`row_normalize`].
/// Entries above the diagonal are ignored (they are 0 for causal weights).
pub fn alpha<T: Copy + Into<f64>>(
    weights: &[T],
    units: usize,
    t: usize,
    normalize: bool,
) -> Result<Vec<f64>> {
    check_dense(weights.len(), units, t)?;
    let dense: Vec<f64> = if normalize {
        row_normalize(weights, units, t)?
    } else {
        weights.iter().map(|&w| w.into()).collect()
    };
    let mut out = vec![0.0f64; units * t];
    for (a, col) in dense.chunks_exact(t * t).zip(out.chunks_exact_mut(t)) {
        for (i, row) in a.chunks_exact(t).enumerate() {
            for (c, &w) in col.iter_mut().zip(row).take(i + 1) {
                *c += w;
            }
        }
        for (k, c) in col.iter_mut().enumerate() {
            *c /= (t - k) as f64;
        }
    }
    Ok(out)
}

/// Averages `alpha` `[batch, heads, T]` over the batch (the paper averages over sequences),
/// giving `[heads, T]`.
pub fn mean_over_batch(alpha: &[f64], batch: usize, heads: usize, t: usize) -> Result<Vec<f64>> {
    let need = batch * heads * t;
    if batch == 0 || heads == 0 || t == 0 || alpha.len() != need {
        return Err(Error::ShapeMismatch(format!(
            "alpha has {} elements, [batch {batch}, heads {heads}, T {t}] needs {need} (all >= 1)",
            alpha.len()
        )));
    }
    let mut out = vec![0.0f64; heads * t];
    for b in alpha.chunks_exact(heads * t) {
        out.iter_mut().zip(b).for_each(|(o, &x)| *o += x);
    }
    out.iter_mut().for_each(|o| *o /= batch as f64);
    Ok(out)
}

/// `Sink_k^eps`: the fraction (0 to 1) of units whose `alpha_k > eps`. `alpha` is
/// `[units, T]` as [`alpha`] returns it.
pub fn sink_rate(alpha: &[f64], t: usize, k: usize, eps: f64) -> Result<f64> {
    if t == 0 || alpha.is_empty() || !alpha.len().is_multiple_of(t) {
        return Err(Error::ShapeMismatch(format!(
            "alpha has {} elements, not a non-zero multiple of T = {t}",
            alpha.len()
        )));
    }
    if k >= t {
        return Err(Error::InvalidOption(format!(
            "sink key {k} is out of range for T = {t}"
        )));
    }
    if !eps.is_finite() {
        return Err(Error::InvalidOption(format!("eps {eps} is not finite")));
    }
    let units = alpha.len() / t;
    let hits = alpha.chunks_exact(t).filter(|a| a[k] > eps).count();
    Ok(hits as f64 / units as f64)
}

/// `Sink_k^eps` for every key `k`: `[T]` fractions (0 to 1).
pub fn sink_rates(alpha: &[f64], t: usize, eps: f64) -> Result<Vec<f64>> {
    (0..t).map(|k| sink_rate(alpha, t, k, eps)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Uniform causal softmax weights: row i spreads 1 over keys 0..=i.
    fn uniform_causal(t: usize) -> Vec<f64> {
        let mut a = vec![0.0; t * t];
        for i in 0..t {
            for j in 0..=i {
                a[i * t + j] = 1.0 / (i + 1) as f64;
            }
        }
        a
    }

    #[test]
    fn alpha_of_uniform_causal_rows() {
        let t = 5;
        let al = alpha(&uniform_causal(t), 1, t, false).unwrap();
        for (k, &x) in al.iter().enumerate() {
            let want: f64 = (k..t).map(|i| 1.0 / (i + 1) as f64).sum::<f64>() / (t - k) as f64;
            assert!((x - want).abs() < 1e-15, "k={k}: {x} vs {want}");
        }
    }

    #[test]
    fn a_perfect_sink_and_a_diagonal() {
        let t = 8;
        let mut a = vec![0.0f32; 2 * t * t];
        // Unit 0 puts everything on key 0; unit 1 on the diagonal.
        for i in 0..t {
            a[i * t] = 1.0;
            a[t * t + i * t + i] = 1.0;
        }
        let al = alpha(&a, 2, t, false).unwrap();
        assert_eq!(al[0], 1.0);
        assert!(al[1..t].iter().all(|&x| x == 0.0));
        for k in 0..t {
            assert_eq!(al[t + k], 1.0 / (t - k) as f64);
        }
        // Key 0: only the sink unit has alpha_0 > 0.3 (the diagonal unit has 1/8).
        assert_eq!(sink_rate(&al, t, 0, DEFAULT_EPS).unwrap(), 0.5);
        assert_eq!(sink_rate(&al, t, 0, 0.1).unwrap(), 1.0);
        // Keys 5, 6, 7: the diagonal unit's alpha_k = 1 / (T - k) is 1/3, 1/2, 1 > 0.3.
        let rates = sink_rates(&al, t, DEFAULT_EPS).unwrap();
        assert_eq!(rates, vec![0.5, 0.0, 0.0, 0.0, 0.0, 0.5, 0.5, 0.5]);
    }

    #[test]
    fn row_normalisation_rescales_rows() {
        // Rows summing to 0.5 become rows summing to ~1; an all-zero row stays 0 (no NaN).
        let t = 3;
        let a = [0.5, 0.0, 0.0, 0.25, 0.25, 0.0, 0.0, 0.0, 0.0];
        let n = row_normalize(&a, 1, t).unwrap();
        assert!((n[0] - 1.0).abs() < 1e-7);
        assert!((n[3] - 0.5).abs() < 1e-7 && (n[4] - 0.5).abs() < 1e-7);
        assert!(n[6..].iter().all(|&x| x == 0.0));
        let raw = alpha(&a, 1, t, false).unwrap();
        let norm = alpha(&a, 1, t, true).unwrap();
        assert!((raw[0] - 0.75 / 3.0).abs() < 1e-15);
        assert!((norm[0] - (1.0 + 0.5) / 3.0).abs() < 1e-7);
    }

    #[test]
    fn entries_above_the_diagonal_are_ignored() {
        let t = 2;
        let a = [0.5f32, 0.5, 0.5, 0.5];
        let al = alpha(&a, 1, t, false).unwrap();
        assert_eq!(al, vec![0.5, 0.5]);
    }

    #[test]
    fn batch_mean() {
        let al = [1.0, 0.0, 0.2, 0.4, 0.0, 1.0, 0.4, 0.0];
        // batch 2, heads 2, T 2
        let m = mean_over_batch(&al, 2, 2, 2).unwrap();
        let want = [0.5, 0.5, 0.3, 0.2];
        assert!(
            m.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-15),
            "{m:?}"
        );
    }

    #[test]
    fn bad_shapes_are_errors() {
        assert!(matches!(
            alpha(&[0.0f64; 5], 1, 2, false),
            Err(Error::ShapeMismatch(_))
        ));
        assert!(matches!(
            alpha(&[0.0f64; 0], 0, 2, false),
            Err(Error::ShapeMismatch(_))
        ));
        assert!(matches!(
            sink_rate(&[0.0; 4], 2, 2, 0.3),
            Err(Error::InvalidOption(_))
        ));
        assert!(matches!(
            sink_rate(&[0.0; 3], 2, 0, 0.3),
            Err(Error::ShapeMismatch(_))
        ));
        assert!(matches!(
            mean_over_batch(&[0.0; 3], 2, 1, 2),
            Err(Error::ShapeMismatch(_))
        ));
        let e = alpha(&[0.0f32; 7], 2, 2, false).unwrap_err().to_string();
        assert!(e.starts_with("shape mismatch:"), "{e}");
    }
}
