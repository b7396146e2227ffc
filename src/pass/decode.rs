//! The split-KV decoding passes (SPEC.md section 4): [`PassId::DecodePartial`] and
//! [`PassId::DecodeMerge`], their shared bindings, their generated constants, and the chunking
//! rule both the kernels and the host evaluate ([`chunk_count`]).
//!
//! Shared WGSL: the storage snippets, `common/params.wgsl`, `common/decode.wgsl` (sequences,
//! rows, partial layout), then `common/decode_partial.wgsl` (the partial kernel's tile loop
//! and entry point, which calls the kind's hooks in `shaders/<kind>/decode.wgsl`) or
//! `common/decode_merge.wgsl` (the merge entry point, which calls the kind's combine and
//! finish functions in `shaders/<kind>/merge.wgsl`).
//!
//! Work is split over kv units u = b * Hkv + h: every query row of a GQA group (group * Tq
//! rows, all query heads of the kv head and all new rows) is handled by the workgroups of its
//! kv unit, so a chunk of K and V is read once per group, not once per query head.
//!
//! Grids:
//! - partial: (chunks, kv units, row blocks). Chunk `c` of sequence `b` covers keys
//!   `[lo + c * L, min(lo + (c + 1) * L, Tk_b))`, with `lo` the first key any row's window
//!   can see, so chunks wholly outside the window do not exist (neither computed nor masked).
//!   A sequence with one chunk writes its final outputs here; one with none (Tk_b = 0)
//!   writes empty rows from chunk 0.
//! - merge: (query rows x column blocks, kv units); a workgroup returns at once when its
//!   sequence has at most one chunk. The host skips the pass when no sequence has two.
//!
//! Two partial kernels compute the same partials: the subgroup one
//! (`common/decode_partial_sg.wgsl` with the kind's `decode_sg.wgsl`; [`TileConfig::decode_subgroup`]),
//! with no workgroup barrier in its key loop, where the device has subgroups of one fixed size,
//! and the portable one (`common/decode_partial.wgsl`) everywhere else. Both use the same key
//! tile DK for the chunk rule, so the plan and the merge do not depend on the variant.

mod plan;
mod tuning;

pub(crate) use plan::chunk_count;
pub use plan::SplitPlan;
pub use tuning::DecodeTuning;

use super::{tensor_extent, Extent, Pass, PassId};
use crate::contract::{Binding, Elem};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::shader::{snippets, Storage, TileConfig, Variant};
use crate::shape::Shape;

/// Slots of both decode passes (the same list, so they share a bind-group layout). q, k, v,
/// o, aux and sinks sit where the forward pass has them.
pub(crate) const Q: usize = 1;
pub(crate) const K: usize = 2;
pub(crate) const V: usize = 3;
pub(crate) const O: usize = 4;
pub(crate) const AUX: usize = 5;
pub(crate) const SINKS: usize = 6;
pub(crate) const LENS: usize = 7;
pub(crate) const PART: usize = 8;

/// Eight storage buffers: WebGPU's default per-stage limit.
static BINDINGS: [Binding; 9] = [
    Binding::params(),
    Binding::read("q", Elem::Tensor),
    Binding::read("k", Elem::Tensor),
    Binding::read("v", Elem::Tensor),
    Binding::write("o", Elem::Tensor),
    Binding::write("aux", Elem::U32),
    Binding::read("sinks", Elem::F32),
    Binding::read("lens", Elem::U32),
    Binding::write("part", Elem::Vec4F32),
];

fn common(t: &TileConfig, st: Storage) -> Vec<&'static str> {
    // The cooperative-matrix partial kernel reads f16 q, k, v as scalars (its coopLoad needs
    // a pointer to a scalar); both passes share the declarations, so the merge does too.
    let load = if t.variant == Variant::CoopMatrix && st == Storage::F16 {
        snippets::STORAGE_F16_SCALAR
    } else {
        snippets::load(st)
    };
    vec![
        load,
        snippets::PARAMS,
        snippets::store(st),
        snippets::DECODE,
    ]
}

pub(crate) static PARTIAL: Pass = Pass {
    id: PassId::DecodePartial,
    bindings: &BINDINGS,
    header,
    snippets: |t: &TileConfig, st: Storage| {
        let mut s = common(t, st);
        s.push(match t.variant {
            Variant::Subgroup => snippets::DECODE_PARTIAL_SG,
            Variant::CoopMatrix => snippets::DECODE_PARTIAL_COOP,
            _ => snippets::DECODE_PARTIAL,
        });
        s
    },
    rows_per_workgroup: |t| t.bq,
    extents,
};

pub(crate) static MERGE: Pass = Pass {
    id: PassId::DecodeMerge,
    bindings: &BINDINGS,
    header,
    snippets: |t: &TileConfig, st: Storage| {
        let mut s = common(t, st);
        s.push(snippets::DECODE_MERGE);
        s
    },
    rows_per_workgroup: |_| 1,
    extents,
};

/// Per kv unit: `s` is the decode shape with `kv_len` = the cache capacity. The query rows of
/// a kv unit (its group's heads, Tq rows each) are contiguous in q, o and aux.
fn extents(s: &Shape, dtype: DType) -> Vec<Extent> {
    let rows = s.group() * s.q_len;
    vec![
        Extent::Whole,
        tensor_extent(rows * s.head_dim, dtype, false, |p, b| p.q_base = b),
        tensor_extent(s.kv_len * s.head_dim, dtype, false, |p, b| p.k_base = b),
        tensor_extent(s.kv_len * s.v_dim, dtype, false, |p, b| p.v_base = b),
        tensor_extent(rows * s.v_dim, dtype, false, |p, b| p.o_base = b),
        Extent::PerUnit {
            bytes: 4 * rows as u64,
            kv: false,
            elem: 4,
            base: |p, b| p.aux_base = b,
        },
        Extent::Whole,
        Extent::Whole,
        // Partials are bound whole and indexed by absolute kv unit (scratch of a few MB).
        Extent::Whole,
    ]
}

/// Invocations per decode workgroup.
pub(crate) const WG: u32 = 256;
/// The most query rows one partial workgroup holds (its private accumulators are that many
/// vec4s).
pub(crate) const MAX_ROWS: u32 = 16;

/// Lanes that share one key's dot products in the partial kernel: for f32 storage the
/// largest of 8, 4, 2, 1 that divides D / 4 (so each lane reads D / 4 / KL vec4s,
/// interleaved: 8 lanes read 128 contiguous bytes); for f16 half as many (at least 1), so that
/// a key tile of DK = WG / KL keys moves as many bytes between barriers as with f32 (the f16
/// kernel with f32's lanes read half the bytes per tile and ran at 0.77x f32's time, latency-
/// bound: docs/perf.md).
fn lanes_per_key(d: u32, dtype: DType) -> u32 {
    let kl = [8, 4, 2, 1]
        .into_iter()
        .find(|l| (d / 4).is_multiple_of(*l))
        .unwrap_or(1);
    match dtype {
        DType::F32 => kl,
        DType::F16 => (kl / 2).max(1),
    }
}

/// Workgroup memory of the partial kernel with `dq` rows per workgroup, key tile `dk` and `kl`
/// lanes per key (q in registers: `qreg`), bytes.
fn partial_bytes(d: u32, dk: u32, dq: u32, kl: u32, qreg: bool) -> u32 {
    // q_sh + red + p_sh + row arrays (5 f32 + 1 vec4 per row) + xo.
    dq * (4 * d + 4 * dk * red_stride(kl, qreg) + 4 * dk + 5 * 4 + 16) + 16 * WG
}

/// KLP, the stride of one (row, key) pair's KL parts in `red`: KL + 1 with q in registers
/// (then KL is 16 and consecutive keys would hit the same banks), KL otherwise.
fn red_stride(kl: u32, qreg: bool) -> u32 {
    if qreg && kl > 1 {
        kl + 1
    } else {
        kl
    }
}

/// Vec4 registers per invocation the q-in-registers layout may spend on q (DQ x DPL).
const QREG_VEC4: u32 = 8;

/// Lanes per key with q in registers for head dim `d`, `dq` rows and at least `kl0` lanes
/// (the automatic rule's, so that the key tile holds at least one pass of key slots): the
/// fewest powers of two from `kl0` to 16 that divide D / 4 with DQ x D / 4 / KL <= 8 vec4s,
/// or `None`.
fn qreg_lanes(d: u32, dq: u32, kl0: u32) -> Option<u32> {
    let d4 = d / 4;
    [1u32, 2, 4, 8, 16]
        .into_iter()
        .filter(|&l| l >= kl0 && d4.is_multiple_of(l))
        .find(|&l| dq * (d4 / l) <= QREG_VEC4)
}

impl TileConfig {
    /// Tiles of the decode passes for head dims `d`, `dv` and `rows` = group * Tq query rows
    /// per kv head, within `wg_mem` bytes of workgroup memory. Their fields mean:
    /// `bq` = DQ, query rows per partial workgroup (a power of two, at most 16, at most the
    /// next power of two of `rows`, as many as fit); `bk` = DK, keys per tile (WG / KL);
    /// `dc` = KL, lanes per key in the dot products (fewer for f16 storage, `dtype`; more with
    /// q in registers, where each invocation owns NKL = DK x KL / WG keys of a tile);
    /// `pad` = 1 when q is held in registers (QREG: each invocation's D / 4 / KL vec4 columns
    /// of every row, at most 8 vec4s, so that the logits read no workgroup memory for q;
    /// only with `WEBATTN_DECODE_QREG=1`: measured slower on the H200, docs/perf.md change
    /// D7), 0 when the logits read q from workgroup memory (the default);
    /// `vk` = how K and V are loaded ([`TileConfig::DECODE_LOADS`]; `WEBATTN_DECODE_LOADS`,
    /// [`DecodeTuning`]): 0, P V loads its values; 1 (VWITHK), an invocation loads its values
    /// of P V with the tile's keys, before the tile's first barrier; 2 (PREFETCH), as 1, and
    /// the next tile's K and V are loaded when a tile starts. 1 and 2 apply when those values
    /// are at most 8 vec4s. `debug`: `WEBATTN_DECODE_ABLATE`'s bits (measuring only).
    pub fn decode(d: usize, dv: usize, rows: usize, dtype: DType, wg_mem: u32) -> Result<Self> {
        Self::decode_tuned(d, dv, rows, dtype, wg_mem, &DecodeTuning::default())
    }

    /// [`TileConfig::decode`] with the overrides of `tuning` (measuring only;
    /// [`DecodeTuning`]): `lanes` lanes per key where they divide D / 4 (the key tile is then
    /// at least WG / lanes keys), the key tile `dk` where the lanes it needs divide D / 4,
    /// q in registers forced on (where the layout fits) or off by `qreg`, `loads` and the
    /// ablation bits.
    pub(crate) fn decode_tuned(
        d: usize,
        dv: usize,
        rows: usize,
        dtype: DType,
        wg_mem: u32,
        tuning: &DecodeTuning,
    ) -> Result<Self> {
        let ok = |x: usize| x.is_multiple_of(4) && (4..=256).contains(&x);
        if !ok(d) || !ok(dv) {
            return Err(Error::UnsupportedHeadDim { d, dv });
        }
        let (d, dv) = (d as u32, dv as u32);
        let lanes = tuning.lanes.filter(|l| (d / 4).is_multiple_of(*l));
        let qreg = tuning.qreg;
        let kl0 = lanes_per_key(d, dtype);
        // The key tile: the automatic rule's (f16 tiles move as many bytes as f32's), more
        // when fewer lanes are forced, or the forced one. The chunk rule uses it whatever the
        // layout.
        let mut kl = lanes.unwrap_or(kl0).min(kl0);
        let mut dk = WG / kl;
        if let Some(x) = tuning.dk {
            let need = (WG / x).max(kl);
            if (d / 4).is_multiple_of(need) {
                (dk, kl) = (x, need);
            }
        }
        let mut dq = (rows.max(1) as u32)
            .min(MAX_ROWS)
            .next_power_of_two()
            .min(MAX_ROWS);
        while dq > 1 && partial_bytes(d, dk, dq, kl, false) > wg_mem {
            dq /= 2;
        }
        let need = partial_bytes(d, dk, dq, kl, false).max(2 * 16 * WG);
        if need > wg_mem {
            return Err(Error::TensorTooLarge {
                what: format!("workgroup memory of the decode kernels for D={d}"),
                size: need as u64,
                limit: wg_mem as u64,
            });
        }
        // q in registers, asked for and where it fits (docs/perf.md, decode change D7: slower
        // on the H200, so off by default): lanes forced by the knob are taken as they are when
        // they fit, else the fewest that fit.
        let mut q_in_regs = false;
        if qreg == Some(true) {
            let ql = match lanes {
                Some(l) if l >= WG / dk && dq * (d / 4 / l) <= QREG_VEC4 => Some(l),
                Some(_) => None,
                None => qreg_lanes(d, dq, WG / dk),
            };
            if let Some(ql) = ql.filter(|&l| partial_bytes(d, dk, dq, l, true) <= wg_mem) {
                kl = ql;
                q_in_regs = true;
            }
        } else if let Some(l) =
            lanes.filter(|&l| l >= WG / dk && partial_bytes(d, dk, dq, l, false) <= wg_mem)
        {
            kl = l;
        }
        Ok(TileConfig {
            variant: Variant::Portable,
            d,
            dv,
            bq: dq,
            bk: dk,
            dc: kl,
            vk: tuning.loads.unwrap_or(Self::DECODE_LOADS),
            pad: q_in_regs as u32,
            sg_max: 0,
            debug: tuning.ablate,
        })
    }

    /// The default `vk` of [`TileConfig::decode`]: values loaded with the keys (docs/perf.md,
    /// decode changes D4 and D5).
    pub const DECODE_LOADS: u32 = 1;

    /// Tiles of the subgroup decode partial kernel (`common/decode_partial_sg.wgsl`) for
    /// subgroups of exactly `sg` lanes (a power of two, 4 to 128), or `None` where it cannot
    /// run (other subgroup sizes; the portable tiles do not fit `wg_mem`). The fields mean:
    /// `bq` = DQ, rows per workgroup (a power of two, at most 16, as many as `rows` needs while
    /// q and o take at most 32 vec4 registers per lane); `bk` = DK, the portable kernel's key
    /// tile (the chunk rule is the same for both kernels); `dc` = KL, lanes per key (a power of
    /// two, at most 16 and `sg`, about half of D / 4 so that each lane reads about two vec4s
    /// of each key's row); `vk` = NKS, keys per group and step (16 / DQ, 1 to 4); `pad` = RC,
    /// rows per combine round (as many as fit 16 KiB); `sg_max` = SG.
    pub fn decode_subgroup(
        d: usize,
        dv: usize,
        rows: usize,
        dtype: DType,
        wg_mem: u32,
        sg: u32,
    ) -> Option<Self> {
        let base = Self::decode(d, dv, rows, dtype, wg_mem).ok()?;
        if !sg.is_power_of_two() || !(4..=128).contains(&sg) {
            return None;
        }
        let (d4, dv4) = (base.d / 4, base.dv / 4);
        let half = (d4.max(dv4) / 2).max(1);
        let kl = (1u32 << (31 - half.leading_zeros())).min(16).min(sg);
        let (qpl, cpl) = (d4.div_ceil(kl), dv4.div_ceil(kl));
        let mut dq = (rows.max(1) as u32)
            .min(MAX_ROWS)
            .next_power_of_two()
            .min(MAX_ROWS);
        while dq > 1 && dq * (qpl + cpl) > SG_REGS {
            dq /= 2;
        }
        let nks = (16 / dq).clamp(1, 4);
        let mut rc = dq;
        while rc > 1 && sg_bytes(sg, base.dv, rc) > 16384 {
            rc /= 2;
        }
        if sg_bytes(sg, base.dv, rc) > wg_mem {
            return None;
        }
        Some(TileConfig {
            variant: Variant::Subgroup,
            bq: dq,
            dc: kl,
            vk: nks,
            pad: rc,
            sg_max: sg,
            ..base
        })
    }
}

/// The cooperative-matrix partial kernel's strides (`common/decode_partial_coop.wgsl`):
/// (QS, PS, FS) in halves, (SS, OS) in floats, each row a multiple of 16 bytes.
fn coop_strides(d: u32, dv: u32, dk: u32, cm: u32) -> (u32, u32, u32, u32, u32) {
    (d + 8, dk + 8, cm + 8, dk + 4, dv + 4)
}

/// Workgroup memory of the cooperative-matrix partial kernel, bytes.
fn coop_bytes(d: u32, dv: u32, dk: u32, dq: u32, cm: u32, sg: u32) -> u32 {
    let (qs, ps, fs, ss, os) = coop_strides(d, dv, dk, cm);
    let nsg = WG / sg;
    // q16, red, p_sh, p16, f_scr, the row arrays (5 f32, 1 vec4), kbad.
    2 * dq * qs
        + 4 * dq * ss.max(os)
        + 4 * dq * dk
        + 2 * dq * ps
        + 2 * nsg * cm * fs
        + dq * (5 * 4 + 16)
        + 4 * dk
}

/// The generated constants of the cooperative-matrix partial kernel (after the shared ones).
fn coop_header(t: &TileConfig) -> String {
    let (cm, sg, dq, dk) = (t.dc, t.sg_max, t.bq, t.bk);
    let (qs, ps, fs, ss, os) = coop_strides(t.d, t.dv, dk, cm);
    let kg = WG / (t.dv / 4);
    // V fragments loaded with K (`vk` = 1) where each subgroup has at most one column block.
    let vpre = t.vk != 0 && t.dv / cm <= WG / sg;
    let consts = [
        ("CM", cm),
        ("SG", sg),
        ("NSG", WG / sg),
        ("NKS", dk / cm),
        ("NRB", dq / cm),
        ("DB", t.d / cm),
        ("DVB", t.dv / cm),
        ("QS", qs),
        ("PS", ps),
        ("FS", fs),
        ("SS", ss),
        ("OS", os),
        ("RED", dq * ss.max(os)),
        ("EPL", cm * cm / sg),
        ("KG", kg),
        ("NRI", dq.div_ceil(kg)),
        ("NPAIR", dq * dk / WG),
        ("VPN", if vpre { dk / cm } else { 1 }),
    ];
    let mut s = String::new();
    for (name, v) in consts {
        s += &format!("const {name}: u32 = {v}u;\n");
    }
    for (alias, ty) in [("CmA", "f16, A"), ("CmB", "f16, B"), ("CmC", "f32, C")] {
        s += &format!("alias {alias} = coop_mat{cm}x{cm}<{ty}>;\n");
    }
    s += &format!("const VPRE: bool = {vpre};\n");
    s
}

impl TileConfig {
    /// Tiles of the cooperative-matrix decode partial kernel
    /// (`common/decode_partial_coop.wgsl`; f16 caches) for fragments of `cm` x `cm` x `cm`
    /// (8 or 16) and subgroups of exactly `sg` lanes, or `None` where it cannot run: head dims
    /// that are not multiples of `cm` or above 256, subgroups that do not divide the key tile,
    /// or too little workgroup memory. The fields mean: `bq` = DQ, rows per workgroup (`rows`
    /// rounded up to `cm`, at most 2 `cm`); `bk` = DK = 8 `cm` keys per tile (the chunk rule's
    /// tile); `dc` = CM; `sg_max` = SG; `vk` = 1: each subgroup's V fragments are loaded with
    /// the tile's K where it owns at most one column block of Dv (VPRE), 0
    /// (`WEBATTN_DECODE_LOADS=0`): P V loads them itself.
    pub fn decode_coop(
        d: usize,
        dv: usize,
        rows: usize,
        wg_mem: u32,
        sg: u32,
        cm: u32,
    ) -> Option<Self> {
        let ok = |x: usize| x.is_multiple_of(cm as usize) && (cm as usize..=256).contains(&x);
        if !matches!(cm, 8 | 16) || !ok(d) || !ok(dv) {
            return None;
        }
        let dk = 8 * cm;
        if !sg.is_power_of_two() || sg < 4 || sg > dk || sg > cm * cm {
            return None;
        }
        let (d, dv) = (d as u32, dv as u32);
        let mut dq = (rows.max(1) as u32).next_multiple_of(cm).min(2 * cm);
        while coop_bytes(d, dv, dk, dq, cm, sg) > wg_mem || !(dq * dk).is_multiple_of(WG) {
            if dq == cm {
                return None;
            }
            dq = cm;
        }
        Some(TileConfig {
            variant: Variant::CoopMatrix,
            d,
            dv,
            bq: dq,
            bk: dk,
            dc: cm,
            vk: 1,
            pad: 0,
            sg_max: sg,
            debug: 0,
        })
    }
}

/// Subgroups per workgroup of the subgroup partial kernel for subgroups of `sg` lanes: 4, fewer
/// where 4 would exceed 256 invocations.
fn sg_subgroups(sg: u32) -> u32 {
    (256 / sg.max(1)).clamp(1, 4)
}

/// Workgroup memory of the subgroup partial kernel (xs, xo), bytes.
fn sg_bytes(sg: u32, dv: u32, rc: u32) -> u32 {
    sg_subgroups(sg) * rc * (dv / 4 + 1) * 16
}

/// Vec4 registers per lane the subgroup partial kernel may spend on q and o (DQ x (QPL + CPL)).
const SG_REGS: u32 = 32;

/// The generated constants of the decode kernels (see `common/decode.wgsl`).
fn header(t: &TileConfig, storage: Storage) -> String {
    let mut s = String::new();
    if storage == Storage::F16 {
        s += "enable f16;\n";
    }
    if t.variant == Variant::CoopMatrix {
        s += "enable wgpu_cooperative_matrix;\n";
    }
    s += "// generated by webattn::pass::decode\n";
    let (d4, dv4) = (t.d / 4, t.dv / 4);
    let (dq, dk, kl) = (t.bq, t.bk, t.dc.max(1));
    let mc = dv4.min(8);
    // The merge kernel's, shared by both partial kernels' headers.
    let shared = [
        ("HEAD_D", t.d),
        ("HEAD_DV", t.dv),
        ("WG", WG),
        ("D4", d4),
        ("DV4", dv4),
        ("DQ", dq),
        ("DK", dk),
        ("MC", mc),
        ("MG", WG / mc),
        ("MCB", dv4.div_ceil(mc)),
    ];
    for (name, v) in shared {
        s += &format!("const {name}: u32 = {v}u;\n");
    }
    if t.variant == Variant::CoopMatrix {
        return s + &coop_header(t);
    }
    if t.variant == Variant::Subgroup {
        let sg = t.sg_max;
        let nsg = sg_subgroups(sg);
        let consts = [
            ("SG", sg),
            ("NSG", nsg),
            ("WGS", nsg * sg),
            ("KL", kl),
            ("NGS", sg / kl),
            ("NGW", nsg * sg / kl),
            ("QPL", d4.div_ceil(kl)),
            ("CPL", dv4.div_ceil(kl)),
            ("NKS", t.vk),
            ("RC", t.pad),
        ];
        for (name, v) in consts {
            s += &format!("const {name}: u32 = {v}u;\n");
        }
        return s;
    }
    let vpl = dk.div_ceil(WG / dv4);
    let qreg = t.pad == 1;
    let consts = [
        ("KL", kl),
        ("KS", WG / kl),
        ("NKL", dk * kl / WG),
        ("KLP", red_stride(kl, qreg)),
        ("QRN", if qreg { dq * (d4 / kl) } else { 1 }),
        ("DPL", d4 / kl),
        ("KG", WG / dv4),
        // Values one P V lane loads per tile (its keys g, g + KG, ...), loaded with the
        // tile's keys into registers (VPF of them) when there are at most 8.
        ("VPL", vpl),
        ("VPF", if vpl <= 8 { vpl } else { 1 }),
        ("NPAIR", (dq * dk).div_ceil(WG)),
        ("ABLATE", t.debug),
    ];
    for (name, v) in consts {
        s += &format!("const {name}: u32 = {v}u;\n");
    }
    s += &format!("const QREG: bool = {qreg};\n");
    s += &format!("const VWITHK: bool = {};\n", t.vk != 0 && vpl <= 8);
    s += &format!("const PREFETCH: bool = {};\n", t.vk == 2 && vpl <= 8);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_tiles_fit_the_memory() {
        for d in [4, 8, 12, 16, 40, 64, 80, 128, 256] {
            for (rows, dt) in [1, 2, 4, 5, 16, 40]
                .into_iter()
                .flat_map(|r| [(r, DType::F32), (r, DType::F16)])
            {
                for mem in [16384, 32768, 49152] {
                    let t = TileConfig::decode(d, d, rows, dt, mem).expect("tiles");
                    let qreg = t.pad == 1;
                    assert!(partial_bytes(t.d, t.bk, t.bq, t.dc, qreg) <= mem);
                    assert!(t.bq.is_power_of_two() && t.bq <= MAX_ROWS);
                    // Whole passes of key slots per tile; the tile is the automatic rule's.
                    assert_eq!((t.bk * t.dc) % WG, 0);
                    assert_eq!(t.bk, WG / lanes_per_key(t.d, dt));
                    assert_eq!((t.d / 4) % t.dc, 0);
                    assert!(!qreg || t.bq * (t.d / 4 / t.dc) <= QREG_VEC4);
                    let off = DecodeTuning {
                        qreg: Some(false),
                        ..Default::default()
                    };
                    let forced =
                        TileConfig::decode_tuned(d, d, rows, dt, mem, &off).expect("tiles");
                    assert_eq!(forced.pad, 0);
                    assert_eq!(forced.bk * forced.dc, WG);
                    assert_eq!(t.pad, 0);
                    let on = DecodeTuning {
                        qreg: Some(true),
                        ..Default::default()
                    };
                    let q = TileConfig::decode_tuned(d, d, rows, dt, mem, &on).expect("tiles");
                    assert!(partial_bytes(q.d, q.bk, q.bq, q.dc, q.pad == 1) <= mem);
                    assert_eq!(q.bk, t.bk);
                    assert!(q.pad == 0 || q.bq * (q.d / 4 / q.dc) <= QREG_VEC4);
                }
            }
        }
        for d in [4, 8, 12, 16, 40, 64, 80, 128, 256] {
            for rows in [1, 2, 4, 5, 16, 40] {
                for sg in [4, 8, 16, 32, 64, 128] {
                    for mem in [16384, 32768] {
                        let t = TileConfig::decode_subgroup(d, d, rows, DType::F16, mem, sg)
                            .expect("subgroup tiles");
                        let p = TileConfig::decode(d, d, rows, DType::F16, mem).expect("tiles");
                        // The chunk rule's key tile is the portable kernel's.
                        assert_eq!(t.bk, p.bk);
                        assert!(t.bq.is_power_of_two() && t.bq <= MAX_ROWS);
                        assert!(t.dc.is_power_of_two() && t.dc <= sg.min(16));
                        let (qpl, cpl) =
                            ((d as u32 / 4).div_ceil(t.dc), (d as u32 / 4).div_ceil(t.dc));
                        assert!(t.bq == 1 || t.bq * (qpl + cpl) <= SG_REGS);
                        assert!((1..=4).contains(&t.vk) && t.bq.is_multiple_of(t.pad));
                        assert!(sg_bytes(sg, t.dv, t.pad) <= mem);
                    }
                }
            }
        }
        assert!(TileConfig::decode_subgroup(64, 64, 4, DType::F32, 32768, 12).is_none());
        assert!(TileConfig::decode_subgroup(64, 64, 4, DType::F32, 32768, 256).is_none());
        assert!(matches!(
            TileConfig::decode(6, 8, 1, DType::F32, 32768),
            Err(Error::UnsupportedHeadDim { .. })
        ));
    }
}
