//! GPU tests on whatever adapter `Context::new` picks (in CI: Mesa lavapipe, the software
//! Vulkan driver). Every GPU result is compared with the crate's f64 reference on fresh random
//! inputs (a new seed per run, printed with every failure; `WEBATTN_SEED=N` replays one), with
//! outputs poisoned (NaN) before the run, per SPEC.md section 6. The generators, the metric,
//! the conditioned tolerance and the option matrix are the crate's own `webattn::testing`,
//! shared with `webattn check` and the browser tests.

mod decode;
mod errors;
mod f16;
mod invariants;
mod matrix;
mod nan;
mod props;
mod structure;

use std::sync::OnceLock;
use webattn::testing::{self, judge, Verdict};
use webattn::{Attention, Context, ContextOptions, DType, HostOutput, Shape};

pub use webattn::testing::Rng;

/// One context for the whole test binary (pipelines are cached in it).
pub fn ctx() -> &'static Context {
    static CTX: OnceLock<Context> = OnceLock::new();
    CTX.get_or_init(|| {
        let opts = ContextOptions::from_env().expect("WEBATTN_* environment");
        let c = Context::new_blocking(opts).expect("a GPU or software adapter");
        eprintln!("{}", c.info());
        c
    })
}

/// A context with options changed from the environment's.
pub fn ctx_with(f: impl FnOnce(&mut ContextOptions)) -> Context {
    let mut o = ContextOptions::from_env().expect("WEBATTN_* environment");
    f(&mut o);
    Context::new_blocking(o).expect("adapter")
}

/// A context on the packed f16 route (`packed_f16`: the route of browsers without
/// shader-f16). The cooperative-matrix variants need shader-f16, so a forced `coopmat` or
/// `coopmat2` (`WEBATTN_VARIANT`, as in scripts/h100.sh check2) gives way to the automatic
/// choice here, the variant that route falls back to; forcing one on a context that cannot run
/// it stays a typed error (errors.rs).
pub fn packed_ctx() -> Context {
    ctx_with(|o| {
        o.packed_f16 = true;
        if matches!(
            o.variant,
            Some(webattn::Variant::CoopMatrix | webattn::Variant::CoopMatrix2)
        ) {
            o.variant = None;
        }
    })
}

/// A fresh seed per call (`WEBATTN_SEED` replays one).
pub fn seed(tag: &str) -> u64 {
    testing::fresh_seed(tag)
}

/// Relative L2 error and largest absolute error of `got` against `want`, asserting that every
/// entry is finite where the reference is (and equal where it is not).
pub fn errors(got: &[f32], want: &[f64]) -> (f64, f64) {
    assert_eq!(got.len(), want.len(), "length");
    let e = testing::compare(got, want);
    assert!(
        e.finite,
        "non-finite output where the reference is finite: {e:?}"
    );
    (e.rel, e.max_abs)
}

/// Result of one checked case.
#[derive(Debug, Clone)]
pub struct Checked {
    pub rel_o: f64,
    pub rel_aux: f64,
    pub max_abs: f64,
    pub verdicts: Vec<Verdict>,
}

impl Checked {
    /// Every output is finite and within max(tol, 2 * e32) (SPEC.md section 6).
    pub fn ok(&self) -> bool {
        self.verdicts.iter().all(|v| v.ok)
    }
}

pub const NAN_BITS: u32 = 0x7fc0_0000;

/// Runs `attn` on the GPU (outputs poisoned first) and judges it against the f64 reference
/// and the f32 floor.
pub fn run_checked(attn: &Attention, s: &Shape, seed: u64, amp: f32, tol: f64) -> Checked {
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
    let got: HostOutput = pollster::block_on(c.read_output(&out)).unwrap();
    let mut verdicts = judge(attn, s, [&q, &k, &v], &got, DType::F32).unwrap();
    for v in &mut verdicts {
        v.bound = tol.max(2.0 * v.e32);
        v.ok = v.gpu.finite && v.gpu.rel <= v.bound;
    }
    let rel = |name: &str| {
        verdicts
            .iter()
            .find(|v| v.output == name)
            .map_or(0.0, |v| v.gpu.rel)
    };
    Checked {
        rel_o: rel("o"),
        rel_aux: rel("lse").max(rel("rem")),
        max_abs: verdicts
            .iter()
            .find(|v| v.output == "o")
            .map_or(0.0, |v| v.gpu.max_abs),
        verdicts,
    }
}

/// Like `run_checked`, asserting SPEC.md's f32 rule: error below max(1e-5, 2 * e32).
pub fn check(attn: &Attention, s: &Shape, tag: &str) -> Checked {
    check_amp(attn, s, tag, 1.0, 1e-5)
}

pub fn check_amp(attn: &Attention, s: &Shape, tag: &str, amp: f32, tol: f64) -> Checked {
    let sd = seed(tag);
    let r = run_checked(attn, s, sd, amp, tol);
    assert!(
        r.ok(),
        "{tag}: {attn:?} {s:?} seed {sd} (replay with WEBATTN_SEED={sd}): {:#?}",
        r.verdicts
    );
    r
}

/// GPU weights against the reference weights.
pub fn check_weights(attn: &Attention, s: &Shape, tag: &str) -> (Vec<f32>, Vec<f64>) {
    let c = ctx();
    let sd = seed(tag);
    let mut rng = Rng(sd);
    let (q, k, v) = rng.qkv(s);
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
