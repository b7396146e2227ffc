//! `webattn generate`: text from a tiny byte-level model (`models/<name>/`, docs/lm.md),
//! streamed as it is decoded, then prefill and decode tokens/s; `--bench`: tokens/s of a
//! 512-byte prefill and 256 decode steps at batch 1 and 8 (JSON with `--json PATH`).
//! `webattn lm-random-model --out DIR` (hidden) writes a model with random weights.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use webattn::lm::random::{random_config, random_weights};
use webattn::lm::{Config, Model, Sampler, Session};
use webattn::DType;

use crate::{GenerateArgs, RandomModelArgs};

fn load(a: &GenerateArgs, dtype: DType) -> Result<Model, String> {
    let dir = Path::new(&a.model);
    let read =
        |f: &str| std::fs::read(dir.join(f)).map_err(|e| format!("{}: {e}", dir.join(f).display()));
    let config = String::from_utf8(read("config.json")?)
        .map_err(|_| format!("{}: config.json is not UTF-8", dir.display()))?;
    let weights = read("model.safetensors")?;
    let ctx = Arc::new(crate::context(&a.device)?);
    Model::load(ctx, &config, &weights, dtype).map_err(|e| e.to_string())
}

pub fn generate(a: &GenerateArgs) -> Result<(), String> {
    let dtype = DType::from(a.dtype);
    let model = load(a, dtype)?;
    crate::print_adapter(model.context());
    if a.bench {
        return bench(a, &model);
    }
    let prompt = a.prompt.as_bytes();
    if prompt.is_empty() {
        return Err("--prompt needs at least one byte".into());
    }
    let cap = a.capacity.unwrap_or(prompt.len() + a.tokens + 1);
    if cap < prompt.len() + a.tokens {
        return Err(format!(
            "--capacity {cap} cannot hold the prompt ({} bytes) and {} new tokens",
            prompt.len(),
            a.tokens
        ));
    }
    let seed = a
        .seed
        .unwrap_or_else(|| webattn::testing::fresh_seed("generate"));
    let mut samplers: Vec<Sampler> = (0..a.batch as u64)
        .map(|b| Sampler::new(a.temperature, a.top_k, seed.wrapping_add(b)))
        .collect();
    let mut s = Session::new(&model, a.batch, cap).map_err(|e| e.to_string())?;
    let prompts = vec![prompt; a.batch];
    let t0 = Instant::now();
    s.prefill(&prompts).map_err(|e| e.to_string())?;
    let mut logits = s.logits_blocking().map_err(|e| e.to_string())?;
    let prefill_s = t0.elapsed().as_secs_f64();
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(prompt);
    let vocab = model.config().vocab;
    let mut texts: Vec<Vec<u8>> = vec![Vec::new(); a.batch];
    let t1 = Instant::now();
    for i in 0..a.tokens {
        let next: Vec<u8> = samplers
            .iter_mut()
            .zip(logits.chunks_exact(vocab))
            .map(|(sm, l)| sm.sample(l))
            .collect();
        let _ = out.write_all(&next[..1]);
        let _ = out.flush();
        texts.iter_mut().zip(&next).for_each(|(t, &x)| t.push(x));
        if i + 1 == a.tokens {
            break;
        }
        s.step(&next).map_err(|e| e.to_string())?;
        logits = s.logits_blocking().map_err(|e| e.to_string())?;
    }
    let decode_s = t1.elapsed().as_secs_f64();
    let _ = writeln!(out);
    for (b, t) in texts.iter().enumerate().skip(1) {
        let _ = writeln!(out, "--- sequence {b}:");
        let _ = out.write_all(prompt);
        let _ = out.write_all(t);
        let _ = writeln!(out);
    }
    let steps = a.tokens.saturating_sub(1);
    println!(
        "\nprefill: {} tokens in {:.1} ms, {:.0} tokens/s; decode: {} steps x {} sequences in \
         {:.1} ms, {:.1} tokens/s ({}, wall clock; seed {seed})",
        prompt.len() * a.batch,
        prefill_s * 1e3,
        (prompt.len() * a.batch) as f64 / prefill_s,
        steps,
        a.batch,
        decode_s * 1e3,
        (steps * a.batch) as f64 / decode_s.max(1e-9),
        dtype.name(),
    );
    Ok(())
}

/// A 512-byte prompt of text-like bytes (a repeated verse).
fn bench_prompt(len: usize) -> Vec<u8> {
    b"In the beginning God created the heaven and the earth. "
        .iter()
        .copied()
        .cycle()
        .take(len)
        .collect()
}

fn bench(a: &GenerateArgs, model: &Model) -> Result<(), String> {
    let (plen, steps) = (a.bench_prompt, a.bench_steps);
    let prompt = bench_prompt(plen);
    let mut rows = Vec::new();
    for batch in [1usize, 8] {
        let mut s = Session::new(model, batch, plen + steps + 1).map_err(|e| e.to_string())?;
        let prompts = vec![prompt.as_slice(); batch];
        let mut run = || -> Result<(f64, f64), String> {
            s.reset();
            let t0 = Instant::now();
            s.prefill(&prompts).map_err(|e| e.to_string())?;
            s.logits_blocking().map_err(|e| e.to_string())?;
            let pre = t0.elapsed().as_secs_f64();
            let t1 = Instant::now();
            let next = vec![b'a'; batch];
            for _ in 0..steps {
                s.step(&next).map_err(|e| e.to_string())?;
                s.logits_blocking().map_err(|e| e.to_string())?;
            }
            Ok((pre, t1.elapsed().as_secs_f64()))
        };
        run()?; // warm-up: pipelines, driver caches
        let (pre, dec) = run()?;
        let row = serde_json::json!({
            "model": model.config().name, "dtype": model.precision().name(), "batch": batch,
            "prefill_tokens": plen, "decode_steps": steps,
            "prefill_tokens_per_s": (plen * batch) as f64 / pre,
            "decode_tokens_per_s": (steps * batch) as f64 / dec,
            "prefill_ms": pre * 1e3, "decode_ms_per_step": dec * 1e3 / steps.max(1) as f64,
            "timing": "wall",
            "adapter": model.context().info().name,
        });
        println!(
            "batch {batch}: prefill {plen} bytes: {:.0} tokens/s ({:.1} ms); decode {steps} \
             steps: {:.1} tokens/s ({:.2} ms/step) [wall]",
            row["prefill_tokens_per_s"].as_f64().unwrap_or(0.0),
            pre * 1e3,
            row["decode_tokens_per_s"].as_f64().unwrap_or(0.0),
            dec * 1e3 / steps.max(1) as f64,
        );
        rows.push(row);
    }
    if let Some(p) = &a.json {
        let text = serde_json::to_string_pretty(&rows).unwrap_or_default() + "\n";
        std::fs::write(p, text).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    Ok(())
}

pub fn random_model(a: &RandomModelArgs) -> Result<(), String> {
    let json = random_config(&a.kind, a.small).map_err(|e| e.to_string())?;
    let config = Config::from_json(&json).map_err(|e| e.to_string())?;
    let bytes = random_weights(&config, a.seed).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&a.out).map_err(|e| format!("{}: {e}", a.out.display()))?;
    let w = |f: &str, b: &[u8]| {
        std::fs::write(a.out.join(f), b).map_err(|e| format!("{}: {e}", a.out.join(f).display()))
    };
    w("config.json", json.as_bytes())?;
    w("model.safetensors", &bytes)?;
    println!(
        "wrote {} ({} bytes of weights)",
        a.out.display(),
        bytes.len()
    );
    Ok(())
}
