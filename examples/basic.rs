//! The smallest complete use of webattn: acquire a GPU (or the software adapter), run every
//! attention kind on random data in one command encoder, read the results back and compare
//! them with the f64 reference.
//!
//!     cargo run --release --example basic

use webattn::testing::{compare, fresh_seed, Rng};
use webattn::{Attention, Context, ContextOptions, Shape};

fn main() -> webattn::Result<()> {
    let ctx = Context::new_blocking(ContextOptions::from_env()?)?;
    println!("{}\n", ctx.info());

    // q [B, Hq, T, D], k and v [B, Hkv, T, D]: grouped-query attention with 8 query heads
    // sharing 2 kv heads.
    let shape = Shape::gqa(1, 8, 2, 200, 64);
    let seed = fresh_seed("example");
    println!("seed {seed}");
    let (q, k, v) = Rng(seed).qkv(&shape);
    let (qt, kt, vt) = (
        ctx.tensor_f32(&shape.q(), &q)?,
        ctx.tensor_f32(&shape.k(), &k)?,
        ctx.tensor_f32(&shape.v(), &v)?,
    );

    let kinds = [
        Attention::stick_breaking(),
        Attention::softmax().causal(true),
        Attention::sigmoid().causal(true),
    ];
    // Record all three into one encoder: one submit, as an app batching layers would.
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    let mut outputs = Vec::new();
    for attn in &kinds {
        outputs.push(ctx.record(&mut encoder, attn, &qt, &kt, &vt)?);
    }
    ctx.submit(encoder)?;

    for (attn, out) in kinds.iter().zip(&outputs) {
        let got = pollster::block_on(ctx.read_output(out))?;
        let want = webattn::reference(attn, &shape, &q, &k, &v)?;
        println!(
            "{:>15}: relative L2 error against the f64 reference {:.2e}",
            attn.kind().name(),
            compare(&got.o, &want.o).rel
        );
    }
    Ok(())
}
