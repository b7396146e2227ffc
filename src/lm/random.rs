//! Models with random weights, for tests and the CLI's hidden `lm-random-model`: a config of
//! docs/lm.md's three attention settings (full size or small) and safetensors bytes.

use half::f16;
use safetensors::tensor::TensorView;
use safetensors::Dtype;

use super::config::Config;
use super::error::{LmError, LmResult};
use crate::testing::Rng;

/// The `attention` and `rope` of a shipped model by name: `sb-nope`, `softmax-rope` or
/// `sigmoid-rope` (docs/lm.md).
pub fn attention_setting(name: &str) -> Option<(serde_json::Value, Option<f64>)> {
    use serde_json::json;
    Some(match name {
        "sb-nope" => (
            json!({"kind": "stick-breaking", "remainder": "to-current"}),
            None,
        ),
        "softmax-rope" => (json!({"kind": "softmax", "causal": true}), Some(10000.0)),
        "sigmoid-rope" => (
            json!({"kind": "sigmoid", "causal": true, "bias": -6.238324625}),
            Some(10000.0),
        ),
        _ => return None,
    })
}

/// `config.json` text for model `name` (see [`attention_setting`]): docs/lm.md's sizes, or
/// with `small`, a 2-layer model of width 64 (4 heads of 16, 2 kv heads, d_ff 128).
pub fn random_config(name: &str, small: bool) -> LmResult<String> {
    let (attention, rope) = attention_setting(name).ok_or_else(|| {
        LmError::UnknownAttention(format!(
            "no model setting '{name}' (sb-nope, softmax-rope, sigmoid-rope)"
        ))
    })?;
    let (d, layers, hd, ff) = if small {
        (64, 2, 16, 128)
    } else {
        (256, 6, 64, 1024)
    };
    Ok(serde_json::json!({
        "name": name, "vocab": 256, "d_model": d, "n_layer": layers, "n_head": 4,
        "n_kv_head": 2, "head_dim": hd, "d_ff": ff, "norm_eps": 1e-5,
        "rope": rope.map(|b| serde_json::json!({"base": b})), "context": 512,
        "attention": attention,
        "training": {"note": "random weights (webattn::lm::random_weights)"},
    })
    .to_string())
}

/// Random f16 weights for `config` as safetensors bytes: matrices uniform in
/// ±sqrt(3 / fan_in) (unit-variance outputs), norm weights 1 ± 0.25, the embedding ±1.
pub fn random_weights(config: &Config, seed: u64) -> LmResult<Vec<u8>> {
    let mut rng = Rng(seed);
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = config
        .tensors()
        .into_iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            let amp = if name == "tok_emb" {
                1.0
            } else if shape.len() == 2 {
                (3.0 / shape[1] as f32).sqrt()
            } else {
                0.25
            };
            let vals: Vec<f32> = rng.vec(n, amp);
            let vals = if shape.len() == 1 {
                vals.iter().map(|v| 1.0 + v).collect()
            } else {
                vals
            };
            let bytes = vals
                .iter()
                .flat_map(|&v| f16::from_f32(v).to_le_bytes())
                .collect();
            (name, shape, bytes)
        })
        .collect();
    let views = data
        .iter()
        .map(|(n, s, b)| {
            TensorView::new(Dtype::F16, s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| LmError::Safetensors(e.to_string()))
        })
        .collect::<LmResult<Vec<_>>>()?;
    safetensors::serialize(views, None).map_err(|e| LmError::Safetensors(e.to_string()))
}
