//! The f64 CPU reference of a whole model (docs/lm.md), with webattn's f64 attention
//! reference ([`crate::reference::reference`]) for the attention of every layer. Slow and
//! plain on purpose: it recomputes the whole sequence for every call.

use super::config::Config;
use super::error::LmResult;
use super::weights::{widen, HostWeights};
use crate::reference::reference;
use crate::shape::Shape;

struct Layer {
    attn_norm: Vec<f64>,
    wq: Vec<f64>,
    wk: Vec<f64>,
    wv: Vec<f64>,
    wo: Vec<f64>,
    mlp_norm: Vec<f64>,
    w1: Vec<f64>,
    w2: Vec<f64>,
}

/// A model in f64 on the CPU.
pub struct Reference {
    c: Config,
    tok_emb: Vec<f64>,
    layers: Vec<Layer>,
    norm: Vec<f64>,
}

impl std::fmt::Debug for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reference")
            .field("model", &self.c.name)
            .finish()
    }
}

/// `y = x W^T` for x [t, k] and W [n, k].
fn linear(x: &[f64], w: &[f64], k: usize) -> Vec<f64> {
    let n = w.len() / k;
    let mut y = Vec::with_capacity(x.len() / k * n);
    for row in x.chunks_exact(k) {
        for wr in w.chunks_exact(k) {
            y.push(row.iter().zip(wr).map(|(a, b)| a * b).sum());
        }
    }
    y
}

fn rmsnorm(x: &[f64], g: &[f64], eps: f64) -> Vec<f64> {
    let d = g.len();
    let mut y = Vec::with_capacity(x.len());
    for row in x.chunks_exact(d) {
        let ms = row.iter().map(|v| v * v).sum::<f64>() / d as f64;
        let inv = 1.0 / (ms + eps).sqrt();
        y.extend(row.iter().zip(g).map(|(v, w)| v * inv * w));
    }
    y
}

/// `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`.
pub fn gelu_tanh(x: f64) -> f64 {
    let u = (2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x);
    0.5 * x * (1.0 + u.tanh())
}

/// (cos, sin) of RoPE angle for position `pos` and dim `d < hd / 2`.
pub fn rope_angle(base: f64, hd: usize, pos: usize, d: usize) -> (f64, f64) {
    let f = base.powf(-2.0 * d as f64 / hd as f64);
    let a = pos as f64 * f;
    (a.cos(), a.sin())
}

impl Reference {
    /// The reference of `config` with `weights` (f16 values, widened exactly).
    pub fn new(config: &Config, weights: &HostWeights) -> Self {
        let layers = weights
            .layers
            .iter()
            .map(|l| Layer {
                attn_norm: widen(&l.attn_norm),
                wq: widen(&l.wq),
                wk: widen(&l.wk),
                wv: widen(&l.wv),
                wo: widen(&l.wo),
                mlp_norm: widen(&l.mlp_norm),
                w1: widen(&l.w1),
                w2: widen(&l.w2),
            })
            .collect();
        Reference {
            c: config.clone(),
            tok_emb: widen(&weights.tok_emb),
            layers,
            norm: widen(&weights.norm),
        }
    }

    /// Head-major columns [t, heads * hd] to [heads, t, hd] as f32 (the attention reference's
    /// input type), with RoPE applied when the model has it.
    fn heads(&self, x: &[f64], t: usize, heads: usize) -> Vec<f32> {
        let hd = self.c.head_dim;
        let half = hd / 2;
        let mut out = vec![0f32; t * heads * hd];
        for pos in 0..t {
            for h in 0..heads {
                let src = &x[(pos * heads + h) * hd..][..hd];
                let dst = &mut out[(h * t + pos) * hd..][..hd];
                match self.c.rope {
                    Some(r) => {
                        for d in 0..half {
                            let (c, s) = rope_angle(r.base, hd, pos, d);
                            dst[d] = (src[d] * c - src[d + half] * s) as f32;
                            dst[d + half] = (src[d + half] * c + src[d] * s) as f32;
                        }
                    }
                    None => dst.iter_mut().zip(src).for_each(|(o, &v)| *o = v as f32),
                }
            }
        }
        out
    }

    /// Logits [T, vocab] at every position of `tokens` (T >= 1).
    pub fn logits(&self, tokens: &[u8]) -> LmResult<Vec<Vec<f64>>> {
        let c = &self.c;
        let (t, d, hd) = (tokens.len(), c.d_model, c.head_dim);
        let mut x: Vec<f64> = tokens
            .iter()
            .flat_map(|&b| self.tok_emb[b as usize * d..][..d].iter().copied())
            .collect();
        let shape = Shape::gqa(1, c.n_head, c.n_kv_head, t, hd);
        for l in &self.layers {
            let h = rmsnorm(&x, &l.attn_norm, c.norm_eps);
            let q = self.heads(&linear(&h, &l.wq, d), t, c.n_head);
            let k = self.heads(&linear(&h, &l.wk, d), t, c.n_kv_head);
            let v0 = linear(&h, &l.wv, d);
            let mut v = vec![0f32; v0.len()];
            for pos in 0..t {
                for hh in 0..c.n_kv_head {
                    for dd in 0..hd {
                        v[(hh * t + pos) * hd + dd] = v0[(pos * c.n_kv_head + hh) * hd + dd] as f32;
                    }
                }
            }
            let o = reference(&c.attention, &shape, &q, &k, &v)?.o;
            let mut cat = vec![0f64; t * c.n_head * hd];
            for hh in 0..c.n_head {
                for pos in 0..t {
                    for dd in 0..hd {
                        cat[(pos * c.n_head + hh) * hd + dd] = o[(hh * t + pos) * hd + dd];
                    }
                }
            }
            let y = linear(&cat, &l.wo, c.n_head * hd);
            x.iter_mut().zip(&y).for_each(|(a, b)| *a += b);
            let h = rmsnorm(&x, &l.mlp_norm, c.norm_eps);
            let f: Vec<f64> = linear(&h, &l.w1, d).into_iter().map(gelu_tanh).collect();
            let y = linear(&f, &l.w2, c.d_ff);
            x.iter_mut().zip(&y).for_each(|(a, b)| *a += b);
        }
        let h = rmsnorm(&x, &self.norm, c.norm_eps);
        Ok(linear(&h, &self.tok_emb, d)
            .chunks_exact(c.vocab)
            .map(<[f64]>::to_vec)
            .collect())
    }

    /// Logits [vocab] at the last position of `tokens`.
    pub fn last_logits(&self, tokens: &[u8]) -> LmResult<Vec<f64>> {
        Ok(self.logits(tokens)?.pop().unwrap_or_default())
    }

    /// Greedy decoding: `steps` tokens after `prompt`, with the top-1 minus top-2 margin of
    /// each step's logits.
    pub fn greedy(&self, prompt: &[u8], steps: usize) -> LmResult<(Vec<u8>, Vec<f64>)> {
        let mut seq = prompt.to_vec();
        let (mut toks, mut margins) = (Vec::new(), Vec::new());
        for _ in 0..steps {
            let l = self.last_logits(&seq)?;
            let (best, margin) = top2(&l);
            toks.push(best as u8);
            margins.push(margin);
            seq.push(best as u8);
        }
        Ok((toks, margins))
    }
}

/// The arg max (lowest index on ties) and the top-1 minus top-2 margin.
pub fn top2(logits: &[f64]) -> (usize, f64) {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    let second = logits
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != best)
        .map(|(_, &v)| v)
        .fold(f64::NEG_INFINITY, f64::max);
    (best, logits[best] - second)
}
