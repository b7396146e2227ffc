//! Malformed model files give the typed error, never a panic.

use safetensors::tensor::TensorView;
use safetensors::Dtype;
use webattn::lm::random::{random_config, random_weights};
use webattn::lm::{Config, LmError, Model};
use webattn::DType;

use crate::context;

/// Safetensors bytes of `config`'s random weights with `edit` applied to the tensor list.
fn edited(
    config: &Config,
    edit: impl Fn(&mut Vec<(String, Vec<usize>, Dtype, Vec<u8>)>),
) -> Vec<u8> {
    let bytes = random_weights(config, 1).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut list: Vec<(String, Vec<usize>, Dtype, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.shape().to_vec(), v.dtype(), v.data().to_vec()))
        .collect();
    edit(&mut list);
    let views: Vec<(String, TensorView)> = list
        .iter()
        .map(|(n, s, d, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize(views, None).unwrap()
}

#[test]
fn malformed_files_give_typed_errors() {
    let json = random_config("softmax-rope", true).unwrap();
    let config = Config::from_json(&json).unwrap();
    let ctx = context();
    let load = |json: &str, bytes: &[u8]| Model::load(ctx.clone(), json, bytes, DType::F32).err();

    let missing = edited(&config, |l| l.retain(|t| t.0 != "layers.1.wk"));
    assert_eq!(
        load(&json, &missing),
        Some(LmError::MissingTensor("layers.1.wk".into()))
    );

    let shape = edited(&config, |l| {
        let t = l.iter_mut().find(|t| t.0 == "layers.0.w1").unwrap();
        t.1 = vec![t.1[1], t.1[0]];
    });
    assert!(
        matches!(load(&json, &shape), Some(LmError::Shape { ref name, .. }) if name == "layers.0.w1"),
        "{:?}",
        load(&json, &shape)
    );

    let dtype = edited(&config, |l| {
        let t = l.iter_mut().find(|t| t.0 == "norm").unwrap();
        t.2 = Dtype::BF16;
    });
    assert!(matches!(load(&json, &dtype), Some(LmError::DType { ref name, .. }) if name == "norm"));

    let f32s = edited(&config, |l| {
        let t = l.iter_mut().find(|t| t.0 == "tok_emb").unwrap();
        t.2 = Dtype::F32;
        t.1 = vec![t.1[0], t.1[1] / 2];
    });
    assert!(matches!(load(&json, &f32s), Some(LmError::DType { .. })));

    let extra = edited(&config, |l| {
        l.push(("bias".into(), vec![2], Dtype::F16, vec![0; 4]))
    });
    assert_eq!(
        load(&json, &extra),
        Some(LmError::UnexpectedTensor("bias".into()))
    );

    let good = random_weights(&config, 2).unwrap();
    assert!(matches!(
        load(&json, b"not safetensors"),
        Some(LmError::Safetensors(_))
    ));
    assert!(matches!(load("{not json", &good), Some(LmError::Json(_))));
    let unknown_key = json.replacen("{", "{\"dropout\": 0.1, ", 1);
    assert!(matches!(load(&unknown_key, &good), Some(LmError::Json(_))));
    let kind = json.replace("\"softmax\"", "\"relu\"");
    assert!(matches!(
        load(&kind, &good),
        Some(LmError::UnknownAttention(_))
    ));
    let heads = json.replace("\"n_kv_head\":2", "\"n_kv_head\":3");
    assert!(
        matches!(load(&heads, &good), Some(LmError::Config(_))),
        "{heads}"
    );
    // The config's shapes disagree with the weights: a wider model.
    let wide = json.replace("\"d_ff\":128", "\"d_ff\":256");
    assert!(matches!(load(&wide, &good), Some(LmError::Shape { .. })));
    assert!(Model::load(ctx, &json, &good, DType::F16).is_ok());
}
