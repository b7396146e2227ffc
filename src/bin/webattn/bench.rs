//! `webattn bench`: GPU timestamp queries around the forward dispatches, warm-up, median of
//! `--reps` (at least 20) runs, as ms and TFLOP/s (causal FLOPs = 4 B H T T D / 2), for all
//! three kinds in f32 and f16. Prints a markdown table and writes JSON (`--json PATH`).

use webattn::{Attention, Context, DType, Shape, Tensor};

/// One measured row.
pub struct Row {
    /// Attention kind.
    pub kind: &'static str,
    /// Storage type, "f32" or "f16".
    pub dtype: &'static str,
    /// Problem shape.
    pub shape: Shape,
    /// Median GPU time of one forward call, ms.
    pub median_ms: f64,
    /// Fastest GPU time, ms.
    pub min_ms: f64,
    /// Causal FLOPs (4 B H T T D / 2) over the median time, TFLOP/s.
    pub tflops: f64,
    /// The forward kernel's variant and tiles for this row.
    pub tiles: webattn::TileConfig,
}

fn random_tensor(
    ctx: &Context,
    shape: [usize; 4],
    dtype: DType,
    seed: &mut u64,
) -> Result<Tensor, String> {
    let data = crate::random(crate::elements(shape, ctx)?, seed);
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
    .map_err(|e| e.to_string())
}

/// Times `reps` forward calls of `attn`; returns the per-call GPU times in ms.
fn time_kind(
    ctx: &Context,
    attn: &Attention,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    shape: &Shape,
    reps: u32,
) -> Result<Vec<f64>, String> {
    let dev = ctx.device();
    let out = ctx
        .alloc_output(attn, shape, q.dtype())
        .map_err(|e| e.to_string())?;
    // Warm-up: pipeline creation and first-touch costs stay out of the numbers.
    for _ in 0..3 {
        let mut enc = dev.create_command_encoder(&Default::default());
        ctx.record_into(&mut enc, attn, q, k, v, &out)
            .map_err(|e| e.to_string())?;
        ctx.submit(enc).map_err(|e| e.to_string())?;
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
        let mut enc = dev.create_command_encoder(&Default::default());
        ctx.record_into_timed(&mut enc, attn, q, k, v, &out, Some((&qs, 2 * r)))
            .map_err(|e| e.to_string())?;
        ctx.submit(enc).map_err(|e| e.to_string())?;
    }
    let mut enc = dev.create_command_encoder(&Default::default());
    enc.resolve_query_set(&qs, 0..count, &resolve, 0);
    ctx.submit(enc).map_err(|e| e.to_string())?;
    let t = Tensor::from_buffer(resolve, &[2 * count as usize], DType::F32)
        .map_err(|e| e.to_string())?;
    let bytes = pollster::block_on(ctx.read_bytes(&t)).map_err(|e| e.to_string())?;
    let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&bytes);
    let period = ctx.queue().get_timestamp_period() as f64;
    Ok(ticks
        .chunks(2)
        .map(|p| p[1].saturating_sub(p[0]) as f64 * period * 1e-6)
        .collect())
}

pub fn run(
    ctx: &Context,
    shapes: &[Shape],
    kinds: &[&'static str],
    dtypes: &[DType],
    reps: u32,
) -> Result<Vec<Row>, String> {
    if !ctx.info().timestamp_query {
        return Err("this device has no TIMESTAMP_QUERY; bench needs GPU timestamps".into());
    }
    let mut rows = Vec::new();
    let mut seed = 0x0bad_5eed_u64;
    for shape in shapes {
        for &dtype in dtypes {
            let q = random_tensor(ctx, shape.q(), dtype, &mut seed)?;
            let k = random_tensor(ctx, shape.k(), dtype, &mut seed)?;
            let v = random_tensor(ctx, shape.v(), dtype, &mut seed)?;
            for &kind in kinds {
                let attn = match kind {
                    "softmax" => Attention::softmax().causal(true),
                    "sigmoid" => Attention::sigmoid().causal(true),
                    _ => Attention::stick_breaking(),
                };
                let mut ms = time_kind(ctx, &attn, &q, &k, &v, shape, reps)?;
                ms.sort_by(f64::total_cmp);
                let median_ms = ms[ms.len() / 2];
                let flops = 4.0
                    * (shape.batch * shape.q_heads) as f64
                    * (shape.q_len as f64)
                    * (shape.kv_len as f64)
                    * shape.head_dim as f64
                    / 2.0;
                let row = Row {
                    kind,
                    dtype: if dtype == DType::F32 { "f32" } else { "f16" },
                    shape: *shape,
                    median_ms,
                    min_ms: ms[0],
                    tflops: flops / (median_ms * 1e-3) / 1e12,
                    tiles: ctx
                        .forward_tiles(dtype, shape.head_dim, shape.v_dim)
                        .map_err(|e| e.to_string())?,
                };
                eprintln!(
                    "{} {} {}x{}x{}x{} ({:?} BQ={}): {:.3} ms, {:.2} TFLOP/s",
                    row.kind,
                    row.dtype,
                    shape.batch,
                    shape.q_heads,
                    shape.q_len,
                    shape.head_dim,
                    row.tiles.variant,
                    row.tiles.bq,
                    row.median_ms,
                    row.tflops
                );
                rows.push(row);
            }
        }
    }
    Ok(rows)
}

/// The rows as a markdown table, with the device line.
pub fn markdown(ctx: &Context, rows: &[Row]) -> String {
    let i = ctx.info();
    let mut s = format!(
        "device: {} ({}), variant {:?}, f16 read as {:?}\n\n| kind | dtype | B | H | T | D | variant | median ms | min ms | TFLOP/s |\n|---|---|---|---|---|---|---|---|---|---|\n",
        i.name, i.backend, i.variant, i.f16_storage
    );
    for r in rows {
        s += &format!(
            "| {} | {} | {} | {} | {} | {} | {:?} | {:.3} | {:.3} | {:.2} |\n",
            r.kind,
            r.dtype,
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
pub fn json(ctx: &Context, rows: &[Row]) -> String {
    let i = ctx.info();
    let items: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "  {{\"kind\": \"{}\", \"dtype\": \"{}\", \"shape\": \"{}x{}x{}x{}\", \"median_ms\": {:.5}, \"min_ms\": {:.5}, \"tflops\": {:.3}, \"device\": \"{}\", \"variant\": \"{:?}\", \"bq\": {}, \"bk\": {}}}",
                r.kind, r.dtype, r.shape.batch, r.shape.q_heads, r.shape.q_len, r.shape.head_dim, r.median_ms, r.min_ms, r.tflops,
                i.name.replace(['"', '\\'], "'"), r.tiles.variant, r.tiles.bq, r.tiles.bk
            )
        })
        .collect();
    format!("[\n{}\n]\n", items.join(",\n"))
}
