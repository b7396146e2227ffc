//! Shader tests that need no GPU: naga validation and translation of every kernel of every
//! registered kind and pass, and the Rust/WGSL contract check.
use super::*;
use crate::dtype::DType;
use crate::error::Error;
use crate::pass::decode::DecodeTuning;
use crate::shader::{TileConfig, Variant};

use crate::kinds::registry;

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
                            let kernel = match (pass, t.variant) {
                                (PassId::DecodePartial, Variant::Subgroup) => {
                                    match decode_subgroup_kernel(kind) {
                                        Some(k) => k,
                                        // The kind always decodes with the portable kernel.
                                        None => continue,
                                    }
                                }
                                _ => kernel,
                            };
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

/// The subgroup decode partial kernel of the registered kind `name`, if it has one.
fn decode_subgroup_kernel(name: &str) -> Option<&'static str> {
    let e = registry().iter().find(|e| e.name == name).expect("kind");
    (e.default)().kind().decode_subgroup()
}

/// The tiles each pass is tested with: the forward pass's portable and subgroup variants,
/// the weights pass's portable tiles, the decode passes' tiles for 1, 4, 5 and 40 query
/// rows per kv head and f32 and f16 caches (every row-block size the chooser picks within
/// `mem`), portable (each way of loading K and V, ablated) and subgroup (subgroups of 8, lavapipe's,
/// 32 and 64).
fn pass_tiles(pass: PassId, tiles: &TileConfig, d: usize, dv: usize, mem: u32) -> Vec<TileConfig> {
    match pass {
        PassId::Forward => vec![
            tiles.with_variant(Variant::Portable),
            tiles.with_variant(Variant::Subgroup),
        ],
        PassId::Weights => vec![tiles.with_variant(Variant::Portable)],
        PassId::DecodePartial | PassId::DecodeMerge => {
            let mut v: Vec<TileConfig> = [1, 4, 5, 40]
                .iter()
                .flat_map(|&rows| [(rows, DType::F32), (rows, DType::F16)])
                .flat_map(|(rows, dt)| {
                    let p = TileConfig::decode(d, dv, rows, dt, mem).expect("decode tiles");
                    let v_in_pv = TileConfig { vk: 0, ..p };
                    let ablated = TileConfig { debug: 7, ..p };
                    let prefetched = TileConfig { vk: 2, ..p };
                    let sg = [8, 32, 64].into_iter().map(move |sg| {
                        TileConfig::decode_subgroup(d, dv, rows, dt, mem, sg)
                            .expect("subgroup decode tiles")
                    });
                    [p, v_in_pv, ablated, prefetched].into_iter().chain(sg)
                })
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
                TileConfig::decode(64, 64, 4, DType::F32, 32768).expect("decode tiles")
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

/// The cooperative-matrix decode partial kernel (common/decode_partial_coop.wgsl with each
/// kind's portable decode hooks; f16 caches read as scalars) and the merge that shares its
/// declarations validate with naga and translate to SPIR-V, for 16x16 fragments with
/// subgroups of 32 (the H100/H200) and 8x8 with subgroups of 8 (lavapipe), every head dim the
/// chooser accepts and 1 to 40 rows; the chooser refuses what the kernel cannot run.
#[test]
fn coop_decode_shaders_validate_and_translate_to_spirv() {
    let mut count = 0;
    for (cm, sg) in [(16u32, 32u32), (8, 8), (16, 16), (8, 32)] {
        for d in [16, 32, 64, 80, 128, 256] {
            for rows in [1, 4, 5, 16, 40] {
                let Some(t) = TileConfig::decode_coop(d, d, rows, 49152, sg, cm) else {
                    assert!(d % cm as usize != 0 || d == 256, "cm {cm} sg {sg} d {d}");
                    continue;
                };
                assert!(t.bq.is_multiple_of(cm) && t.bq <= 2 * cm);
                // V with K (the default) and without (WEBATTN_DECODE_LOADS=0).
                let t = TileConfig {
                    vk: (d / 16 % 2) as u32,
                    ..t
                };
                for pass in [PassId::DecodePartial, PassId::DecodeMerge] {
                    for (kind, kernel) in kernels(pass) {
                        let src = source(pass, kernel, Storage::F16, &t);
                        let label = format!("coop decode {kind} {pass:?} D={d} rows={rows} {t:?}");
                        spirv_of(&src, &label);
                        if cm == 8 {
                            msl_of(&src, &label);
                        }
                        count += 1;
                    }
                }
            }
        }
    }
    assert!(count >= 100, "{count}");
    assert!(TileConfig::decode_coop(72, 72, 4, 49152, 32, 16).is_none());
    assert!(TileConfig::decode_coop(64, 64, 4, 49152, 32, 12).is_none());
    assert!(TileConfig::decode_coop(64, 64, 4, 8192, 32, 16).is_none());
}

/// The `coopmat2` kernels (each kind's hooks after common/tile_coop2.wgsl; f16 inputs read
/// as scalars; f32 and f16 outputs) validate with naga and translate to SPIR-V, for every
/// head-dim pair the chooser accepts; the chooser refuses what the kernel cannot run. As for
/// `coopmat`, no MSL or HLSL: naga has no 16x16 cooperative matrices there.
#[test]
fn coop2_shaders_validate_and_translate_to_spirv() {
    let coop2: Vec<(&str, &str)> = registry()
        .iter()
        .filter_map(|e| (e.default)().kind().forward_coop2().map(|k| (e.name, k)))
        .collect();
    assert_eq!(
        coop2.len(),
        3,
        "softmax, sigmoid and stick-breaking have coopmat2 hooks"
    );
    let mut count = 0;
    for &(d, dv) in &[
        (16, 16),
        (32, 32),
        (64, 64),
        (80, 80),
        (96, 96),
        (128, 128),
        (64, 128),
        (128, 64),
        (112, 48),
    ] {
        let tiles = TileConfig::choose_coop2(d, dv, 49152, 32, 32).expect("coop2 tiles");
        assert_eq!(tiles.wg(), 128);
        assert!(
            tiles.workgroup_bytes() <= 32768,
            "{}",
            tiles.workgroup_bytes()
        );
        for &(kind, kernel) in &coop2 {
            // The out snippet follows the storage: F16 (f16 o). F32 o is never paired with
            // this variant by the host, but the kernel must not depend on it.
            let src = source(PassId::Forward, kernel, Storage::F16, &tiles);
            assert!(src.contains("var<storage, read> k: array<f16>;"), "{kind}");
            assert!(
                !src.contains("workgroupBarrier("),
                "{kind}: no workgroup barrier"
            );
            let label = format!("coop2 {kind} D={d} Dv={dv}");
            let words = spirv_of(&src, &label);
            if let Ok(dir) = std::env::var("WEBATTN_DUMP_SPIRV") {
                let name = format!("{dir}/coop2_{kind}_{d}_{dv}.spv");
                let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
                std::fs::write(name, bytes).expect("dump");
            }
            count += 1;
        }
    }
    assert_eq!(count, 27);
    assert!(TileConfig::choose_coop2(256, 256, 49152, 32, 32).is_none());
    assert!(TileConfig::choose_coop2(72, 72, 49152, 32, 32).is_none());
    assert!(TileConfig::choose_coop2(64, 64, 49152, 16, 32).is_none());
    assert!(TileConfig::choose_coop2(64, 64, 49152, 32, 64).is_none());
    assert!(TileConfig::choose_coop2(64, 64, 16384, 32, 32).is_none());
    assert_eq!(Variant::parse("coopmat2"), Some(Variant::CoopMatrix2));
    assert_eq!(Variant::CoopMatrix2.name(), "coopmat2");
}

/// The `coopmat2` debugging forms (docs/perf.md: WEBATTN_COOP2_ABLATE bits, and K and V
/// staged through the subgroup's scratch, WEBATTN_COOP2_STAGE=1) validate and translate to
/// SPIR-V for every kind, each ablation alone and all together, direct and staged; staged
/// tiles fit 48 KiB up to D = Dv = 128 and fall back to the direct ones where they do not fit.
#[test]
fn coop2_debug_forms_validate_and_translate_to_spirv() {
    let coop2: Vec<(&str, &str)> = registry()
        .iter()
        .filter_map(|e| (e.default)().kind().forward_coop2().map(|k| (e.name, k)))
        .collect();
    let stage = TileConfig::COOP2_STAGE;
    let mut count = 0;
    for &(d, dv) in &[(16, 16), (64, 64), (128, 128), (64, 128), (112, 48)] {
        for bits in [
            0,
            1,
            2,
            4,
            8,
            15,
            stage,
            stage | 1,
            stage | 2,
            stage | 4,
            stage | 8,
            stage | 15,
        ] {
            let tiles =
                TileConfig::choose_coop2_with(d, dv, 49152, 32, 32, bits).expect("coop2 tiles");
            assert_eq!(tiles.debug, bits);
            assert!(
                tiles.workgroup_bytes() <= 49152,
                "{}",
                tiles.workgroup_bytes()
            );
            for &(kind, kernel) in &coop2 {
                let src = source(PassId::Forward, kernel, Storage::F16, &tiles);
                assert_eq!(
                    src.contains("var<storage, read> k: array<vec4<f16>>;"),
                    bits & stage != 0,
                    "{kind}"
                );
                assert!(src.contains("var<storage, read> q: array<f16>;"), "{kind}");
                assert!(!src.contains("workgroupBarrier("), "{kind}");
                spirv_of(&src, &format!("coop2 {kind} D={d} Dv={dv} bits={bits:#x}"));
                count += 1;
            }
        }
    }
    assert_eq!(count, 5 * 12 * 3);
    let t = TileConfig::choose_coop2_with(128, 128, 32768, 32, 32, stage | 2).expect("tiles");
    assert_eq!(t.debug, 2, "staged tiles that do not fit fall back");
}

fn spirv_of(src: &str, label: &str) -> Vec<u32> {
    let opts = naga::back::spv::Options {
        lang_version: (1, 3),
        ..Default::default()
    };
    spirv_with(src, label, &opts)
}

/// Parses, validates (f16, subgroups, cooperative matrices) and writes SPIR-V with `opts`.
fn spirv_with(src: &str, label: &str, opts: &naga::back::spv::Options) -> Vec<u32> {
    let module = naga::front::wgsl::parse_str(src)
        .unwrap_or_else(|e| panic!("{label}: parse error:\n{}", e.emit_to_string(src)));
    let caps = naga::valid::Capabilities::SHADER_FLOAT16
        | naga::valid::Capabilities::SHADER_FLOAT16_IN_FLOAT32
        | naga::valid::Capabilities::SUBGROUP
        | naga::valid::Capabilities::SUBGROUP_BARRIER
        | naga::valid::Capabilities::COOPERATIVE_MATRIX;
    let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
        .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
        .subgroup_operations(naga::valid::SubgroupOperationSet::all())
        .validate(&module)
        .unwrap_or_else(|e| panic!("{label}: validation error:\n{}", e.emit_to_string(src)));
    naga::back::spv::write_vec(&module, &info, opts, None)
        .unwrap_or_else(|e| panic!("{label}: SPIR-V: {e}"))
}

/// Parses, validates (as [`spirv_with`]) and writes MSL 2.3 (Metal's simdgroup matrices, 8x8
/// fragments: the cooperative-matrix decode kernel with CM = 8).
fn msl_of(src: &str, label: &str) -> String {
    let module = naga::front::wgsl::parse_str(src)
        .unwrap_or_else(|e| panic!("{label}: parse error:\n{}", e.emit_to_string(src)));
    let caps = naga::valid::Capabilities::SHADER_FLOAT16
        | naga::valid::Capabilities::SHADER_FLOAT16_IN_FLOAT32
        | naga::valid::Capabilities::SUBGROUP
        | naga::valid::Capabilities::SUBGROUP_BARRIER
        | naga::valid::Capabilities::COOPERATIVE_MATRIX;
    let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
        .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
        .subgroup_operations(naga::valid::SubgroupOperationSet::all())
        .validate(&module)
        .unwrap_or_else(|e| panic!("{label}: validation error:\n{}", e.emit_to_string(src)));
    let opts = naga::back::msl::Options {
        lang_version: (2, 3),
        ..Default::default()
    };
    let pipeline = naga::back::msl::PipelineOptions::default();
    naga::back::msl::write_string(&module, &info, &opts, &pipeline)
        .unwrap_or_else(|e| panic!("{label}: MSL: {e}"))
        .0
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

/// The language-model runner's kernels (`shaders/lm/`), in both precisions, validate with
/// naga and translate to SPIR-V, MSL and HLSL.
#[cfg(feature = "lm")]
#[test]
fn lm_kernels_validate_and_translate() {
    let all = crate::lm::kernels::all_sources();
    assert_eq!(all.len(), 12);
    for (label, src) in all {
        translate_all(&src, &label);
    }
}

/// Writes the SPIR-V of the decode partial kernels (every kind, f32 and f16, the portable
/// kernel with each measuring bit set given in `WEBATTN_DUMP_DEBUG`, a comma list, and the
/// subgroup kernel with subgroups of 32) and of the f16 cooperative-matrix forward kernels
/// into `$WEBATTN_DUMP_SPIRV` as `NAME.b<bindings>.spv`, the input of tools/vkstats (the
/// driver's register and spill report, docs/perf.md). Run on demand:
/// `WEBATTN_DUMP_SPIRV=DIR cargo test --lib -- --ignored dump_spirv_for_vkstats`.
#[test]
#[ignore]
fn dump_spirv_for_vkstats() {
    let dir = std::env::var("WEBATTN_DUMP_SPIRV").expect("WEBATTN_DUMP_SPIRV");
    let debug: Vec<u32> = std::env::var("WEBATTN_DUMP_DEBUG")
        .unwrap_or_else(|_| "0".into())
        .split(',')
        .filter_map(|x| x.trim().parse().ok())
        .collect();
    let write = |name: String, pass: PassId, src: &str| {
        let words = spirv_for_wgpu(src, &name);
        let n = pass.pass().bindings.len();
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        std::fs::write(format!("{dir}/{name}.b{n}.spv"), bytes).expect("write");
    };
    for (kind, kernel) in kernels(PassId::DecodePartial) {
        for (st, dt) in [(Storage::F32, DType::F32), (Storage::F16, DType::F16)] {
            let name = dt.name();
            for &bits in &debug {
                for (kl, vk, qreg, dk) in [
                    (None, 1, true, None),
                    (None, 0, true, None),
                    (None, 1, true, Some(32)),
                    (None, 1, false, None),
                    (Some(8), 1, false, None),
                    (None, 2, false, None),
                    (Some(8), 2, true, None),
                ] {
                    let tuning = DecodeTuning {
                        lanes: kl,
                        qreg: Some(qreg),
                        loads: Some(vk),
                        ablate: bits,
                        dk,
                        ..Default::default()
                    };
                    let t =
                        TileConfig::decode_tuned(128, 128, 4, dt, 49152, &tuning).expect("tiles");
                    let tag = kl.map_or(String::new(), |l| format!("_kl{l}"))
                        + if vk == 2 { "_pre" } else { "" }
                        + if vk == 0 { "_vk0" } else { "" }
                        + &dk.map_or(String::new(), |x| format!("_dk{x}"))
                        + if t.pad == 1 { "_qreg" } else { "" };
                    let src = source(PassId::DecodePartial, kernel, st, &t);
                    let label = format!("dec_{kind}_{name}_d{bits}{tag}");
                    write(label, PassId::DecodePartial, &src);
                }
            }
            if dt == DType::F16 {
                // The cooperative-matrix kernel as on the H100/H200 (16x16x16, subgroups of
                // 32), V with K (the default) and without.
                let t = TileConfig::decode_coop(128, 128, 4, 49152, 32, 16).expect("coop tiles");
                for vk in [1, 0] {
                    let t = TileConfig { vk, ..t };
                    let src = source(PassId::DecodePartial, kernel, st, &t);
                    write(
                        format!("deccoop_{kind}_vk{vk}"),
                        PassId::DecodePartial,
                        &src,
                    );
                }
            }
            if let Some(sgk) = decode_subgroup_kernel(kind) {
                let t = TileConfig::decode_subgroup(128, 128, 4, dt, 49152, 32).expect("tiles");
                let src = source(PassId::DecodePartial, sgk, st, &t);
                write(format!("decsg_{kind}_{name}"), PassId::DecodePartial, &src);
            }
        }
    }
    for (d, dv) in [(64, 64), (128, 128)] {
        let p = TileConfig::choose(d, dv, 49152).expect("tiles");
        for (kind, kernel) in kernels(PassId::Forward) {
            for v in [Variant::Portable, Variant::Subgroup] {
                let src = source(PassId::Forward, kernel, Storage::F32, &p.with_variant(v));
                write(format!("fwd_{kind}_{d}_{v:?}"), PassId::Forward, &src);
            }
        }
        let t = TileConfig::choose_coop(d, dv, 49152, 32).expect("tiles");
        let t2 = TileConfig::choose_coop2(d, dv, 49152, 32, 32).expect("coop2 tiles");
        for e in registry() {
            let attn = (e.default)();
            let kind = attn.kind();
            if let Some(kernel) = kind.shader(PassId::Forward) {
                let src = source(PassId::Forward, kernel, Storage::F16, &t);
                write(format!("coop_{}_{d}", e.name), PassId::Forward, &src);
            }
            if let Some(kernel) = kind.forward_coop2() {
                let src = source(PassId::Forward, kernel, Storage::F16, &t2);
                write(format!("coop2_{}_{d}", e.name), PassId::Forward, &src);
            }
        }
    }
}

/// SPIR-V as wgpu 30 writes it for webattn's pipelines on Vulkan 1.3 (src/gpu/pipelines.rs):
/// index bounds restricted, workgroup memory zeroed natively, no loop bounding.
fn spirv_for_wgpu(src: &str, label: &str) -> Vec<u32> {
    let opts = naga::back::spv::Options {
        lang_version: (1, 3),
        bounds_check_policies: naga::proc::BoundsCheckPolicies {
            index: naga::proc::BoundsCheckPolicy::Restrict,
            ..Default::default()
        },
        zero_initialize_workgroup_memory:
            naga::back::spv::ZeroInitializeWorkgroupMemoryMode::Native,
        force_loop_bounding: false,
        ..Default::default()
    };
    spirv_with(src, label, &opts)
}
