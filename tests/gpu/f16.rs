//! f16 storage, f32 accumulation, through both routes: `vec4<f16>` loads where the device has
//! shader-f16 (lavapipe does) and packed `unpack2x16float` loads (forced here, as on
//! SwiftShader and browsers without shader-f16). Tolerance: SPEC.md section 6, 5e-3 relative,
//! against the f64 reference on the f16-rounded inputs.

use std::sync::OnceLock;

use crate::matrix::{shape, variants};
use crate::{ctx, errors, Rng};
use half::f16;
use webattn::{Context, Shape, Storage};

fn packed() -> &'static Context {
    static C: OnceLock<Context> = OnceLock::new();
    C.get_or_init(crate::packed_ctx)
}

fn check_f16(c: &Context, s: &Shape, tag: &str) -> f64 {
    let sd = crate::seed(tag);
    let mut rng = Rng(sd);
    let n = |x: [usize; 4]| x.iter().product::<usize>();
    let round = |v: Vec<f32>| -> (Vec<f16>, Vec<f32>) {
        let h: Vec<f16> = v.iter().map(|&x| f16::from_f32(x)).collect();
        let back = h.iter().map(|x| x.to_f32()).collect();
        (h, back)
    };
    let (qh, q) = round(rng.vec(n(s.q()), 1.0));
    let (kh, k) = round(rng.vec(n(s.k()), 1.0));
    let (vh, v) = round(rng.vec(n(s.v()), 1.0));
    let mut worst = 0.0f64;
    for (name, attn) in variants(s) {
        let got = pollster::block_on(c.attention_f16(&attn, s, &qh, &kh, &vh)).unwrap();
        let want = webattn::reference(&attn, s, &q, &k, &v).unwrap();
        let (rel, _) = errors(&got.o, &want.o);
        let rel_aux = match (
            got.lse.as_ref().or(got.rem.as_ref()),
            want.lse.as_ref().or(want.rem.as_ref()),
        ) {
            (Some(g), Some(w)) => errors(g, w).0,
            _ => 0.0,
        };
        assert!(
            rel < 5e-3 && rel_aux < 5e-3,
            "{tag} {name} {s:?} seed {sd}: f16 rel error o {rel:e}, aux {rel_aux:e}"
        );
        worst = worst.max(rel);
    }
    worst
}

#[test]
fn f16_native_route() {
    let c = ctx();
    if c.info().f16_storage != Storage::F16 {
        eprintln!("adapter has no shader-f16: the packed route is tested below");
    }
    let mut worst = 0.0f64;
    for s in [
        shape(1, 2, 2, 33, 33, 64, 64),
        shape(2, 4, 2, 17, 40, 80, 80),
        shape(1, 1, 1, 1, 1, 16, 16),
    ] {
        worst = worst.max(check_f16(c, &s, "f16 native"));
    }
    eprintln!(
        "f16 ({:?}) worst relative error: {worst:e}",
        c.info().f16_storage
    );
}

#[test]
fn f16_packed_route() {
    let c = packed();
    assert_eq!(c.info().f16_storage, Storage::F16Packed);
    let mut worst = 0.0f64;
    for s in [
        shape(1, 2, 2, 33, 33, 64, 64),
        shape(2, 4, 2, 17, 40, 80, 80),
        shape(1, 1, 1, 1, 1, 16, 16),
        shape(1, 2, 1, 20, 20, 256, 256),
    ] {
        worst = worst.max(check_f16(c, &s, "f16 packed"));
    }
    eprintln!("f16 (packed) worst relative error: {worst:e}");
}

/// Rows whose weights are all tiny keep their relative precision on f16 tensors: normalised
/// sigmoid with bias -17.7 and logits near 0 gives every key a weight near 2e-8, below half
/// f16's smallest subnormal (6e-8), while o (weights over their sum plus 1e-8) is of the size
/// of v. A kernel that hands such weights to the tensor cores as unscaled f16 computes o = 0
/// (relative error 1); coopmat2 scales each row's P by a power of two
/// (shaders/common/tile_coop2.wgsl, scale_p). The `coopmat` variant
/// (shaders/common/tile_coop.wgsl) does not, so normalised sigmoid takes the subgroup variant
/// where `coopmat` would run (`AttentionKind::coop_weights_fit_f16`; this test failed on the
/// H200 under the automatic variant before).
#[test]
fn f16_tiny_weights_keep_precision() {
    use webattn::{Attention, SigmoidBias};
    let c = ctx();
    let sd = crate::seed("f16 tiny weights");
    let mut rng = Rng(sd);
    let attn = Attention::sigmoid()
        .bias(SigmoidBias::Value(-17.7))
        .normalize(true)
        .scale(0.01);
    for s in [shape(1, 2, 2, 1, 1, 64, 64), shape(1, 2, 1, 33, 70, 64, 64)] {
        let n = |x: [usize; 4]| x.iter().product::<usize>();
        let mut gen = |len: usize| -> (Vec<f16>, Vec<f32>) {
            let h: Vec<f16> = rng
                .vec(len, 1.0)
                .iter()
                .map(|&x| f16::from_f32(x))
                .collect();
            let back = h.iter().map(|x| x.to_f32()).collect();
            (h, back)
        };
        let (qh, q) = gen(n(s.q()));
        let (kh, k) = gen(n(s.k()));
        let (vh, v) = gen(n(s.v()));
        let got = pollster::block_on(c.attention_f16(&attn, &s, &qh, &kh, &vh)).unwrap();
        let want = webattn::reference(&attn, &s, &q, &k, &v).unwrap();
        let (rel, _) = errors(&got.o, &want.o);
        assert!(
            rel < 5e-3,
            "{s:?} seed {sd}: tiny weights, f16 rel error o {rel:e}"
        );
    }
}
