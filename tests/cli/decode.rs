//! Decoding on the command line: `run --lengths` (one decode step over a KV cache read from the
//! input file) against the f64 reference of each sequence on its dense k/v prefix, with NaN in
//! every slot past a sequence's length; its argument checks; `bench --decode` (table, GB/s,
//! JSON) and `bench --cpu --decode` (µs per step, no wgpu object created).

use safetensors::Dtype;
use webattn::{Attention, Shape};

use crate::{dir, fails, gen, ok, read, run, text, webattn, write};

/// B = 4 sequences in a cache of 20 slots: one of 5 keys, an empty one, a full one and one
/// shorter than the 2 new query rows. Hq 4, Hkv 2 (GQA 2:1), D 16, Dv 8.
const LENS: [usize; 4] = [5, 0, 20, 1];

fn cache_shape() -> Shape {
    Shape::gqa(4, 4, 2, 2, 16).with_kv_len(20).with_v_dim(8)
}

/// q, k, v of [`cache_shape`], with NaN in k and v past each sequence's length.
fn cache_inputs(s: &Shape) -> [Vec<f32>; 3] {
    let q = gen(s.q().iter().product(), 31);
    let mut k = gen(s.k().iter().product(), 17);
    let mut v = gen(s.v().iter().product(), 13);
    for (x, dim) in [(&mut k, s.head_dim), (&mut v, s.v_dim)] {
        for b in 0..s.batch {
            for h in 0..s.kv_heads {
                let block = &mut x[(b * s.kv_heads + h) * s.kv_len * dim..][..s.kv_len * dim];
                block[LENS[b] * dim..].fill(f32::NAN);
            }
        }
    }
    [q, k, v]
}

/// Sequence `b`'s q rows and the first `len` keys and values of each of its kv heads.
fn sequence(s: &Shape, [q, k, v]: &[Vec<f32>; 3], b: usize, len: usize) -> [Vec<f32>; 3] {
    let gather = |x: &[f32], dim: usize| -> Vec<f32> {
        (0..s.kv_heads)
            .flat_map(|h| {
                let start = (b * s.kv_heads + h) * s.kv_len * dim;
                x[start..start + len * dim].to_vec()
            })
            .collect()
    };
    let nq = s.q_heads * s.q_len * s.head_dim;
    [
        q[b * nq..(b + 1) * nq].to_vec(),
        gather(k, s.head_dim),
        gather(v, s.v_dim),
    ]
}

/// Relative L2 error of the finite reference values (infinite ones must match exactly, and a
/// NaN read from past a length fails at once); the absolute error for an all-zero reference.
fn err(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    let (mut num, mut den) = (0.0, 0.0);
    for (&g, &w) in got.iter().zip(want) {
        if w.is_infinite() {
            assert_eq!(g as f64, w, "{got:?} {want:?}");
            continue;
        }
        assert!(g.is_finite(), "{g} where the reference has {w}: {got:?}");
        num += (g as f64 - w).powi(2);
        den += w * w;
    }
    if den == 0.0 {
        num.sqrt()
    } else {
        (num / den).sqrt()
    }
}

/// The worst error of `o` and lse/rem over the sequences, against the reference of `attn`.
fn worst(out: &std::path::Path, s: &Shape, x: &[Vec<f32>; 3], attn: &Attention) -> f64 {
    let (_, o) = read(out, "o");
    let aux = ["lse", "rem"]
        .into_iter()
        .find(|n| crate::names(out).iter().any(|m| m == n));
    let aux = aux.map(|n| (n, read(out, n).1));
    let mut e = 0.0f64;
    for (b, &len) in LENS.iter().enumerate() {
        let seq = Shape {
            batch: 1,
            kv_len: len,
            ..*s
        };
        let [q, k, v] = sequence(s, x, b, len);
        let want = webattn::reference(attn, &seq, &q, &k, &v).unwrap();
        let no = s.q_heads * s.q_len * s.v_dim;
        e = e.max(err(&o[b * no..(b + 1) * no], &want.o));
        if let Some((name, got)) = &aux {
            let nr = s.q_heads * s.q_len;
            let w = if *name == "lse" { &want.lse } else { &want.rem };
            let w = w.as_ref().unwrap_or_else(|| panic!("no reference {name}"));
            e = e.max(err(&got[b * nr..(b + 1) * nr], w));
        }
    }
    e
}

#[test]
fn run_with_lengths_is_a_decode_step_per_sequence() {
    let d = dir("lengths");
    let (inp, out) = (d.join("cache.safetensors"), d.join("out.safetensors"));
    let s = cache_shape();
    let x = cache_inputs(&s);
    let file = |dtype: Dtype, x: &[Vec<f32>; 3]| {
        write(
            &inp,
            &[
                ("q", dtype, s.q().to_vec(), &x[0]),
                ("k", dtype, s.k().to_vec(), &x[1]),
                ("v", dtype, s.v().to_vec(), &x[2]),
            ],
        )
    };
    file(Dtype::F32, &x);
    let lens = "5,0,20,1";
    let cases: [(&[&str], Attention); 5] = [
        (
            &["--kind", "softmax", "--causal"],
            Attention::softmax().causal(true),
        ),
        (
            &[
                "--kind",
                "softmax",
                "--causal",
                "--window",
                "3",
                "--sinks",
                "0.5,-1,2,0",
            ],
            Attention::softmax()
                .causal(true)
                .window(3)
                .sinks(vec![0.5, -1.0, 2.0, 0.0]),
        ),
        (&["--kind", "stick-breaking"], Attention::stick_breaking()),
        (
            &["--kind", "stick-breaking", "--remainder", "current"],
            Attention::from_json(serde_json::json!(
                {"kind": "stick-breaking", "remainder": "to-current"}
            ))
            .unwrap(),
        ),
        (
            &["--kind", "sigmoid", "--causal"],
            Attention::sigmoid().causal(true),
        ),
    ];
    for (args, attn) in &cases {
        let mut all = args.to_vec();
        all.extend(["--lengths", lens]);
        let o = ok(run(&inp, &out, &all));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("decode step"),
            "{}",
            text(&o)
        );
        let e = worst(&out, &s, &x, attn);
        assert!(e < 1e-5, "{args:?}: error {e}");
    }
    // f16 in: the f16 decode kernels, against the reference on the f16-rounded values.
    file(Dtype::F16, &x);
    ok(run(&inp, &out, &["--kind", "sb", "--lengths", lens]));
    assert_eq!(read(&out, "o").0, Dtype::F16);
    let r = x.clone().map(|y| webattn::testing::round_f16(&y));
    let e = worst(&out, &s, &r, &Attention::stick_breaking());
    assert!(e < 5e-3, "f16: error {e}");

    // Lengths that do not fit the input: clear errors before any GPU work, no output.
    let _ = std::fs::remove_file(&out);
    let bad = |l: &str| run(&inp, &out, &["--kind", "softmax", "--lengths", l]);
    fails(bad("5,0,20"), &["--lengths has 3 values for a batch of 4"]);
    fails(bad("5,0,21,1"), &["sequence 2 has length 21", "20 slots"]);
    fails(bad("5,0,x,1"), &["--lengths"]);
    let o = run(
        &inp,
        &out,
        &["--kind", "softmax", "--lengths", lens, "--weights"],
    );
    fails(o, &["--weights"]);
    assert!(!out.exists());
}

#[test]
fn run_with_lengths_on_an_empty_cache() {
    let d = dir("lengths-empty");
    let (inp, out) = (d.join("cache.safetensors"), d.join("out.safetensors"));
    let s = Shape::gqa(2, 2, 1, 1, 8).with_kv_len(0);
    let [q, k, v] = [gen(2 * 2 * 8, 3), vec![], vec![]];
    write(
        &inp,
        &[
            ("q", Dtype::F32, s.q().to_vec(), &q),
            ("k", Dtype::F32, s.k().to_vec(), &k),
            ("v", Dtype::F32, s.v().to_vec(), &v),
        ],
    );
    ok(run(&inp, &out, &["--kind", "softmax", "--lengths", "0,0"]));
    assert!(read(&out, "o").1.iter().all(|&x| x == 0.0));
    assert!(read(&out, "lse").1.iter().all(|&x| x == f32::NEG_INFINITY));
    fails(
        run(&inp, &out, &["--kind", "softmax", "--lengths", "0,1"]),
        &["sequence 1 has length 1"],
    );
}

#[test]
fn bench_decode_prints_gb_s_and_writes_json() {
    let d = dir("bench-decode");
    let json = d.join("decode.json");
    let shapes = "1x8x2x1024x64";
    let o = ok(webattn(&[
        "bench",
        "--decode",
        "--shapes",
        shapes,
        "--reps",
        "20",
        "--json",
        json.to_str().unwrap(),
    ]));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        out.contains("| chunks x keys | median ms | min ms | GB/s |"),
        "{out}"
    );
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(rows.len(), 2 * webattn::kinds::names().len(), "{rows:?}");
    for kind in webattn::kinds::names() {
        for dtype in ["f32", "f16"] {
            let row = format!("| {kind} | {dtype} | 1 | 8 | 2 | 1024 | 64 | 1 |");
            assert!(out.contains(&row), "no row {row}: {out}");
            let r = rows
                .iter()
                .find(|r| r["kind"] == kind && r["dtype"] == dtype)
                .unwrap_or_else(|| panic!("no JSON row for {kind} {dtype}"));
            assert_eq!(r["mode"], "decode");
            assert_eq!(r["shape"], shapes);
            assert_eq!(r["q_len"], 1);
            let es = if dtype == "f32" { 4 } else { 2 };
            let bytes = (2 * 2 * 1024 * 64 + 2 * 8 * 64) * es;
            assert_eq!(r["bytes"], bytes);
            let (ms, gb) = (
                r["median_ms"].as_f64().unwrap(),
                r["gb_s"].as_f64().unwrap(),
            );
            assert!(
                ms > 0.0 && (gb - bytes as f64 / ms / 1e6).abs() < 1e-6 * gb,
                "{r}"
            );
            assert!(r["chunks"].as_u64().unwrap() >= 1, "{r}");
        }
    }
    // Tq = 3, one kind and dtype; a forward shape is refused with --decode and a decode shape
    // without it; decode-only flags need --decode.
    let o = ok(webattn(&[
        "bench",
        "--decode",
        "--shapes",
        "2x4x2x300x32",
        "--q-len",
        "3",
        "--kind",
        "sigmoid",
        "--dtype",
        "f32",
    ]));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("| sigmoid | f32 | 2 | 4 | 2 | 300 | 32 | 3 |"),
        "{out}"
    );
    fails(
        webattn(&["bench", "--decode", "--shapes", "1x8x128x64"]),
        &["B x Hq x Hkv x Tk x D"],
    );
    fails(
        webattn(&["bench", "--shapes", "1x8x2x128x64"]),
        &["decode shape", "--decode"],
    );
    fails(webattn(&["bench", "--q-len", "2"]), &["--decode"]);
    fails(
        webattn(&["bench", "--decode", "--steps", "100"]),
        &["--cpu"],
    );
    fails(
        webattn(&["bench", "--decode", "--shapes", "1x8x2x0x64"]),
        &["Tk >= 1"],
    );
}

#[test]
fn bench_cpu_decode_records_steps_without_new_objects() {
    let o = ok(webattn(&[
        "bench",
        "--cpu",
        "--decode",
        "--shapes",
        "1x8x2x512x64",
        "--steps",
        "100",
    ]));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("4-layer model"), "{out}");
    assert!(out.contains("| median µs per step |"), "{out}");
    for kind in webattn::kinds::names() {
        let row = out.lines().find(|l| l.starts_with(&format!("| {kind} |")));
        let row = row.unwrap_or_else(|| panic!("no row for {kind}: {out}"));
        let us: f64 = row.split('|').nth(2).unwrap().trim().parse().unwrap();
        assert!(us > 0.0, "{row}");
        assert!(
            row.ends_with("| 0 buffers, 0 bind groups, 0 pipelines |"),
            "{row}"
        );
    }
}
