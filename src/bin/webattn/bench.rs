//! `webattn bench`: GPU timestamp queries around the forward dispatches, warm-up, median of
//! `--reps` (at least 20) runs, as ms and TFLOP/s (causal FLOPs = 4 B H T T D / 2), for every
//! registered kind (causal where it has a mask) in f32 and f16. Prints a markdown table and
//! writes JSON (`--json PATH`).
//!
//! `bench --cpu`: the CPU cost of recording, in µs per `Context::record_into` call (median over
//! `--calls` calls into one encoder, submitted every 250 calls outside the timing), with
//! `Context::objects_created` before and after the loop: repeated calls create no wgpu object.
//!
//! `bench --decode` and `bench --cpu --decode` are in `bench_decode.rs`; the helpers they share
//! (inputs, GPU timestamps) are here.

use std::time::Instant;

use webattn::kinds::KindEntry;
use webattn::testing::Rng;
use webattn::{Attention, Context, DType, Shape, Tensor};

use crate::{BenchArgs, BenchDType, ShapeArg};

pub(crate) type Res<T> = Result<T, String>;

pub(crate) fn e(e: webattn::Error) -> String {
    e.to_string()
}

/// One measured row.
struct Row {
    kind: &'static str,
    dtype: DType,
    shape: Shape,
    /// Median GPU time of one forward call, ms.
    median_ms: f64,
    /// Fastest GPU time, ms.
    min_ms: f64,
    /// Causal FLOPs (4 B H T T D / 2) over the median time, TFLOP/s.
    tflops: f64,
    tiles: webattn::TileConfig,
}

/// The kind's default attention, causal where the kind has a causal mask.
pub(crate) fn bench_attention(e: &KindEntry) -> Attention {
    let a = (e.default)();
    if a.kind().with_causal(true).is_some() {
        a.causal(true)
    } else {
        a
    }
}

pub(crate) fn random_tensor(
    ctx: &Context,
    shape: [usize; 4],
    dtype: DType,
    rng: &mut Rng,
) -> Res<Tensor> {
    let n = shape
        .iter()
        .try_fold(dtype.size() as u64, |a, &d| a.checked_mul(d as u64))
        .filter(|&b| b <= ctx.info().max_buffer)
        .ok_or_else(|| format!("a tensor of shape {shape:?} does not fit one buffer"))?;
    let data = rng.vec(n as usize / dtype.size(), 1.0);
    match dtype {
        DType::F32 => ctx.tensor_f32(&shape, &data),
        DType::F16 => ctx.tensor_f16(
            &shape,
            &data
                .iter()
                .map(|&x| half::f16::from_f32(x))
                .collect::<Vec<_>>(),
        ),
    }
    .map_err(e)
}

fn qkv(ctx: &Context, s: &Shape, dtype: DType, rng: &mut Rng) -> Res<[Tensor; 3]> {
    Ok([
        random_tensor(ctx, s.q(), dtype, rng)?,
        random_tensor(ctx, s.k(), dtype, rng)?,
        random_tensor(ctx, s.v(), dtype, rng)?,
    ])
}

pub(crate) fn encoder(ctx: &Context) -> wgpu::CommandEncoder {
    ctx.device().create_command_encoder(&Default::default())
}

pub(crate) fn wait(ctx: &Context) -> Res<()> {
    ctx.device()
        .poll(wgpu::PollType::wait_indefinitely())
        .map(|_| ())
        .map_err(|err| format!("waiting for the GPU: {err}"))
}

/// Times `reps` forward calls of `attn`; returns the per-call GPU times in ms.
fn time_kind(ctx: &Context, attn: &Attention, [q, k, v]: &[Tensor; 3], reps: u32) -> Res<Vec<f64>> {
    let shape = Shape::from_shapes(q.shape(), k.shape(), v.shape()).map_err(e)?;
    let out = ctx.alloc_output(attn, &shape, q.dtype()).map_err(e)?;
    gpu_times(ctx, reps, |enc, ts| {
        ctx.record_into_timed(enc, attn, q, k, v, &out, ts)
            .map_err(e)
    })
}

/// GPU times in ms of `reps` calls of `record` (each in its own submit, with timestamp queries
/// `2 r` and `2 r + 1`), after 3 untimed warm-up calls (pipeline creation and first-touch costs
/// stay out of the numbers).
pub(crate) fn gpu_times(
    ctx: &Context,
    reps: u32,
    mut record: impl FnMut(&mut wgpu::CommandEncoder, Option<(&wgpu::QuerySet, u32)>) -> Res<()>,
) -> Res<Vec<f64>> {
    let dev = ctx.device();
    for _ in 0..3 {
        let mut enc = encoder(ctx);
        record(&mut enc, None)?;
        ctx.submit(enc).map_err(e)?;
    }
    let count = 2 * reps;
    let qs = dev.create_query_set(&wgpu::QuerySetDescriptor {
        label: Some("bench"),
        ty: wgpu::QueryType::Timestamp,
        count,
    });
    let resolve = dev.create_buffer(&wgpu::BufferDescriptor {
        label: Some("bench resolve"),
        size: 8 * count as u64,
        usage: wgpu::BufferUsages::QUERY_RESOLVE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    for r in 0..reps {
        let mut enc = encoder(ctx);
        record(&mut enc, Some((&qs, 2 * r)))?;
        ctx.submit(enc).map_err(e)?;
    }
    let mut enc = encoder(ctx);
    enc.resolve_query_set(&qs, 0..count, &resolve, 0);
    ctx.submit(enc).map_err(e)?;
    let t = Tensor::from_buffer(resolve, &[2 * count as usize], DType::F32).map_err(e)?;
    let bytes = pollster::block_on(ctx.read_bytes(&t)).map_err(e)?;
    let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&bytes);
    let period = ctx.queue().get_timestamp_period() as f64;
    Ok(ticks
        .chunks(2)
        .map(|p| p[1].saturating_sub(p[0]) as f64 * period * 1e-6)
        .collect())
}

/// (median, min) of times.
pub(crate) fn median_min(mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    (
        ms.get(ms.len() / 2).copied().unwrap_or(f64::NAN),
        ms.first().copied().unwrap_or(f64::NAN),
    )
}

/// The forward shapes of `--shapes` (an error for a decode shape).
fn forward_shapes(a: &BenchArgs) -> Res<Vec<Shape>> {
    a.shapes
        .iter()
        .map(|s| match s {
            ShapeArg::Forward(s) => Ok(*s),
            ShapeArg::Decode(s) => Err(format!(
                "--shapes {}x{}x{}x{}x{} is a decode shape (BxHqxHkvxTkxD): add --decode, or \
                 give BxHxTxD",
                s.batch, s.q_heads, s.kv_heads, s.kv_len, s.head_dim
            )),
        })
        .collect()
}

pub(crate) fn dtypes(d: BenchDType) -> Vec<DType> {
    match d {
        BenchDType::F32 => vec![DType::F32],
        BenchDType::F16 => vec![DType::F16],
        BenchDType::All => vec![DType::F32, DType::F16],
    }
}

pub fn bench(a: &BenchArgs) -> Res<()> {
    let shapes = if a.decode {
        Vec::new()
    } else {
        forward_shapes(a)?
    };
    let ctx = crate::context(&a.device)?;
    match (a.cpu, a.decode) {
        (true, true) => return crate::bench_decode::cpu(&ctx, a),
        (true, false) => return cpu(&ctx, a, shapes.first().copied()),
        (false, true) => return crate::bench_decode::gpu(&ctx, a),
        (false, false) => {}
    }
    if !ctx.info().timestamp_query {
        return Err("this device has no TIMESTAMP_QUERY; bench needs GPU timestamps".into());
    }
    let shapes = if shapes.is_empty() {
        [1024, 4096, 16384]
            .map(|t| Shape::new(1, 16, t, 64))
            .into_iter()
            .chain([Shape::new(4, 12, 4096, 128)])
            .collect()
    } else {
        shapes
    };
    let mut rows = Vec::new();
    let mut rng = Rng(0x0bad_5eed);
    for shape in &shapes {
        for dtype in dtypes(a.dtype) {
            let x = qkv(&ctx, shape, dtype, &mut rng)?;
            for entry in a.kind.entries() {
                let attn = bench_attention(entry);
                let (median_ms, min_ms) = median_min(time_kind(&ctx, &attn, &x, a.reps)?);
                let flops = 4.0
                    * (shape.batch * shape.q_heads) as f64
                    * (shape.q_len as f64)
                    * (shape.kv_len as f64)
                    * shape.head_dim as f64
                    / 2.0;
                let row = Row {
                    kind: entry.name,
                    dtype,
                    shape: *shape,
                    median_ms,
                    min_ms,
                    tflops: flops / (median_ms * 1e-3) / 1e12,
                    tiles: ctx
                        .forward_tiles(dtype, shape.head_dim, shape.v_dim)
                        .map_err(e)?,
                };
                eprintln!(
                    "{} {} {} ({:?} BQ={}): {:.3} ms, {:.2} TFLOP/s",
                    row.kind,
                    dtype.name(),
                    dims(shape),
                    row.tiles.variant,
                    row.tiles.bq,
                    row.median_ms,
                    row.tflops
                );
                rows.push(row);
            }
        }
    }
    println!("{}", markdown(&ctx, &rows));
    if let Some(p) = &a.json {
        std::fs::write(p, json(&ctx, &rows)).map_err(|err| format!("{}: {err}", p.display()))?;
    }
    Ok(())
}

fn dims(s: &Shape) -> String {
    format!("{}x{}x{}x{}", s.batch, s.q_heads, s.q_len, s.head_dim)
}

/// The rows as a markdown table, with the device line.
fn markdown(ctx: &Context, rows: &[Row]) -> String {
    let i = ctx.info();
    let mut s = format!(
        "device: {} ({}), variant {:?}, f16 read as {:?}\n\n\
         | kind | dtype | B | H | T | D | variant | median ms | min ms | TFLOP/s |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
        i.name, i.backend, i.variant, i.f16_storage
    );
    for r in rows {
        s += &format!(
            "| {} | {} | {} | {} | {} | {} | {:?} | {:.3} | {:.3} | {:.2} |\n",
            r.kind,
            r.dtype.name(),
            r.shape.batch,
            r.shape.q_heads,
            r.shape.q_len,
            r.shape.head_dim,
            r.tiles.variant,
            r.median_ms,
            r.min_ms,
            r.tflops
        );
    }
    s
}

/// The rows as a JSON array.
fn json(ctx: &Context, rows: &[Row]) -> String {
    let i = ctx.info();
    let items: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "kind": r.kind,
                "dtype": r.dtype.name(),
                "shape": dims(&r.shape),
                "median_ms": r.median_ms,
                "min_ms": r.min_ms,
                "tflops": r.tflops,
                "device": i.name,
                "variant": format!("{:?}", r.tiles.variant),
                "bq": r.tiles.bq,
                "bk": r.tiles.bk,
            })
        })
        .collect();
    serde_json::to_string_pretty(&items).unwrap_or_default() + "\n"
}

/// Calls between submits in `--cpu`.
const BATCH: u32 = 250;

/// `before` objects and what was created since, for the `--cpu` tables.
pub(crate) fn objects(before: webattn::ObjectCounts, after: webattn::ObjectCounts) -> String {
    format!(
        "{} buffers, {} bind groups, {} pipelines | {} buffers, {} bind groups, {} pipelines",
        before.buffers,
        before.bind_groups,
        before.pipelines,
        after.buffers - before.buffers,
        after.bind_groups - before.bind_groups,
        after.pipelines - before.pipelines
    )
}

/// `bench --cpu`: µs per `record_into` call, per kind, and the wgpu objects created.
fn cpu(ctx: &Context, a: &BenchArgs, shape: Option<Shape>) -> Res<()> {
    let shape = shape.unwrap_or(Shape::new(1, 8, 128, 64));
    let dtype = match a.dtype {
        BenchDType::F16 => DType::F16,
        _ => DType::F32,
    };
    let i = ctx.info();
    println!(
        "device: {} ({}), variant {:?}\nrecord_into CPU cost, shape {} {}, {} calls per kind \
         into one encoder, submitted (and waited for) every {BATCH} calls outside the timing\n",
        i.name,
        i.backend,
        i.variant,
        dims(&shape),
        dtype.name(),
        a.calls
    );
    println!(
        "| kind | median µs | p10 µs | p90 µs | objects before the loop | created in the loop |"
    );
    println!("|---|---|---|---|---|---|");
    let x = qkv(ctx, &shape, dtype, &mut Rng(0x00c0_ffee))?;
    let [q, k, v] = &x;
    let mut all_reused = true;
    for entry in a.kind.entries() {
        let attn = bench_attention(entry);
        let out = ctx.alloc_output(&attn, &shape, dtype).map_err(e)?;
        // Warm-up: pipelines and bind groups are created here, once.
        for _ in 0..3 {
            let mut enc = encoder(ctx);
            ctx.record_into(&mut enc, &attn, q, k, v, &out).map_err(e)?;
            ctx.submit(enc).map_err(e)?;
        }
        wait(ctx)?;
        let before = ctx.objects_created();
        let mut us = Vec::with_capacity(a.calls as usize);
        let mut enc = encoder(ctx);
        for c in 0..a.calls {
            let t = Instant::now();
            ctx.record_into(&mut enc, &attn, q, k, v, &out).map_err(e)?;
            us.push(t.elapsed().as_secs_f64() * 1e6);
            if (c + 1) % BATCH == 0 {
                ctx.submit(std::mem::replace(&mut enc, encoder(ctx)))
                    .map_err(e)?;
                wait(ctx)?;
            }
        }
        ctx.submit(enc).map_err(e)?;
        wait(ctx)?;
        let after = ctx.objects_created();
        all_reused &= after == before;
        us.sort_by(f64::total_cmp);
        let p = |f: f64| us[((us.len() - 1) as f64 * f) as usize];
        println!(
            "| {} | {:.2} | {:.2} | {:.2} | {} |",
            entry.name,
            p(0.5),
            p(0.1),
            p(0.9),
            objects(before, after)
        );
    }
    if !all_reused {
        eprintln!("warning: repeated record_into calls created wgpu objects");
    }
    Ok(())
}
