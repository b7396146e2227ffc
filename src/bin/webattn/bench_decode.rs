//! `webattn bench --decode`: decode steps over a full KV cache, timed with GPU timestamps
//! around `Context::record_decode_timed` (warm-up 3, median and min of `--reps`), as ms and
//! GB/s. For every shape B x Hq x Hkv x Tk x D, every sequence holds Tk keys (random data) and
//! a step has `--q-len` new rows. GB/s counts the bytes of K and V of the visible keys, read
//! once, plus q and o: `(2 B Hkv Tk D + 2 B Hq Tq D) * element size`, the formula of
//! `bench/torch_peers.py --mode decode` (no window, so every key is visible). Each row also
//! gives the split plan's chunks per (sequence, kv head) and their length. A markdown table and
//! (`--json PATH`) a JSON array whose rows carry `"mode": "decode"`, `shape` as
//! `BxHqxHkvxTkxD` and `q_len`, the keys torch_peers.py's decode rows are joined on.
//!
//! `webattn bench --cpu --decode`: the CPU cost of recording one decode step of a 4-layer model:
//! 4 KV caches, one encoder per step holding 4 x (`KvCache::append` of one row per sequence +
//! `Context::record_decode`), in µs per step (median over `--steps` steps, each submitted,
//! waited for every 50 steps outside the timing), and `Context::objects_created` before and
//! after the loop (a decode loop creates no wgpu object).

use std::time::Instant;

use webattn::testing::Rng;
use webattn::{Context, DType, DecodeOutput, KvCache, Shape, SplitPlan, Tensor, TileConfig};

use crate::bench::{
    bench_attention, dtypes, e, encoder, gpu_times, median_min, objects, random_tensor, wait, Res,
};
use crate::{BenchArgs, BenchDType, ShapeArg};

/// Layers of the model `--cpu --decode` records.
const LAYERS: usize = 4;

/// One measured decode row.
struct Row {
    kind: &'static str,
    dtype: DType,
    /// B, Hq, Hkv, Tk (= kv_len), D; q_len = Tq.
    shape: Shape,
    median_ms: f64,
    min_ms: f64,
    /// Bytes of K and V (visible keys, once) plus q and o.
    bytes: u64,
    gb_s: f64,
    plan: SplitPlan,
    /// Chunks per (sequence, kv head) and keys per chunk.
    chunks: u32,
    chunk_len: u32,
    tiles: TileConfig,
}

/// `BxHqxHkvxTkxD`, as torch_peers.py writes decode shapes.
fn dims(s: &Shape) -> String {
    format!(
        "{}x{}x{}x{}x{}",
        s.batch, s.q_heads, s.kv_heads, s.kv_len, s.head_dim
    )
}

/// The decode shapes of `--shapes` with Tq = `--q-len` (`default` when none is given).
fn shapes(a: &BenchArgs, default: &[(usize, usize, usize, usize, usize)]) -> Res<Vec<Shape>> {
    let given: Vec<Shape> = a
        .shapes
        .iter()
        .map(|s| match s {
            ShapeArg::Decode(s) => Ok(*s),
            ShapeArg::Forward(s) => Err(format!(
                "--shapes {}x{}x{}x{}: --decode takes B x Hq x Hkv x Tk x D shapes",
                s.batch, s.q_heads, s.q_len, s.head_dim
            )),
        })
        .collect::<Res<_>>()?;
    let list = if given.is_empty() {
        default
            .iter()
            .map(|&(b, hq, hkv, tk, d)| Shape::gqa(b, hq, hkv, 1, d).with_kv_len(tk))
            .collect()
    } else {
        given
    };
    Ok(list
        .into_iter()
        .map(|s| s.with_q_len(a.q_len as usize))
        .collect())
}

/// The chunk rule of [`SplitPlan`] (its documentation) for `tk` keys and no window:
/// (chunk count, keys per chunk).
fn chunk_rule(tk: u32, plan: &SplitPlan, bk: u32) -> (u32, u32) {
    let l = plan
        .min_chunk
        .max(tk.div_ceil(plan.max_chunks))
        .div_ceil(bk)
        * bk;
    (tk.div_ceil(l), l)
}

/// Fills `t` with random values of its dtype, fast: one random block of up to 4 Mi elements
/// written over the whole tensor piece by piece with queue writes (submitted and waited for
/// every 256 MiB, so staging memory stays bounded).
fn fill_random(ctx: &Context, t: &Tensor, rng: &mut Rng) -> Res<()> {
    let x = rng.vec(t.len().min(1 << 22), 1.0);
    let block: Vec<u8> = match t.dtype() {
        DType::F32 => bytemuck::cast_slice(&x).to_vec(),
        DType::F16 => x
            .iter()
            .flat_map(|&y| half::f16::from_f32(y).to_le_bytes())
            .collect(),
    };
    let total = t.byte_len();
    let (mut off, mut pending) = (0u64, 0u64);
    while off < total {
        let len = (total - off).min(block.len() as u64);
        ctx.queue()
            .write_buffer(t.buffer(), off, &block[..len as usize]);
        off += len;
        pending += len;
        if pending >= 256 << 20 || off == total {
            ctx.queue().submit(None);
            wait(ctx)?;
            pending = 0;
        }
    }
    Ok(())
}

/// A cache of shape `s` whose every sequence holds `len` keys of random data.
fn full_cache(ctx: &Context, s: &Shape, cap: usize, len: usize, dtype: DType) -> Res<KvCache> {
    let mut cache = KvCache::new(ctx, s.batch, s.kv_heads, cap, s.head_dim, s.v_dim, dtype)
        .map_err(|err| format!("{}: {err}", dims(s)))?;
    let mut rng = Rng(0x5eed_dec0);
    fill_random(ctx, cache.k(), &mut rng)?;
    fill_random(ctx, cache.v(), &mut rng)?;
    for b in 0..s.batch {
        cache.set_len(b, len).map_err(e)?;
    }
    Ok(cache)
}

/// `bench --decode`.
pub fn gpu(ctx: &Context, a: &BenchArgs) -> Res<()> {
    let shapes = shapes(
        a,
        &[
            (1, 32, 8, 4096, 128),
            (1, 32, 8, 32768, 128),
            (1, 32, 8, 131072, 128),
            (8, 32, 8, 8192, 128),
        ],
    )?;
    if !ctx.info().timestamp_query {
        return Err("this device has no TIMESTAMP_QUERY; bench needs GPU timestamps".into());
    }
    let mut rows = Vec::new();
    for s in &shapes {
        for dtype in dtypes(a.dtype) {
            let cache = full_cache(ctx, s, s.kv_len, s.kv_len, dtype)?;
            let q = random_tensor(ctx, s.q(), dtype, &mut Rng(0x0bad_5eed))?;
            let es = dtype.size() as u64;
            let bytes = (2 * s.batch * s.kv_heads * s.kv_len * s.head_dim
                + 2 * s.batch * s.q_heads * s.q_len * s.head_dim) as u64
                * es;
            for entry in a.kind.entries() {
                let attn = bench_attention(entry);
                let out: DecodeOutput = ctx
                    .alloc_decode_output(&attn, &cache, s.q_heads, s.q_len)
                    .map_err(e)?;
                let (median_ms, min_ms) = median_min(gpu_times(ctx, a.reps, |enc, ts| {
                    ctx.record_decode_timed(enc, &attn, &q, &cache, &out, ts)
                        .map_err(e)
                })?);
                let tiles = ctx
                    .decode_tiles(s.head_dim, s.v_dim, s.group() * s.q_len, cache.dtype())
                    .map_err(e)?;
                let plan = out.plan();
                let (chunks, chunk_len) = chunk_rule(s.kv_len as u32, &plan, tiles.bk);
                let row = Row {
                    kind: entry.name,
                    dtype,
                    shape: *s,
                    median_ms,
                    min_ms,
                    bytes,
                    gb_s: bytes as f64 / (median_ms * 1e-3) / 1e9,
                    plan,
                    chunks,
                    chunk_len,
                    tiles,
                };
                eprintln!(
                    "{} {} {} Tq={} ({} chunks of {} keys): {:.4} ms, {:.1} GB/s",
                    row.kind,
                    dtype.name(),
                    dims(s),
                    s.q_len,
                    chunks,
                    chunk_len,
                    median_ms,
                    row.gb_s
                );
                rows.push(row);
            }
        }
    }
    println!("{}", markdown(ctx, &rows));
    if let Some(p) = &a.json {
        std::fs::write(p, json(ctx, &rows)).map_err(|err| format!("{}: {err}", p.display()))?;
    }
    Ok(())
}

fn markdown(ctx: &Context, rows: &[Row]) -> String {
    let i = ctx.info();
    let mut s = format!(
        "device: {} ({}), variant {:?}, decode kernel {:?}, f16 read as {:?}\ndecode steps over a \
         full KV cache; \
         GB/s = (K and V of the visible keys read once + q + o) / median time\n\n\
         | kind | dtype | B | Hq | Hkv | Tk | D | Tq | chunks x keys | median ms | min ms | GB/s |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n",
        i.name, i.backend, i.variant, i.decode_variant, i.f16_storage
    );
    for r in rows {
        let sh = &r.shape;
        s += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} x {} | {:.4} | {:.4} | {:.1} |\n",
            r.kind,
            r.dtype.name(),
            sh.batch,
            sh.q_heads,
            sh.kv_heads,
            sh.kv_len,
            sh.head_dim,
            sh.q_len,
            r.chunks,
            r.chunk_len,
            r.median_ms,
            r.min_ms,
            r.gb_s
        );
    }
    s
}

fn json(ctx: &Context, rows: &[Row]) -> String {
    let i = ctx.info();
    let items: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "mode": "decode",
                "kind": r.kind,
                "dtype": r.dtype.name(),
                "shape": dims(&r.shape),
                "q_len": r.shape.q_len,
                "median_ms": r.median_ms,
                "min_ms": r.min_ms,
                "bytes": r.bytes,
                "gb_s": r.gb_s,
                "chunks": r.chunks,
                "chunk_len": r.chunk_len,
                "min_chunk": r.plan.min_chunk,
                "max_chunks": r.plan.max_chunks,
                "device": i.name,
                "variant": format!("{:?}", r.tiles.variant),
                "bq": r.tiles.bq,
                "bk": r.tiles.bk,
            })
        })
        .collect();
    serde_json::to_string_pretty(&items).unwrap_or_default() + "\n"
}

/// Steps between waits in `--cpu --decode`.
const WAIT_EVERY: u32 = 50;
/// Untimed steps before the loop (pipelines and bind groups are created there, once).
const WARM_UP: usize = 3;

/// `bench --cpu --decode`: µs to record one decode step of a `LAYERS`-layer model, per kind.
pub fn cpu(ctx: &Context, a: &BenchArgs) -> Res<()> {
    let shape = shapes(a, &[(1, 32, 8, 4096, 128)])?
        .into_iter()
        .next()
        .ok_or("no shape")?;
    let dtype = match a.dtype {
        BenchDType::F16 => DType::F16,
        _ => DType::F32,
    };
    let (tq, tk) = (shape.q_len, shape.kv_len);
    // Room for every step's rows: no step may fill a cache.
    let cap = tk + (WARM_UP + a.steps as usize) * tq;
    let i = ctx.info();
    println!(
        "device: {} ({}), variant {:?}\ndecode step CPU cost of a {LAYERS}-layer model: shape {} \
         {} (caches from {tk} keys, {tq} new row(s) per step), {} steps per kind, each one \
         encoder with {LAYERS} x (KvCache::append + Context::record_decode), submitted; waited \
         for every {WAIT_EVERY} steps outside the timing\n",
        i.name,
        i.backend,
        i.variant,
        dims(&shape),
        dtype.name(),
        a.steps
    );
    println!(
        "| kind | median µs per step | p10 µs | p90 µs | submit µs (median) | objects before \
         the loop | created in the loop |"
    );
    println!("|---|---|---|---|---|---|---|");
    let rows = vec![tq; shape.batch];
    let new = |heads: usize| ctx.empty(&[shape.batch, heads, tq, shape.head_dim], dtype);
    let (q, k1, v1) = (
        new(shape.q_heads).map_err(e)?,
        new(shape.kv_heads).map_err(e)?,
        new(shape.kv_heads).map_err(e)?,
    );
    let mut all_reused = true;
    for entry in a.kind.entries() {
        let attn = bench_attention(entry);
        let mut caches = Vec::with_capacity(LAYERS);
        let mut outs = Vec::with_capacity(LAYERS);
        for _ in 0..LAYERS {
            let mut c = KvCache::new(
                ctx,
                shape.batch,
                shape.kv_heads,
                cap,
                shape.head_dim,
                shape.v_dim,
                dtype,
            )
            .map_err(e)?;
            for b in 0..shape.batch {
                c.set_len(b, tk).map_err(e)?;
            }
            outs.push(
                ctx.alloc_decode_output(&attn, &c, shape.q_heads, tq)
                    .map_err(e)?,
            );
            caches.push(c);
        }
        let step = |caches: &mut [KvCache]| -> Res<(f64, f64)> {
            let mut enc = encoder(ctx);
            let t = Instant::now();
            for (c, out) in caches.iter_mut().zip(&outs) {
                c.append(&mut enc, &k1, &v1, &rows).map_err(e)?;
                ctx.record_decode(&mut enc, &attn, &q, c, out).map_err(e)?;
            }
            let record = t.elapsed().as_secs_f64() * 1e6;
            let t = Instant::now();
            ctx.submit(enc).map_err(e)?;
            Ok((record, t.elapsed().as_secs_f64() * 1e6))
        };
        for _ in 0..WARM_UP {
            step(&mut caches)?;
        }
        wait(ctx)?;
        let before = ctx.objects_created();
        let (mut us, mut submit_us) = (Vec::new(), Vec::new());
        for s in 0..a.steps {
            let (r, sub) = step(&mut caches)?;
            us.push(r);
            submit_us.push(sub);
            if (s + 1) % WAIT_EVERY == 0 {
                wait(ctx)?;
            }
        }
        wait(ctx)?;
        let after = ctx.objects_created();
        all_reused &= after == before;
        us.sort_by(f64::total_cmp);
        let p = |f: f64| us[((us.len() - 1) as f64 * f) as usize];
        println!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
            entry.name,
            p(0.5),
            p(0.1),
            p(0.9),
            median_min(submit_us).0,
            objects(before, after)
        );
    }
    if !all_reused {
        eprintln!("warning: decode steps created wgpu objects");
    }
    Ok(())
}
