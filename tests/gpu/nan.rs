//! SPEC.md's NaN and Inf policy ("Shapes and layout"), for every kind and its option sets:
//! - a key outside S(i) (V(i) for stick-breaking) never changes row i, even with NaN or Inf in
//!   its k or v: in diagonal and window-edge tiles, with Tq != Tk, GQA and partial tiles;
//! - NaN in q_i, or in the k or v of a key that row i attends to, makes row i NaN (o, and lse
//!   or rem where they depend on it); such a row is never reported as an empty row;
//! - softmax rows whose logits overflow f32 are never reported as empty rows.
//!
//! (Over 500 lines on purpose: every planted position and kind is its own spelled-out case, so a
//! failure names exactly which rule broke.)
//!
//! Each planted run is compared with the clean run of the same inputs on the same kernel: rows
//! that cannot see the planted values must be finite and equal to it (within 1e-5; in practice
//! bit for bit). The f16 runs take the cooperative-matrix variant where the device has one
//! (lavapipe runs them through the portable f16 route). Every assertion prints its seed
//! (replay with WEBATTN_SEED).

use crate::matrix::{shape, variants};
use crate::{ctx, seed, Rng};
use half::f16;
use webattn::{
    Attention, Context, DType, Remainder, Shape, SigmoidOptions, SoftmaxOptions,
    StickBreakingOptions,
};

const NAN_BITS_F32: u32 = 0x7fc0_0000;
const NAN_BITS_F16X2: u32 = 0x7e00_7e00;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Prec {
    F32,
    F16,
}

/// Outputs of one GPU run, widened to f32.
struct Out {
    o: Vec<f32>,
    aux: Option<Vec<f32>>,
}

/// Runs the forward kernel on the shared context with outputs poisoned (NaN) first.
fn run(attn: &Attention, s: &Shape, q: &[f32], k: &[f32], v: &[f32], prec: Prec) -> Out {
    run_on(ctx(), attn, s, q, k, v, prec)
}

/// `run` on context `c`.
fn run_on(
    c: &Context,
    attn: &Attention,
    s: &Shape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    prec: Prec,
) -> Out {
    let half = |x: &[f32]| x.iter().map(|&y| f16::from_f32(y)).collect::<Vec<_>>();
    let (qt, kt, vt, dtype) = match prec {
        Prec::F32 => (
            c.tensor_f32(&s.q(), q).unwrap(),
            c.tensor_f32(&s.k(), k).unwrap(),
            c.tensor_f32(&s.v(), v).unwrap(),
            DType::F32,
        ),
        Prec::F16 => (
            c.tensor_f16(&s.q(), &half(q)).unwrap(),
            c.tensor_f16(&s.k(), &half(k)).unwrap(),
            c.tensor_f16(&s.v(), &half(v)).unwrap(),
            DType::F16,
        ),
    };
    let out = c.alloc_output(attn, s, dtype).unwrap();
    let poison = match prec {
        Prec::F32 => NAN_BITS_F32,
        Prec::F16 => NAN_BITS_F16X2,
    };
    c.fill_bits(&out.o, poison);
    for t in [&out.lse, &out.rem].into_iter().flatten() {
        c.fill_bits(t, NAN_BITS_F32);
    }
    let mut enc = c.device().create_command_encoder(&Default::default());
    c.record_into(&mut enc, attn, &qt, &kt, &vt, &out).unwrap();
    c.submit(enc).unwrap();
    Out {
        o: c.read_f32_blocking(&out.o).unwrap(),
        aux: out
            .lse
            .as_ref()
            .or(out.rem.as_ref())
            .map(|t| c.read_f32_blocking(t).unwrap()),
    }
}

/// Which keys a row reads, straight from SPEC.md (independent of the kernels' code).
struct Sees {
    causal: bool,
    self_excl: bool,
    window: Option<u32>,
    rem_to_current: bool,
    tq: usize,
    tk: usize,
}

impl Sees {
    fn of(attn: &Attention, s: &Shape) -> Self {
        let (causal, self_excl, rem_to_current) = if let Some(o) = attn.options::<SoftmaxOptions>()
        {
            (o.causal, false, false)
        } else if let Some(o) = attn.options::<SigmoidOptions>() {
            (o.causal, false, false)
        } else if let Some(o) = attn.options::<StickBreakingOptions>() {
            (true, !o.attend_current, o.remainder == Remainder::ToCurrent)
        } else {
            panic!("unknown kind {}", attn.kind().name())
        };
        Sees {
            causal,
            self_excl,
            window: attn.window_value(),
            rem_to_current,
            tq: s.q_len,
            tk: s.kv_len,
        }
    }

    fn pos(&self, i: usize) -> i64 {
        i as i64 + self.tk as i64 - self.tq as i64
    }

    /// Is key j in S(i) (V(i)): does row i read k_j?
    fn k(&self, i: usize, j: usize) -> bool {
        let (p, j) = (self.pos(i), j as i64);
        if self.causal && (j > p || (self.self_excl && j == p)) {
            return false;
        }
        !matches!(self.window, Some(w) if j <= p - w as i64)
    }

    /// Does row i read v_j? S(i), plus the current token with "remainder to current".
    fn v(&self, i: usize, j: usize) -> bool {
        self.k(i, j) || (self.rem_to_current && self.pos(i) == j as i64)
    }

    fn has_key(&self, i: usize) -> bool {
        (0..self.tk).any(|j| self.k(i, j))
    }
}

/// What a row of a planted run must look like, against the clean run.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Row {
    /// Finite and equal to the clean run (o and lse / rem).
    Clean,
    /// o holds NaN (`all`: only NaN); lse / rem NaN (`aux_nan`) or equal to the clean run.
    Nan { all: bool, aux_nan: bool },
    /// o holds NaN or Inf; lse / rem equal to the clean run.
    NonFinite,
    /// Anything (a logit of +-Inf: its limit may be finite).
    Any,
}

fn same(g: f32, c: f32) -> bool {
    g.to_bits() == c.to_bits()
        || (g.is_finite() && c.is_finite() && (g - c).abs() <= 1e-5 * c.abs().max(1.0))
}

/// Planted runs, rows that had to match the clean run, and those of them that matched bit for
/// bit.
#[derive(Default)]
struct Tally {
    runs: usize,
    clean: usize,
    exact: usize,
}

impl Tally {
    fn report(&self, test: &str) {
        eprintln!(
            "{test}: {} planted runs; {} rows had to equal the clean run, {} of them bit for bit",
            self.runs, self.clean, self.exact
        );
    }
}

/// Checks every row of `got` against `clean` and the expectation `want(unit, row)`.
fn check_rows(
    s: &Shape,
    clean: &Out,
    got: &Out,
    want: impl Fn(usize, usize) -> Row,
    ctx: &str,
    tally: &mut Tally,
) {
    tally.runs += 1;
    let dv = s.v_dim;
    for u in 0..s.batch * s.q_heads {
        for i in 0..s.q_len {
            let r = u * s.q_len + i;
            let (g, c) = (&got.o[r * dv..][..dv], &clean.o[r * dv..][..dv]);
            let aux = got
                .aux
                .as_ref()
                .map(|a| (a[r], clean.aux.as_ref().unwrap()[r]));
            let w = want(u, i);
            let aux_same = aux.is_none_or(|(g, c)| same(g, c) && !g.is_nan());
            match w {
                Row::Clean => {
                    let ok = g.iter().zip(c).all(|(&g, &c)| g.is_finite() && same(g, c));
                    assert!(
                        ok && aux_same,
                        "{ctx}: unit {u} row {i} must equal the clean run (it cannot see the \
                         planted value): o {:?} vs clean {:?}, lse/rem {aux:?}",
                        &g[..dv.min(4)],
                        &c[..dv.min(4)]
                    );
                    tally.clean += 1;
                    if g.iter().zip(c).all(|(g, c)| g.to_bits() == c.to_bits())
                        && aux.is_none_or(|(g, c)| g.to_bits() == c.to_bits())
                    {
                        tally.exact += 1;
                    }
                }
                Row::Nan { all, aux_nan } => {
                    let o_ok = if all {
                        g.iter().all(|x| x.is_nan())
                    } else {
                        g.iter().any(|x| x.is_nan())
                    };
                    let aux_ok = if aux_nan {
                        aux.is_none_or(|(g, _)| g.is_nan())
                    } else {
                        aux_same
                    };
                    assert!(
                        o_ok && aux_ok,
                        "{ctx}: unit {u} row {i} must be NaN (all: {all}; lse/rem NaN: \
                         {aux_nan}): o {:?}, lse/rem {aux:?}",
                        &g[..dv.min(4)]
                    );
                }
                Row::NonFinite => {
                    assert!(
                        g.iter().any(|x| !x.is_finite()) && aux_same,
                        "{ctx}: unit {u} row {i} reads an Inf in v, o must be non-finite: \
                         o {:?}, lse/rem {aux:?}",
                        &g[..dv.min(4)]
                    );
                }
                Row::Any => {}
            }
        }
    }
}

/// The option sets of matrix.rs plus windows that span several tiles (full tiles between
/// window-edge tiles).
fn nan_variants(s: &Shape) -> Vec<(String, Attention)> {
    let mut v: Vec<(String, Attention)> = variants(s)
        .into_iter()
        .map(|(n, a)| (n.to_string(), a))
        .collect();
    v.push((
        "softmax causal window 70".into(),
        Attention::softmax().causal(true).window(70),
    ));
    v.push(("sigmoid window 90".into(), Attention::sigmoid().window(90)));
    v.push((
        "stick-breaking attend_current rem->current window 100".into(),
        Attention::stick_breaking()
            .attend_current(true)
            .remainder(Remainder::ToCurrent)
            .window(100),
    ));
    v
}

fn n(x: [usize; 4]) -> usize {
    x.iter().product()
}

/// Which keys (of one kv unit) hold the planted value.
struct Plant {
    kv_unit: usize,
    keys: Vec<bool>,
}

/// Writes `value` into rows `plant.keys` of kv unit `plant.kv_unit` of x ([B, Hkv, Tk, w]):
/// the whole row, or only component `comp`.
fn plant_into(x: &mut [f32], s: &Shape, w: usize, plant: &Plant, value: f32, comp: Option<usize>) {
    for (j, _) in plant.keys.iter().enumerate().filter(|(_, &p)| p) {
        let row = &mut x[(plant.kv_unit * s.kv_len + j) * w..][..w];
        match comp {
            Some(c) => row[c] = value,
            None => row.iter_mut().for_each(|y| *y = value),
        }
    }
}

/// (a): NaN and +Inf planted in k and in v at keys a chosen row cannot see (every such key,
/// for a random row and for a row of the last, partial row tile) and at a single key.
fn masked_keys_case(c: &Context, s: &Shape, prec: Prec, tag: &str, tally: &mut Tally) {
    let group = s.q_heads / s.kv_heads;
    let bq = c
        .forward_tiles(
            match prec {
                Prec::F32 => DType::F32,
                Prec::F16 => DType::F16,
            },
            s.head_dim,
            s.v_dim,
        )
        .unwrap()
        .bq as usize;
    for (name, attn) in nan_variants(s) {
        let sd = seed(&format!("{tag} {name}"));
        let mut rng = Rng(sd);
        let (q, k, v) = rng.qkv(s);
        let clean = run_on(c, &attn, s, &q, &k, &v, prec);
        let sees = Sees::of(&attn, s);
        // Rows whose complement (keys they cannot see) gets planted.
        let last_tile = (s.q_len - 1) / bq * bq;
        let r_any = rng.below(s.q_len as u64) as usize;
        let r_edge = last_tile + rng.below((s.q_len - last_tile) as u64) as usize;
        let j_one = rng.below(s.kv_len as u64) as usize;
        for (scheme, target) in [
            ("complement of a random row", Some(r_any)),
            ("complement of a last-tile row", Some(r_edge)),
            ("one key", None),
        ] {
            for in_v in [false, true] {
                let reads = |i: usize, j: usize| if in_v { sees.v(i, j) } else { sees.k(i, j) };
                let plant = Plant {
                    kv_unit: rng.below((s.batch * s.kv_heads) as u64) as usize,
                    keys: (0..s.kv_len)
                        .map(|j| match target {
                            Some(r) => !reads(r, j),
                            None => j == j_one,
                        })
                        .collect(),
                };
                if !plant.keys.iter().any(|&p| p) {
                    continue; // the row sees every key: nothing to plant
                }
                for value in [f32::NAN, f32::INFINITY] {
                    let (mut k2, mut v2) = (k.clone(), v.clone());
                    if in_v {
                        plant_into(&mut v2, s, s.v_dim, &plant, value, None);
                    } else if value.is_nan() {
                        plant_into(&mut k2, s, s.head_dim, &plant, value, None);
                    } else {
                        let c = rng.below(s.head_dim as u64) as usize;
                        plant_into(&mut k2, s, s.head_dim, &plant, value, Some(c));
                    }
                    let got = run_on(c, &attn, s, &q, &k2, &v2, prec);
                    let sees_plant = |u: usize, i: usize| {
                        u / group == plant.kv_unit
                            && (0..s.kv_len).any(|j| plant.keys[j] && reads(i, j))
                    };
                    let ctx = format!(
                        "{tag} {name} {prec:?} {s:?} seed {sd}: {value} in {} at {scheme} \
                         ({target:?}, kv unit {})",
                        if in_v { "v" } else { "k" },
                        plant.kv_unit
                    );
                    check_rows(
                        s,
                        &clean,
                        &got,
                        |u, i| match (sees_plant(u, i), in_v, value.is_nan()) {
                            (false, _, _) => Row::Clean,
                            (true, true, true) => Row::Nan {
                                all: false,
                                aux_nan: false,
                            },
                            (true, true, false) => Row::NonFinite,
                            (true, false, true) => Row::Nan {
                                all: false,
                                aux_nan: true,
                            },
                            (true, false, false) => Row::Any,
                        },
                        &ctx,
                        tally,
                    );
                    // The f64 reference follows the same rule (NaN exactly where a row reads it).
                    if prec == Prec::F32 && value.is_nan() {
                        let want = webattn::reference(&attn, s, &q, &k2, &v2).unwrap();
                        for u in 0..s.batch * s.q_heads {
                            for i in 0..s.q_len {
                                let r = u * s.q_len + i;
                                let o_nan =
                                    want.o[r * s.v_dim..][..s.v_dim].iter().any(|x| x.is_nan());
                                assert_eq!(
                                    o_nan,
                                    sees_plant(u, i),
                                    "{ctx}: reference o of unit {u} row {i}"
                                );
                                if let Some(a) = want.lse.as_ref().or(want.rem.as_ref()) {
                                    assert_eq!(
                                        a[r].is_nan(),
                                        !in_v && sees_plant(u, i),
                                        "{ctx}: reference lse/rem of unit {u} row {i}"
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn masked_nan_and_inf_never_reach_a_row() {
    let mut tally = Tally::default();
    for s in [
        // T not a multiple of the tiles; several row and key tiles.
        shape(1, 2, 2, 200, 200, 32, 32),
        // Chunked prefill (Tq < Tk), GQA 4:2, batch 2, Dv != D.
        shape(2, 4, 2, 70, 150, 16, 24),
        // Tq > Tk: the first causal rows have no key; GQA 3:1.
        shape(1, 3, 1, 90, 40, 32, 16),
    ] {
        masked_keys_case(ctx(), &s, Prec::F32, "masked f32", &mut tally);
    }
    tally.report("masked_nan_and_inf_never_reach_a_row");
}

#[test]
fn masked_nan_and_inf_never_reach_a_row_f16() {
    // Head dims that are multiples of 16: the cooperative-matrix variant where there is one.
    let mut tally = Tally::default();
    for s in [
        shape(1, 2, 2, 200, 200, 64, 64),
        shape(2, 4, 2, 70, 150, 32, 48),
        shape(1, 2, 1, 90, 40, 16, 32),
    ] {
        masked_keys_case(ctx(), &s, Prec::F16, "masked f16", &mut tally);
    }
    tally.report("masked_nan_and_inf_never_reach_a_row_f16");
}

#[test]
fn masked_nan_and_inf_never_reach_a_row_small_tiles() {
    // The tiles of WebGPU's default 16 KiB of workgroup memory (32 x 32) and the smallest
    // (16 x 16): other diagonal and window-edge geometry.
    let mut tally = Tally::default();
    for cap in [16384u32, 7000] {
        let c = crate::ctx_with(|o| o.max_workgroup_storage = Some(cap));
        let s = shape(1, 2, 1, 45, 77, 32, 32);
        masked_keys_case(&c, &s, Prec::F32, &format!("masked cap {cap}"), &mut tally);
    }
    tally.report("masked_nan_and_inf_never_reach_a_row_small_tiles");
}

/// (b): NaN in single q rows: each such row with a key is NaN (o entirely, lse / rem too),
/// never an empty row; a row without keys keeps the empty row's values; other rows are clean.
fn nan_query_case(s: &Shape, prec: Prec, tag: &str, tally: &mut Tally) {
    for (name, attn) in nan_variants(s) {
        let sd = seed(&format!("{tag} {name}"));
        let mut rng = Rng(sd);
        let (mut q, k, v) = rng.qkv(s);
        let clean = run(&attn, s, &q, &k, &v, prec);
        let sees = Sees::of(&attn, s);
        let units = s.batch * s.q_heads;
        // A random row, the first and the last row (the first is empty for stick-breaking at
        // Tq = Tk and for causal rows at Tq > Tk), each in a random unit.
        let rows: Vec<(usize, usize)> = [rng.below(s.q_len as u64) as usize, 0, s.q_len - 1]
            .into_iter()
            .map(|i| (rng.below(units as u64) as usize, i))
            .collect();
        for &(u, i) in &rows {
            let d = rng.below(s.head_dim as u64) as usize;
            q[(u * s.q_len + i) * s.head_dim + d] = f32::NAN;
        }
        let got = run(&attn, s, &q, &k, &v, prec);
        check_rows(
            s,
            &clean,
            &got,
            |u, i| {
                if rows.contains(&(u, i)) && sees.has_key(i) {
                    Row::Nan {
                        all: true,
                        aux_nan: true,
                    }
                } else {
                    Row::Clean
                }
            },
            &format!("{tag} {name} {prec:?} {s:?} seed {sd}: NaN in q rows {rows:?}"),
            tally,
        );
    }
}

#[test]
fn nan_in_a_query_row_stays_in_that_row() {
    let mut tally = Tally::default();
    for s in [
        shape(1, 2, 2, 200, 200, 32, 32),
        shape(2, 4, 2, 70, 150, 16, 24),
        shape(1, 3, 1, 90, 40, 32, 16),
    ] {
        nan_query_case(&s, Prec::F32, "nan q f32", &mut tally);
    }
    for s in [
        shape(1, 2, 2, 130, 130, 64, 64),
        shape(1, 2, 1, 90, 40, 16, 32),
    ] {
        nan_query_case(&s, Prec::F16, "nan q f16", &mut tally);
    }
    tally.report("nan_in_a_query_row_stays_in_that_row");
}

/// (c): softmax logits that overflow f32. Rows with keys are never reported as empty: lse is
/// not -inf (NaN where l is 0 or not finite, with o NaN too; or finite, with o finite);
/// empty rows keep o = 0 and lse = -inf (s_h with a sink).
#[test]
fn overflowing_softmax_logits_are_not_empty_rows() {
    let cases = [
        (shape(1, 2, 2, 100, 100, 32, 32), Prec::F32),
        (shape(1, 2, 2, 40, 20, 32, 32), Prec::F32),
        (shape(1, 2, 2, 100, 100, 32, 32), Prec::F16),
    ];
    for (s, prec) in cases {
        let sd = seed("overflow");
        let mut rng = Rng(sd);
        let (q0, k0, v) = rng.qkv(&s);
        // Mixed signs (+-inf and NaN logits), then q >= 0 >= k (every large logit -inf), then
        // q, k >= 0 (+inf logits).
        for (signs, qs, ks) in [("mixed", 0, 0), ("-inf", 1, -1), ("+inf", 1, 1)] {
            let sign = |x: f32, sg: i32| if sg == 0 { x } else { x.abs() * sg as f32 };
            let (q, k, attn_scale) = match prec {
                // f32 inputs of 1e30: every product overflows.
                Prec::F32 => (
                    q0.iter().map(|&x| sign(x, qs) * 1e30).collect::<Vec<_>>(),
                    k0.iter().map(|&x| sign(x, ks) * 1e30).collect::<Vec<_>>(),
                    None,
                ),
                // f16 inputs cannot overflow f32 products: a scale of 3e38 overflows z.
                Prec::F16 => (
                    q0.iter().map(|&x| sign(x, qs)).collect(),
                    k0.iter().map(|&x| sign(x, ks)).collect(),
                    Some(3.0e38f32),
                ),
            };
            let sinks: Vec<f32> = (0..s.q_heads).map(|h| h as f32 - 0.5).collect();
            for (name, attn) in [
                ("softmax", Attention::softmax()),
                ("causal", Attention::softmax().causal(true)),
                ("causal window", Attention::softmax().causal(true).window(9)),
                (
                    "causal sink",
                    Attention::softmax().causal(true).sinks(sinks.clone()),
                ),
            ] {
                let attn = match attn_scale {
                    Some(sc) => attn.scale(sc),
                    None => attn,
                };
                let got = run(&attn, &s, &q, &k, &v, prec);
                let lse = got.aux.as_ref().unwrap();
                let sees = Sees::of(&attn, &s);
                let sink = |u: usize| {
                    attn.options::<SoftmaxOptions>()
                        .and_then(|o| o.sinks.as_ref())
                        .map(|x| x[u % s.q_heads])
                };
                let (mut nan_rows, mut finite_rows) = (0, 0);
                for u in 0..s.batch * s.q_heads {
                    for i in 0..s.q_len {
                        let r = u * s.q_len + i;
                        let o = &got.o[r * s.v_dim..][..s.v_dim];
                        let ctx = format!(
                            "{name} {signs} {prec:?} {s:?} seed {sd}: unit {u} row {i}: \
                             lse {}, o {:?}",
                            lse[r],
                            &o[..4]
                        );
                        if !sees.has_key(i) {
                            let want = sink(u).unwrap_or(f32::NEG_INFINITY);
                            assert!(lse[r] == want && o.iter().all(|&x| x == 0.0), "{ctx}");
                        } else if lse[r].is_nan() {
                            assert!(o.iter().all(|x| x.is_nan()), "{ctx}: o must be NaN");
                            nan_rows += 1;
                        } else {
                            assert!(
                                lse[r] != f32::NEG_INFINITY,
                                "{ctx}: a row with keys reported as empty"
                            );
                            assert!(o.iter().all(|x| x.is_finite()), "{ctx}");
                            finite_rows += 1;
                        }
                    }
                }
                eprintln!(
                    "overflow {name} {signs} {prec:?}: {nan_rows} NaN rows, {finite_rows} \
                     finite rows with keys"
                );
            }
        }
    }
}

/// (d): the cases of the bug report, exactly.
#[test]
fn reported_cases() {
    let mut tally = Tally::default();
    for prec in [Prec::F32, Prec::F16] {
        let s = shape(1, 2, 2, 200, 200, 64, 64);
        // Stick-breaking, T = 200, v[199] = NaN: no row attends to key 199 (the current token
        // is excluded), so every row, 192-199 included, equals the clean run.
        let sd = seed("report sb");
        let (q, k, v) = Rng(sd).qkv(&s);
        let attn = Attention::stick_breaking();
        let clean = run(&attn, &s, &q, &k, &v, prec);
        let mut v2 = v.clone();
        for kv in 0..s.kv_heads {
            v2[(kv * 200 + 199) * 64..][..64].fill(f32::NAN);
        }
        let got = run(&attn, &s, &q, &k, &v2, prec);
        check_rows(
            &s,
            &clean,
            &got,
            |_, _| Row::Clean,
            &format!("stick-breaking v[199] = NaN {prec:?} seed {sd}"),
            &mut tally,
        );
        // Softmax, causal, window 8, T = 200, v[0] = NaN: rows 0-7 attend to key 0 (NaN),
        // rows >= 8 do not and equal the clean run.
        let sd = seed("report softmax");
        let (q, k, v) = Rng(sd).qkv(&s);
        let attn = Attention::softmax().causal(true).window(8);
        let clean = run(&attn, &s, &q, &k, &v, prec);
        let mut v2 = v.clone();
        for kv in 0..s.kv_heads {
            v2[kv * 200 * 64..][..64].fill(f32::NAN);
        }
        let got = run(&attn, &s, &q, &k, &v2, prec);
        check_rows(
            &s,
            &clean,
            &got,
            |_, i| {
                if i < 8 {
                    Row::Nan {
                        all: true,
                        aux_nan: false,
                    }
                } else {
                    Row::Clean
                }
            },
            &format!("softmax causal window 8 v[0] = NaN {prec:?} seed {sd}"),
            &mut tally,
        );
    }
    tally.report("reported_cases");
}

/// The weights kernels: masked entries are exactly 0 and rows that cannot see a NaN key equal
/// the clean weights; rows that attend to it hold NaN; v (all NaN here) is never read.
#[test]
fn weights_follow_the_nan_policy() {
    let c = ctx();
    for s in [
        shape(1, 2, 2, 50, 50, 16, 16),
        shape(1, 4, 2, 20, 45, 16, 16),
    ] {
        for (name, attn) in nan_variants(&s) {
            let sd = seed(&format!("weights {name}"));
            let mut rng = Rng(sd);
            let (q, k, v) = rng.qkv(&s);
            let sees = Sees::of(&attn, &s);
            let weights = |k: &[f32], v: &[f32]| -> Vec<f32> {
                let qt = c.tensor_f32(&s.q(), &q).unwrap();
                let kt = c.tensor_f32(&s.k(), k).unwrap();
                let vt = c.tensor_f32(&s.v(), v).unwrap();
                let a = c.empty(&s.weights(), DType::F32).unwrap();
                c.fill_bits(&a, NAN_BITS_F32);
                let mut enc = c.device().create_command_encoder(&Default::default());
                c.record_weights_into(&mut enc, &attn, &qt, &kt, &vt, &a)
                    .unwrap();
                c.submit(enc).unwrap();
                c.read_f32_blocking(&a).unwrap()
            };
            let clean = weights(&k, &v);
            // NaN in k at every key a random row cannot see, in every kv head; v all NaN.
            let r = rng.below(s.q_len as u64) as usize;
            let planted: Vec<bool> = (0..s.kv_len).map(|j| !sees.k(r, j)).collect();
            let planted = if planted.iter().any(|&p| p) {
                planted
            } else {
                (0..s.kv_len).map(|j| j == s.kv_len / 2).collect()
            };
            let mut k2 = k.clone();
            for kv in 0..s.batch * s.kv_heads {
                let p = Plant {
                    kv_unit: kv,
                    keys: planted.clone(),
                };
                plant_into(&mut k2, &s, s.head_dim, &p, f32::NAN, None);
            }
            let got = weights(&k2, &vec![f32::NAN; n(s.v())]);
            let ctx = format!("weights {name} {s:?} seed {sd}: NaN k outside row {r}'s keys");
            for u in 0..s.batch * s.q_heads {
                for i in 0..s.q_len {
                    let row = u * s.q_len + i;
                    let (g, cl) = (
                        &got[row * s.kv_len..][..s.kv_len],
                        &clean[row * s.kv_len..][..s.kv_len],
                    );
                    let sees_nan = (0..s.kv_len).any(|j| planted[j] && sees.k(i, j));
                    for (j, &x) in g.iter().enumerate() {
                        assert!(
                            sees.v(i, j) || x == 0.0,
                            "{ctx}: masked entry ({u}, {i}, {j}) is {x}"
                        );
                    }
                    if sees_nan {
                        assert!(
                            g.iter().any(|x| x.is_nan()),
                            "{ctx}: row ({u}, {i}) must hold NaN"
                        );
                    } else {
                        assert!(
                            g.iter().zip(cl).all(|(&g, &c)| g.is_finite() && same(g, c)),
                            "{ctx}: row ({u}, {i}) must equal the clean weights"
                        );
                    }
                }
            }
        }
    }
}

/// The f64 reference reads v_j for every key in S(i), even where the weight underflows to 0:
/// a NaN there gives NaN (SPEC.md), as the kernels' full tiles do (0 * NaN).
#[test]
fn reference_propagates_nan_of_zero_weight_keys() {
    let s = shape(1, 1, 1, 2, 2, 4, 4);
    // Row 1 (non-causal softmax): z_10 = -1e4 * 4, z_11 = 0, so A_10 = exp(-4e4) = 0 in f64.
    let q = vec![0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0];
    let k = vec![-1e4, -1e4, -1e4, -1e4, 0.0, 0.0, 0.0, 0.0];
    let mut v = vec![0.5f32; 8];
    v[0] = f32::NAN;
    let attn = Attention::softmax().scale(1.0);
    let w = webattn::reference_weights(&attn, &s, &q, &k, &v).unwrap();
    assert_eq!(w[2], 0.0, "the weight underflows");
    let r = webattn::reference(&attn, &s, &q, &k, &v).unwrap();
    assert!(r.o[4].is_nan(), "row 1 attends to key 0: {:?}", &r.o[4..]);
    // Causal: row 0 cannot see key 1, so a NaN in v_1 leaves it alone.
    let mut v = vec![0.5f32; 8];
    v[4] = f32::NAN;
    let r = webattn::reference(&attn.causal(true), &s, &q, &k, &v).unwrap();
    assert!(r.o[..4].iter().all(|x| x.is_finite()), "{:?}", r.o);
    assert!(r.o[4].is_nan(), "{:?}", r.o);
}
