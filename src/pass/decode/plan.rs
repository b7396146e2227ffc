//! The chunking rule of split-KV decoding (SPEC.md section 4): [`SplitPlan`] and
//! [`chunk_count`], which the host and `common/decode.wgsl` evaluate alike.

use crate::error::{Error, Result};

/// How a long cache is split into chunks that run in parallel and are merged (SPEC.md
/// section 4).
///
/// Sequence `b`'s visible keys `[lo, Tk_b)` (`lo` > 0 only with a window) are cut into
/// `n = ceil(len / L)` chunks of `L = roundup(max(min_chunk, ceil(len / max_chunks)), DK)`
/// keys, DK being the kernel's key tile (32 to 256). So a chunk never has fewer than
/// `min_chunk` keys (each workgroup streams a long run of K and V), there are never more than
/// `max_chunks` per (sequence, kv head) (the partials' size), and the chunk count follows the
/// sequence's length step by step with no per-step parameter: the kernels read `Tk_b` from the
/// cache's `lens` buffer and evaluate the same rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SplitPlan {
    /// The fewest keys in a chunk (>= 1).
    pub min_chunk: u32,
    /// The most chunks per (sequence, kv head) (>= 1, at most 4096).
    pub max_chunks: u32,
}

impl SplitPlan {
    /// Fewest keys per chunk of [`SplitPlan::for_target`] (through `Context::split_plan`): 256 keys are 64 KiB of K and V at
    /// D = Dv = 128 in f16, long enough that a workgroup's fixed costs (q rows, the partial
    /// write, its share of the merge) stay a few percent of its streaming.
    pub const MIN_CHUNK: u32 = 256;
    /// Workgroups [`SplitPlan::for_target`] (through `Context::split_plan`) aims for on a GPU. wgpu cannot report the number of
    /// SMs / CUs, so this is fixed: 1024 workgroups of 256 invocations are about two waves of
    /// an H100 or H200 (132 SMs x 3 or 4 such workgroups at the partial kernel's 64 to 80
    /// registers), enough to keep its memory busy with long chunks; a smaller GPU runs more
    /// waves of the same chunks. Measured on the H200 (docs/perf.md, change D6): 1024 beats
    /// 2048 by 2-4% at the large shapes, 512 and 4096 lose.
    pub const GPU_WORKGROUPS: u32 = 1024;
    /// Workgroups [`SplitPlan::for_target`] (through `Context::split_plan`) aims for on a software (CPU) adapter, where every
    /// workgroup runs on a CPU thread and more chunks only add merge work.
    pub const CPU_WORKGROUPS: u32 = 64;

    /// The plan for `units` = B * Hkv * row blocks workgroups per chunk column on a device
    /// that runs about `target` workgroups well: `max_chunks = ceil(target / units)`,
    /// `min_chunk = 256`.
    pub fn for_target(target: u32, units: usize) -> Self {
        let units = units.clamp(1, u32::MAX as usize) as u32;
        SplitPlan {
            min_chunk: Self::MIN_CHUNK,
            max_chunks: target.div_ceil(units).clamp(1, 4096),
        }
    }

    /// Checks the fields.
    pub fn validate(&self) -> Result<()> {
        if self.min_chunk == 0 || self.max_chunks == 0 || self.max_chunks > 4096 {
            return Err(Error::InvalidOption(format!(
                "split plan {self:?}: min_chunk must be >= 1 and max_chunks 1 to 4096"
            )));
        }
        Ok(())
    }
}

/// The chunk rule of [`SplitPlan`] for a sequence of `tk` keys, `tq` query rows and window
/// `window` (0: none): `(lo, chunk length, chunk count)`. `common/decode.wgsl` (`seq_of`)
/// evaluates the same integer arithmetic.
pub(crate) fn chunk_count(
    tk: u32,
    tq: u32,
    window: u32,
    plan: &SplitPlan,
    dk: u32,
) -> (u32, u32, u32) {
    let lo = if window != 0 {
        (tk as i64 - tq as i64 - window as i64 + 1).max(0) as u32
    } else {
        0
    };
    let len = tk - lo.min(tk);
    let l = plan
        .min_chunk
        .max(len.div_ceil(plan.max_chunks))
        .div_ceil(dk)
        * dk;
    (lo, l, len.div_ceil(l))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_visible_keys_within_the_plan() {
        let dk = 32;
        for plan in [
            SplitPlan {
                min_chunk: 1,
                max_chunks: 7,
            },
            SplitPlan {
                min_chunk: 256,
                max_chunks: 64,
            },
            SplitPlan::for_target(SplitPlan::GPU_WORKGROUPS, 8),
        ] {
            for tk in [0u32, 1, 31, 32, 33, 255, 256, 257, 1000, 131072] {
                for (tq, w) in [(1, 0), (5, 0), (1, 100), (3, 7), (2, 1_000_000)] {
                    let (lo, l, n) = chunk_count(tk, tq, w, &plan, dk);
                    assert!(n <= plan.max_chunks, "{plan:?} {tk}");
                    assert!(l >= plan.min_chunk && l % dk == 0);
                    assert!(lo <= tk);
                    // n chunks of l keys cover [lo, tk), the last one non-empty.
                    assert!(lo + n * l >= tk && (n == 0 || lo + (n - 1) * l < tk));
                    assert_eq!(n == 0, tk == 0);
                    // The window's first visible key of the first row is lo.
                    if w != 0 && tk as i64 - tq as i64 - w as i64 + 1 > 0 {
                        assert_eq!(lo as i64, tk as i64 - tq as i64 - w as i64 + 1);
                    }
                }
            }
        }
    }

    #[test]
    fn the_auto_plan_fills_a_gpu_with_long_chunks() {
        // The shape: B = 1, Hkv = 8, 131072 keys, one row block.
        let p = SplitPlan::for_target(SplitPlan::GPU_WORKGROUPS, 8);
        assert_eq!(p.max_chunks, 128);
        let (_, l, n) = chunk_count(131072, 1, 0, &p, 32);
        assert_eq!((l, n), (1024, 128));
        assert_eq!(n * 8, 1024);
        // Short caches: one chunk (the single-pass path).
        assert_eq!(chunk_count(200, 1, 0, &p, 32).2, 1);
        // Large batches get one chunk column until chunks reach 256 keys.
        let p = SplitPlan::for_target(SplitPlan::GPU_WORKGROUPS, 64 * 8);
        assert_eq!(p.max_chunks, 2);
        assert_eq!(chunk_count(4096, 1, 0, &p, 32).2, 2);
    }
}
