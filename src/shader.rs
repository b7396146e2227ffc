//! What the WGSL kernels are built from, below the passes: tile sizes ([`TileConfig`], whose
//! generated constants head every kernel), the storage types ([`Storage`]), the kernel
//! variants ([`Variant`]) and the shared snippets of `shaders/common/`. The assembly of one
//! kernel is [`crate::pass::source`].

use crate::dtype::DType;
use crate::error::{Error, Result};

/// A family of forward kernels. All compute the same function; they differ in the hardware
/// features they use. [`crate::Context`] picks the fastest the device supports unless one is
/// forced ([`crate::ContextOptions::variant`] or
/// `WEBATTN_VARIANT=portable|subgroup|coopmat|coopmat2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// Core WebGPU only: workgroup-memory tiles, no subgroups, no extensions. Runs everywhere.
    Portable,
    /// Row reductions and broadcasts through subgroup operations (`SUBGROUP`).
    Subgroup,
    /// Cooperative matrices (tensor cores) for QK^T and PV (`EXPERIMENTAL_COOPERATIVE_MATRIX`).
    CoopMatrix,
    /// Cooperative matrices with each subgroup owning 16 query rows and walking its own key
    /// tiles (`shaders/common/tile_coop2.wgsl`): no workgroup barrier in the loop. Needs a
    /// fixed subgroup size of 32 (min == max == 32) besides the cooperative-matrix features.
    CoopMatrix2,
}

impl Variant {
    /// Every variant.
    pub const ALL: [Variant; 4] = [
        Variant::Portable,
        Variant::Subgroup,
        Variant::CoopMatrix,
        Variant::CoopMatrix2,
    ];

    /// Parses `portable`, `subgroup`, `coopmat` or `coopmat2`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "portable" => Some(Variant::Portable),
            "subgroup" | "subgroups" => Some(Variant::Subgroup),
            "coopmat" | "coop-matrix" | "cooperative-matrix" => Some(Variant::CoopMatrix),
            "coopmat2" | "coop2" => Some(Variant::CoopMatrix2),
            _ => None,
        }
    }

    /// The name [`Variant::parse`] reads.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Portable => "portable",
            Variant::Subgroup => "subgroup",
            Variant::CoopMatrix => "coopmat",
            Variant::CoopMatrix2 => "coopmat2",
        }
    }
}

/// How tensors are stored and read by a kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Storage {
    /// f32 tensors.
    F32,
    /// f16 tensors read as `vec4<f16>` (needs `SHADER_F16`).
    F16,
    /// f16 tensors read packed, two halves per `u32` (`unpack2x16float`): core WebGPU only.
    F16Packed,
}

impl Storage {
    /// The element type of the tensors.
    pub fn dtype(self) -> DType {
        match self {
            Storage::F32 => DType::F32,
            Storage::F16 | Storage::F16Packed => DType::F16,
        }
    }
}

/// Tile sizes of the forward kernels, chosen per head dim and device (see
/// [`TileConfig::choose`] and [`TileConfig::choose_coop`]). The weights kernels use `WG` rows
/// per workgroup. The decode kernels read `d`, `dv`, `bq` (query rows per workgroup), `bk`
/// (keys per tile) and `dc` (lanes per key) as [`TileConfig::decode`] documents; the subgroup
/// decode kernel also `vk`, `pad` and `sg_max` ([`TileConfig::decode_subgroup`]).
///
/// They are generated WGSL `const`s, not pipeline-overridable constants: WGSL `override`
/// values cannot size the private register arrays the kernels are built on, so each tile
/// shape is its own (cached) pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TileConfig {
    /// Which variant's phases A and C the forward kernel uses.
    pub variant: Variant,
    /// Query/key head dim D.
    pub d: u32,
    /// Value head dim Dv.
    pub dv: u32,
    /// Query rows per workgroup (a multiple of 16).
    pub bq: u32,
    /// Keys per tile (a multiple of 16).
    pub bk: u32,
    /// Portable: columns of Q and K staged per chunk in phase A (a multiple of 4).
    /// Cooperative-matrix: 0.
    pub dc: u32,
    /// Portable: keys of V staged per chunk in phase C (a multiple of 4 dividing `bk`).
    /// Cooperative-matrix: 0.
    pub vk: u32,
    /// Cooperative-matrix: padding of the workgroup-memory rows against bank conflicts
    /// (2: every tile; 1: the f16 tiles only; 0: none). Portable: 0.
    pub pad: u32,
    /// Cooperative-matrix: the largest subgroup size the device may use (it sizes each
    /// subgroup's share of output blocks). Portable: 0.
    pub sg_max: u32,
    /// Measuring only (0 otherwise; docs/perf.md). `coopmat2`: the ablation bits of
    /// `WEBATTN_COOP2_ABLATE` (1: K fragments, 2: V fragments, 4: phase B, 8: the S store and
    /// P load) and [`TileConfig::COOP2_STAGE`] (`WEBATTN_COOP2_STAGE=1`: K and V staged by the
    /// subgroup). Portable decode partial kernel: the ablation bits of `WEBATTN_DECODE_ABLATE`
    /// ([`crate::pass::decode::DecodeTuning`]).
    #[doc(hidden)]
    pub debug: u32,
}

impl TileConfig {
    /// Invocations per workgroup (a 16 x 16 grid).
    pub const WG: u32 = 256;

    /// Invocations per workgroup of the `coopmat2` forward kernel (4 subgroups of 32).
    pub const WG_COOP2: u32 = 128;

    /// The bit of [`TileConfig::debug`] that stages K and V through the subgroup's
    /// scratch (`shaders/common/tile_coop2_staged.wgsl`).
    #[doc(hidden)]
    pub const COOP2_STAGE: u32 = 1 << 16;

    /// Is this the `coopmat2` kernel with K and V staged?
    pub(crate) fn coop2_staged(&self) -> bool {
        self.variant == Variant::CoopMatrix2 && self.debug & Self::COOP2_STAGE != 0
    }

    /// The `coopmat2` debugging bits read from the environment (`WEBATTN_COOP2_ABLATE`: a
    /// number or a comma list of k, v, b, s; `WEBATTN_COOP2_STAGE=1`), docs/perf.md. Unknown
    /// values are an error.
    #[doc(hidden)]
    pub fn coop2_debug_from_env() -> Result<u32> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let mut bits = 0;
        if let Some(a) = var("WEBATTN_COOP2_ABLATE") {
            for w in a.split(',').map(str::trim) {
                bits |= match w {
                    "k" => 1,
                    "v" => 2,
                    "b" => 4,
                    "s" => 8,
                    _ => match w.parse::<u32>() {
                        Ok(n) if n < 16 => n,
                        _ => {
                            return Err(Error::InvalidOption(format!(
                                "WEBATTN_COOP2_ABLATE={a}: not a number below 16 or a comma \
                                 list of k, v, b, s"
                            )))
                        }
                    },
                };
            }
        }
        match var("WEBATTN_COOP2_STAGE").as_deref() {
            None | Some("0") => {}
            Some("1") => bits |= Self::COOP2_STAGE,
            Some(x) => {
                return Err(Error::InvalidOption(format!(
                    "WEBATTN_COOP2_STAGE={x}: not 0 or 1"
                )))
            }
        }
        Ok(bits)
    }

    /// Invocations per workgroup of this forward kernel.
    pub fn wg(&self) -> u32 {
        match self.variant {
            Variant::CoopMatrix2 => Self::WG_COOP2,
            _ => Self::WG,
        }
    }

    /// Picks the largest portable tiles whose workgroup memory fits `wg_mem` bytes, from
    /// 64 x 64 (DC 32) down to 16 x 16 (DC 4); then the largest V chunk that fits. The
    /// subgroup variant uses the same tiles ([`TileConfig::with_variant`]).
    pub fn choose(d: usize, dv: usize, wg_mem: u32) -> Result<Self> {
        let ok = |x: usize| x.is_multiple_of(4) && (4..=256).contains(&x);
        if !ok(d) || !ok(dv) {
            return Err(Error::UnsupportedHeadDim { d, dv });
        }
        let (d, dv) = (d as u32, dv as u32);
        let candidates = [
            (64, 64, 32),
            (64, 64, 16),
            (64, 32, 16),
            (32, 32, 16),
            (32, 32, 8),
            (16, 16, 8),
            (16, 16, 4),
        ];
        // The smallest tile tried, for the error: it is what the limit would have to hold.
        let mut smallest: Option<TileConfig> = None;
        for (bq, bk, dc) in candidates {
            let mut vk = bk;
            while vk >= 4 {
                let t = TileConfig {
                    variant: Variant::Portable,
                    d,
                    dv,
                    bq,
                    bk,
                    dc,
                    vk,
                    pad: 0,
                    sg_max: 0,
                    debug: 0,
                };
                if t.workgroup_bytes() <= wg_mem {
                    return Ok(t);
                }
                if smallest.is_none_or(|s| t.workgroup_bytes() < s.workgroup_bytes()) {
                    smallest = Some(t);
                }
                vk /= 2;
            }
        }
        let (what, size) = match smallest {
            Some(t) => (
                format!(
                    "workgroup memory (bytes) of the smallest tile for head dims D={d}, Dv={dv} \
                     (BQ={} BK={} DC={} VK={})",
                    t.bq, t.bk, t.dc, t.vk
                ),
                t.workgroup_bytes() as u64,
            ),
            None => (
                format!("workgroup memory for head dims D={d}, Dv={dv}"),
                u64::MAX,
            ),
        };
        Err(Error::TensorTooLarge {
            what,
            size,
            limit: wg_mem as u64,
        })
    }

    /// The same tiles for another variant of phases A and C that shares the portable layout
    /// (portable or subgroup).
    pub fn with_variant(self, variant: Variant) -> Self {
        TileConfig { variant, ..self }
    }

    /// Tiles of the cooperative-matrix variant (`BK` = 64 keys; BQ = 64, 32 or 16 rows, with
    /// as much padding as fits), or `None` where it cannot run: head dims that are not
    /// multiples of 16, or no tile fits `wg_mem` bytes of workgroup memory.
    ///
    /// `sg_max` is the largest subgroup size the device may use (a power of two, 1 to 256).
    pub fn choose_coop(d: usize, dv: usize, wg_mem: u32, sg_max: u32) -> Option<Self> {
        let ok = |x: usize| x.is_multiple_of(16) && (16..=256).contains(&x);
        if !ok(d) || !ok(dv) || !sg_max.is_power_of_two() || sg_max > Self::WG {
            return None;
        }
        let candidates = [
            (64, 2),
            (64, 1),
            (32, 2),
            (32, 1),
            (16, 2),
            (16, 1),
            (16, 0),
        ];
        candidates.into_iter().find_map(|(bq, pad)| {
            let t = TileConfig {
                variant: Variant::CoopMatrix,
                d: d as u32,
                dv: dv as u32,
                bq,
                bk: 64,
                dc: 0,
                vk: 0,
                pad,
                sg_max,
                debug: 0,
            };
            (t.workgroup_bytes() <= wg_mem).then_some(t)
        })
    }

    /// Tiles of the `coopmat2` variant (`shaders/common/tile_coop2.wgsl`: 64 rows per
    /// workgroup, 16 per subgroup of 32, 64-key tiles), or `None` where it cannot run: head
    /// dims that are not multiples of 16 or above 128 (the Q and O fragments live in
    /// registers), subgroups that are not fixed at 32 (`sg_min == sg_max == 32`), or
    /// workgroup memory under [`TileConfig::workgroup_bytes`].
    pub fn choose_coop2(
        d: usize,
        dv: usize,
        wg_mem: u32,
        sg_min: u32,
        sg_max: u32,
    ) -> Option<Self> {
        Self::choose_coop2_with(d, dv, wg_mem, sg_min, sg_max, 0)
    }

    /// [`TileConfig::choose_coop2`] with the debugging bits of [`TileConfig::debug`];
    /// staged tiles that do not fit `wg_mem` fall back to the default ones.
    #[doc(hidden)]
    pub fn choose_coop2_with(
        d: usize,
        dv: usize,
        wg_mem: u32,
        sg_min: u32,
        sg_max: u32,
        debug: u32,
    ) -> Option<Self> {
        let ok = |x: usize| x.is_multiple_of(16) && (16..=128).contains(&x);
        if !ok(d) || !ok(dv) || sg_min != 32 || sg_max != 32 {
            return None;
        }
        let t = TileConfig {
            variant: Variant::CoopMatrix2,
            d: d as u32,
            dv: dv as u32,
            bq: 64,
            bk: 64,
            dc: 0,
            vk: 0,
            pad: 0,
            sg_max,
            debug,
        };
        if t.workgroup_bytes() <= wg_mem {
            return Some(t);
        }
        let t = TileConfig {
            debug: debug & !Self::COOP2_STAGE,
            ..t
        };
        (t.workgroup_bytes() <= wg_mem).then_some(t)
    }

    // coopmat2 per-subgroup scratch row strides: (SH floats, PH halves, FH halves), each a
    // multiple of 16 bytes; staged K and V need FH to hold a whole K or V row.
    fn coop2_strides(&self) -> (u32, u32, u32) {
        let fh = if self.coop2_staged() {
            self.d.max(self.dv) + 8
        } else {
            16 + 8
        };
        (self.bk + 4, self.bk + 8, fh)
    }

    fn stage_vec4s(&self) -> u32 {
        ((self.bq + self.bk) * (self.dc / 4 + 1)).max(self.vk * self.dv / 4)
    }

    // Cooperative-matrix row strides: (QS, KVS, PS) in halves, PT in floats.
    fn coop_strides(&self) -> (u32, u32, u32, u32) {
        let h = if self.pad >= 1 { 8 } else { 0 };
        let f = if self.pad >= 2 { 4 } else { 0 };
        (
            self.d + h,
            self.d.max(self.dv) + h,
            self.bk + h,
            self.bk + f,
        )
    }

    /// Workgroup memory the forward kernels use, in bytes.
    pub fn workgroup_bytes(&self) -> u32 {
        // stat_a, stat_b, stat_c and red (16 per row); the atomic rescale_tile.
        let stats = (3 + 16) * 4 * self.bq + 4;
        match self.variant {
            Variant::CoopMatrix2 => {
                // s_scr (f32), p_scr and f_scr (f16): 16 rows per subgroup each.
                let (sh, ph, fh) = self.coop2_strides();
                let subgroups = Self::WG_COOP2 / self.sg_max.max(1);
                subgroups * 16 * (4 * sh + 2 * ph + 2 * fh)
            }
            Variant::CoopMatrix => {
                let (qs, kvs, ps, pt) = self.coop_strides();
                // vbad: one bit per key of the tile (non-finite V rows).
                let vbad = 4 * self.bk.div_ceil(32);
                2 * self.bq * qs
                    + 2 * self.bk * kvs
                    + 2 * self.bq * ps
                    + 4 * self.bq * pt
                    + stats
                    + vbad
            }
            _ => 16 * self.stage_vec4s() + 4 * self.bq * self.bk + stats,
        }
    }

    /// The generated constants of the forward and weights kernels.
    pub(crate) fn header(&self, storage: Storage) -> String {
        let mut s = String::new();
        if storage == Storage::F16 {
            s += "enable f16;\n";
        }
        if matches!(self.variant, Variant::CoopMatrix | Variant::CoopMatrix2) {
            s += "enable wgpu_cooperative_matrix;\n";
        }
        s += "// generated by webattn::shader\n";
        let common = [
            ("HEAD_D", self.d),
            ("HEAD_DV", self.dv),
            ("BQ", self.bq),
            ("BK", self.bk),
            ("WG", self.wg()),
            ("RA", self.bq / 16),
            ("RB", self.bk / 16),
            ("VC", (self.dv / 4).div_ceil(16)),
        ];
        for (name, v) in common {
            s += &format!("const {name}: u32 = {v}u;\n");
        }
        if self.variant == Variant::CoopMatrix2 {
            let (sh, ph, fh) = self.coop2_strides();
            let sg = self.sg_max;
            let coop2 = [
                ("SG", sg),
                ("LPR", sg / 16),
                ("KPL", self.bk / (sg / 16)),
                ("DB", self.d / 16),
                ("DVB", self.dv / 16),
                ("NG", (self.dv / 16).div_ceil(4)),
                ("SH", sh),
                ("PH", ph),
                ("FH", fh),
                ("COOP2_ABLATE", self.debug & 15),
            ];
            for (name, v) in coop2 {
                s += &format!("const {name}: u32 = {v}u;\n");
            }
            return s;
        }
        if self.variant == Variant::CoopMatrix {
            let (qs, kvs, ps, pt) = self.coop_strides();
            let blocks = (self.bq / 16) * (self.dv / 16);
            let ob = blocks.div_ceil(Self::WG / self.sg_max.max(1));
            let coop = [
                ("QS", qs),
                ("KVS", kvs),
                ("PS", ps),
                ("PT", pt),
                ("DVB", self.dv / 16),
                ("OB", ob),
                ("VPRE", (self.bk * self.dv / 4).div_ceil(Self::WG)),
            ];
            for (name, v) in coop {
                s += &format!("const {name}: u32 = {v}u;\n");
            }
            return s;
        }
        let c = [
            ("DC4", self.dc / 4),
            ("NDC", self.d.div_ceil(self.dc)),
            ("KS", self.dc / 4 + 1),
            ("VK", self.vk),
            ("STAGE4", self.stage_vec4s()),
        ];
        for (name, v) in c {
            s += &format!("const {name}: u32 = {v}u;\n");
        }
        s
    }
}

/// The shared WGSL snippets of `shaders/common/` (see each file's opening comment).
pub(crate) mod snippets {
    use crate::shader::Storage;

    pub const PARAMS: &str = include_str!("../shaders/common/params.wgsl");
    pub const TILE: &str = include_str!("../shaders/common/tile.wgsl");
    pub const TILE_PORTABLE: &str = include_str!("../shaders/common/tile_portable.wgsl");
    pub const TILE_COOP: &str = include_str!("../shaders/common/tile_coop.wgsl");
    pub const TILE_COOP2: &str = include_str!("../shaders/common/tile_coop2.wgsl");
    /// q, k, v as scalar f16 arrays (coopLoad needs a scalar pointer): the `coopmat2` kernel.
    pub const STORAGE_F16_SCALAR: &str = include_str!("../shaders/common/storage_f16_scalar.wgsl");
    pub const STORAGE_F16_COOP2_STAGED: &str =
        include_str!("../shaders/common/storage_f16_coop2_staged.wgsl");
    pub const TILE_COOP2_DIRECT: &str = include_str!("../shaders/common/tile_coop2_direct.wgsl");
    pub const TILE_COOP2_STAGED: &str = include_str!("../shaders/common/tile_coop2_staged.wgsl");
    pub const LANES_PLAIN: &str = include_str!("../shaders/common/lanes_plain.wgsl");
    pub const LANES_SUBGROUP: &str = include_str!("../shaders/common/lanes_subgroup.wgsl");
    pub const WEIGHTS: &str = include_str!("../shaders/common/weights.wgsl");
    pub const DECODE: &str = include_str!("../shaders/common/decode.wgsl");
    pub const DECODE_PARTIAL: &str = include_str!("../shaders/common/decode_partial.wgsl");
    pub const DECODE_PARTIAL_SG: &str = include_str!("../shaders/common/decode_partial_sg.wgsl");
    pub const DECODE_PARTIAL_COOP: &str =
        include_str!("../shaders/common/decode_partial_coop.wgsl");
    pub const DECODE_MERGE: &str = include_str!("../shaders/common/decode_merge.wgsl");

    /// The load functions of q, k, v for a storage type.
    pub fn load(storage: Storage) -> &'static str {
        match storage {
            Storage::F32 => include_str!("../shaders/common/storage_f32.wgsl"),
            Storage::F16 => include_str!("../shaders/common/storage_f16.wgsl"),
            Storage::F16Packed => include_str!("../shaders/common/storage_f16_packed.wgsl"),
        }
    }

    /// The store function of o for a storage type.
    pub fn store(storage: Storage) -> &'static str {
        match storage {
            Storage::F32 => include_str!("../shaders/common/out_f32.wgsl"),
            Storage::F16 => include_str!("../shaders/common/out_f16.wgsl"),
            Storage::F16Packed => include_str!("../shaders/common/out_f16_packed.wgsl"),
        }
    }
}
