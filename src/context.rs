//! The [`Context`]: adapter, device, queue, cached pipelines, tensor upload and read-back.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

use wgpu::util::DeviceExt;

use crate::shader::{self, Entry, KindId, Storage, TileConfig};
use crate::tensor::byte_len;
use crate::{DType, Error, Result, Tensor};

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
    /// Reads `WEBATTN_ADAPTER`: `software` (or `cpu`), `vulkan`, `metal`, `dx12`, `gl`,
    /// `webgpu`, or `auto`. Unknown or unset values give `None`.
    pub fn from_env() -> Option<Self> {
        let v = std::env::var("WEBATTN_ADAPTER").ok()?;
        Self::parse(&v)
    }

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

/// A family of forward kernels. All compute the same function; they differ in the hardware
/// features they use. [`Context`] picks the fastest the device supports unless one is forced
/// ([`ContextOptions::variant`] or `WEBATTN_VARIANT=portable|subgroup|coopmat`).
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
    /// Parses `portable`, `subgroup` or `coopmat`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "portable" => Some(Variant::Portable),
            "subgroup" | "subgroups" => Some(Variant::Subgroup),
            "coopmat" | "coop-matrix" | "cooperative-matrix" => Some(Variant::CoopMatrix),
            _ => None,
        }
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
}

impl ContextOptions {
    /// Defaults, with the adapter taken from the `WEBATTN_ADAPTER` environment variable.
    pub fn from_env() -> Self {
        ContextOptions {
            adapter: AdapterChoice::from_env().unwrap_or_default(),
            packed_f16: std::env::var("WEBATTN_F16").is_ok_and(|v| v == "packed"),
            variant: std::env::var("WEBATTN_VARIANT")
                .ok()
                .and_then(|v| Variant::parse(&v)),
            ..Default::default()
        }
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
            if self.variant == Variant::CoopMatrix {
                "; f16 tensors with D, Dv multiples of 16 only, Subgroup otherwise"
            } else {
                ""
            }
        )?;
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

type PipelineKey = (KindId, Entry, Storage, TileConfig);

/// A GPU device ready to run attention: adapter facts, cached pipelines and buffers.
///
/// Create one with [`Context::new`] (it picks the adapter) or wrap an application's device
/// with [`Context::from_device`]. Pipelines are compiled once per (kind, kernel, dtype,
/// tiles) and cached, so the attention calls compile nothing after the first use.
pub struct Context {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) info: DeviceInfo,
    forward_layout: wgpu::BindGroupLayout,
    forward_pipeline_layout: wgpu::PipelineLayout,
    weights_layout: wgpu::BindGroupLayout,
    weights_pipeline_layout: wgpu::PipelineLayout,
    pipelines: Mutex<HashMap<PipelineKey, wgpu::ComputePipeline>>,
    /// Stand-ins for unused bindings: one read-only, one read-write (never both in a pass).
    pub(crate) dummy_ro: wgpu::Buffer,
    pub(crate) dummy_rw: wgpu::Buffer,
    lost: Arc<Mutex<Option<String>>>,
    gpu_error: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("info", &self.info).finish()
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn type_rank(t: wgpu::DeviceType) -> u32 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

impl Context {
    /// Acquires an adapter as `options.adapter` says and creates a device with every limit the
    /// adapter offers and the features webattn can use (shader-f16, subgroups, timestamps).
    pub async fn new(options: ContextOptions) -> Result<Self> {
        let backends = match options.adapter {
            AdapterChoice::Backends(b) => b,
            _ => wgpu::Backends::all(),
        };
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = backends;
        let instance = wgpu::Instance::new(desc);
        let adapter = Self::pick_adapter(&instance, options.adapter, backends).await?;
        let af = adapter.features();
        let props = adapter.cooperative_matrix_properties();
        // The cooperative-matrix variant needs 16x16x16 f16 inputs with f32 accumulators.
        let coop16 = props.iter().any(|p| {
            (p.m_size, p.n_size, p.k_size) == (16, 16, 16)
                && p.ab_type == wgpu::CooperativeScalarType::F16
                && p.cr_type == wgpu::CooperativeScalarType::F32
        });
        let mut wanted =
            wgpu::Features::SHADER_F16 | wgpu::Features::SUBGROUP | wgpu::Features::TIMESTAMP_QUERY;
        if coop16 && options.variant.is_none_or(|v| v == Variant::CoopMatrix) {
            wanted |= wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX;
        }
        let required_features = af & wanted;
        let experimental_features =
            if required_features.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX) {
                // SAFETY: wgpu marks cooperative matrices experimental (possible UB from bugs
                // in its implementation). webattn only uses them through the kernels of
                // shaders/common/tile_coop.wgsl, which the test suite checks against the f64
                // reference on the device (docs/perf.md); `WEBATTN_VARIANT=portable` keeps
                // the feature off entirely.
                unsafe { wgpu::ExperimentalFeatures::enabled() }
            } else {
                wgpu::ExperimentalFeatures::disabled()
            };
        let dd = wgpu::DeviceDescriptor {
            label: Some("webattn"),
            required_features,
            required_limits: adapter.limits(),
            experimental_features,
            ..Default::default()
        };
        let (device, queue) = adapter.request_device(&dd).await.map_err(|e| {
            Error::NoAdapter(format!("the adapter refused to create a device: {e}"))
        })?;
        let coop = props
            .iter()
            .map(|p| {
                format!(
                    "{}x{}x{} {:?}->{:?}",
                    p.m_size, p.n_size, p.k_size, p.ab_type, p.cr_type
                )
            })
            .collect();
        let coop = (coop, coop16);
        Self::build(adapter.get_info(), af, coop, device, queue, &options, true)
    }

    /// Blocking form of [`Context::new`] (not on wasm, where the browser must not block).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_blocking(options: ContextOptions) -> Result<Self> {
        pollster::block_on(Self::new(options))
    }

    async fn pick_adapter(
        instance: &wgpu::Instance,
        choice: AdapterChoice,
        backends: wgpu::Backends,
    ) -> Result<wgpu::Adapter> {
        #[cfg(not(target_arch = "wasm32"))]
        {
            let mut adapters = instance.enumerate_adapters(backends).await;
            if choice == AdapterChoice::Software {
                adapters.retain(|a| a.get_info().device_type == wgpu::DeviceType::Cpu);
            }
            adapters.sort_by_key(|a| {
                let i = a.get_info();
                // Prefer Vulkan/Metal/DX12 over GL at equal device type.
                let gl = u32::from(i.backend == wgpu::Backend::Gl);
                (type_rank(i.device_type), gl)
            });
            adapters.into_iter().next().ok_or_else(|| {
                Error::NoAdapter(format!(
                    "no {} adapter among backends {backends:?}; on Linux install a Vulkan driver \
                     (Debian: apt-get install mesa-vulkan-drivers) or set WEBATTN_ADAPTER",
                    if choice == AdapterChoice::Software {
                        "software"
                    } else {
                        "usable"
                    }
                ))
            })
        }
        #[cfg(target_arch = "wasm32")]
        {
            let _ = backends;
            let opts = wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                force_fallback_adapter: choice == AdapterChoice::Software,
                ..Default::default()
            };
            instance
                .request_adapter(&opts)
                .await
                .map_err(|e| Error::NoAdapter(format!("{e} (does this browser have WebGPU?)")))
        }
    }

    /// Wraps a device and queue the application already owns. `adapter_info` is reported by
    /// [`Context::info`] (use `adapter.get_info()`; pass `None` if unknown). webattn only
    /// uses the features and limits the device was created with; it installs no error
    /// handler on a device it does not own.
    pub fn from_device(
        device: wgpu::Device,
        queue: wgpu::Queue,
        adapter_info: Option<wgpu::AdapterInfo>,
        options: &ContextOptions,
    ) -> Result<Self> {
        let info = adapter_info.unwrap_or_else(|| device.adapter_info());
        let features = device.features();
        Self::build(
            info,
            features,
            (Vec::new(), false),
            device,
            queue,
            options,
            false,
        )
    }

    fn build(
        ai: wgpu::AdapterInfo,
        adapter_features: wgpu::Features,
        (cooperative_matrix, coop16): (Vec<String>, bool),
        device: wgpu::Device,
        queue: wgpu::Queue,
        options: &ContextOptions,
        own_device: bool,
    ) -> Result<Self> {
        let binding_cap = options.max_binding_size;
        let lim = device.limits();
        let df = device.features();
        let f16_storage = if df.contains(wgpu::Features::SHADER_F16) && !options.packed_f16 {
            Storage::F16
        } else {
            Storage::F16Packed
        };
        // The subgroup lanes snippet needs full subgroups of at least 16 invocations that
        // divide the workgroup (every row's 16 lanes in one subgroup).
        let (sg_min, sg_max) = (ai.subgroup_min_size, ai.subgroup_max_size);
        let subgroup_ok = df.contains(wgpu::Features::SUBGROUP)
            && sg_min >= 16
            && sg_max.is_power_of_two()
            && sg_max <= TileConfig::WG;
        let coop_ok = coop16
            && subgroup_ok
            && f16_storage == Storage::F16
            && df.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX);
        let variant = match options.variant {
            None if coop_ok => Variant::CoopMatrix,
            None if subgroup_ok => Variant::Subgroup,
            None | Some(Variant::Portable) => Variant::Portable,
            Some(Variant::CoopMatrix) if coop_ok => Variant::CoopMatrix,
            Some(Variant::Subgroup) if subgroup_ok => Variant::Subgroup,
            Some(Variant::CoopMatrix) => {
                return Err(Error::MissingFeature(format!(
                    "the cooperative-matrix variant needs EXPERIMENTAL_COOPERATIVE_MATRIX with \
                     16x16x16 f16->f32 shapes, SHADER_F16 (f16 read as vec4<f16>) and SUBGROUP \
                     with subgroups of 16 to 256 invocations; this device has cooperative \
                     matrices: {}, subgroups {sg_min}..{sg_max}",
                    if coop16 { "yes" } else { "no" }
                )))
            }
            Some(Variant::Subgroup) => {
                return Err(Error::MissingFeature(format!(
                    "the subgroup variant needs SUBGROUP with subgroups of 16 to 256 invocations; \
                     this device has subgroups: {}, sizes {sg_min}..{sg_max}",
                    df.contains(wgpu::Features::SUBGROUP)
                )))
            }
        };
        let info = DeviceInfo {
            name: ai.name.clone(),
            backend: format!("{:?}", ai.backend),
            device_type: format!("{:?}", ai.device_type),
            driver: format!("{} {}", ai.driver, ai.driver_info)
                .trim()
                .to_string(),
            shader_f16: adapter_features.contains(wgpu::Features::SHADER_F16),
            subgroups: adapter_features.contains(wgpu::Features::SUBGROUP),
            subgroup_sizes: (ai.subgroup_min_size, ai.subgroup_max_size),
            cooperative_matrix,
            variant,
            f16_storage,
            timestamp_query: df.contains(wgpu::Features::TIMESTAMP_QUERY),
            max_storage_binding: binding_cap.map_or(lim.max_storage_buffer_binding_size, |c| {
                c.min(lim.max_storage_buffer_binding_size)
            }),
            max_buffer: lim.max_buffer_size,
            max_workgroup_storage: options
                .max_workgroup_storage
                .map_or(lim.max_compute_workgroup_storage_size, |c| {
                    c.min(lim.max_compute_workgroup_storage_size)
                }),
            max_invocations: lim.max_compute_invocations_per_workgroup,
            max_workgroups_per_dim: lim.max_compute_workgroups_per_dimension,
            storage_offset_alignment: lim.min_storage_buffer_offset_alignment,
        };
        if info.max_invocations < TileConfig::WG
            || lim.max_compute_workgroup_size_x < TileConfig::WG
            || lim.max_storage_buffers_per_shader_stage < 6
        {
            return Err(Error::MissingFeature(format!(
                "webattn needs 256 invocations per workgroup (x dimension) and 6 storage buffers \
                 per stage; the device offers {} invocations, {} in x and {} storage buffers",
                info.max_invocations,
                lim.max_compute_workgroup_size_x,
                lim.max_storage_buffers_per_shader_stage
            )));
        }
        let lost = Arc::new(Mutex::new(None));
        let gpu_error = Arc::new(Mutex::new(None));
        if own_device {
            let l = lost.clone();
            device.set_device_lost_callback(move |reason, msg| {
                if let Ok(mut g) = l.lock() {
                    *g = Some(format!("{reason:?}: {msg}"));
                }
            });
            let e = gpu_error.clone();
            device.on_uncaptured_error(Arc::new(move |err: wgpu::Error| {
                if let Ok(mut g) = e.lock() {
                    g.get_or_insert_with(|| err.to_string());
                }
            }));
        }
        let storage = |binding, read_only| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let uniform = wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let make_layout = |label, aux_read_only| {
            device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(label),
                entries: &[
                    uniform,
                    storage(1, true),
                    storage(2, true),
                    storage(3, true),
                    storage(4, false),
                    storage(5, aux_read_only),
                    storage(6, true),
                ],
            })
        };
        let forward_layout = make_layout("webattn forward", false);
        let weights_layout = make_layout("webattn weights", true);
        let pl = |bgl: &wgpu::BindGroupLayout| {
            device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some("webattn"),
                bind_group_layouts: &[Some(bgl)],
                immediate_size: 0,
            })
        };
        let forward_pipeline_layout = pl(&forward_layout);
        let weights_pipeline_layout = pl(&weights_layout);
        let dummy = || {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("webattn unused binding"),
                size: 16,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            })
        };
        let (dummy_ro, dummy_rw) = (dummy(), dummy());
        Ok(Context {
            device,
            queue,
            info,
            forward_layout,
            forward_pipeline_layout,
            weights_layout,
            weights_pipeline_layout,
            pipelines: Mutex::new(HashMap::new()),
            dummy_ro,
            dummy_rw,
            lost,
            gpu_error,
        })
    }

    /// What the adapter and device offer.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// The wgpu device (to create encoders and buffers of your own).
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    /// The wgpu queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    /// Tile sizes of the portable forward kernels (and the weights kernels) for head dims
    /// `d`, `dv` on this device.
    pub fn tile_config(&self, d: usize, dv: usize) -> Result<TileConfig> {
        TileConfig::choose(d, dv, self.info.max_workgroup_storage)
    }

    /// The forward kernel's variant and tiles for tensors of `dtype` and head dims `d`, `dv`.
    ///
    /// The context's [`DeviceInfo::variant`] is used where it applies. The cooperative-matrix
    /// variant applies to f16 tensors whose head dims are multiples of 16 (up to 256) and whose
    /// tiles fit the workgroup memory; f32 tensors keep f32 arithmetic (its 1e-5 tolerance
    /// rules out f16 tensor-core inputs) and take the subgroup variant there, as do other head
    /// dims. The subgroup variant applies everywhere the device allows it.
    pub fn forward_tiles(&self, dtype: DType, d: usize, dv: usize) -> Result<TileConfig> {
        let v = self.info.variant;
        if v == Variant::CoopMatrix && self.storage(dtype) == Storage::F16 {
            let sg_max = self.info.subgroup_sizes.1;
            if let Some(t) = TileConfig::choose_coop(d, dv, self.info.max_workgroup_storage, sg_max)
            {
                return Ok(t);
            }
        }
        let t = self.tile_config(d, dv)?;
        Ok(match v {
            // A device that runs the cooperative-matrix variant runs the subgroup one too.
            Variant::CoopMatrix | Variant::Subgroup => t.with_variant(Variant::Subgroup),
            Variant::Portable => t,
        })
    }

    /// Fails with [`Error::DeviceLost`] once the device is lost, or [`Error::Gpu`] with the
    /// first error the GPU API reported on a device webattn owns.
    pub fn check(&self) -> Result<()> {
        if let Some(msg) = self.lost.lock().ok().and_then(|g| g.clone()) {
            return Err(Error::DeviceLost(msg));
        }
        if let Some(msg) = self.gpu_error.lock().ok().and_then(|mut g| g.take()) {
            return Err(Error::Gpu(msg));
        }
        Ok(())
    }

    /// How tensors of `dtype` are read on this device.
    pub fn storage(&self, dtype: DType) -> Storage {
        match dtype {
            DType::F32 => Storage::F32,
            DType::F16 => self.info.f16_storage,
        }
    }

    pub(crate) fn pipeline(
        &self,
        kind: KindId,
        entry: Entry,
        storage: Storage,
        tiles: TileConfig,
    ) -> Result<(wgpu::ComputePipeline, &wgpu::BindGroupLayout)> {
        let layout = match entry {
            Entry::Forward => &self.forward_layout,
            Entry::Weights => &self.weights_layout,
        };
        let key = (kind, entry, storage, tiles);
        let mut cache = self
            .pipelines
            .lock()
            .map_err(|_| Error::Gpu("pipeline cache poisoned".into()))?;
        if let Some(p) = cache.get(&key) {
            return Ok((p.clone(), layout));
        }
        let src = shader::source(kind, entry, storage, &tiles);
        let label = format!("webattn {}/{entry:?}", kind.name());
        let desc = wgpu::ShaderModuleDescriptor {
            label: Some(&label),
            source: wgpu::ShaderSource::Wgsl(src.into()),
        };
        // Runtime checks: buffer bounds checks stay on. Loop bounding is off: naga would add a
        // counter and a break to every loop, which keeps drivers from unrolling the small
        // register-block loops (private arrays then live in local memory). Integer-division
        // guards are off too.
        // SAFETY: every loop in webattn's shaders has a trip count bounded by constants or by
        // uniforms (tile counts, Tk); the only run-time divisor is `params.group` = Hq / Hkv,
        // which the host validates to be >= 1, and i32 arithmetic stays far from overflow
        // (positions are below 2^31). The shaders are webattn's own, never user input.
        let checks = wgpu::ShaderRuntimeChecks {
            bounds_checks: true,
            ..wgpu::ShaderRuntimeChecks::unchecked()
        };
        let module = unsafe { self.device.create_shader_module_trusted(desc, checks) };
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(&label),
                layout: Some(match entry {
                    Entry::Forward => &self.forward_pipeline_layout,
                    Entry::Weights => &self.weights_pipeline_layout,
                }),
                module: &module,
                entry_point: Some("main"),
                compilation_options: Default::default(),
                cache: None,
            });
        cache.insert(key, pipeline.clone());
        Ok((pipeline, layout))
    }

    /// Creates an uninitialised tensor (usable as an output of your own kernels).
    pub fn empty(&self, shape: &[usize], dtype: DType) -> Result<Tensor> {
        let bytes = self.checked_size(shape, dtype)?;
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("webattn tensor"),
            size: bytes.max(16).next_multiple_of(4),
            usage: Self::usage(),
            mapped_at_creation: false,
        });
        Tensor::from_buffer(buffer, shape, dtype)
    }

    /// Uploads f32 data as an f32 tensor of `shape`.
    pub fn tensor_f32(&self, shape: &[usize], data: &[f32]) -> Result<Tensor> {
        self.upload(shape, DType::F32, data.len(), bytemuck::cast_slice(data))
    }

    /// Uploads f16 data (the `half` crate) as an f16 tensor of `shape`.
    pub fn tensor_f16(&self, shape: &[usize], data: &[half::f16]) -> Result<Tensor> {
        self.upload(shape, DType::F16, data.len(), bytemuck::cast_slice(data))
    }

    fn usage() -> wgpu::BufferUsages {
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST
    }

    fn checked_size(&self, shape: &[usize], dtype: DType) -> Result<u64> {
        let bytes = byte_len(shape, dtype)?;
        if bytes > self.info.max_buffer {
            return Err(Error::TensorTooLarge {
                what: format!("tensor of shape {shape:?}"),
                size: bytes,
                limit: self.info.max_buffer,
            });
        }
        Ok(bytes)
    }

    fn upload(&self, shape: &[usize], dtype: DType, len: usize, bytes: &[u8]) -> Result<Tensor> {
        self.check()?;
        let n = byte_len(shape, DType::F32)? / 4;
        if n != len as u64 {
            return Err(Error::ShapeMismatch(format!(
                "shape {shape:?} holds {n} elements but the data has {len}"
            )));
        }
        let size = self.checked_size(shape, dtype)?;
        let mut padded = bytes.to_vec();
        padded.resize(size.max(16).next_multiple_of(4) as usize, 0);
        let buffer = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("webattn tensor"),
                contents: &padded,
                usage: Self::usage(),
            });
        Tensor::from_buffer(buffer, shape, dtype)
    }

    /// Overwrites a tensor with a repeated f32 bit pattern (tests poison outputs with NaN).
    pub fn fill_bits(&self, t: &Tensor, bits: u32) {
        let n = (t.buffer.size() / 4) as usize;
        self.queue
            .write_buffer(&t.buffer, 0, bytemuck::cast_slice(&vec![bits; n]));
    }

    /// Reads a tensor back as raw bytes (exactly `t.byte_len()` of them).
    pub async fn read_bytes(&self, t: &Tensor) -> Result<Vec<u8>> {
        self.check()?;
        let len = t.byte_len();
        let copy = len.next_multiple_of(4).min(t.buffer.size());
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("webattn read-back"),
            size: copy.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        enc.copy_buffer_to_buffer(&t.buffer, 0, &staging, 0, copy);
        self.queue.submit([enc.finish()]);
        let (tx, rx) = oneshot();
        staging.map_async(wgpu::MapMode::Read, .., move |r| tx.send(r));
        #[cfg(not(target_arch = "wasm32"))]
        {
            if let Err(e) = self.device.poll(wgpu::PollType::wait_indefinitely()) {
                self.check()?;
                return Err(Error::Gpu(format!("waiting for the GPU: {e}")));
            }
        }
        let mapped = rx.await;
        self.check()?;
        mapped
            .map_err(Error::Gpu)?
            .map_err(|e| Error::Gpu(format!("read-back failed: {e}")))?;
        let data = staging
            .get_mapped_range(..)
            .map_err(|e| Error::Gpu(format!("read-back failed: {e:?}")))?[..len as usize]
            .to_vec();
        staging.unmap();
        Ok(data)
    }

    /// Reads an f32 tensor (or an f16 one, widened) back to the host.
    pub async fn read_f32(&self, t: &Tensor) -> Result<Vec<f32>> {
        let bytes = self.read_bytes(t).await?;
        Ok(match t.dtype {
            DType::F32 => bytemuck::pod_collect_to_vec(&bytes),
            DType::F16 => bytemuck::pod_collect_to_vec::<u8, half::f16>(&bytes)
                .into_iter()
                .map(f32::from)
                .collect(),
        })
    }

    /// Blocking form of [`Context::read_f32`] (not on wasm).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_f32_blocking(&self, t: &Tensor) -> Result<Vec<f32>> {
        pollster::block_on(self.read_f32(t))
    }

    /// Submits command buffers on the queue (after checking the device is alive).
    pub fn submit(&self, encoder: wgpu::CommandEncoder) -> Result<()> {
        self.check()?;
        self.queue.submit([encoder.finish()]);
        Ok(())
    }
}

// A one-shot channel whose receiver is a future: map_async's callback sends, the reader awaits.
struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
}

struct Sender<T>(Arc<Mutex<Slot<T>>>);
struct Receiver<T>(Arc<Mutex<Slot<T>>>);

fn oneshot<T>() -> (Sender<T>, Receiver<T>) {
    let s = Arc::new(Mutex::new(Slot {
        value: None,
        waker: None,
    }));
    (Sender(s.clone()), Receiver(s))
}

impl<T> Sender<T> {
    fn send(self, v: T) {
        if let Ok(mut g) = self.0.lock() {
            g.value = Some(v);
            if let Some(w) = g.waker.take() {
                w.wake();
            }
        }
    }
}

impl<T> Future for Receiver<T> {
    type Output = std::result::Result<T, String>;
    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        match self.0.lock() {
            Ok(mut g) => match g.value.take() {
                Some(v) => Poll::Ready(Ok(v)),
                None => {
                    g.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            },
            Err(_) => Poll::Ready(Err("read-back state poisoned".into())),
        }
    }
}
