//! The command-line program end to end: `webattn run` reads q, k, v from .safetensors and
//! writes o and rem / lse that match the f64 reference; `info` and `check` succeed.

use std::process::Command;

use webattn::{Attention, Shape};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_webattn"));
    c.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    c
}

fn write_inputs(path: &std::path::Path, s: &Shape, q: &[f32], k: &[f32], v: &[f32]) {
    use safetensors::tensor::TensorView;
    let views = vec![
        (
            "q",
            TensorView::new(
                safetensors::Dtype::F32,
                s.q().to_vec(),
                bytemuck::cast_slice(q),
            )
            .unwrap(),
        ),
        (
            "k",
            TensorView::new(
                safetensors::Dtype::F32,
                s.k().to_vec(),
                bytemuck::cast_slice(k),
            )
            .unwrap(),
        ),
        (
            "v",
            TensorView::new(
                safetensors::Dtype::F32,
                s.v().to_vec(),
                bytemuck::cast_slice(v),
            )
            .unwrap(),
        ),
    ];
    safetensors::serialize_to_file(views, None, path).unwrap();
}

fn read(path: &std::path::Path, name: &str) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    bytemuck::pod_collect_to_vec(st.tensor(name).unwrap().data())
}

#[test]
fn run_reads_and_writes_safetensors() {
    let dir = std::env::temp_dir().join(format!("webattn-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (inp, out) = (dir.join("qkv.safetensors"), dir.join("out.safetensors"));
    let s = Shape {
        q_heads: 4,
        kv_heads: 2,
        ..Shape::new(1, 4, 23, 32)
    };
    let n = |x: [usize; 4]| x.iter().product::<usize>();
    let gen = |n: usize, m: usize| {
        (0..n)
            .map(|i| ((i * m + 7) % 97) as f32 / 48.5 - 1.0)
            .collect::<Vec<f32>>()
    };
    let (q, k, v) = (gen(n(s.q()), 31), gen(n(s.k()), 17), gen(n(s.v()), 13));
    write_inputs(&inp, &s, &q, &k, &v);

    let st = bin()
        .args(["run", "-i"])
        .arg(&inp)
        .arg("-o")
        .arg(&out)
        .args(["--kind", "stick-breaking", "--weights"])
        .status()
        .unwrap();
    assert!(st.success());
    let want = webattn::reference(&Attention::stick_breaking(), &s, &q, &k, &v).unwrap();
    let rel = |got: &[f32], want: &[f64]| {
        let (a, b) = got.iter().zip(want).fold((0.0, 0.0), |(a, b), (&g, &w)| {
            (a + (g as f64 - w).powi(2), b + w * w)
        });
        (a / b).sqrt()
    };
    assert!(rel(&read(&out, "o"), &want.o) < 1e-5);
    assert!(rel(&read(&out, "rem"), want.rem.as_ref().unwrap()) < 1e-5);
    assert_eq!(read(&out, "weights").len(), 4 * 23 * 23);

    let st = bin()
        .args(["run", "-i"])
        .arg(&inp)
        .arg("-o")
        .arg(&out)
        .args(["--kind", "softmax", "--causal", "--sinks", "0,1,2,3"])
        .status()
        .unwrap();
    assert!(st.success());
    let attn = Attention::of(webattn::Kind::Softmax(webattn::SoftmaxOptions {
        causal: true,
        sinks: Some(vec![0.0, 1.0, 2.0, 3.0]),
    }));
    let want = webattn::reference(&attn, &s, &q, &k, &v).unwrap();
    assert!(rel(&read(&out, "o"), &want.o) < 1e-5);
    assert!(rel(&read(&out, "lse"), want.lse.as_ref().unwrap()) < 1e-5);

    // Bad input: a clear error and a failing exit status, no panic.
    let o = bin()
        .args(["run", "-i"])
        .arg(&inp)
        .arg("-o")
        .arg(&out)
        .args(["--kind", "softmax", "--sinks", "1,2"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("sink"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = bin()
        .args(["run", "-i", "/nonexistent.safetensors", "-o"])
        .arg(&out)
        .args(["--kind", "softmax"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn info_and_check_succeed() {
    let o = bin().arg("info").output().unwrap();
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("adapter:"));
    let o = bin()
        .args(["check", "--q-len", "40", "--dim", "80"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{text}");
    assert_eq!(text.matches("| ok |").count(), 5, "{text}");
    let o = bin().arg("frobnicate").output().unwrap();
    assert!(!o.status.success());
}
