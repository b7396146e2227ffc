//! Incremental decoding over a KV cache: a ragged prompt prefill into the cache, then a decode
//! loop that appends one token per sequence and step and attends with it, allocating nothing
//! per step, and a check of the last step against the f64 reference.
//!
//!     cargo run --release --example decode

use webattn::testing::{compare, fresh_seed, Rng};
use webattn::{Attention, Context, ContextOptions, DType, KvCache, Shape};

fn main() -> webattn::Result<()> {
    let ctx = Context::new_blocking(ContextOptions::from_env()?)?;
    println!("{}\n", ctx.info());

    // Two sequences, 8 query heads sharing 2 kv heads (GQA 4:1), head dim 64, 1024 slots.
    let (batch, q_heads, kv_heads, d, capacity) = (2, 8, 2, 64, 1024);
    let attn = Attention::softmax().causal(true);
    let seed = fresh_seed("decode example");
    println!("seed {seed}");
    let mut rng = Rng(seed);

    let mut cache = KvCache::new(&ctx, batch, kv_heads, capacity, d, d, DType::F32)?;
    // Host copies of each sequence's keys and values, [Hkv][len][D], for the final check.
    let mut host_k = vec![vec![Vec::<f32>::new(); kv_heads]; batch];
    let mut host_v = host_k.clone();
    let keep = |host: &mut Vec<Vec<Vec<f32>>>, x: &[f32], t: usize, rows: &[usize]| {
        for (b, &r) in rows.iter().enumerate() {
            for (h, dst) in host[b].iter_mut().enumerate() {
                let block = &x[(b * kv_heads + h) * t * d..][..t * d];
                dst.extend_from_slice(&block[(t - r) * d..]);
            }
        }
    };

    // Prompts of 300 and 120 tokens: one append of [B, Hkv, 300, D], each sequence taking
    // the last rows of its block (bottom-right aligned, like query rows).
    let prompt = [300, 120];
    let t = 300;
    let (kp, vp) = (
        rng.vec(batch * kv_heads * t * d, 1.0),
        rng.vec(batch * kv_heads * t * d, 1.0),
    );
    let (kpt, vpt) = (
        ctx.tensor_f32(&[batch, kv_heads, t, d], &kp)?,
        ctx.tensor_f32(&[batch, kv_heads, t, d], &vp)?,
    );
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    cache.append(&mut encoder, &kpt, &vpt, &prompt)?;
    ctx.submit(encoder)?;
    keep(&mut host_k, &kp, t, &prompt);
    keep(&mut host_v, &vp, t, &prompt);

    // Everything a step uses, allocated once. In a model, the projections write q, k and v in
    // the same encoder; here the host writes them (queue writes, no new object).
    let q = ctx.empty(&[batch, q_heads, 1, d], DType::F32)?;
    let k1 = ctx.empty(&[batch, kv_heads, 1, d], DType::F32)?;
    let v1 = ctx.empty(&[batch, kv_heads, 1, d], DType::F32)?;
    let out = ctx.alloc_decode_output(&attn, &cache, q_heads, 1)?;
    println!("split plan: {:?}", out.plan());

    let steps = 200;
    let mut last_q = Vec::new();
    let mut before = None;
    let start = web_time::Instant::now();
    for step in 0..steps {
        let (qh, kh, vh) = (
            rng.vec(batch * q_heads * d, 1.0),
            rng.vec(batch * kv_heads * d, 1.0),
            rng.vec(batch * kv_heads * d, 1.0),
        );
        ctx.write_f32(&q, &qh)?;
        ctx.write_f32(&k1, &kh)?;
        ctx.write_f32(&v1, &vh)?;
        // One step per submit: append (the lengths advance), then attend.
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        cache.append(&mut encoder, &k1, &v1, &[1, 1])?;
        ctx.record_decode(&mut encoder, &attn, &q, &cache, &out)?;
        ctx.submit(encoder)?;
        keep(&mut host_k, &kh, 1, &[1, 1]);
        keep(&mut host_v, &vh, 1, &[1, 1]);
        last_q = qh;
        if step == 0 {
            // Pipelines and bind groups exist after the first step.
            before = Some(ctx.objects_created());
        }
    }
    let after = ctx.objects_created();
    let got = pollster::block_on(ctx.read_output(out.output()))?;
    println!(
        "{steps} steps in {:.1} ms; wgpu objects created after the first step: {}",
        start.elapsed().as_secs_f64() * 1e3,
        if before == Some(after) {
            "none".to_string()
        } else {
            format!("{before:?} -> {after:?}")
        }
    );

    // The last step of each sequence against the f64 reference on its dense k and v.
    for b in 0..batch {
        let len = cache.lens()[b];
        let s = Shape::gqa(1, q_heads, kv_heads, 1, d).with_kv_len(len);
        let k: Vec<f32> = host_k[b].concat();
        let v: Vec<f32> = host_v[b].concat();
        let qb = &last_q[b * q_heads * d..(b + 1) * q_heads * d];
        let want = webattn::reference(&attn, &s, qb, &k, &v)?;
        let o = &got.o[b * q_heads * d..(b + 1) * q_heads * d];
        println!(
            "sequence {b}: {len} keys, relative L2 error of o against the f64 reference {:.2e}",
            compare(o, &want.o).rel
        );
    }
    Ok(())
}
