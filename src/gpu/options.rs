//! What configures a [`super::Context`] and what it reports: the adapter choice, the
//! options (also read from `WEBATTN_*` environment variables, strictly) and [`DeviceInfo`].

use crate::error::{Error, Result};
use crate::shader::{Storage, Variant};

/// Which adapter [`Context::new`] picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AdapterChoice {
    /// The best adapter: a discrete GPU, then integrated, then virtual, then a software one.
    #[default]
    Auto,
    /// A software (CPU) adapter only: Mesa lavapipe, SwiftShader, WARP.
    Software,
    /// Only adapters of these backends (e.g. `wgpu::Backends::VULKAN`).
    Backends(wgpu::Backends),
}

impl AdapterChoice {
    /// Parses the names `from_env` accepts.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => AdapterChoice::Auto,
            "software" | "cpu" => AdapterChoice::Software,
            "vulkan" => AdapterChoice::Backends(wgpu::Backends::VULKAN),
            "metal" => AdapterChoice::Backends(wgpu::Backends::METAL),
            "dx12" => AdapterChoice::Backends(wgpu::Backends::DX12),
            "gl" => AdapterChoice::Backends(wgpu::Backends::GL),
            "webgpu" => AdapterChoice::Backends(wgpu::Backends::BROWSER_WEBGPU),
            _ => return None,
        })
    }
}

/// Options of [`Context::new`].
#[derive(Debug, Clone, Default)]
pub struct ContextOptions {
    /// Which adapter to use. [`ContextOptions::from_env`] fills it from `WEBATTN_ADAPTER`.
    pub adapter: AdapterChoice,
    /// Lower the storage-binding size webattn assumes (bytes). Work whose tensors exceed it is
    /// split over batch and heads; used by tests to exercise the split on small tensors.
    pub max_binding_size: Option<u64>,
    /// Lower the workgroup memory webattn plans its tiles for (bytes), e.g. 16384 to get the
    /// tiles a browser with WebGPU's default limits gets. Used by tests.
    pub max_workgroup_storage: Option<u32>,
    /// Read f16 tensors packed (`unpack2x16float`) even where `SHADER_F16` exists: the route
    /// browsers without shader-f16 take. Also set by `WEBATTN_F16=packed`.
    pub packed_f16: bool,
    /// Force a kernel variant (`None`: the fastest the device supports). Forcing one the
    /// device lacks fails with [`Error::MissingFeature`]. Also set by `WEBATTN_VARIANT`.
    pub variant: Option<Variant>,
    /// Force the decode partial kernel: `None` or [`Variant::Portable`] takes the portable one
    /// (the automatic choice); [`Variant::Subgroup`] the subgroup one, for the kinds that
    /// have it, which needs `SUBGROUP` with one fixed subgroup size (a power of two from 4 to
    /// 128; else [`Error::MissingFeature`]); [`Variant::CoopMatrix`] the cooperative-matrix
    /// one for f16 caches (`common/decode_partial_coop.wgsl`: tensor cores for Q K^T and
    /// P V), which needs `EXPERIMENTAL_COOPERATIVE_MATRIX` with 16x16x16 or 8x8x8 f16->f32
    /// fragments and one fixed subgroup size (f32 caches, and f16 read packed, keep the
    /// portable kernel). Also set by `WEBATTN_DECODE_VARIANT` (`portable`, `subgroup`, `coopmat`).
    pub decode_variant: Option<Variant>,
}

impl ContextOptions {
    /// Defaults, with the adapter, kernel variants and f16 route taken from the environment
    /// (`WEBATTN_ADAPTER`, `WEBATTN_VARIANT`, `WEBATTN_DECODE_VARIANT`, `WEBATTN_F16=packed`).
    /// An unknown value is an error, never ignored.
    pub fn from_env() -> Result<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let adapter = match var("WEBATTN_ADAPTER") {
            None => AdapterChoice::Auto,
            Some(v) => AdapterChoice::parse(&v).ok_or_else(|| {
                Error::InvalidOption(format!(
                    "WEBATTN_ADAPTER={v}: not one of auto, software, vulkan, metal, dx12, gl, webgpu"
                ))
            })?,
        };
        let variant = match var("WEBATTN_VARIANT") {
            None => None,
            Some(v) => Some(Variant::parse(&v).ok_or_else(|| {
                Error::InvalidOption(format!(
                    "WEBATTN_VARIANT={v}: not one of portable, subgroup, coopmat, coopmat2"
                ))
            })?),
        };
        let packed_f16 = match var("WEBATTN_F16").as_deref() {
            None | Some("native") => false,
            Some("packed") => true,
            Some(v) => {
                return Err(Error::InvalidOption(format!(
                    "WEBATTN_F16={v}: not 'packed' or 'native'"
                )))
            }
        };
        let decode_variant = match var("WEBATTN_DECODE_VARIANT").as_deref() {
            None => None,
            Some("portable") => Some(Variant::Portable),
            Some("subgroup") => Some(Variant::Subgroup),
            Some("coopmat") => Some(Variant::CoopMatrix),
            Some(v) => {
                return Err(Error::InvalidOption(format!(
                    "WEBATTN_DECODE_VARIANT={v}: not 'portable', 'subgroup' or 'coopmat'"
                )))
            }
        };
        Ok(ContextOptions {
            adapter,
            packed_f16,
            variant,
            decode_variant,
            ..Default::default()
        })
    }
}

/// What the adapter and device offer, as webattn sees it.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    /// Adapter name.
    pub name: String,
    /// Backend (Vulkan, Metal, Dx12, BrowserWebGpu, ...).
    pub backend: String,
    /// Discrete, integrated, virtual, CPU (software) or other.
    pub device_type: String,
    /// Driver name and version.
    pub driver: String,
    /// `SHADER_F16` is available on the adapter.
    pub shader_f16: bool,
    /// `SUBGROUP` is available on the adapter.
    pub subgroups: bool,
    /// Smallest and largest subgroup size the adapter reports.
    pub subgroup_sizes: (u32, u32),
    /// Cooperative-matrix (tensor-core) shapes the adapter reports, as `MxNxK ab->cr` strings.
    pub cooperative_matrix: Vec<String>,
    /// The fastest forward-kernel variant this context uses where it applies (see
    /// [`Context::forward_tiles`]); calls it does not apply to take the portable variant.
    pub variant: Variant,
    /// The split-KV decode partial kernel's variant: [`Variant::Portable`]
    /// (`shaders/common/decode_partial.wgsl`, the automatic choice: fastest on the H200 for
    /// every kind, docs/perf.md change D4), or [`Variant::Subgroup`]
    /// (`shaders/common/decode_partial_sg.wgsl`, for the kinds with subgroup hooks) where
    /// [`ContextOptions::decode_variant`] forces it.
    pub decode_variant: Variant,
    /// How f16 tensors are read: `F16` (shader-f16) or `F16Packed` (core WebGPU).
    pub f16_storage: Storage,
    /// `TIMESTAMP_QUERY` is enabled on the device.
    pub timestamp_query: bool,
    /// Largest storage-buffer binding, bytes (after any [`ContextOptions::max_binding_size`]).
    pub max_storage_binding: u64,
    /// Largest buffer, bytes.
    pub max_buffer: u64,
    /// Workgroup memory per workgroup, bytes.
    pub max_workgroup_storage: u32,
    /// Invocations per workgroup.
    pub max_invocations: u32,
    /// Workgroups per dispatch dimension.
    pub max_workgroups_per_dim: u32,
    /// Alignment of storage-binding offsets, bytes.
    pub storage_offset_alignment: u32,
}

impl std::fmt::Display for DeviceInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "adapter:            {} ({}, {})",
            self.name, self.backend, self.device_type
        )?;
        writeln!(f, "driver:             {}", self.driver)?;
        writeln!(f, "shader-f16:         {}", self.shader_f16)?;
        writeln!(
            f,
            "subgroups:          {} (sizes {}..{})",
            self.subgroups, self.subgroup_sizes.0, self.subgroup_sizes.1
        )?;
        let cm = if self.cooperative_matrix.is_empty() {
            "none".to_string()
        } else {
            self.cooperative_matrix.join(", ")
        };
        writeln!(f, "cooperative matrix: {cm}")?;
        writeln!(f, "f16 tensors read:   {:?}", self.f16_storage)?;
        writeln!(
            f,
            "kernel variant:     {:?} (softmax, sigmoid, stick-breaking){}",
            self.variant,
            match self.variant {
                Variant::CoopMatrix => {
                    "; f16 tensors with D, Dv multiples of 16 only, Subgroup otherwise"
                }
                Variant::CoopMatrix2 => {
                    "; f16 tensors with D, Dv multiples of 16 up to 128 only, CoopMatrix or \
                     Subgroup otherwise"
                }
                _ => "",
            }
        )?;
        writeln!(f, "decode kernel:      {:?}", self.decode_variant)?;
        writeln!(f, "timestamp queries:  {}", self.timestamp_query)?;
        writeln!(f, "max storage binding {} bytes", self.max_storage_binding)?;
        writeln!(f, "max buffer          {} bytes", self.max_buffer)?;
        writeln!(
            f,
            "workgroup memory    {} bytes",
            self.max_workgroup_storage
        )?;
        write!(f, "invocations/wg      {}", self.max_invocations)
    }
}
