//! Every error variant, produced on purpose: bad input gets a typed error, never a panic.

use crate::ctx;
use crate::ctx_with;
use crate::matrix::shape;
use webattn::{AdapterChoice, Attention, Context, ContextOptions, DType, Error, Shape};

fn f32s(n: usize) -> Vec<f32> {
    (0..n).map(|i| (i % 7) as f32 * 0.1 + 0.05).collect()
}

fn tensors(c: &Context, s: &Shape) -> (webattn::Tensor, webattn::Tensor, webattn::Tensor) {
    let n = |x: [usize; 4]| x.iter().product::<usize>();
    (
        c.tensor_f32(&s.q(), &f32s(n(s.q()))).unwrap(),
        c.tensor_f32(&s.k(), &f32s(n(s.k()))).unwrap(),
        c.tensor_f32(&s.v(), &f32s(n(s.v()))).unwrap(),
    )
}

#[test]
fn shape_mismatches() {
    let c = ctx();
    let s = shape(1, 4, 2, 8, 8, 16, 16);
    let (q, k, v) = tensors(c, &s);
    // k and v swapped in length, GQA not dividing, wrong rank, data length.
    let bad_k = c.tensor_f32(&[1, 2, 9, 16], &f32s(2 * 9 * 16)).unwrap();
    assert!(matches!(
        c.run(&Attention::softmax(), &q, &bad_k, &v),
        Err(Error::ShapeMismatch(_))
    ));
    let q3 = c.tensor_f32(&[1, 3, 8, 16], &f32s(3 * 8 * 16)).unwrap();
    assert!(matches!(
        c.run(&Attention::softmax(), &q3, &k, &v),
        Err(Error::ShapeMismatch(_))
    ));
    let flat = c.tensor_f32(&[4 * 8 * 16], &f32s(4 * 8 * 16)).unwrap();
    assert!(matches!(
        c.run(&Attention::softmax(), &flat, &k, &v),
        Err(Error::ShapeMismatch(_))
    ));
    assert!(matches!(
        c.tensor_f32(&[2, 3], &[1.0; 5]),
        Err(Error::ShapeMismatch(_))
    ));
    let e = pollster::block_on(c.attention_f32(
        &Attention::sigmoid(),
        &s,
        &[1.0; 3],
        &[1.0; 3],
        &[1.0; 3],
    ));
    assert!(matches!(e, Err(Error::ShapeMismatch(_))));
    let zero = Shape { q_len: 0, ..s };
    assert!(matches!(zero.validate(), Err(Error::ShapeMismatch(_))));
    // Tk = 0 is an empty cache: valid (SPEC.md).
    assert!(s.with_kv_len(0).validate().is_ok());
    // Preallocated output of the wrong shape.
    let out = c
        .alloc_output(
            &Attention::softmax(),
            &shape(1, 4, 2, 9, 8, 16, 16),
            DType::F32,
        )
        .unwrap();
    let mut enc = c.device().create_command_encoder(&Default::default());
    let e = c.record_into(&mut enc, &Attention::softmax(), &q, &k, &v, &out);
    assert!(matches!(e, Err(Error::ShapeMismatch(_))), "{e:?}");
    // Messages say what is wrong.
    let msg = c
        .run(&Attention::softmax(), &q3, &k, &v)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("multiple"), "{msg}");
}

#[test]
fn dtype_mismatch() {
    let c = ctx();
    let s = shape(1, 1, 1, 4, 4, 16, 16);
    let (q, k, _) = tensors(c, &s);
    let v16 = c
        .tensor_f16(&s.v(), &[half::f16::from_f32(0.5); 64])
        .unwrap();
    let e = c.run(&Attention::softmax(), &q, &k, &v16);
    assert!(
        matches!(e, Err(Error::DTypeMismatch { what: "v", .. })),
        "{e:?}"
    );
}

#[test]
fn unsupported_head_dims() {
    let c = ctx();
    for (d, dv) in [(6, 6), (264, 264), (16, 2)] {
        let s = shape(1, 1, 1, 4, 4, d, dv);
        let (q, k, v) = tensors(c, &s);
        let e = c.run(&Attention::stick_breaking(), &q, &k, &v);
        assert!(
            matches!(e, Err(Error::UnsupportedHeadDim { .. })),
            "D={d}: {e:?}"
        );
    }
}

#[test]
fn tensor_too_large() {
    // One (batch, kv head) group larger than the storage-binding limit cannot be split.
    let c = ctx_with(|o| o.max_binding_size = Some(4096));
    let s = shape(1, 2, 1, 64, 64, 32, 32); // q of one unit: 64 x 32 x 4 = 8 KiB
    let (q, k, v) = tensors(&c, &s);
    let e = c.run(&Attention::softmax(), &q, &k, &v);
    assert!(matches!(e, Err(Error::TensorTooLarge { .. })), "{e:?}");
    // A buffer larger than the device allows at all.
    let huge = [1usize << 20, 1 << 20, 1 << 10];
    assert!(matches!(
        c.empty(&huge, DType::F32),
        Err(Error::TensorTooLarge { .. })
    ));
}

#[test]
fn missing_feature() {
    // Forcing the cooperative-matrix (tensor-core) variant on an adapter without it.
    if ctx().info().cooperative_matrix.is_empty() {
        let mut o = ContextOptions::from_env().unwrap();
        o.variant = Some(webattn::Variant::CoopMatrix);
        let e = Context::new_blocking(o);
        assert!(matches!(e, Err(Error::MissingFeature(_))), "{e:?}");
        assert!(e.unwrap_err().to_string().contains("cooperative"));
    }
    // Forcing the subgroup variant where subgroups are narrower than a 16-lane row (lavapipe).
    let i = ctx().info();
    if !i.subgroups || i.subgroup_sizes.0 < 16 {
        let mut o = ContextOptions::from_env().unwrap();
        o.variant = Some(webattn::Variant::Subgroup);
        let e = Context::new_blocking(o);
        assert!(matches!(e, Err(Error::MissingFeature(_))), "{e:?}");
    }
}

#[test]
fn variant_per_call() {
    // f32 tensors never take the cooperative-matrix (f16 tensor-core) variant, and neither do
    // head dims that are not multiples of 16.
    let c = ctx();
    for d in [8, 16, 40, 64, 80, 128, 256] {
        let t = c.forward_tiles(DType::F32, d, d).unwrap();
        assert_ne!(t.variant, webattn::Variant::CoopMatrix);
        let h = c.forward_tiles(DType::F16, d, d).unwrap();
        if d % 16 != 0 {
            assert_ne!(h.variant, webattn::Variant::CoopMatrix);
        }
        if c.info().variant == webattn::Variant::Portable {
            assert_eq!((t.variant, h.variant), (c.info().variant, c.info().variant));
        }
    }
}

#[test]
fn invalid_options() {
    let c = ctx();
    let s = shape(1, 2, 2, 4, 4, 16, 16);
    let (q, k, v) = tensors(c, &s);
    let bad = [
        Attention::softmax().scale(f32::NAN),
        Attention::softmax().window(0),
        Attention::softmax().sinks(vec![0.0]),
        Attention::softmax().sinks(vec![0.0, f32::INFINITY]),
        Attention::sigmoid().bias(webattn::SigmoidBias::Value(f32::NAN)),
        // Builder options that do not apply to the kind are errors, not silent no-ops.
        Attention::stick_breaking().causal(false),
        Attention::sigmoid().sinks(vec![0.0, 0.0]),
        Attention::softmax().attend_current(true),
        Attention::stick_breaking().normalize(true),
    ];
    for attn in bad {
        let e = c.run(&attn, &q, &k, &v);
        assert!(matches!(e, Err(Error::InvalidOption(_))), "{attn:?}: {e:?}");
        let r = webattn::reference(&attn, &s, &f32s(128), &f32s(128), &f32s(128));
        assert!(matches!(r, Err(Error::InvalidOption(_))));
    }
    // A buffer without STORAGE usage cannot become a tensor.
    let b = c.device().create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 256,
        usage: wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    assert!(matches!(
        webattn::Tensor::from_buffer(b, &[64], DType::F32),
        Err(Error::InvalidOption(_))
    ));
}

#[test]
fn no_adapter() {
    // Natively there is no browser WebGPU backend to find.
    let e = Context::new_blocking(ContextOptions {
        adapter: AdapterChoice::Backends(wgpu::Backends::BROWSER_WEBGPU),
        ..Default::default()
    });
    assert!(matches!(e, Err(Error::NoAdapter(_))), "{e:?}");
    assert_eq!(
        AdapterChoice::parse("software"),
        Some(AdapterChoice::Software)
    );
    assert_eq!(AdapterChoice::parse("bogus"), None);
}

#[test]
fn gpu_errors_are_reported_not_panicked() {
    // A destroyed input buffer makes the submit invalid: the next call reports Error::Gpu.
    let c = ctx_with(|_| {});
    let s = shape(1, 1, 1, 4, 4, 16, 16);
    let (q, k, v) = tensors(&c, &s);
    q.buffer().destroy();
    let r = c
        .run(&Attention::softmax(), &q, &k, &v)
        .and_then(|out| c.read_f32_blocking(&out.o));
    let e = r.and_then(|_| c.check());
    assert!(matches!(e, Err(Error::Gpu(_))), "{e:?}");
}

#[test]
fn device_lost_is_an_error() {
    let c = ctx_with(|_| {});
    let s = shape(1, 1, 1, 4, 4, 16, 16);
    let (q, k, v) = tensors(&c, &s);
    c.device().destroy();
    let _ = c.device().poll(wgpu::PollType::Poll);
    let r = c
        .run(&Attention::stick_breaking(), &q, &k, &v)
        .and_then(|out| c.read_f32_blocking(&out.o));
    assert!(matches!(r, Err(Error::DeviceLost(_))), "{r:?}");
}
