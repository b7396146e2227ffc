//! The smallest complete use of webattn: acquire a GPU (or the software adapter), run the
//! three attention kinds on random data in one command encoder, read the results back and
//! compare them with the f64 reference.
//!
//!     cargo run --release --example basic

use webattn::{Attention, Context, ContextOptions, Shape};

fn main() -> webattn::Result<()> {
    let ctx = Context::new_blocking(ContextOptions::from_env())?;
    println!("{}\n", ctx.info());

    // q [B, Hq, T, D], k and v [B, Hkv, T, D]: grouped-query attention with 8 query heads
    // sharing 2 kv heads.
    let shape = Shape {
        q_heads: 8,
        kv_heads: 2,
        ..Shape::new(1, 8, 200, 64)
    };
    let mut seed = 1u64;
    let mut random = |n: usize| -> Vec<f32> {
        (0..n)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (seed >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
            })
            .collect()
    };
    let n = |s: [usize; 4]| s.iter().product::<usize>();
    let (q, k, v) = (
        random(n(shape.q())),
        random(n(shape.k())),
        random(n(shape.v())),
    );
    let (qt, kt, vt) = (
        ctx.tensor_f32(&shape.q(), &q)?,
        ctx.tensor_f32(&shape.k(), &k)?,
        ctx.tensor_f32(&shape.v(), &v)?,
    );

    let kinds = [
        ("stick-breaking", Attention::stick_breaking()),
        ("softmax", Attention::softmax().causal(true)),
        ("sigmoid", Attention::sigmoid().causal(true)),
    ];
    // Record all three into one encoder: one submit, as an app batching layers would.
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    let mut outputs = Vec::new();
    for (_, attn) in &kinds {
        outputs.push(ctx.record(&mut encoder, attn, &qt, &kt, &vt)?);
    }
    ctx.submit(encoder)?;

    for ((name, attn), out) in kinds.iter().zip(&outputs) {
        let got = pollster::block_on(ctx.read_output(out))?;
        let want = webattn::reference(attn, &shape, &q, &k, &v)?;
        let (num, den) = got
            .o
            .iter()
            .zip(&want.o)
            .fold((0.0, 0.0), |(n, d), (&g, &w)| {
                (n + (g as f64 - w).powi(2), d + w * w)
            });
        println!(
            "{name:>15}: relative L2 error against the f64 reference {:.2e}",
            (num / den).sqrt()
        );
    }
    Ok(())
}
