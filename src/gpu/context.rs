//! The [`Context`]: adapter and device selection, what the device offers ([`DeviceInfo`]),
//! the kernel variant, error and device-loss tracking, and the caches the other files of this
//! module fill (pipelines, bind groups). Tensors: `tensors.rs`; recording passes: `record.rs`;
//! the attention calls: `calls.rs`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::pass::decode::DecodeTuning;
use crate::shader::{Storage, TileConfig, Variant};

use super::caches::{BindCache, PipelineCache};
use super::options::{AdapterChoice, ContextOptions, DeviceInfo};

/// How many wgpu objects a [`Context`] has created, by type (see
/// [`Context::objects_created`]). A repeated `record` of one shape into the same buffers
/// creates none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ObjectCounts {
    /// Buffers (tensors, uniforms, sinks, staging for read-back).
    pub buffers: u64,
    /// Bind groups.
    pub bind_groups: u64,
    /// Compute pipelines (with their shader modules).
    pub pipelines: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub buffers: AtomicU64,
    pub bind_groups: AtomicU64,
    pub pipelines: AtomicU64,
}

impl Counters {
    pub fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// A GPU device ready to run attention: adapter facts, cached pipelines and bind groups.
///
/// Create one with [`Context::new`] (it picks the adapter) or wrap an application's device
/// with [`Context::from_device`]. Pipelines are compiled once per (pass, kernel, storage,
/// tiles) and bind groups once per (pass, buffers, parameters), so a repeated call of one
/// shape creates no wgpu object.
pub struct Context {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) info: DeviceInfo,
    pub(crate) pipelines: PipelineCache,
    pub(crate) binds: BindCache,
    pub(crate) counters: Counters,
    /// Stand-ins for unused bindings: one read-only, one read-write (never both in a pass).
    pub(crate) dummy_ro: wgpu::Buffer,
    pub(crate) dummy_rw: wgpu::Buffer,
    lost: Arc<Mutex<Option<String>>>,
    gpu_error: Arc<Mutex<Option<String>>>,
    /// `coopmat2` debugging bits from the environment ([`TileConfig::debug`]; 0 on wasm).
    coop2_debug: u32,
    /// The decode passes' overrides from the environment (none on wasm).
    pub(crate) decode_tuning: DecodeTuning,
    /// Fragment size of the cooperative-matrix decode kernel (16 or 8), 0 where it cannot run.
    pub(crate) coop_decode_cm: u32,
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
        let has = |n: u32| {
            props.iter().any(|p| {
                (p.m_size, p.n_size, p.k_size) == (n, n, n)
                    && p.ab_type == wgpu::CooperativeScalarType::F16
                    && p.cr_type == wgpu::CooperativeScalarType::F32
            })
        };
        let coop16 = has(16);
        // The cooperative-matrix decode kernel also runs on 8x8x8 fragments (lavapipe).
        let coop8 = has(8);
        // SUBGROUP_BARRIER: the coopmat2 kernel's subgroupBarrier() (Vulkan and Metal).
        let mut wanted = wgpu::Features::SHADER_F16
            | wgpu::Features::SUBGROUP
            | wgpu::Features::SUBGROUP_BARRIER
            | wgpu::Features::TIMESTAMP_QUERY;
        let coop_decode = options.decode_variant == Some(Variant::CoopMatrix);
        if (coop16
            && options
                .variant
                .is_none_or(|v| matches!(v, Variant::CoopMatrix | Variant::CoopMatrix2)))
            || ((coop16 || coop8) && coop_decode)
        {
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
        let coop = (coop, coop16, coop8);
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
            (Vec::new(), false, false),
            device,
            queue,
            options,
            false,
        )
    }

    fn build(
        ai: wgpu::AdapterInfo,
        adapter_features: wgpu::Features,
        (cooperative_matrix, coop16, coop8): (Vec<String>, bool, bool),
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
        // coopmat2 sizes its lanes' ownership for subgroups of exactly 32 invocations, and
        // synchronises them with subgroupBarrier(). It is never the automatic choice: on the
        // H100 it measured about 2x slower than coopmat (docs/perf.md, change 13), so it runs
        // only when forced (`--variant coopmat2`, WEBATTN_VARIANT=coopmat2).
        let coop2_ok = coop_ok
            && sg_min == 32
            && sg_max == 32
            && df.contains(wgpu::Features::SUBGROUP_BARRIER);
        let variant =
            match options.variant {
                None if coop_ok => Variant::CoopMatrix,
                None if subgroup_ok => Variant::Subgroup,
                None | Some(Variant::Portable) => Variant::Portable,
                Some(Variant::CoopMatrix) if coop_ok => Variant::CoopMatrix,
                Some(Variant::Subgroup) if subgroup_ok => Variant::Subgroup,
                Some(Variant::CoopMatrix2) if coop2_ok => Variant::CoopMatrix2,
                Some(Variant::CoopMatrix2) => {
                    return Err(Error::MissingFeature(format!(
                    "the coopmat2 variant needs what the cooperative-matrix variant needs and a \
                     fixed subgroup size of 32; this device has cooperative matrices: {}, \
                     subgroups {sg_min}..{sg_max}",
                    if coop_ok { "usable" } else if coop16 { "not usable" } else { "no" }
                )))
                }
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
        // The portable decode partial kernel is the automatic choice for every kind: with its
        // branch-free key loops it measured faster than the subgroup kernel for stick-breaking
        // too (H200, docs/perf.md change D4). The subgroup kernel runs where it is forced; it
        // bakes the subgroup size into its tiles, so it needs a fixed one (any power of two
        // from 4, lavapipe's 8, to 128).
        // The cooperative-matrix decode kernel (forced only: not yet measured against the
        // portable one, docs/perf.md) needs the feature, one fixed subgroup size, and
        // 16x16x16 (preferred) or 8x8x8 f16->f32 fragments; it runs for f16 caches read as
        // `f16` (Context::decode_tiles), the others keep the portable kernel.
        let coop_decode_cm = if df.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX)
            && df.contains(wgpu::Features::SUBGROUP)
            && sg_min == sg_max
            && sg_max.is_power_of_two()
        {
            if coop16 {
                16
            } else if coop8 {
                8
            } else {
                0
            }
        } else {
            0
        };
        let decode_variant = match options.decode_variant {
            None | Some(Variant::Portable) => Variant::Portable,
            Some(Variant::CoopMatrix) if coop_decode_cm != 0 => Variant::CoopMatrix,
            Some(Variant::CoopMatrix) => {
                return Err(Error::MissingFeature(format!(
                    "the cooperative-matrix decode kernel needs EXPERIMENTAL_COOPERATIVE_MATRIX \
                     with 16x16x16 or 8x8x8 f16->f32 shapes and SUBGROUP with one fixed \
                     subgroup size; this device has cooperative \
                     matrices: {}, subgroups {sg_min}..{sg_max}",
                    if cooperative_matrix.is_empty() {
                        "none".to_string()
                    } else {
                        cooperative_matrix.join(", ")
                    }
                )))
            }
            Some(Variant::Subgroup)
                if df.contains(wgpu::Features::SUBGROUP)
                    && sg_min == sg_max
                    && sg_max.is_power_of_two()
                    && (4..=128).contains(&sg_max) =>
            {
                Variant::Subgroup
            }
            Some(v) => {
                return Err(Error::MissingFeature(format!(
                    "the {v:?} decode kernel needs SUBGROUP with one fixed subgroup size (a \
                     power of two from 4 to 128); this device has subgroups: {}, sizes \
                     {sg_min}..{sg_max}",
                    df.contains(wgpu::Features::SUBGROUP)
                )))
            }
        };
        #[cfg(not(target_arch = "wasm32"))]
        let coop2_debug = TileConfig::coop2_debug_from_env()?;
        #[cfg(target_arch = "wasm32")]
        let coop2_debug = 0;
        #[cfg(not(target_arch = "wasm32"))]
        let decode_tuning = DecodeTuning::from_env()?;
        #[cfg(target_arch = "wasm32")]
        let decode_tuning = DecodeTuning::default();
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
            decode_variant,
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
        {
            return Err(Error::MissingFeature(format!(
                "webattn needs 256 invocations per workgroup (x dimension); the device offers {} \
                 invocations, {} in x",
                info.max_invocations, lim.max_compute_workgroup_size_x
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
            pipelines: PipelineCache::default(),
            binds: BindCache::default(),
            counters: Counters::default(),
            dummy_ro,
            dummy_rw,
            lost,
            gpu_error,
            coop2_debug,
            decode_tuning,
            coop_decode_cm,
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
    ///
    /// The `coopmat2` variant applies to f16 tensors with head dims that are multiples of 16
    /// up to 128; other f16 head dims take the cooperative-matrix tiles where they fit, then
    /// the subgroup ones. A kind without `coopmat2` hooks takes the cooperative-matrix tiles
    /// ([`Context::forward_kernel`]).
    pub fn forward_tiles(&self, dtype: DType, d: usize, dv: usize) -> Result<TileConfig> {
        let v = self.info.variant;
        let (sg_min, sg_max) = self.info.subgroup_sizes;
        if v == Variant::CoopMatrix2 && self.storage(dtype) == Storage::F16 {
            let mem = self.info.max_workgroup_storage;
            let dbg = self.coop2_debug;
            if let Some(t) = TileConfig::choose_coop2_with(d, dv, mem, sg_min, sg_max, dbg) {
                return Ok(t);
            }
        }
        if matches!(v, Variant::CoopMatrix | Variant::CoopMatrix2)
            && self.storage(dtype) == Storage::F16
        {
            if let Some(t) = TileConfig::choose_coop(d, dv, self.info.max_workgroup_storage, sg_max)
            {
                return Ok(t);
            }
        }
        let t = self.tile_config(d, dv)?;
        Ok(match v {
            // A device that runs the cooperative-matrix variant runs the subgroup one too.
            Variant::CoopMatrix | Variant::CoopMatrix2 | Variant::Subgroup => {
                t.with_variant(Variant::Subgroup)
            }
            Variant::Portable => t,
        })
    }

    /// Fails with [`Error::DeviceLost`] once the device is lost, or [`Error::Gpu`] with the
    /// first error the GPU API reported on a device webattn owns.
    ///
    /// A GPU error is sticky: every later call fails with it too (results computed after it
    /// may be stale or unwritten, and must not look valid) until the caller acknowledges it
    /// with [`Context::take_error`].
    pub fn check(&self) -> Result<()> {
        if let Some(msg) = self.lost.lock().ok().and_then(|g| g.clone()) {
            return Err(Error::DeviceLost(msg));
        }
        if let Some(msg) = self.gpu_error.lock().ok().and_then(|g| g.clone()) {
            return Err(Error::Gpu(msg));
        }
        Ok(())
    }

    /// Returns and clears the GPU error [`Context::check`] reports, if any. Call it once the
    /// application has dealt with the error (for example discarded the affected outputs).
    pub fn take_error(&self) -> Option<String> {
        self.gpu_error.lock().ok().and_then(|mut g| g.take())
    }

    /// How many wgpu objects this context has created so far.
    pub fn objects_created(&self) -> ObjectCounts {
        let c = &self.counters;
        ObjectCounts {
            buffers: c.buffers.load(Ordering::Relaxed),
            bind_groups: c.bind_groups.load(Ordering::Relaxed),
            pipelines: c.pipelines.load(Ordering::Relaxed),
        }
    }

    /// How tensors of `dtype` are read on this device.
    pub fn storage(&self, dtype: DType) -> Storage {
        match dtype {
            DType::F32 => Storage::F32,
            DType::F16 => self.info.f16_storage,
        }
    }

    /// Submits command buffers on the queue (after checking the device is alive).
    pub fn submit(&self, encoder: wgpu::CommandEncoder) -> Result<()> {
        self.check()?;
        self.queue.submit([encoder.finish()]);
        Ok(())
    }
}
