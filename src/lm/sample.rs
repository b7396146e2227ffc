//! Sampling a token from logits on the CPU: greedy, temperature, top-k, seeded.

use crate::testing::Rng;

/// How tokens are drawn from logits.
#[derive(Debug, Clone)]
pub struct Sampler {
    /// 0 (or below): greedy (the arg max, lowest index on ties). Otherwise logits are divided
    /// by it before the softmax.
    pub temperature: f32,
    /// Keep only the `top_k` largest logits (0: all).
    pub top_k: usize,
    rng: Rng,
}

impl Sampler {
    /// Greedy decoding.
    pub fn greedy() -> Self {
        Sampler {
            temperature: 0.0,
            top_k: 0,
            rng: Rng(0),
        }
    }

    /// Sampling at `temperature` from the `top_k` largest logits (0: all), seeded.
    pub fn new(temperature: f32, top_k: usize, seed: u64) -> Self {
        Sampler {
            temperature,
            top_k,
            rng: Rng(seed),
        }
    }

    /// Draws one token from `logits` (one sequence's row).
    pub fn sample(&mut self, logits: &[f32]) -> u8 {
        let argmax = || {
            let mut best = 0;
            for (i, &v) in logits.iter().enumerate() {
                if v > logits[best] || logits[best].is_nan() {
                    best = i;
                }
            }
            best as u8
        };
        if self.temperature <= 0.0 || logits.len() <= 1 {
            return argmax();
        }
        let mut idx: Vec<usize> = (0..logits.len()).collect();
        idx.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
        if self.top_k > 0 {
            idx.truncate(self.top_k);
        }
        let t = f64::from(self.temperature);
        let m = f64::from(logits[idx[0]]);
        let w: Vec<f64> = idx
            .iter()
            .map(|&i| ((f64::from(logits[i]) - m) / t).exp())
            .collect();
        let total: f64 = w.iter().sum();
        if !total.is_finite() || total <= 0.0 {
            return argmax();
        }
        let u = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * total;
        let mut acc = 0.0;
        for (&i, &wi) in idx.iter().zip(&w) {
            acc += wi;
            if u < acc {
                return i as u8;
            }
        }
        idx[idx.len() - 1] as u8
    }
}
