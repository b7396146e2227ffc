//! `config.json` of a model (docs/lm.md): strict parsing into [`Config`], with the attention
//! object read by [`Attention::from_json`].

use serde::Deserialize;

use super::error::{LmError, LmResult};
use crate::attention::Attention;

/// RoPE settings (rotate-half form).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RopeConfig {
    /// Frequency base (10000 in the shipped models).
    pub base: f64,
}

/// The JSON as docs/lm.md writes it; unknown keys are errors, `training` is ignored.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: String,
    vocab: usize,
    d_model: usize,
    n_layer: usize,
    n_head: usize,
    n_kv_head: usize,
    head_dim: usize,
    d_ff: usize,
    norm_eps: f64,
    rope: Option<RopeConfig>,
    context: usize,
    attention: serde_json::Value,
    #[serde(default)]
    #[allow(dead_code)]
    training: serde_json::Value,
}

/// A model's configuration (docs/lm.md), checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// Model name.
    pub name: String,
    /// Vocabulary (256: bytes).
    pub vocab: usize,
    /// Width.
    pub d_model: usize,
    /// Blocks.
    pub n_layer: usize,
    /// Query heads.
    pub n_head: usize,
    /// Key/value heads (GQA).
    pub n_kv_head: usize,
    /// Head dim.
    pub head_dim: usize,
    /// MLP hidden width.
    pub d_ff: usize,
    /// RMSNorm epsilon.
    pub norm_eps: f64,
    /// RoPE, if the model uses it.
    pub rope: Option<RopeConfig>,
    /// Training context length (informative; a session's capacity may differ).
    pub context: usize,
    /// The attention of every layer.
    pub attention: Attention,
    /// The `attention` object as written.
    pub attention_json: serde_json::Value,
}

impl Config {
    /// Parses and checks `config.json` text.
    pub fn from_json(text: &str) -> LmResult<Self> {
        let raw: Raw = serde_json::from_str(text).map_err(|e| LmError::Json(e.to_string()))?;
        let attention = Attention::from_json(raw.attention.clone())
            .map_err(|e| LmError::UnknownAttention(e.to_string()))?;
        let c = Config {
            name: raw.name,
            vocab: raw.vocab,
            d_model: raw.d_model,
            n_layer: raw.n_layer,
            n_head: raw.n_head,
            n_kv_head: raw.n_kv_head,
            head_dim: raw.head_dim,
            d_ff: raw.d_ff,
            norm_eps: raw.norm_eps,
            rope: raw.rope,
            context: raw.context,
            attention,
            attention_json: raw.attention,
        };
        c.validate()?;
        Ok(c)
    }

    /// The JSON text of this config (what [`Config::from_json`] reads).
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "name": self.name, "vocab": self.vocab, "d_model": self.d_model,
            "n_layer": self.n_layer, "n_head": self.n_head, "n_kv_head": self.n_kv_head,
            "head_dim": self.head_dim, "d_ff": self.d_ff, "norm_eps": self.norm_eps,
            "rope": self.rope.map(|r| serde_json::json!({"base": r.base})),
            "context": self.context, "attention": self.attention_json,
        })
        .to_string()
    }

    fn validate(&self) -> LmResult<()> {
        let bad = |s: String| Err(LmError::Config(s));
        let sizes = [
            ("vocab", self.vocab),
            ("d_model", self.d_model),
            ("n_layer", self.n_layer),
            ("n_head", self.n_head),
            ("n_kv_head", self.n_kv_head),
            ("head_dim", self.head_dim),
            ("d_ff", self.d_ff),
            ("context", self.context),
        ];
        if let Some((n, _)) = sizes.iter().find(|s| s.1 == 0) {
            return bad(format!("{n} must be at least 1"));
        }
        if self.vocab > 256 {
            return bad(format!(
                "vocab {} exceeds 256 (byte-level models)",
                self.vocab
            ));
        }
        if !self.n_head.is_multiple_of(self.n_kv_head) {
            return bad(format!(
                "n_head {} is not a multiple of n_kv_head {}",
                self.n_head, self.n_kv_head
            ));
        }
        // The matmul kernels stage K in steps of 16; head dims follow the attention kernels.
        for (n, v) in [
            ("d_model", self.d_model),
            ("d_ff", self.d_ff),
            ("n_head * head_dim", self.n_head * self.head_dim),
        ] {
            if !v.is_multiple_of(16) {
                return bad(format!("{n} = {v} must be a multiple of 16"));
            }
        }
        if !self.head_dim.is_multiple_of(4) || self.head_dim > 256 {
            return bad(format!(
                "head_dim {} must be a multiple of 4 up to 256",
                self.head_dim
            ));
        }
        if !(self.norm_eps.is_finite() && self.norm_eps > 0.0) {
            return bad(format!("norm_eps {} must be positive", self.norm_eps));
        }
        if let Some(r) = self.rope {
            if !(r.base.is_finite() && r.base > 1.0) {
                return bad(format!("rope.base {} must be above 1", r.base));
            }
        }
        Ok(())
    }

    /// Every tensor of the model with its shape, in file order (docs/lm.md).
    pub fn tensors(&self) -> Vec<(String, Vec<usize>)> {
        let (d, hq, hkv, ff) = (
            self.d_model,
            self.n_head * self.head_dim,
            self.n_kv_head * self.head_dim,
            self.d_ff,
        );
        let mut v = vec![("tok_emb".to_string(), vec![self.vocab, d])];
        for i in 0..self.n_layer {
            let l = |n: &str| format!("layers.{i}.{n}");
            v.push((l("attn_norm"), vec![d]));
            v.push((l("wq"), vec![hq, d]));
            v.push((l("wk"), vec![hkv, d]));
            v.push((l("wv"), vec![hkv, d]));
            v.push((l("wo"), vec![d, hq]));
            v.push((l("mlp_norm"), vec![d]));
            v.push((l("w1"), vec![ff, d]));
            v.push((l("w2"), vec![d, ff]));
        }
        v.push(("norm".to_string(), vec![d]));
        v
    }
}
