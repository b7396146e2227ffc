//! Property tests: random shapes and options against the reference. proptest draws fresh
//! cases on every run (no fixed seed, no persistence file), prints the failing case (its `seed`
//! field replays the inputs) and shrinks it.

use crate::{matrix::shape, run_checked};
use proptest::prelude::*;
use webattn::{Attention, Remainder, SigmoidBias};

fn attention(kind: u8, causal: bool, flag: bool, window: Option<u32>, hq: usize) -> Attention {
    let a = match kind % 3 {
        0 => {
            let a = Attention::softmax().causal(causal);
            if flag {
                a.sinks((0..hq).map(|h| h as f32 - 1.5).collect())
            } else {
                a
            }
        }
        1 => Attention::sigmoid()
            .causal(causal)
            .bias(if flag {
                SigmoidBias::MinusLogKeys
            } else {
                SigmoidBias::Value(-0.5)
            })
            .normalize(!causal && flag),
        _ => Attention::stick_breaking()
            .attend_current(causal)
            .remainder(if flag {
                Remainder::ToCurrent
            } else {
                Remainder::Drop
            }),
    };
    a.with_window(window)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn random_problems_match_the_reference(
        kind in 0u8..3, causal: bool, flag: bool,
        window in proptest::option::of(1u32..40),
        b in 1usize..3, hkv in 1usize..3, g in 1usize..4,
        tq in 1usize..70, extra in 0usize..40,
        d4 in 1usize..33, dv4 in 1usize..33,
        seed: u64,
    ) {
        let s = shape(b, hkv * g, hkv, tq, tq + extra, 4 * d4, 4 * dv4);
        let attn = attention(kind, causal, flag, window, s.q_heads);
        let r = run_checked(&attn, &s, seed, 1.0, 1e-5);
        prop_assert!(r.ok(), "{:?} {:?} seed {}: {:?}", attn, s, seed, r.verdicts);
    }
}
