//! The shipped models' fixtures (docs/lm.md): for every `models/<name>/` with a
//! `fixtures.json`, greedy decoding reproduces the tokens (up to a near tie, margin < 1e-3)
//! and the logits within 1e-4 (f32) / 1e-2 (f16) relative L2. Skipped, with a message, while
//! no model has fixtures.

use std::path::Path;

use serde::Deserialize;
use webattn::lm::{Model, Sampler, Session};
use webattn::DType;

use crate::{context, rel_l2, tol};

#[derive(Deserialize)]
struct Fixtures {
    model: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    prompt_bytes: Vec<u8>,
    steps: usize,
    tokens: Vec<u8>,
    margins: Vec<f64>,
    logits: Vec<Vec<f64>>,
}

#[test]
fn shipped_models_reproduce_their_fixtures() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    dirs.retain(|d| d.join("fixtures.json").is_file());
    dirs.sort();
    if dirs.is_empty() {
        println!("skipped: no models/<name>/fixtures.json yet (the trained models come later)");
        return;
    }
    let ctx = context();
    for dir in dirs {
        let read =
            |f: &str| std::fs::read(dir.join(f)).unwrap_or_else(|e| panic!("{dir:?}/{f}: {e}"));
        let config = String::from_utf8(read("config.json")).unwrap();
        let weights = read("model.safetensors");
        let fx: Fixtures = serde_json::from_slice(&read("fixtures.json")).unwrap();
        for dtype in [DType::F32, DType::F16] {
            let model = Model::load(ctx.clone(), &config, &weights, dtype).unwrap();
            for (ci, case) in fx.cases.iter().enumerate() {
                let label = format!("{} {dtype:?} case {ci}", fx.model);
                let cap = case.prompt_bytes.len() + case.steps + 1;
                let mut s = Session::new(&model, 1, cap).unwrap();
                s.prefill(&[&case.prompt_bytes]).unwrap();
                let mut sampler = Sampler::greedy();
                for i in 0..case.steps {
                    let logits = s.logits_blocking().unwrap();
                    if let Some(want) = case.logits.get(i) {
                        let e = rel_l2(&logits, want);
                        assert!(e < tol(dtype), "{label}: logits row {i}: rel L2 {e:e}");
                    }
                    if case.margins[i] < 1e-3 {
                        println!("{label}: near tie at step {i}, stop comparing tokens");
                        break;
                    }
                    let t = sampler.sample(&logits);
                    assert_eq!(t, case.tokens[i], "{label}: token {i}");
                    s.step(&[t]).unwrap();
                }
                println!("{label}: ok");
            }
        }
    }
}
