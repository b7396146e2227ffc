//! `webattn check`: the GPU against the f64 reference, through the library's testing toolkit
//! (`webattn::testing`): its generator and fresh seeds, option matrix, extreme-logit sets,
//! sweep shapes and verdicts (SPEC.md section 6: error at most max(tol, 2 e32)).

use webattn::testing::{self, Rng, Verdict};
use webattn::{Attention, Context, DType, HostOutput, Shape};

use crate::{CheckArgs, KindSel};

/// The option sets to run on `shape`: with no attention option, every selected kind's option
/// sets and extreme-logit sets; with options, that one attention (one kind needed).
fn option_sets(a: &CheckArgs, shape: &Shape) -> Result<Vec<(String, Attention)>, String> {
    if a.attn.is_empty() {
        let mut sets: Vec<(String, Attention)> = testing::option_matrix(shape);
        sets.extend(testing::extreme_matrix(shape));
        sets.retain(|(_, attn)| a.kind.admits(attn.kind().name()));
        return Ok(sets);
    }
    let KindSel::One(entry) = a.kind else {
        return Err(format!(
            "attention options ({}) need one --kind (known: {})",
            a.attn.describe(),
            webattn::kinds::names().join(", ")
        ));
    };
    let attn = a.attn.attention(entry, None)?;
    attn.aux(shape).map_err(|e| e.to_string())?;
    Ok(vec![(
        format!("{} {}", entry.name, a.attn.describe()),
        attn,
    )])
}

/// Fresh inputs for `shape`, rounded to f16 for an f16 run (so the references see the values
/// the GPU sees).
fn inputs(rng: &mut Rng, shape: &Shape, dtype: DType) -> [Vec<f32>; 3] {
    let (q, k, v) = rng.qkv(shape);
    match dtype {
        DType::F32 => [q, k, v],
        DType::F16 => [&q, &k, &v].map(|x| testing::round_f16(x)),
    }
}

/// Refuses shapes whose tensors cannot fit one device buffer, before host memory is spent.
fn fits(ctx: &Context, shape: &Shape, dtype: DType) -> Result<(), String> {
    for t in [shape.q(), shape.k(), shape.v(), shape.o()] {
        let bytes = t
            .iter()
            .try_fold(dtype.size() as u64, |a, &d| a.checked_mul(d as u64));
        if bytes.is_none_or(|b| b > ctx.info().max_buffer) {
            return Err(format!(
                "a tensor of shape {t:?} does not fit one buffer of this device ({} bytes)",
                ctx.info().max_buffer
            ));
        }
    }
    Ok(())
}

/// Runs `attn` on the GPU with outputs poisoned (NaN) first, and reads every output back.
pub fn gpu(
    ctx: &Context,
    attn: &Attention,
    shape: &Shape,
    [q, k, v]: [&[f32]; 3],
    dtype: DType,
) -> Result<HostOutput, String> {
    let e = |e: webattn::Error| e.to_string();
    let up = |s: [usize; 4], x: &[f32]| match dtype {
        DType::F32 => ctx.tensor_f32(&s, x),
        DType::F16 => ctx.tensor_f16(
            &s,
            &x.iter()
                .map(|&y| half::f16::from_f32(y))
                .collect::<Vec<_>>(),
        ),
    };
    let (qt, kt, vt) = (
        up(shape.q(), q).map_err(e)?,
        up(shape.k(), k).map_err(e)?,
        up(shape.v(), v).map_err(e)?,
    );
    let out = ctx.alloc_output(attn, shape, dtype).map_err(e)?;
    let nan = match dtype {
        DType::F32 => 0x7fc0_0000,
        DType::F16 => 0x7e00_7e00,
    };
    ctx.fill_bits(&out.o, nan);
    for t in [&out.lse, &out.rem].into_iter().flatten() {
        ctx.fill_bits(t, 0x7fc0_0000);
    }
    let mut enc = ctx
        .device()
        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("webattn check"),
        });
    ctx.record_into(&mut enc, attn, &qt, &kt, &vt, &out)
        .map_err(e)?;
    ctx.submit(enc).map_err(e)?;
    pollster::block_on(ctx.read_output(&out)).map_err(e)
}

fn judge(
    ctx: &Context,
    attn: &Attention,
    shape: &Shape,
    x: &[Vec<f32>; 3],
    dtype: DType,
) -> Result<Vec<Verdict>, String> {
    let x = [x[0].as_slice(), &x[1], &x[2]];
    let got = gpu(ctx, attn, shape, x, dtype)?;
    testing::judge(attn, shape, x, &got, dtype).map_err(|e| e.to_string())
}

fn shape_of(a: &CheckArgs) -> Result<Shape, String> {
    let s = Shape {
        batch: a.batch,
        q_heads: a.heads,
        kv_heads: a.kv_heads.unwrap_or(a.heads),
        q_len: a.q_len,
        kv_len: a.kv_len.unwrap_or(a.q_len),
        head_dim: a.dim,
        v_dim: a.v_dim.unwrap_or(a.dim),
    };
    s.validate().map_err(|e| e.to_string())?;
    Ok(s)
}

fn result(v: &Verdict) -> &'static str {
    match (v.ok, v.gpu.finite) {
        (true, _) => "ok",
        (false, false) => "FAIL (not finite)",
        (false, true) => "FAIL",
    }
}

pub fn check(a: &CheckArgs) -> Result<bool, String> {
    let dtype = DType::from(a.dtype);
    let seed = a
        .seed
        .unwrap_or_else(|| testing::fresh_seed("webattn check"));
    if a.sweep {
        let ctx = crate::context(&a.device)?;
        crate::print_adapter(&ctx);
        println!("seed: {seed} (replay with --seed {seed})");
        return sweep(&ctx, a, seed, dtype);
    }
    let shape = shape_of(a)?;
    let sets = option_sets(a, &shape)?;
    let ctx = crate::context(&a.device)?;
    crate::print_adapter(&ctx);
    println!("seed: {seed} (replay with --seed {seed})");
    fits(&ctx, &shape, dtype)?;
    let tiles = ctx
        .forward_tiles(dtype, shape.head_dim, shape.v_dim)
        .map_err(|e| e.to_string())?;
    println!(
        "shape: B={} Hq={} Hkv={} Tq={} Tk={} D={} Dv={}, {} storage, kernel {:?} BQ={} BK={}",
        shape.batch,
        shape.q_heads,
        shape.kv_heads,
        shape.q_len,
        shape.kv_len,
        shape.head_dim,
        shape.v_dim,
        dtype.name(),
        tiles.variant,
        tiles.bq,
        tiles.bk
    );
    let x = inputs(&mut Rng(seed), &shape, dtype);
    println!(
        "\nerrors against f64: GPU (relative L2, largest absolute), e32 = plain f32 computation; \
         bound = max({:e}, 2 e32)\n",
        testing::tolerance(dtype)
    );
    println!("| options | output | GPU rel L2 | GPU max abs | e32 | bound | result |");
    println!("|---|---|---|---|---|---|---|");
    let mut all_ok = true;
    for (name, attn) in &sets {
        for v in judge(&ctx, attn, &shape, &x, dtype)? {
            all_ok &= v.ok;
            println!(
                "| {name} | {} | {:.3e} | {:.3e} | {:.3e} | {:.3e} | {} |",
                v.output,
                v.gpu.rel,
                v.gpu.max_abs,
                v.e32,
                v.bound,
                result(&v)
            );
        }
    }
    Ok(all_ok)
}

/// The largest error seen for one kind and output, and where.
struct Worst {
    key: String,
    verdict: Verdict,
    at: String,
    runs: usize,
    failures: usize,
}

/// `check --sweep`: every selected kind's option sets and extreme-logit sets over
/// `testing::sweep_shapes()`; the largest error per kind and output.
fn sweep(ctx: &Context, a: &CheckArgs, seed: u64, dtype: DType) -> Result<bool, String> {
    let mut rng = Rng(seed);
    let mut worst: Vec<Worst> = Vec::new();
    let mut failures = Vec::new();
    let (mut runs, mut variants) = (0usize, std::collections::BTreeSet::new());
    let shapes = testing::sweep_shapes();
    for (i, shape) in shapes.iter().enumerate() {
        let s = format!(
            "B={} Hq={} Hkv={} Tq={} Tk={} D={}",
            shape.batch, shape.q_heads, shape.kv_heads, shape.q_len, shape.kv_len, shape.head_dim
        );
        eprintln!("[{}/{}] {s}", i + 1, shapes.len());
        let t = ctx
            .forward_tiles(dtype, shape.head_dim, shape.v_dim)
            .map_err(|e| format!("{s}: {e}"))?;
        variants.insert(format!("{:?}", t.variant));
        let x = inputs(&mut rng, shape, dtype);
        for (name, attn) in option_sets(a, shape)? {
            runs += 1;
            for v in judge(ctx, &attn, shape, &x, dtype).map_err(|e| format!("{s} {name}: {e}"))? {
                let key = format!("{} {}", attn.kind().name(), v.output);
                let err = |v: &Verdict| {
                    if v.gpu.finite {
                        v.gpu.rel
                    } else {
                        f64::INFINITY
                    }
                };
                if !v.ok {
                    failures.push(format!(
                        "FAIL {s} {name} {}: GPU {:.3e}, bound {:.3e}{}",
                        v.output,
                        v.gpu.rel,
                        v.bound,
                        if v.gpu.finite { "" } else { ", not finite" }
                    ));
                }
                let at = format!("{s}, {name}");
                match worst.iter_mut().find(|w| w.key == key) {
                    Some(w) => {
                        w.runs += 1;
                        w.failures += usize::from(!v.ok);
                        if err(&v) > err(&w.verdict) {
                            (w.verdict, w.at) = (v, at);
                        }
                    }
                    None => worst.push(Worst {
                        key,
                        failures: usize::from(!v.ok),
                        verdict: v,
                        at,
                        runs: 1,
                    }),
                }
            }
        }
    }
    println!(
        "{runs} GPU runs against the f64 reference over {} shapes, {} storage, kernel variants \
         {variants:?}; bound = max({:e}, 2 e32)\n",
        shapes.len(),
        dtype.name(),
        testing::tolerance(dtype)
    );
    println!("| kind and output | largest GPU error | e32 there | bound there | where | result |");
    println!("|---|---|---|---|---|---|");
    for w in &worst {
        let v = &w.verdict;
        println!(
            "| {} | {:.3e}{} | {:.3e} | {:.3e} | {} | {} |",
            w.key,
            v.gpu.rel,
            if v.gpu.finite { "" } else { " (not finite)" },
            v.e32,
            v.bound,
            w.at,
            if w.failures == 0 {
                format!("ok ({} runs)", w.runs)
            } else {
                format!("FAIL ({} of {})", w.failures, w.runs)
            }
        );
    }
    for f in &failures {
        println!("{f}");
    }
    Ok(failures.is_empty())
}
