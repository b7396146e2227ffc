//! Assembly of the WGSL kernels: a generated header (tile constants, the contract's
//! `struct Params`, flags and the pass's binding declarations, see [`crate::contract`]), then
//! the pass's shared snippets of `shaders/common/`, then one kind's kernel
//! `shaders/<kind>/<pass>.wgsl`.
//!
//! Each kernel file is one source of truth; nothing here rewrites WGSL beyond prepending
//! generated declarations, so what naga validates in the tests is exactly what the GPU runs.

use crate::contract::{self, Access, Elem, Params};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::pass::PassId;

/// A family of forward kernels. All compute the same function; they differ in the hardware
/// features they use. [`crate::Context`] picks the fastest the device supports unless one is
/// forced ([`crate::ContextOptions::variant`] or `WEBATTN_VARIANT=portable|subgroup|coopmat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// Core WebGPU only: workgroup-memory tiles, no subgroups, no extensions. Runs everywhere.
    Portable,
    /// Row reductions and broadcasts through subgroup operations (`SUBGROUP`).
    Subgroup,
    /// Cooperative matrices (tensor cores) for QK^T and PV (`EXPERIMENTAL_COOPERATIVE_MATRIX`).
    CoopMatrix,
}

impl Variant {
    /// Every variant.
    pub const ALL: [Variant; 3] = [Variant::Portable, Variant::Subgroup, Variant::CoopMatrix];

    /// Parses `portable`, `subgroup` or `coopmat`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "portable" => Some(Variant::Portable),
            "subgroup" | "subgroups" => Some(Variant::Subgroup),
            "coopmat" | "coop-matrix" | "cooperative-matrix" => Some(Variant::CoopMatrix),
            _ => None,
        }
    }

    /// The name [`Variant::parse`] reads.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Portable => "portable",
            Variant::Subgroup => "subgroup",
            Variant::CoopMatrix => "coopmat",
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
/// (keys per tile) and `dc` (lanes per key) as [`TileConfig::decode`] documents.
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
}

impl TileConfig {
    /// Invocations per workgroup (a 16 x 16 grid).
    pub const WG: u32 = 256;

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
                };
                if t.workgroup_bytes() <= wg_mem {
                    return Ok(t);
                }
                vk /= 2;
            }
        }
        Err(Error::TensorTooLarge {
            what: format!("workgroup memory for head dims D={d}, Dv={dv}"),
            size: TileConfig {
                variant: Variant::Portable,
                d,
                dv,
                bq: 16,
                bk: 16,
                dc: 4,
                vk: 1,
                pad: 0,
                sg_max: 0,
            }
            .workgroup_bytes() as u64,
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
            };
            (t.workgroup_bytes() <= wg_mem).then_some(t)
        })
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
        let stats = (3 + 16) * 4 * self.bq;
        match self.variant {
            Variant::CoopMatrix => {
                let (qs, kvs, ps, pt) = self.coop_strides();
                2 * self.bq * qs + 2 * self.bk * kvs + 2 * self.bq * ps + 4 * self.bq * pt + stats
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
        if self.variant == Variant::CoopMatrix {
            s += "enable wgpu_cooperative_matrix;\n";
        }
        s += "// generated by webattn::shader\n";
        let common = [
            ("HEAD_D", self.d),
            ("HEAD_DV", self.dv),
            ("BQ", self.bq),
            ("BK", self.bk),
            ("WG", Self::WG),
            ("RA", self.bq / 16),
            ("RB", self.bk / 16),
            ("VC", (self.dv / 4).div_ceil(16)),
        ];
        for (name, v) in common {
            s += &format!("const {name}: u32 = {v}u;\n");
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
    use super::Storage;

    pub const PARAMS: &str = include_str!("../shaders/common/params.wgsl");
    pub const TILE: &str = include_str!("../shaders/common/tile.wgsl");
    pub const TILE_PORTABLE: &str = include_str!("../shaders/common/tile_portable.wgsl");
    pub const TILE_COOP: &str = include_str!("../shaders/common/tile_coop.wgsl");
    pub const LANES_PLAIN: &str = include_str!("../shaders/common/lanes_plain.wgsl");
    pub const LANES_SUBGROUP: &str = include_str!("../shaders/common/lanes_subgroup.wgsl");
    pub const WEIGHTS: &str = include_str!("../shaders/common/weights.wgsl");
    pub const DECODE: &str = include_str!("../shaders/common/decode.wgsl");
    pub const DECODE_PARTIAL: &str = include_str!("../shaders/common/decode_partial.wgsl");
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

/// The generated declarations of a pass: the contract's struct and flags, then one
/// `@group(0) @binding(i)` per binding of the pass, element types per storage.
fn declarations(pass: PassId, storage: Storage) -> String {
    let mut s = Params::wgsl();
    s += &contract::flags_wgsl();
    for (i, b) in pass.pass().bindings.iter().enumerate() {
        let elem = match (b.elem, storage) {
            (Elem::Tensor, Storage::F32) => "vec4<f32>",
            (Elem::Tensor, Storage::F16) => "vec4<f16>",
            (Elem::Tensor, Storage::F16Packed) => "vec2<u32>",
            (Elem::F32, _) => "f32",
            (Elem::Vec4F32, _) => "vec4<f32>",
            (Elem::U32, _) => "u32",
        };
        s += &match b.access {
            Access::Uniform => {
                format!("@group(0) @binding({i}) var<uniform> {}: Params;\n", b.name)
            }
            Access::Read => format!(
                "@group(0) @binding({i}) var<storage, read> {}: array<{elem}>;\n",
                b.name
            ),
            Access::ReadWrite => format!(
                "@group(0) @binding({i}) var<storage, read_write> {}: array<{elem}>;\n",
                b.name
            ),
        };
    }
    s
}

/// The complete WGSL source of one kernel, as the GPU compiles it: `kernel` (a kind's file for
/// `pass`) after the pass's generated declarations and shared snippets.
pub fn source(pass: PassId, kernel: &str, storage: Storage, tiles: &TileConfig) -> String {
    let mut s = (pass.pass().header)(tiles, storage);
    s += &declarations(pass, storage);
    for snippet in (pass.pass().snippets)(tiles, storage) {
        s.push_str(snippet);
    }
    s.push_str(kernel);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::kinds::registry;
    use crate::pass::PassId;

    /// Every registered kind's kernel of `pass`, with its kind name.
    fn kernels(pass: PassId) -> Vec<(&'static str, &'static str)> {
        registry()
            .iter()
            .filter_map(|e| {
                let a = (e.default)();
                a.kind().shader(pass).map(|k| (e.name, k))
            })
            .collect()
    }

    /// Every portable and subgroup kernel of every registered kind and pass, for every
    /// supported head-dim class and tile budget, parses and validates with naga and translates
    /// to SPIR-V (Vulkan), MSL (Metal) and HLSL (DX12). Needs no GPU.
    #[test]
    fn every_shader_validates_and_translates() {
        let dims = [
            (16, 16),
            (32, 32),
            (64, 64),
            (80, 80),
            (96, 96),
            (128, 128),
            (256, 256),
            (8, 8),
            (4, 12),
            (64, 128),
        ];
        let budgets = [16384u32, 32768, 49152];
        let mut count = 0;
        for &(d, dv) in &dims {
            for &mem in &budgets {
                let tiles = TileConfig::choose(d, dv, mem).expect("tile config");
                assert!(tiles.workgroup_bytes() <= mem);
                for pass in PassId::ALL {
                    for (kind, kernel) in kernels(pass) {
                        for storage in [Storage::F32, Storage::F16, Storage::F16Packed] {
                            for t in pass_tiles(pass, &tiles, d, dv, mem) {
                                let src = source(pass, kernel, storage, &t);
                                let label = format!(
                                    "{kind}/{pass:?}/{storage:?}/{:?} D={d} Dv={dv} mem={mem} \
                                     bq={}",
                                    t.variant, t.bq
                                );
                                translate_all(&src, &label);
                                count += 1;
                            }
                        }
                    }
                }
            }
        }
        assert!(count >= 810, "{count}");
    }

    /// The tiles each pass is tested with: the forward pass's portable and subgroup variants,
    /// the weights pass's portable tiles, the decode passes' tiles for 1, 4, 5 and 40 query
    /// rows per kv head (every row-block size the chooser picks within `mem`).
    fn pass_tiles(
        pass: PassId,
        tiles: &TileConfig,
        d: usize,
        dv: usize,
        mem: u32,
    ) -> Vec<TileConfig> {
        match pass {
            PassId::Forward => vec![
                tiles.with_variant(Variant::Portable),
                tiles.with_variant(Variant::Subgroup),
            ],
            PassId::Weights => vec![tiles.with_variant(Variant::Portable)],
            PassId::DecodePartial | PassId::DecodeMerge => {
                let mut v: Vec<TileConfig> = [1, 4, 5, 40]
                    .iter()
                    .map(|&rows| TileConfig::decode(d, dv, rows, mem).expect("decode tiles"))
                    .collect();
                v.dedup();
                v
            }
        }
    }

    /// The contract holds: in every assembled kernel, naga's reflection of `struct Params`
    /// has the host struct's member names and byte offsets, and each global binding has the
    /// slot, name and access mode of the pass's binding list (so a snippet that declares its
    /// own binding, or a drifted struct, fails here).
    #[test]
    fn contract_matches_naga_reflection() {
        use crate::contract::Access;
        let tiles = TileConfig::choose(64, 64, 32768).expect("tiles");
        for pass in PassId::ALL {
            let tiles = match pass {
                PassId::DecodePartial | PassId::DecodeMerge => {
                    TileConfig::decode(64, 64, 4, 32768).expect("decode tiles")
                }
                _ => tiles,
            };
            for (kind, kernel) in kernels(pass) {
                for storage in [Storage::F32, Storage::F16, Storage::F16Packed] {
                    let src = source(pass, kernel, storage, &tiles);
                    let module = naga::front::wgsl::parse_str(&src).expect("parses");
                    let params = module
                        .types
                        .iter()
                        .find(|(_, t)| t.name.as_deref() == Some("Params"))
                        .expect("struct Params");
                    let naga::TypeInner::Struct { members, span } = &params.1.inner else {
                        panic!("Params is not a struct");
                    };
                    assert_eq!(*span as usize, std::mem::size_of::<Params>(), "{kind}");
                    assert_eq!(members.len(), Params::FIELDS.len());
                    for (m, (name, off, _)) in members.iter().zip(Params::FIELDS) {
                        assert_eq!(m.name.as_deref(), Some(*name), "{kind} {pass:?}");
                        assert_eq!(m.offset as usize, *off, "{kind} {pass:?} {name}");
                    }
                    let bindings = pass.pass().bindings;
                    let mut seen = 0;
                    for (_, g) in module.global_variables.iter() {
                        let Some(rb) = &g.binding else { continue };
                        seen += 1;
                        assert_eq!(rb.group, 0);
                        let b = bindings
                            .get(rb.binding as usize)
                            .unwrap_or_else(|| panic!("{kind} {pass:?}: stray binding {rb:?}"));
                        assert_eq!(g.name.as_deref(), Some(b.name), "{kind} {pass:?}");
                        let want = match b.access {
                            Access::Uniform => naga::AddressSpace::Uniform,
                            Access::Read => naga::AddressSpace::Storage {
                                access: naga::StorageAccess::LOAD,
                            },
                            Access::ReadWrite => naga::AddressSpace::Storage {
                                access: naga::StorageAccess::LOAD | naga::StorageAccess::STORE,
                            },
                        };
                        assert_eq!(g.space, want, "{kind} {pass:?} {}", b.name);
                    }
                    assert_eq!(seen, bindings.len(), "{kind} {pass:?}: binding count");
                    // The flags WGSL sees are the host's.
                    for (name, value) in crate::contract::FLAGS {
                        let c = module
                            .constants
                            .iter()
                            .find(|(_, c)| c.name.as_deref() == Some(*name))
                            .unwrap_or_else(|| panic!("{name} missing"));
                        let init = &module.global_expressions[c.1.init];
                        assert!(
                            matches!(init, naga::Expression::Literal(naga::Literal::U32(x)) if x == value),
                            "{name}: {init:?}"
                        );
                    }
                }
            }
        }
    }

    /// The cooperative-matrix kernels (f16 storage, head dims that are multiples of 16, every
    /// tile the chooser can pick) validate with naga and translate to SPIR-V. This variant
    /// runs on Vulkan only: naga's MSL backend supports 8x8 simdgroup matrices, not 16x16, and
    /// its HLSL backend no cooperative matrices at all.
    #[test]
    fn coop_shaders_validate_and_translate_to_spirv() {
        let mut count = 0;
        for &(d, dv) in &[
            (16, 16),
            (32, 32),
            (64, 64),
            (80, 80),
            (128, 128),
            (256, 256),
            (64, 128),
        ] {
            for mem in [49152u32, 40000, 32768, 16384] {
                let Some(tiles) = TileConfig::choose_coop(d, dv, mem, 32) else {
                    continue;
                };
                assert!(tiles.workgroup_bytes() <= mem);
                for (kind, kernel) in kernels(PassId::Forward) {
                    let src = source(PassId::Forward, kernel, Storage::F16, &tiles);
                    let label = format!("coop {kind} D={d} Dv={dv} mem={mem} {tiles:?}");
                    let words = spirv_of(&src, &label);
                    if let Ok(dir) = std::env::var("WEBATTN_DUMP_SPIRV") {
                        let name = format!("{dir}/{kind}_{d}_{dv}_{mem}.spv");
                        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
                        std::fs::write(name, bytes).expect("dump");
                    }
                    count += 1;
                }
            }
        }
        assert!(count >= 60, "{count}");
        assert!(TileConfig::choose_coop(80, 72, 49152, 32).is_none());
        assert!(TileConfig::choose_coop(64, 64, 8192, 32).is_none());
        assert!(TileConfig::choose_coop(64, 64, 49152, 0).is_none());
        // Other subgroup widths (AMD 64, Intel 8..32, mobile up to 128) size o_mat differently.
        let softmax = kernels(PassId::Forward)[0].1;
        for sg in [8, 16, 64, 128] {
            let t = TileConfig::choose_coop(64, 64, 49152, sg).expect("tiles");
            spirv_of(&source(PassId::Forward, softmax, Storage::F16, &t), "sg");
        }
    }

    fn spirv_of(src: &str, label: &str) -> Vec<u32> {
        let module = naga::front::wgsl::parse_str(src)
            .unwrap_or_else(|e| panic!("{label}: parse error:\n{}", e.emit_to_string(src)));
        let caps = naga::valid::Capabilities::SHADER_FLOAT16
            | naga::valid::Capabilities::SHADER_FLOAT16_IN_FLOAT32
            | naga::valid::Capabilities::SUBGROUP
            | naga::valid::Capabilities::COOPERATIVE_MATRIX;
        let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
            .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
            .subgroup_operations(naga::valid::SubgroupOperationSet::all())
            .validate(&module)
            .unwrap_or_else(|e| panic!("{label}: validation error:\n{}", e.emit_to_string(src)));
        let opts = naga::back::spv::Options {
            lang_version: (1, 3),
            ..Default::default()
        };
        naga::back::spv::write_vec(&module, &info, &opts, None)
            .unwrap_or_else(|e| panic!("{label}: SPIR-V: {e}"))
    }

    pub(crate) fn translate_all(src: &str, label: &str) {
        let module = naga::front::wgsl::parse_str(src)
            .unwrap_or_else(|e| panic!("{label}: parse error:\n{}", e.emit_to_string(src)));
        let info = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::SHADER_FLOAT16
                | naga::valid::Capabilities::SHADER_FLOAT16_IN_FLOAT32
                | naga::valid::Capabilities::SUBGROUP,
        )
        .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
        .subgroup_operations(naga::valid::SubgroupOperationSet::all())
        .validate(&module)
        .unwrap_or_else(|e| panic!("{label}: validation error:\n{}", e.emit_to_string(src)));
        naga::back::spv::write_vec(&module, &info, &naga::back::spv::Options::default(), None)
            .unwrap_or_else(|e| panic!("{label}: SPIR-V: {e}"));
        let pipeline = naga::back::msl::PipelineOptions::default();
        naga::back::msl::write_string(
            &module,
            &info,
            &naga::back::msl::Options::default(),
            &pipeline,
        )
        .unwrap_or_else(|e| panic!("{label}: MSL: {e}"));
        let mut hlsl = String::new();
        let opts = naga::back::hlsl::Options {
            shader_model: naga::back::hlsl::ShaderModel::V6_2,
            ..Default::default()
        };
        let pipeline_opts = naga::back::hlsl::PipelineOptions::default();
        let mut w = naga::back::hlsl::Writer::new(&mut hlsl, &opts, &pipeline_opts);
        w.write(&module, &info, None)
            .unwrap_or_else(|e| panic!("{label}: HLSL: {e}"));
    }

    #[test]
    fn head_dims_outside_the_supported_set_are_refused() {
        assert!(matches!(
            TileConfig::choose(6, 6, 16384),
            Err(Error::UnsupportedHeadDim { .. })
        ));
        assert!(matches!(
            TileConfig::choose(260, 256, 16384),
            Err(Error::UnsupportedHeadDim { .. })
        ));
        assert!(matches!(
            TileConfig::choose(256, 256, 1024),
            Err(Error::TensorTooLarge { .. })
        ));
    }
}
