//! Decoding over a KV cache (SPEC.md section 4): the split-KV partial and merge passes of every
//! kind against the f64 reference, sequence by sequence on the gathered dense k/v of each
//! sequence (`webattn::reference`), with ragged lengths in one batch (0 and full capacity
//! included), Tq of 1, 2 and 5, GQA 4:2 and 8:1, chunk edges, windows across chunks, sinks,
//! NaN in every slot no row may read, f32 and f16 (both routes), and N appended decode steps
//! against one prefill. Fresh seeds, printed in every failure (`WEBATTN_SEED=N` replays).
//! (Over 500 lines on purpose: one test per decoding rule of issue 10, each with its own
//! ragged batch; the shared plumbing is at the top.)

use std::sync::OnceLock;

use half::f16;
use webattn::testing::{judge, judge_against, option_matrix, tolerance};
use webattn::{
    Attention, Context, DType, DecodeOutput, Error, HostOutput, KvCache, Precision, RefOutput,
    Remainder, Shape, SigmoidBias, SplitPlan, Tensor,
};

use crate::{ctx, seed, Rng};

const NAN32: u32 = 0x7fc0_0000;
const NAN16X2: u32 = 0x7e00_7e00;

fn packed() -> &'static Context {
    static C: OnceLock<Context> = OnceLock::new();
    C.get_or_init(crate::packed_ctx)
}

/// Fills a tensor with NaN of its dtype.
fn poison(c: &Context, t: &Tensor) {
    c.fill_bits(
        t,
        match t.dtype() {
            DType::F32 => NAN32,
            DType::F16 => NAN16X2,
        },
    );
}

fn upload(c: &Context, shape: &[usize], x: &[f32], dtype: DType) -> Tensor {
    match dtype {
        DType::F32 => c.tensor_f32(shape, x).unwrap(),
        DType::F16 => {
            let h: Vec<f16> = x.iter().map(|&y| f16::from_f32(y)).collect();
            c.tensor_f16(shape, &h).unwrap()
        }
    }
}

/// Random values, rounded to f16 when the storage is f16 (so the reference sees them).
fn values(rng: &mut Rng, n: usize, dtype: DType) -> Vec<f32> {
    let x = rng.vec(n, 1.0);
    match dtype {
        DType::F32 => x,
        DType::F16 => webattn::testing::round_f16(&x),
    }
}

/// One decode step to check.
#[derive(Debug, Clone)]
struct Case {
    b: usize,
    hq: usize,
    hkv: usize,
    d: usize,
    dv: usize,
    cap: usize,
    tq: usize,
    /// Each sequence's length after this step's append.
    lens: Vec<usize>,
    /// Rows each sequence appends in this step (<= Tq, <= its length).
    rows: Vec<usize>,
    /// `None`: the context's automatic plan.
    plan: Option<SplitPlan>,
    dtype: DType,
    /// Overwrite with NaN every cache slot that lies before every row's window (window W).
    nan_before_window: Option<usize>,
}

impl Case {
    fn new(b: usize, hq: usize, hkv: usize, d: usize, dv: usize, cap: usize, tq: usize) -> Self {
        Case {
            b,
            hq,
            hkv,
            d,
            dv,
            cap,
            tq,
            lens: vec![0; b],
            rows: vec![0; b],
            plan: None,
            dtype: DType::F32,
            nan_before_window: None,
        }
    }

    /// Lengths after the step; each sequence appends min(Tq, len) rows.
    fn lens(mut self, lens: &[usize]) -> Self {
        assert_eq!(lens.len(), self.b);
        self.lens = lens.to_vec();
        self.rows = lens.iter().map(|&l| l.min(self.tq)).collect();
        self
    }

    fn plan(mut self, min_chunk: u32, max_chunks: u32) -> Self {
        self.plan = Some(SplitPlan {
            min_chunk,
            max_chunks,
        });
        self
    }

    fn dtype(mut self, dtype: DType) -> Self {
        self.dtype = dtype;
        self
    }

    fn seq_shape(&self, len: usize) -> Shape {
        Shape {
            batch: 1,
            q_heads: self.hq,
            kv_heads: self.hkv,
            q_len: self.tq,
            kv_len: len,
            head_dim: self.d,
            v_dim: self.dv,
        }
    }
}

/// The worst verdict of a case: (relative error of o, of lse/rem), asserting every output of
/// every sequence is within SPEC.md section 6's bound.
fn check_case(c: &Context, attn: &Attention, case: &Case, tag: &str) -> (f64, f64) {
    let sd = seed(tag);
    let mut rng = Rng(sd);
    let (b, hkv, d, dv, tq, dt) = (case.b, case.hkv, case.d, case.dv, case.tq, case.dtype);
    let mut cache = KvCache::new(c, b, hkv, case.cap, d, dv, dt).unwrap();
    poison(c, cache.k());
    poison(c, cache.v());
    // Host copies of every sequence's keys and values, [Hkv, len, D].
    let ks: Vec<Vec<f32>> = case
        .lens
        .iter()
        .map(|&l| values(&mut rng, hkv * l * d, dt))
        .collect();
    let vs: Vec<Vec<f32>> = case
        .lens
        .iter()
        .map(|&l| values(&mut rng, hkv * l * dv, dt))
        .collect();
    // [B, Hkv, t, dim] blocks whose last `take[b]` rows are the sequence's rows from `from[b]`
    // on; the other rows are NaN (they must never be copied).
    let block = |src: &[Vec<f32>], dim: usize, t: usize, from: &[usize], take: &[usize]| {
        let mut x = vec![f32::NAN; b * hkv * t * dim];
        for s in 0..b {
            let len = case.lens[s];
            for h in 0..hkv {
                for j in 0..take[s] {
                    let dst = ((s * hkv + h) * t + t - take[s] + j) * dim;
                    let srcr = (h * len + from[s] + j) * dim;
                    x[dst..dst + dim].copy_from_slice(&src[s][srcr..srcr + dim]);
                }
            }
        }
        x
    };
    let pre: Vec<usize> = case
        .lens
        .iter()
        .zip(&case.rows)
        .map(|(l, r)| l - r)
        .collect();
    let t_pre = pre.iter().copied().max().unwrap_or(0);
    if t_pre > 0 {
        let zero = vec![0; b];
        let kp = block(&ks, d, t_pre, &zero, &pre);
        let vp = block(&vs, dv, t_pre, &zero, &pre);
        let kt = upload(c, &[b, hkv, t_pre, d], &kp, dt);
        let vt = upload(c, &[b, hkv, t_pre, dv], &vp, dt);
        let mut enc = c.device().create_command_encoder(&Default::default());
        cache.append(&mut enc, &kt, &vt, &pre).unwrap();
        c.submit(enc).unwrap();
    }
    if let Some(w) = case.nan_before_window {
        // Slots [0, Tk - Tq - W + 1) are outside every row's window: NaN there must not
        // matter (and the chunks there are not even computed).
        for (s, &len) in case.lens.iter().enumerate() {
            let lo = (len as i64 - tq as i64 - w as i64 + 1).max(0) as usize;
            for h in 0..hkv {
                for (t, dim) in [(cache.k(), d), (cache.v(), dv)] {
                    let es = dt.size();
                    let off = ((s * hkv + h) * case.cap * dim * es) as u64;
                    let n = lo * dim * es;
                    let bits = match dt {
                        DType::F32 => NAN32,
                        DType::F16 => NAN16X2,
                    };
                    let data: Vec<u32> = vec![bits; n.div_ceil(4)];
                    let bytes = &bytemuck::cast_slice::<u32, u8>(&data)[..n - n % 4];
                    if !bytes.is_empty() {
                        c.queue().write_buffer(t.buffer(), off, bytes);
                    }
                }
            }
        }
    }
    let ka = block(&ks, d, tq, &pre, &case.rows);
    let va = block(&vs, dv, tq, &pre, &case.rows);
    let kt = upload(c, &[b, hkv, tq, d], &ka, dt);
    let vt = upload(c, &[b, hkv, tq, dv], &va, dt);
    let q = values(&mut rng, b * case.hq * tq * d, dt);
    let qt = upload(c, &[b, case.hq, tq, d], &q, dt);
    let out: DecodeOutput = match case.plan {
        Some(p) => c.alloc_decode_output_with(attn, &cache, case.hq, tq, p),
        None => c.alloc_decode_output(attn, &cache, case.hq, tq),
    }
    .unwrap();
    poison(c, out.o());
    for t in [out.lse(), out.rem()].into_iter().flatten() {
        poison(c, t);
    }
    let mut enc = c.device().create_command_encoder(&Default::default());
    cache.append(&mut enc, &kt, &vt, &case.rows).unwrap();
    c.record_decode(&mut enc, attn, &qt, &cache, &out).unwrap();
    c.submit(enc).unwrap();
    assert_eq!(cache.lens(), &case.lens[..]);
    let got = pollster::block_on(c.read_output(out.output())).unwrap();
    let (no, nr) = (case.hq * tq * dv, case.hq * tq);
    let (mut worst_o, mut worst_aux) = (0.0f64, 0.0f64);
    for (s, &len) in case.lens.iter().enumerate() {
        let shape = case.seq_shape(len);
        let part = |x: &Option<Vec<f32>>| x.as_ref().map(|v| v[s * nr..(s + 1) * nr].to_vec());
        let mine = HostOutput {
            o: got.o[s * no..(s + 1) * no].to_vec(),
            lse: part(&got.lse),
            rem: part(&got.rem),
        };
        let qs = &q[s * case.hq * tq * d..(s + 1) * case.hq * tq * d];
        let verdicts = judge(attn, &shape, [qs, &ks[s], &vs[s]], &mine, dt).unwrap();
        for v in &verdicts {
            assert!(
                v.ok,
                "{tag}: sequence {s} (Tk = {len}) {attn:?} {case:?} seed {sd} (replay with \
                 WEBATTN_SEED={sd}): {v:#?}"
            );
            if v.output == "o" {
                worst_o = worst_o.max(v.gpu.rel);
            } else {
                worst_aux = worst_aux.max(v.gpu.rel);
            }
        }
    }
    (worst_o, worst_aux)
}

/// Every option set of every kind, Tq in {1, 2, 5}, GQA 4:2 and 8:1, ragged lengths with an
/// empty sequence, a one-key sequence and a full one, many chunks (32 keys each).
#[test]
fn decode_every_option_set_ragged_batch() {
    let c = ctx();
    let mut worst = (0.0f64, 0.0f64);
    for (b, hq, hkv, d, dv, cap) in [(4, 4, 2, 32, 32, 300), (3, 8, 1, 64, 32, 260)] {
        for tq in [1, 2, 5] {
            let mut lens = vec![0, 1, cap, 137];
            lens.truncate(b);
            let case = Case::new(b, hq, hkv, d, dv, cap, tq)
                .lens(&lens)
                .plan(32, 16);
            let s = Shape::gqa(b, hq, hkv, tq, d);
            for (name, attn) in option_matrix(&s) {
                let r = check_case(c, &attn, &case, &format!("decode {name} Tq={tq} Hq={hq}"));
                worst = (worst.0.max(r.0), worst.1.max(r.1));
            }
        }
    }
    eprintln!(
        "decode, every option set: worst relative error o {:e}, lse/rem {:e}",
        worst.0, worst.1
    );
}

/// Lengths at the chunk edges (chunk 64: 63, 64, 65, 127, 128, 129), a single key and 1000+
/// keys, in one ragged batch; every option set, Tq 1 and 3.
#[test]
fn decode_chunk_edges() {
    let c = ctx();
    let lens = [1, 63, 64, 65, 127, 128, 129, 1100];
    for tq in [1, 3] {
        let case = Case::new(8, 2, 1, 64, 64, 1100, tq)
            .lens(&lens)
            .plan(64, 64);
        let s = Shape::gqa(8, 2, 1, tq, 64);
        for (name, attn) in option_matrix(&s) {
            check_case(c, &attn, &case, &format!("chunk edges {name} Tq={tq}"));
        }
    }
}

/// The automatic plan (chunks of >= 256 keys) on long caches, and the single-pass path of a
/// short batch.
#[test]
fn decode_auto_plan() {
    let c = ctx();
    for lens in [vec![1500, 700, 256, 257], vec![3, 200, 0, 255]] {
        let case = Case::new(4, 4, 2, 64, 64, 1500, 2).lens(&lens);
        let s = Shape::gqa(4, 4, 2, 2, 64);
        for (name, attn) in option_matrix(&s).into_iter().step_by(3) {
            check_case(c, &attn, &case, &format!("auto plan {name} {lens:?}"));
        }
    }
}

/// Sink logits of 20, -20 and 0 enter at the merge only: with many chunks, a sink counted
/// once per chunk (or ignored) would be far off.
#[test]
fn sinks_enter_only_at_the_merge() {
    let c = ctx();
    let sinks = vec![20.0, -20.0, 0.0, 20.0];
    for causal in [true, false] {
        let attn = Attention::softmax().causal(causal).sinks(sinks.clone());
        for tq in [1, 5] {
            let case = Case::new(2, 4, 2, 32, 32, 500, tq)
                .lens(&[500, 211])
                .plan(32, 32);
            check_case(c, &attn, &case, &format!("sinks causal={causal} Tq={tq}"));
        }
    }
}

/// Windows across chunk boundaries, with NaN in every slot before every row's window: those
/// chunks are skipped, not computed and masked.
#[test]
fn windows_across_chunks_skip_what_they_hide() {
    let c = ctx();
    let kinds = [
        Attention::softmax().causal(true),
        Attention::softmax(),
        Attention::sigmoid()
            .causal(true)
            .bias(SigmoidBias::Value(-1.0)),
        Attention::stick_breaking(),
        Attention::stick_breaking().remainder(Remainder::ToCurrent),
    ];
    for w in [1, 31, 32, 33, 64, 65, 100, 250] {
        for tq in [1, 4] {
            let mut case = Case::new(3, 2, 2, 32, 32, 400, tq)
                .lens(&[400, 290, 40])
                .plan(32, 32);
            case.nan_before_window = Some(w);
            for attn in &kinds {
                let attn = attn.clone().window(w as u32);
                check_case(c, &attn, &case, &format!("window {w} Tq={tq}"));
            }
        }
    }
}

/// f16 caches through both routes: vec4<f16> loads (shader-f16) and packed loads.
#[test]
fn decode_f16_both_routes() {
    let mut worst = 0.0f64;
    for (route, c) in [("native", ctx()), ("packed", packed())] {
        for tq in [1, 5] {
            let case = Case::new(3, 8, 2, 64, 64, 300, tq)
                .lens(&[0, 300, 97])
                .plan(32, 16)
                .dtype(DType::F16);
            let s = Shape::gqa(3, 8, 2, tq, 64);
            for (name, attn) in option_matrix(&s) {
                let r = check_case(c, &attn, &case, &format!("f16 {route} {name} Tq={tq}"));
                worst = worst.max(r.0).max(r.1);
            }
        }
        eprintln!(
            "f16 decode ({route}, {:?}): worst relative error so far {worst:e}",
            c.info().f16_storage
        );
    }
    assert!(worst < tolerance(DType::F16));
}

/// Appending one token at a time and decoding each (Tq = 1) gives the rows of one causal
/// prefill over the same tokens: o, lse and rem.
#[test]
fn decode_steps_equal_one_prefill() {
    let c = ctx();
    let (b, hq, hkv, d, n) = (2, 4, 2, 32, 90);
    let s = Shape::gqa(b, hq, hkv, n, d);
    let sd = seed("steps vs prefill");
    let mut rng = Rng(sd);
    let (q, k, v) = rng.qkv(&s);
    let sinks = vec![0.5, -1.0, 2.0, 0.0];
    let kinds = [
        Attention::softmax().causal(true),
        Attention::softmax().causal(true).sinks(sinks).window(40),
        Attention::sigmoid()
            .causal(true)
            .bias(SigmoidBias::Value(-2.0)),
        Attention::sigmoid()
            .causal(true)
            .bias(SigmoidBias::Value(0.5))
            .normalize(true),
        Attention::stick_breaking(),
        Attention::stick_breaking().attend_current(true),
        Attention::stick_breaking()
            .remainder(Remainder::ToCurrent)
            .window(33),
    ];
    let (qt, kt, vt) = (
        c.tensor_f32(&s.q(), &q).unwrap(),
        c.tensor_f32(&s.k(), &k).unwrap(),
        c.tensor_f32(&s.v(), &v).unwrap(),
    );
    // Row t of a [B, H, T, D] tensor as [B, H, 1, D].
    let row = |x: &[f32], h: usize, t: usize| -> Vec<f32> {
        let mut r = Vec::with_capacity(b * h * d);
        for bh in 0..b * h {
            r.extend_from_slice(&x[(bh * n + t) * d..(bh * n + t + 1) * d]);
        }
        r
    };
    for attn in &kinds {
        let full = pollster::block_on(c.read_output(&c.run(attn, &qt, &kt, &vt).unwrap())).unwrap();
        let want = webattn::reference_in(attn, &s, &q, &k, &v, Precision::F64).unwrap();
        let plain = webattn::reference_in(attn, &s, &q, &k, &v, Precision::F32).unwrap();
        let mut cache = KvCache::new(c, b, hkv, n, d, d, DType::F32).unwrap();
        poison(c, cache.k());
        poison(c, cache.v());
        let plan = SplitPlan {
            min_chunk: 16,
            max_chunks: 8,
        };
        let out = c
            .alloc_decode_output_with(attn, &cache, hq, 1, plan)
            .unwrap();
        let q1 = c.empty(&[b, hq, 1, d], DType::F32).unwrap();
        let k1 = c.empty(&[b, hkv, 1, d], DType::F32).unwrap();
        let v1 = c.empty(&[b, hkv, 1, d], DType::F32).unwrap();
        let mut worst = 0.0f64;
        for t in 0..n {
            c.write_f32(&q1, &row(&q, hq, t)).unwrap();
            c.write_f32(&k1, &row(&k, hkv, t)).unwrap();
            c.write_f32(&v1, &row(&v, hkv, t)).unwrap();
            let mut enc = c.device().create_command_encoder(&Default::default());
            cache.append(&mut enc, &k1, &v1, &[1, 1]).unwrap();
            c.record_decode(&mut enc, attn, &q1, &cache, &out).unwrap();
            c.submit(enc).unwrap();
            let got = pollster::block_on(c.read_output(out.output())).unwrap();
            // Row t of every unit, of a [B, Hq, T, w] output.
            let pick = |x: &[f64], w: usize| -> Vec<f64> {
                (0..b * hq)
                    .flat_map(|u| x[(u * n + t) * w..(u * n + t + 1) * w].to_vec())
                    .collect()
            };
            let widen = |x: &[f32]| -> Vec<f64> { x.iter().map(|&y| y as f64).collect() };
            let pick_ref = |r: &RefOutput| RefOutput {
                o: pick(&r.o, d),
                lse: r.lse.as_ref().map(|x| pick(x, 1)),
                rem: r.rem.as_ref().map(|x| pick(x, 1)),
            };
            let prefill = RefOutput {
                o: widen(&full.o),
                lse: full.lse.as_deref().map(widen),
                rem: full.rem.as_deref().map(widen),
            };
            // The decode step against the f64 reference (SPEC.md section 6) ...
            let verdicts = judge_against(&got, &pick_ref(&want), &pick_ref(&plain), 1e-5);
            // ... and against the prefill's row: each is within its bound of f64, so they
            // are within twice of each other.
            let gpu = pick_ref(&prefill);
            for v in &verdicts {
                let (g, p) = match v.output {
                    "o" => (&got.o, &gpu.o),
                    "lse" => (got.lse.as_ref().unwrap(), gpu.lse.as_ref().unwrap()),
                    _ => (got.rem.as_ref().unwrap(), gpu.rem.as_ref().unwrap()),
                };
                let e = webattn::testing::compare(g, p);
                assert!(
                    v.ok && e.finite && e.rel <= 2.0 * v.bound,
                    "{attn:?} step {t} {}: decode vs f64 {:e} (bound {:e}), vs prefill {:e}, \
                     seed {sd} (replay with WEBATTN_SEED={sd})",
                    v.output,
                    v.gpu.rel,
                    v.bound,
                    e.rel
                );
                worst = worst.max(e.rel);
            }
        }
        eprintln!(
            "{}: {n} decode steps vs one prefill, worst relative difference {worst:e}",
            attn.kind().name()
        );
    }
}

/// A decode loop (write the step's inputs, append, decode, submit) creates no wgpu object, also
/// when a sequence grows from one chunk to several (the merge starts to run).
#[test]
fn decode_loop_creates_no_wgpu_objects() {
    let c = crate::ctx_with(|_| {});
    let (b, hq, hkv, d, cap) = (2, 4, 1, 32, 200);
    let mut rng = Rng(seed("decode no alloc"));
    for (name, attn) in option_matrix(&Shape::gqa(b, hq, hkv, 1, d)) {
        let mut cache = KvCache::new(&c, b, hkv, cap, d, d, DType::F32).unwrap();
        let out = c
            .alloc_decode_output_with(
                &attn,
                &cache,
                hq,
                1,
                SplitPlan {
                    min_chunk: 32,
                    max_chunks: 8,
                },
            )
            .unwrap();
        let q1 = c.empty(&[b, hq, 1, d], DType::F32).unwrap();
        let k1 = c.empty(&[b, hkv, 1, d], DType::F32).unwrap();
        let v1 = c.empty(&[b, hkv, 1, d], DType::F32).unwrap();
        let mut step = |cache: &mut KvCache, rows: &[usize]| {
            c.write_f32(&q1, &rng.vec(b * hq * d, 1.0)).unwrap();
            c.write_f32(&k1, &rng.vec(b * hkv * d, 1.0)).unwrap();
            c.write_f32(&v1, &rng.vec(b * hkv * d, 1.0)).unwrap();
            let mut enc = c.device().create_command_encoder(&Default::default());
            cache.append(&mut enc, &k1, &v1, rows).unwrap();
            c.record_decode(&mut enc, &attn, &q1, cache, &out).unwrap();
            c.submit(enc).unwrap();
        };
        step(&mut cache, &[1, 0]);
        let before = c.objects_created();
        for i in 0..70 {
            step(&mut cache, &[1, i % 2]);
        }
        assert!(cache.lens()[0] > 64, "the loop crosses chunk counts");
        assert_eq!(
            c.objects_created(),
            before,
            "{name}: objects created by decode steps"
        );
    }
}

/// Appends copy the last rows of each sequence's block, ragged, into the right slots, and
/// leave every other slot alone.
#[test]
fn append_is_ragged_and_bottom_aligned() {
    let c = ctx();
    let (b, h, d, cap) = (3, 2, 4, 6);
    let mut cache = KvCache::new(c, b, h, cap, d, d, DType::F32).unwrap();
    poison(c, cache.k());
    let x: Vec<f32> = (0..b * h * 3 * d).map(|i| i as f32).collect();
    let t = c.tensor_f32(&[b, h, 3, d], &x).unwrap();
    let mut enc = c.device().create_command_encoder(&Default::default());
    cache.append(&mut enc, &t, &t, &[0, 1, 3]).unwrap();
    c.submit(enc).unwrap();
    let mut enc = c.device().create_command_encoder(&Default::default());
    cache.append(&mut enc, &t, &t, &[2, 1, 3]).unwrap();
    c.submit(enc).unwrap();
    assert_eq!(cache.lens(), &[2, 2, 6]);
    let got = c.read_f32_blocking(cache.k()).unwrap();
    for s in 0..b {
        for hh in 0..h {
            let mut want: Vec<Option<usize>> = Vec::new();
            for rows in [[0, 1, 3][s], [2, 1, 3][s]] {
                for r in 3 - rows..3 {
                    want.push(Some((s * h + hh) * 3 + r));
                }
            }
            want.resize(cap, None);
            for (slot, w) in want.iter().enumerate() {
                let g = &got[((s * h + hh) * cap + slot) * d..][..d];
                match w {
                    Some(row) => assert_eq!(g, &x[row * d..(row + 1) * d], "seq {s} slot {slot}"),
                    None => assert!(g.iter().all(|v| v.is_nan()), "seq {s} slot {slot} touched"),
                }
            }
        }
    }
    // truncate / set_len / reset only move lengths.
    cache.truncate(2, 4).unwrap();
    cache.set_len(0, 6).unwrap();
    assert_eq!(cache.lens(), &[6, 2, 4]);
    cache.reset();
    assert_eq!(cache.lens(), &[0, 0, 0]);
}

/// Every misuse is a typed error, and a refused append changes nothing.
#[test]
fn decode_errors_are_typed() {
    let c = ctx();
    let (b, hq, hkv, d, cap) = (2, 4, 2, 16, 8);
    let attn = Attention::softmax().causal(true);
    let mut cache = KvCache::new(c, b, hkv, cap, d, d, DType::F32).unwrap();
    let x = |shape: &[usize]| {
        c.tensor_f32(shape, &vec![0.5; shape.iter().product()])
            .unwrap()
    };
    let (k3, v3) = (x(&[b, hkv, 3, d]), x(&[b, hkv, 3, d]));
    let mut enc = c.device().create_command_encoder(&Default::default());
    // Capacity: 3 + 3 fit, 3 more do not (sequence 0), and nothing moves.
    cache.append(&mut enc, &k3, &v3, &[3, 3]).unwrap();
    cache.append(&mut enc, &k3, &v3, &[3, 1]).unwrap();
    let e = cache.append(&mut enc, &k3, &v3, &[3, 0]);
    assert!(
        matches!(
            e,
            Err(Error::CacheFull {
                sequence: 0,
                len: 6,
                adding: 3,
                capacity: 8
            })
        ),
        "{e:?}"
    );
    assert_eq!(cache.lens(), &[6, 4]);
    assert!(e.unwrap_err().to_string().contains("full"));
    // Rows past T, a wrong count of sequences, wrong shapes and dtypes, the cache itself.
    assert!(matches!(
        cache.append(&mut enc, &k3, &v3, &[4, 0]),
        Err(Error::ShapeMismatch(_))
    ));
    assert!(matches!(
        cache.append(&mut enc, &k3, &v3, &[1]),
        Err(Error::ShapeMismatch(_))
    ));
    let bad = x(&[b, hkv, 3, d + 4]);
    assert!(matches!(
        cache.append(&mut enc, &bad, &v3, &[1, 1]),
        Err(Error::ShapeMismatch(_))
    ));
    let k2 = x(&[b, hkv, 2, d]);
    assert!(matches!(
        cache.append(&mut enc, &k2, &v3, &[1, 1]),
        Err(Error::ShapeMismatch(_))
    ));
    let h16 = c
        .tensor_f16(&[b, hkv, 3, d], &vec![f16::ONE; b * hkv * 3 * d])
        .unwrap();
    assert!(matches!(
        cache.append(&mut enc, &h16, &v3, &[1, 1]),
        Err(Error::DTypeMismatch { .. })
    ));
    let own = Tensor::from_buffer(cache.k().buffer().clone(), &[b, hkv, 3, d], DType::F32).unwrap();
    assert!(matches!(
        cache.append(&mut enc, &own, &v3, &[1, 1]),
        Err(Error::Aliasing(_))
    ));
    assert_eq!(cache.lens(), &[6, 4]);
    // Lengths past the capacity, sequences that do not exist.
    assert!(matches!(
        cache.set_len(1, cap + 1),
        Err(Error::CacheFull { .. })
    ));
    assert!(matches!(cache.truncate(1, 5), Err(Error::InvalidOption(_))));
    assert!(matches!(cache.set_len(2, 1), Err(Error::InvalidOption(_))));
    // Caches that cannot exist.
    assert!(matches!(
        KvCache::new(c, b, hkv, cap, 6, 8, DType::F32),
        Err(Error::UnsupportedHeadDim { .. })
    ));
    assert!(matches!(
        KvCache::new(c, b, hkv, 0, 8, 8, DType::F32),
        Err(Error::ShapeMismatch(_))
    ));
    // Decode: q that does not fit the cache or the output, dtypes, outputs of another kind.
    let out = c.alloc_decode_output(&attn, &cache, hq, 1).unwrap();
    let q = x(&[b, hq, 1, d]);
    c.record_decode(&mut enc, &attn, &q, &cache, &out).unwrap();
    for shape in [
        [b + 1, hq, 1, d],
        [b, hq, 1, d + 4],
        [b, 3, 1, d],
        [b, hq, 2, d],
    ] {
        let e = c.record_decode(&mut enc, &attn, &x(&shape), &cache, &out);
        assert!(
            matches!(e, Err(Error::ShapeMismatch(_))),
            "{shape:?}: {e:?}"
        );
    }
    let q16 = c
        .tensor_f16(&[b, hq, 1, d], &vec![f16::ONE; b * hq * d])
        .unwrap();
    let e = c.record_decode(&mut enc, &attn, &q16, &cache, &out);
    assert!(matches!(e, Err(Error::DTypeMismatch { .. })), "{e:?}");
    let e = c.record_decode(&mut enc, &Attention::stick_breaking(), &q, &cache, &out);
    assert!(
        matches!(e, Err(Error::InvalidOption(ref m)) if m.contains("alloc_decode_output")),
        "{e:?}"
    );
    let e = c.record_decode(
        &mut enc,
        &Attention::softmax().sinks(vec![1.0]),
        &q,
        &cache,
        &out,
    );
    assert!(matches!(e, Err(Error::InvalidOption(_))), "{e:?}");
    let e = c.alloc_decode_output_with(
        &attn,
        &cache,
        hq,
        1,
        SplitPlan {
            min_chunk: 0,
            max_chunks: 4,
        },
    );
    assert!(matches!(e, Err(Error::InvalidOption(_))), "{e:?}");
    // Timestamps: a set too small, or no TIMESTAMP_QUERY.
    if c.info().timestamp_query {
        let qs = c.device().create_query_set(&wgpu::QuerySetDescriptor {
            label: None,
            ty: wgpu::QueryType::Timestamp,
            count: 2,
        });
        c.record_decode_timed(&mut enc, &attn, &q, &cache, &out, Some((&qs, 0)))
            .unwrap();
        let e = c.record_decode_timed(&mut enc, &attn, &q, &cache, &out, Some((&qs, 1)));
        assert!(matches!(e, Err(Error::InvalidOption(_))), "{e:?}");
    }
    c.submit(enc).unwrap();
    c.check().unwrap();
}

/// Head dims of every lane layout (8, 4, 2 and 1 lanes per key: D = 64, 80, 40, 12), the
/// largest (256), and Dv != D.
#[test]
fn decode_head_dims() {
    let c = ctx();
    for (d, dv) in [
        (12, 12),
        (40, 40),
        (80, 80),
        (256, 256),
        (64, 16),
        (16, 128),
    ] {
        let case = Case::new(2, 4, 1, d, dv, 150, 2)
            .lens(&[150, 33])
            .plan(32, 8);
        let s = Shape::gqa(2, 4, 1, 2, d);
        for (name, attn) in option_matrix(&s).into_iter().step_by(2) {
            check_case(c, &attn, &case, &format!("head dims {name} D={d} Dv={dv}"));
        }
    }
}

/// A cache larger than the storage-binding limit is split over (batch, kv head) units, each
/// dispatch binding a sub-range (the kernels index from the bound range's base).
#[test]
fn decode_splits_over_the_binding_limit() {
    let c = crate::ctx_with(|o| o.max_binding_size = Some(300 * 1024));
    let case = Case::new(2, 8, 4, 64, 64, 512, 2)
        .lens(&[512, 301])
        .plan(64, 8);
    // k per unit: 512 * 64 * 4 bytes = 128 KiB, 8 units: 1 MiB.
    let s = Shape::gqa(2, 8, 4, 2, 64);
    for (name, attn) in option_matrix(&s).into_iter().step_by(2) {
        check_case(&c, &attn, &case, &format!("binding split {name}"));
    }
}

/// Extreme logits (scale 200, |z| up to about 1e3) through the chunked path: within SPEC.md
/// section 6's conditioned bound (twice the error of a plain f32 computation).
#[test]
fn decode_extreme_logits() {
    let c = ctx();
    let case = Case::new(2, 4, 2, 32, 32, 300, 2)
        .lens(&[300, 77])
        .plan(32, 16);
    for (name, attn) in webattn::testing::extreme_matrix(&Shape::gqa(2, 4, 2, 2, 32)) {
        check_case(c, &attn, &case, &format!("extreme {name}"));
    }
}

/// The benchmark shape scaled down for a software adapter: 32 query heads on 8 kv
/// heads, D = 128, f16, 4096 keys, one new row, the automatic plan.
#[test]
fn decode_benchmark_shape_scaled() {
    let c = ctx();
    let case = Case::new(1, 32, 8, 128, 128, 4096, 1)
        .lens(&[4096])
        .dtype(DType::F16);
    for attn in [
        Attention::softmax().causal(true),
        Attention::sigmoid()
            .causal(true)
            .bias(SigmoidBias::Value(-8.0)),
        Attention::stick_breaking(),
    ] {
        let (o, aux) = check_case(c, &attn, &case, "benchmark shape scaled");
        eprintln!(
            "{}: 1x32x8x4096x128 f16: relative error o {o:e}, aux {aux:e}",
            attn.kind().name()
        );
    }
}

/// Both partial kernels, each on a context that forces it: the portable one (also the
/// automatic choice) and the subgroup one (stick-breaking's `decode_sg.wgsl`, forced by
/// `ContextOptions::decode_variant` where the device has one fixed subgroup size, lavapipe
/// included): every option set on a ragged GQA batch with many chunks, windows across chunks
/// with NaN before them, f16, and head dims of every lane layout.
/// (`WEBATTN_DECODE_VARIANT=subgroup` runs the whole suite on the subgroup kernel.)
#[test]
fn decode_forced_kernels() {
    let auto = crate::ctx_with(|o| {
        o.variant = None;
        o.decode_variant = None;
    });
    assert_eq!(auto.info().decode_variant, webattn::Variant::Portable);
    let portable = crate::ctx_with(|o| o.decode_variant = Some(webattn::Variant::Portable));
    assert_eq!(portable.info().decode_variant, webattn::Variant::Portable);
    let mut contexts = vec![("portable", portable)];
    let a = auto.info();
    if a.subgroups && a.subgroup_sizes.0 == a.subgroup_sizes.1 {
        let sg = crate::ctx_with(|o| o.decode_variant = Some(webattn::Variant::Subgroup));
        assert_eq!(sg.info().decode_variant, webattn::Variant::Subgroup, "{a}");
        contexts.push(("subgroup", sg));
    }
    for (kernel, c) in &contexts {
        forced_kernel_cases(c, kernel);
    }
    // The cooperative-matrix kernel (f16 caches) where the device has one (lavapipe from
    // Mesa 25.1 with 8x8x8 fragments: scripts/lavapipe-coop.sh; the H100/H200 with 16x16x16).
    let mut o = webattn::ContextOptions::from_env().expect("WEBATTN_* environment");
    o.decode_variant = Some(webattn::Variant::CoopMatrix);
    if let Ok(coop) = Context::new_blocking(o) {
        assert_eq!(coop.info().decode_variant, webattn::Variant::CoopMatrix);
        coop_kernel_cases(&coop);
    } else {
        eprintln!("no cooperative-matrix decode kernel on this device: {a}");
    }
}

/// The cooperative-matrix partial kernel on f16 caches: every option set on a ragged GQA
/// batch with many chunks (Tq 1, 2, 5), windows across chunks with NaN before them, extreme
/// logits, and head dims from 16 to 256 with Dv != D.
fn coop_kernel_cases(c: &Context) {
    for tq in [1, 2, 5] {
        let case = Case::new(4, 8, 2, 32, 32, 300, tq)
            .lens(&[0, 1, 300, 137])
            .plan(32, 16)
            .dtype(DType::F16);
        let s = Shape::gqa(4, 8, 2, tq, 32);
        for (name, attn) in option_matrix(&s) {
            check_case(c, &attn, &case, &format!("coopmat {name} Tq={tq}"));
        }
    }
    for w in [31, 33, 100] {
        let mut case = Case::new(3, 2, 2, 32, 32, 400, 4)
            .lens(&[400, 290, 40])
            .plan(32, 32)
            .dtype(DType::F16);
        case.nan_before_window = Some(w);
        for attn in [
            Attention::softmax().causal(true),
            Attention::stick_breaking().remainder(Remainder::ToCurrent),
        ] {
            let attn = attn.window(w as u32);
            check_case(c, &attn, &case, &format!("coopmat window {w}"));
        }
    }
    let case = Case::new(2, 4, 2, 32, 32, 300, 2)
        .lens(&[300, 77])
        .plan(32, 16)
        .dtype(DType::F16);
    for (name, attn) in webattn::testing::extreme_matrix(&Shape::gqa(2, 4, 2, 2, 32)) {
        check_case(c, &attn, &case, &format!("coopmat extreme {name}"));
    }
    for (d, dv) in [
        (16, 16),
        (64, 64),
        (80, 80),
        (128, 128),
        (256, 256),
        (64, 16),
        (16, 128),
    ] {
        let case = Case::new(2, 8, 1, d, dv, 150, 2)
            .lens(&[150, 33])
            .plan(32, 8)
            .dtype(DType::F16);
        let s = Shape::gqa(2, 8, 1, 2, d);
        for (name, attn) in option_matrix(&s).into_iter().step_by(2) {
            check_case(c, &attn, &case, &format!("coopmat {name} D={d} Dv={dv}"));
        }
    }
}

fn forced_kernel_cases(c: &Context, kernel: &str) {
    for tq in [1, 5] {
        let case = Case::new(4, 4, 2, 32, 32, 300, tq)
            .lens(&[0, 1, 300, 137])
            .plan(32, 16);
        let s = Shape::gqa(4, 4, 2, tq, 32);
        for (name, attn) in option_matrix(&s) {
            check_case(c, &attn, &case, &format!("{kernel} {name} Tq={tq}"));
        }
    }
    for w in [31, 33, 100] {
        let mut case = Case::new(3, 2, 2, 32, 32, 400, 4)
            .lens(&[400, 290, 40])
            .plan(32, 32);
        case.nan_before_window = Some(w);
        for attn in [
            Attention::softmax().causal(true),
            Attention::stick_breaking().remainder(Remainder::ToCurrent),
        ] {
            let attn = attn.window(w as u32);
            check_case(c, &attn, &case, &format!("{kernel} window {w}"));
        }
    }
    for (d, dv, dtype) in [
        (64, 64, DType::F16),
        (12, 12, DType::F32),
        (256, 256, DType::F32),
    ] {
        let case = Case::new(2, 4, 1, d, dv, 150, 2)
            .lens(&[150, 33])
            .plan(32, 8)
            .dtype(dtype);
        let s = Shape::gqa(2, 4, 1, 2, d);
        for (name, attn) in option_matrix(&s).into_iter().step_by(2) {
            check_case(c, &attn, &case, &format!("{kernel} {name} D={d} {dtype:?}"));
        }
    }
}
