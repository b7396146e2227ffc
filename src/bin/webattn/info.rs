//! `webattn info`: the adapter, its features and limits, the kernel variant, and the forward
//! kernels' variant and tiles per head dim and dtype.

use webattn::DType;

use crate::InfoArgs;

pub fn info(a: &InfoArgs) -> Result<(), String> {
    let ctx = crate::context(&a.device)?;
    println!("{}", ctx.info());
    println!(
        "\nforward kernels per head dim and dtype (variant, BQ rows x BK keys, workgroup memory):"
    );
    for d in [16, 32, 64, 80, 96, 128, 256] {
        for dtype in [DType::F32, DType::F16] {
            match ctx.forward_tiles(dtype, d, d) {
                Ok(t) => println!(
                    "  D={d:<4} {:<4} {:<10} BQ={:<3} BK={:<3} {} bytes",
                    dtype.name(),
                    format!("{:?}", t.variant),
                    t.bq,
                    t.bk,
                    t.workgroup_bytes()
                ),
                Err(e) => println!("  D={d:<4} {:<4} {e}", dtype.name()),
            }
        }
    }
    Ok(())
}
