//! Overrides of the decode passes' automatic choices for measuring them (docs/perf.md,
//! decode changes): [`DecodeTuning`], read from `WEBATTN_DECODE_*`.

#[cfg(not(target_arch = "wasm32"))]
use crate::error::{Error, Result};

/// Overrides of the decode passes' automatic choices, read from the environment for
/// measuring them (docs/perf.md, decode changes): `None` / 0 when a variable is unset.
/// Unknown values are an error.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeTuning {
    /// `WEBATTN_DECODE_LOADS=0|1|2`: `vk` of [`crate::TileConfig::decode`] (values loaded by P V,
    /// with the keys, or with the keys and the next tile prefetched) forced.
    pub loads: Option<u32>,
    /// `WEBATTN_DECODE_ABLATE=N` (0 to 7; wrong results, timing only): the portable partial
    /// kernel's ablation bits (`debug` of its tiles; 1: packed f16 widened with no conversion,
    /// 2: no dot products in the logits, 4: values added unweighted).
    pub ablate: u32,
    /// `WEBATTN_DECODE_WORKGROUPS=N` (16 to 65536): the workgroup target of the split plan on
    /// a GPU, in place of [`super::SplitPlan::GPU_WORKGROUPS`].
    pub workgroups: Option<u32>,
    /// `WEBATTN_DECODE_KL=N` (1, 2, 4, 8 or 16): lanes per key of the portable partial
    /// kernel (`dc` of [`crate::TileConfig::decode`]), where N divides D / 4.
    pub lanes: Option<u32>,
    /// `WEBATTN_DECODE_DK=N` (16 to 512, a power of two): the portable partial kernel's key
    /// tile (`bk` of [`crate::TileConfig::decode`]), where the lanes it needs divide D / 4.
    pub dk: Option<u32>,
    /// `WEBATTN_DECODE_QREG=0|1`: q in registers in the portable partial kernel (`pad` of
    /// [`crate::TileConfig::decode`]) off (the default), or on where it fits.
    pub qreg: Option<bool>,
}

impl DecodeTuning {
    /// Reads `WEBATTN_DECODE_LOADS`, `WEBATTN_DECODE_ABLATE`, `WEBATTN_DECODE_WORKGROUPS`,
    /// `WEBATTN_DECODE_KL`, `WEBATTN_DECODE_DK` and `WEBATTN_DECODE_QREG`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_env() -> Result<Self> {
        fn num(name: &str, range: std::ops::RangeInclusive<u32>) -> Result<Option<u32>> {
            let Some(v) = std::env::var(name).ok().filter(|v| !v.trim().is_empty()) else {
                return Ok(None);
            };
            match v.trim().parse::<u32>() {
                Ok(n) if range.contains(&n) => Ok(Some(n)),
                _ => Err(Error::InvalidOption(format!(
                    "{name}={v}: not a number from {} to {}",
                    range.start(),
                    range.end()
                ))),
            }
        }
        Ok(DecodeTuning {
            loads: num("WEBATTN_DECODE_LOADS", 0..=2)?,
            ablate: num("WEBATTN_DECODE_ABLATE", 0..=7)?.unwrap_or(0),
            workgroups: num("WEBATTN_DECODE_WORKGROUPS", 16..=65536)?,
            lanes: match num("WEBATTN_DECODE_KL", 1..=16)? {
                Some(l) if !l.is_power_of_two() => {
                    return Err(Error::InvalidOption(format!(
                        "WEBATTN_DECODE_KL={l}: not 1, 2, 4, 8 or 16"
                    )))
                }
                l => l,
            },
            qreg: num("WEBATTN_DECODE_QREG", 0..=1)?.map(|v| v == 1),
            dk: match num("WEBATTN_DECODE_DK", 16..=512)? {
                Some(x) if !x.is_power_of_two() => {
                    return Err(Error::InvalidOption(format!(
                        "WEBATTN_DECODE_DK={x}: not a power of two"
                    )))
                }
                x => x,
            },
        })
    }
}
