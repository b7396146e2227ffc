//! Invariants of SPEC.md that hold whatever the inputs.

use crate::matrix::shape;
use crate::{ctx, Rng};
use webattn::{Attention, DType, SigmoidBias};

#[test]
fn stick_breaking_weights_and_remainder_sum_to_one() {
    let c = ctx();
    let s = shape(1, 4, 2, 45, 45, 32, 32);
    let mut rng = Rng(crate::seed("sb sum"));
    for attend_current in [false, true] {
        let attn = Attention::stick_breaking().attend_current(attend_current);
        let q = rng.vec(s.q().iter().product(), 2.0);
        let k = rng.vec(s.k().iter().product(), 2.0);
        let v = rng.vec(s.v().iter().product(), 1.0);
        let a = pollster::block_on(c.weights_f32(&attn, &s, &q, &k, &v)).unwrap();
        let out = pollster::block_on(c.attention_f32(&attn, &s, &q, &k, &v)).unwrap();
        let rem = out.rem.unwrap();
        for (r, row) in a.chunks(s.kv_len).enumerate() {
            let total: f64 = row.iter().map(|&x| x as f64).sum::<f64>() + rem[r] as f64;
            assert!((total - 1.0).abs() < 1e-5, "row {r}: sum A + rem = {total}");
            assert!(row.iter().all(|&x| (0.0..=1.0).contains(&x)));
        }
    }
}

#[test]
fn sigmoid_with_bias_minus_infinity_gives_zero() {
    let c = ctx();
    let s = shape(1, 2, 2, 33, 33, 64, 64);
    let mut rng = Rng(crate::seed("sigmoid -inf"));
    let (q, k, v) = (
        rng.vec(s.q().iter().product(), 3.0),
        rng.vec(s.k().iter().product(), 3.0),
        rng.vec(s.v().iter().product(), 1.0),
    );
    for causal in [false, true] {
        let attn = Attention::sigmoid()
            .causal(causal)
            .bias(SigmoidBias::Value(f32::NEG_INFINITY));
        let out = pollster::block_on(c.attention_f32(&attn, &s, &q, &k, &v)).unwrap();
        assert!(out.o.iter().all(|&x| x == 0.0), "bias -inf must give o = 0");
    }
}

#[test]
fn softmax_rows_with_a_sink_sum_to_one_minus_the_sink_share() {
    let c = ctx();
    let s = shape(2, 3, 1, 26, 26, 16, 16);
    let mut rng = Rng(crate::seed("sink sum"));
    let (q, k, v) = (
        rng.vec(s.q().iter().product(), 1.0),
        rng.vec(s.k().iter().product(), 1.0),
        rng.vec(s.v().iter().product(), 1.0),
    );
    let sinks = vec![2.0f32, -1.0, 20.0];
    for causal in [false, true] {
        let attn = Attention::softmax().causal(causal).sinks(sinks.clone());
        let a = pollster::block_on(c.weights_f32(&attn, &s, &q, &k, &v)).unwrap();
        let lse = pollster::block_on(c.attention_f32(&attn, &s, &q, &k, &v))
            .unwrap()
            .lse
            .unwrap();
        for (r, row) in a.chunks(s.kv_len).enumerate() {
            let h = (r / s.q_len) % s.q_heads;
            let total: f64 = row.iter().map(|&x| x as f64).sum();
            let want = 1.0 - (sinks[h] as f64 - lse[r] as f64).exp();
            assert!(
                (total - want).abs() < 1e-5,
                "row {r}: sum {total}, want {want}"
            );
        }
    }
}

#[test]
fn outputs_are_written_in_place_of_poison() {
    // record_into writes every element of caller-owned outputs.
    let c = ctx();
    let s = shape(1, 1, 1, 7, 7, 16, 16);
    let attn = Attention::softmax();
    let out = c.alloc_output(&attn, &s, DType::F32).unwrap();
    c.fill_bits(&out.o, 0x7fc0_0000);
    let mut rng = Rng(crate::seed("poison"));
    let q = c
        .tensor_f32(&s.q(), &rng.vec(s.q().iter().product(), 1.0))
        .unwrap();
    let mut enc = c.device().create_command_encoder(&Default::default());
    c.record_into(&mut enc, &attn, &q, &q, &q, &out).unwrap();
    c.submit(enc).unwrap();
    assert!(c
        .read_f32_blocking(&out.o)
        .unwrap()
        .iter()
        .all(|x| x.is_finite()));
}
