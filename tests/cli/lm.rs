//! The language-model commands: `generate` (greedy text equals the f64 reference model's),
//! `generate --bench` (rows for batch 1 and 8, JSON), their errors, on a random-weights model
//! written by the hidden `lm-random-model`.

use webattn::lm::{Config, HostWeights, Reference};

use crate::{dir, fails, ok, webattn};

#[test]
fn generate_greedy_matches_the_reference_model() {
    let d = dir("lm-generate");
    let m = d.join("model");
    let ms = m.to_str().unwrap();
    ok(webattn(&[
        "lm-random-model",
        "--out",
        ms,
        "--kind",
        "sigmoid-rope",
        "--small",
        "--seed",
        "5",
    ]));
    let config =
        Config::from_json(&std::fs::read_to_string(m.join("config.json")).unwrap()).unwrap();
    let bytes = std::fs::read(m.join("model.safetensors")).unwrap();
    let reference = Reference::new(&config, &HostWeights::parse(&config, &bytes).unwrap());
    let prompt = "And God said";
    let (tokens, margins) = reference.greedy(prompt.as_bytes(), 12).unwrap();
    let o = ok(webattn(&[
        "generate", "--model", ms, "--prompt", prompt, "-n", "12",
    ]));
    let out = o.stdout;
    let at = out
        .windows(prompt.len())
        .position(|w| w == prompt.as_bytes())
        .expect("the prompt is echoed");
    let got = &out[at + prompt.len()..][..12];
    let n = margins.iter().position(|&m| m < 1e-3).unwrap_or(12);
    assert_eq!(&got[..n], &tokens[..n], "{}", String::from_utf8_lossy(&out));
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("tokens/s"), "{text}");
    // Sampling, batch 2, f16: runs and prints both sequences.
    let o = ok(webattn(&[
        "generate",
        "--model",
        ms,
        "--prompt",
        "In",
        "-n",
        "8",
        "--batch",
        "2",
        "--dtype",
        "f16",
        "--temperature",
        "0.9",
        "--top-k",
        "8",
        "--seed",
        "1",
    ]));
    assert!(String::from_utf8_lossy(&o.stdout).contains("--- sequence 1:"));
}

#[test]
fn generate_bench_writes_json() {
    let d = dir("lm-bench");
    let m = d.join("model");
    let ms = m.to_str().unwrap();
    ok(webattn(&[
        "lm-random-model",
        "--out",
        ms,
        "--kind",
        "sb-nope",
        "--small",
    ]));
    let json = d.join("bench.json");
    let o = ok(webattn(&[
        "generate",
        "--model",
        ms,
        "--bench",
        "--bench-prompt",
        "16",
        "--bench-steps",
        "3",
        "--json",
        json.to_str().unwrap(),
    ]));
    assert!(String::from_utf8_lossy(&o.stdout).contains("batch 8"));
    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(rows.len(), 2);
    for (r, b) in rows.iter().zip([1, 8]) {
        assert_eq!(r["batch"], b);
        assert!(r["prefill_tokens_per_s"].as_f64().unwrap() > 0.0);
        assert!(r["decode_tokens_per_s"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn generate_errors_are_messages() {
    let d = dir("lm-errors");
    let m = d.join("model");
    let ms = m.to_str().unwrap();
    fails(webattn(&["generate", "--model", ms]), &["config.json"]);
    ok(webattn(&[
        "lm-random-model",
        "--out",
        ms,
        "--kind",
        "softmax-rope",
        "--small",
    ]));
    fails(
        webattn(&["generate", "--model", ms, "--prompt", ""]),
        &["--prompt"],
    );
    fails(
        webattn(&["generate", "--model", ms, "-n", "50", "--capacity", "20"]),
        &["--capacity"],
    );
    std::fs::write(m.join("model.safetensors"), b"junk").unwrap();
    fails(
        webattn(&["generate", "--model", ms]),
        &["model.safetensors"],
    );
    fails(
        webattn(&["lm-random-model", "--out", ms, "--kind", "relu"]),
        &["relu"],
    );
}
