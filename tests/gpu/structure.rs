//! The library API's promises: no wgpu object per repeated call, outputs checked against the
//! kind they were allocated for, aliasing refused up front, GPU errors never consumed so that
//! stale results look valid, Tk = 0 as a valid call, and options that round-trip through the
//! JSON form the CLI and the browser use.

use crate::matrix::shape;
use crate::{ctx, ctx_with, seed, Rng, NAN_BITS};
use webattn::testing::option_matrix;
use webattn::{Attention, DType, Error, Shape};

fn upload(c: &webattn::Context, s: &Shape, rng: &mut Rng) -> [webattn::Tensor; 3] {
    let (q, k, v) = rng.qkv(s);
    [
        c.tensor_f32(&s.q(), &q).unwrap(),
        c.tensor_f32(&s.k(), &k).unwrap(),
        c.tensor_f32(&s.v(), &v).unwrap(),
    ]
}

#[test]
fn repeated_record_creates_no_wgpu_objects() {
    let c = ctx_with(|_| {});
    let s = shape(1, 4, 2, 40, 40, 32, 32);
    let mut rng = Rng(seed("no alloc"));
    let [q, k, v] = upload(&c, &s, &mut rng);
    for (name, attn) in option_matrix(&s) {
        let out = c.alloc_output(&attn, &s, DType::F32).unwrap();
        let mut enc = c.device().create_command_encoder(&Default::default());
        c.record_into(&mut enc, &attn, &q, &k, &v, &out).unwrap();
        let before = c.objects_created();
        for _ in 0..50 {
            c.record_into(&mut enc, &attn, &q, &k, &v, &out).unwrap();
        }
        assert_eq!(
            c.objects_created(),
            before,
            "{name}: objects created per call"
        );
        c.submit(enc).unwrap();
    }
}

#[test]
fn outputs_of_another_kind_are_refused() {
    let c = ctx();
    let s = shape(1, 2, 2, 9, 9, 16, 16);
    let mut rng = Rng(seed("wrong kind"));
    let [q, k, v] = upload(c, &s, &mut rng);
    let kinds = [
        Attention::softmax(),
        Attention::sigmoid(),
        Attention::stick_breaking(),
    ];
    for alloc in &kinds {
        let out = c.alloc_output(alloc, &s, DType::F32).unwrap();
        for attn in &kinds {
            let mut enc = c.device().create_command_encoder(&Default::default());
            let r = c.record_into(&mut enc, attn, &q, &k, &v, &out);
            if alloc.kind().name() == attn.kind().name() {
                r.unwrap();
            } else {
                assert!(
                    matches!(r, Err(Error::InvalidOption(ref m)) if m.contains("alloc_output")),
                    "{} output for {}: {r:?}",
                    alloc.kind().name(),
                    attn.kind().name()
                );
            }
        }
    }
}

#[test]
fn aliasing_is_refused_up_front_and_leaves_no_stale_error() {
    let c = ctx_with(|_| {});
    let s = shape(1, 2, 2, 8, 8, 16, 16);
    let mut rng = Rng(seed("alias"));
    let [q, k, v] = upload(&c, &s, &mut rng);
    let attn = Attention::stick_breaking();
    let mut out = c.alloc_output(&attn, &s, DType::F32).unwrap();
    let good_o = out.o.clone();
    out.o = q.clone();
    let mut enc = c.device().create_command_encoder(&Default::default());
    let r = c.record_into(&mut enc, &attn, &q, &k, &v, &out);
    assert!(matches!(r, Err(Error::Aliasing(_))), "{r:?}");
    // rem aliasing o.
    out.o = good_o;
    out.rem =
        Some(webattn::Tensor::from_buffer(out.o.buffer().clone(), &s.rows(), DType::F32).unwrap());
    let r = c.record_into(&mut enc, &attn, &q, &k, &v, &out);
    assert!(matches!(r, Err(Error::Aliasing(_))), "{r:?}");
    // Nothing invalid reached the GPU: later calls work and give the right answer.
    drop(enc);
    c.check().unwrap();
    let (qh, kh, vh) = (
        c.read_f32_blocking(&q).unwrap(),
        c.read_f32_blocking(&k).unwrap(),
        c.read_f32_blocking(&v).unwrap(),
    );
    let got = c.attention_f32_blocking(&attn, &s, &qh, &kh, &vh).unwrap();
    let want = webattn::reference(&attn, &s, &qh, &kh, &vh).unwrap();
    assert!(crate::errors(&got.o, &want.o).0 < 1e-5);
}

#[test]
fn gpu_errors_stay_until_taken() {
    let c = ctx_with(|_| {});
    let s = shape(1, 1, 1, 4, 4, 16, 16);
    let mut rng = Rng(seed("sticky"));
    let [q, k, v] = upload(&c, &s, &mut rng);
    q.buffer().destroy();
    let first = c
        .run(&Attention::softmax(), &q, &k, &v)
        .and_then(|out| c.read_f32_blocking(&out.o));
    let first = first.and_then(|_| c.check());
    assert!(matches!(first, Err(Error::Gpu(_))), "{first:?}");
    // A second read must not succeed with stale data: the error is sticky.
    let second = c.read_f32_blocking(&k);
    assert!(matches!(second, Err(Error::Gpu(_))), "{second:?}");
    assert!(c.take_error().is_some());
    c.check().unwrap();
    c.read_f32_blocking(&k).unwrap();
}

#[test]
fn an_empty_cache_gives_empty_rows() {
    let c = ctx();
    let s = shape(2, 4, 2, 3, 0, 16, 16);
    let mut rng = Rng(seed("tk0"));
    let (q, k, v) = rng.qkv(&s);
    assert!(k.is_empty() && v.is_empty());
    for (name, attn) in option_matrix(&s) {
        let got = c.attention_f32_blocking(&attn, &s, &q, &k, &v).unwrap();
        assert!(got.o.iter().all(|&x| x == 0.0), "{name}: o");
        let want = webattn::reference(&attn, &s, &q, &k, &v).unwrap();
        if let (Some(g), Some(w)) = (&got.lse, &want.lse) {
            for (a, b) in g.iter().zip(w) {
                assert!(*a as f64 == *b, "{name}: lse {a} vs {b}");
            }
        }
        if let Some(r) = &got.rem {
            assert!(r.iter().all(|&x| x == 1.0), "{name}: rem {r:?}");
        }
        let a = pollster::block_on(c.weights_f32(&attn, &s, &q, &k, &v)).unwrap();
        assert!(a.is_empty());
    }
}

#[test]
fn options_round_trip_through_json() {
    let s = shape(1, 3, 1, 5, 5, 16, 16);
    for (name, attn) in option_matrix(&s) {
        let j = attn.to_json();
        let back = Attention::from_json(j.clone()).unwrap();
        assert_eq!(back, attn, "{name}: {j}");
    }
    let e = Attention::from_json(serde_json::json!({"kind": "sigmoid", "sinks": [1.0]}));
    assert!(
        matches!(e, Err(Error::InvalidOption(ref m)) if m.contains("sinks")),
        "{e:?}"
    );
    let e = Attention::from_json(serde_json::json!({"kind": "stick-breaking", "causal": true}));
    assert!(matches!(e, Err(Error::InvalidOption(_))), "{e:?}");
    let e = Attention::from_json(serde_json::json!({"kind": "nope"}));
    assert!(
        matches!(e, Err(Error::InvalidOption(ref m)) if m.contains("softmax")),
        "{e:?}"
    );
    assert_eq!(webattn::kinds::find("sb").unwrap().name, "stick-breaking");
}

#[test]
fn upload_into_an_existing_tensor() {
    let c = ctx();
    let t = c.empty(&[2, 3], DType::F32).unwrap();
    c.fill_bits(&t, NAN_BITS);
    c.write_f32(&t, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    assert_eq!(
        c.read_f32_blocking(&t).unwrap(),
        [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    );
    assert!(matches!(
        c.write_f32(&t, &[1.0]),
        Err(Error::ShapeMismatch(_))
    ));
    let h = c.empty(&[3], DType::F16).unwrap();
    assert!(matches!(
        c.write_f32(&h, &[1.0; 3]),
        Err(Error::DTypeMismatch { .. })
    ));
}

#[test]
fn weights_split_inside_a_gqa_group() {
    // A [B, Hq, Tq, Tk] of one GQA group (3 query heads x 64 x 64 x 4 bytes = 48 KiB) exceeds
    // a 20 KiB binding limit, but one query head's (16 KiB) fits: the weights pass splits
    // within the group (it was refused when chunks had to be whole groups).
    let c = ctx_with(|o| o.max_binding_size = Some(20 * 1024));
    let s = shape(1, 6, 2, 64, 64, 16, 16);
    let mut rng = Rng(seed("gqa weights split"));
    let (q, k, v) = rng.qkv(&s);
    for attn in [
        Attention::stick_breaking(),
        Attention::softmax().causal(true),
    ] {
        let a = pollster::block_on(c.weights_f32(&attn, &s, &q, &k, &v)).unwrap();
        let want = webattn::reference_weights(&attn, &s, &q, &k, &v).unwrap();
        assert!(crate::errors(&a, &want).0 < 1e-5, "{attn:?}");
        let got = c.attention_f32_blocking(&attn, &s, &q, &k, &v).unwrap();
        let r = webattn::reference(&attn, &s, &q, &k, &v).unwrap();
        assert!(crate::errors(&got.o, &r.o).0 < 1e-5, "{attn:?}");
    }
}
