//! GPU tests on whatever adapter `Context::new` picks (in CI: Mesa lavapipe, the software
//! Vulkan driver). Every GPU result is compared with the crate's f64 reference on fresh random
//! inputs, with outputs poisoned (NaN) before the run, per SPEC.md section 6.

mod errors;
mod f16;
mod invariants;
mod matrix;
mod nan;
mod props;

use std::sync::OnceLock;
use webattn::{Attention, Context, ContextOptions, DType, Shape};

/// One context for the whole test binary (pipelines are cached in it).
pub fn ctx() -> &'static Context {
    static CTX: OnceLock<Context> = OnceLock::new();
    CTX.get_or_init(|| {
        let c =
            Context::new_blocking(ContextOptions::from_env()).expect("a GPU or software adapter");
        eprintln!("{}", c.info());
        c
    })
}

/// SplitMix64: small, seedable, good enough for test inputs.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }
    /// Uniform in [-1, 1), never exactly zero.
    pub fn uniform(&mut self) -> f32 {
        let x = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
        if x == 0.0 {
            0.5
        } else {
            x
        }
    }
    pub fn vec(&mut self, n: usize, amp: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform() * amp).collect()
    }
    /// Fresh q, k, v for shape `s`, uniform in [-1, 1).
    pub fn qkv(&mut self, s: &webattn::Shape) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let n = |x: [usize; 4]| x.iter().product::<usize>();
        (
            self.vec(n(s.q()), 1.0),
            self.vec(n(s.k()), 1.0),
            self.vec(n(s.v()), 1.0),
        )
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// A fresh seed per call, printed so a failure can be replayed (WEBATTN_SEED overrides).
pub fn seed(tag: &str) -> u64 {
    if let Some(s) = std::env::var("WEBATTN_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return s;
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let s = t
        ^ (tag.len() as u64).wrapping_mul(0x9e37)
        ^ tag.bytes().fold(0u64, |a, b| a.rotate_left(5) ^ b as u64);
    s
}

/// Relative L2 error and largest absolute error of `got` against `want`. Non-finite reference
/// entries (lse = -inf) must match exactly and are left out of the norms. Magnitudes below
/// f32's normal range (1.2e-38, e.g. the stick left after hundreds of keys) are compared as 0:
/// f32 storage cannot hold them.
pub fn errors(got: &[f32], want: &[f64]) -> (f64, f64) {
    assert_eq!(got.len(), want.len(), "length");
    let flush = |x: f64| {
        if x.abs() < f32::MIN_POSITIVE as f64 {
            0.0
        } else {
            x
        }
    };
    let (mut num, mut den, mut max_abs) = (0.0f64, 0.0f64, 0.0f64);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let (g, w) = (flush(g as f64) as f32, flush(w));
        if !w.is_finite() {
            assert_eq!(g as f64, w, "element {i}: got {g}, want {w}");
            continue;
        }
        assert!(
            g.is_finite(),
            "element {i} is {g} (NaN: unwritten or overflow), want {w}"
        );
        let d = g as f64 - w;
        num += d * d;
        den += w * w;
        max_abs = max_abs.max(d.abs());
    }
    let rel = if den > 0.0 {
        (num / den).sqrt()
    } else {
        num.sqrt()
    };
    (rel, max_abs)
}

/// Result of one checked case.
#[derive(Debug, Clone, Copy)]
pub struct Checked {
    pub rel_o: f64,
    pub rel_aux: f64,
    pub max_abs: f64,
}

const NAN_BITS: u32 = 0x7fc0_0000;

/// Runs `attn` on the GPU (outputs poisoned first) and on the reference; returns the errors.
pub fn run_checked(attn: &Attention, s: &Shape, seed: u64, amp: f32) -> Checked {
    let c = ctx();
    let mut rng = Rng(seed);
    let q = rng.vec(s.q().iter().product(), amp);
    let k = rng.vec(s.k().iter().product(), amp);
    let v = rng.vec(s.v().iter().product(), 1.0);
    let qt = c.tensor_f32(&s.q(), &q).unwrap();
    let kt = c.tensor_f32(&s.k(), &k).unwrap();
    let vt = c.tensor_f32(&s.v(), &v).unwrap();
    let out = c.alloc_output(attn, s, DType::F32).unwrap();
    c.fill_bits(&out.o, NAN_BITS);
    for t in [&out.lse, &out.rem].into_iter().flatten() {
        c.fill_bits(t, NAN_BITS);
    }
    let mut enc = c.device().create_command_encoder(&Default::default());
    c.record_into(&mut enc, attn, &qt, &kt, &vt, &out).unwrap();
    c.submit(enc).unwrap();
    let o = c.read_f32_blocking(&out.o).unwrap();
    let want = webattn::reference(attn, s, &q, &k, &v).unwrap();
    let (rel_o, max_abs) = errors(&o, &want.o);
    let mut rel_aux = 0.0;
    if let (Some(t), Some(w)) = (
        out.lse.as_ref().or(out.rem.as_ref()),
        want.lse.as_ref().or(want.rem.as_ref()),
    ) {
        let got = c.read_f32_blocking(t).unwrap();
        rel_aux = errors(&got, w).0;
    }
    Checked {
        rel_o,
        rel_aux,
        max_abs,
    }
}

/// Like `run_checked`, asserting the SPEC.md f32 tolerance (relative L2 below 1e-5).
pub fn check(attn: &Attention, s: &Shape, tag: &str) -> Checked {
    check_amp(attn, s, tag, 1.0, 1e-5)
}

pub fn check_amp(attn: &Attention, s: &Shape, tag: &str, amp: f32, tol: f64) -> Checked {
    let sd = seed(tag);
    let r = run_checked(attn, s, sd, amp);
    assert!(
        r.rel_o < tol && r.rel_aux < tol,
        "{tag}: {attn:?} {s:?} seed {sd}: rel error o {:e}, lse/rem {:e} (tolerance {tol:e})",
        r.rel_o,
        r.rel_aux
    );
    r
}

/// GPU weights against the reference weights.
pub fn check_weights(attn: &Attention, s: &Shape, tag: &str) -> (Vec<f32>, Vec<f64>) {
    let c = ctx();
    let sd = seed(tag);
    let mut rng = Rng(sd);
    let q = rng.vec(s.q().iter().product(), 1.0);
    let k = rng.vec(s.k().iter().product(), 1.0);
    let v = rng.vec(s.v().iter().product(), 1.0);
    let qt = c.tensor_f32(&s.q(), &q).unwrap();
    let kt = c.tensor_f32(&s.k(), &k).unwrap();
    let vt = c.tensor_f32(&s.v(), &v).unwrap();
    let a = c.empty(&s.weights(), DType::F32).unwrap();
    c.fill_bits(&a, NAN_BITS);
    let mut enc = c.device().create_command_encoder(&Default::default());
    c.record_weights_into(&mut enc, attn, &qt, &kt, &vt, &a)
        .unwrap();
    c.submit(enc).unwrap();
    let got = c.read_f32_blocking(&a).unwrap();
    let want = webattn::reference_weights(attn, s, &q, &k, &v).unwrap();
    let (rel, _) = errors(&got, &want);
    assert!(
        rel < 1e-5,
        "{tag}: weights {attn:?} {s:?} seed {sd}: rel error {rel:e}"
    );
    (got, want)
}
