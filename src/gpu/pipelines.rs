//! The pipeline cache. It knows passes, storage types and tiles, never kinds: a kernel is an
//! opaque WGSL string (a kind's file for the pass). Bind-group layouts are derived from each
//! pass's binding list, once per pass.

use crate::contract::Access;
use crate::error::{Error, Result};
use crate::pass;
use crate::pass::PassId;
use crate::shader::{Storage, TileConfig};

use super::caches::PipelineKey;
use super::context::{Context, Counters};

fn poisoned<T>(_: T) -> Error {
    Error::Gpu("webattn's pipeline cache lock was poisoned by a panic".into())
}

impl Context {
    /// The bind-group layout of `pass` (derived from its binding list).
    pub(crate) fn bind_layout(&self, pass: PassId) -> Result<wgpu::BindGroupLayout> {
        Ok(self.layouts(pass)?.0)
    }

    fn layouts(&self, pass: PassId) -> Result<(wgpu::BindGroupLayout, wgpu::PipelineLayout)> {
        let mut cache = self.pipelines.layouts.lock().map_err(poisoned)?;
        if let Some(l) = cache.get(&pass) {
            return Ok(l.clone());
        }
        let bindings = pass.pass().bindings;
        let storage = bindings
            .iter()
            .filter(|b| b.access != Access::Uniform)
            .count() as u32;
        let limit = self.device.limits().max_storage_buffers_per_shader_stage;
        if storage > limit {
            return Err(Error::MissingFeature(format!(
                "the {} pass binds {storage} storage buffers; this device allows {limit} per \
                 shader stage",
                pass.name()
            )));
        }
        let entries: Vec<wgpu::BindGroupLayoutEntry> = bindings
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupLayoutEntry {
                binding: i as u32,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: match b.access {
                        Access::Uniform => wgpu::BufferBindingType::Uniform,
                        Access::Read => wgpu::BufferBindingType::Storage { read_only: true },
                        Access::ReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            })
            .collect();
        let label = format!("webattn {}", pass.name());
        let bgl = self
            .device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(&label),
                entries: &entries,
            });
        let pl = self
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(&label),
                bind_group_layouts: &[Some(&bgl)],
                immediate_size: 0,
            });
        cache.insert(pass, (bgl.clone(), pl.clone()));
        Ok((bgl, pl))
    }

    /// The pipeline of `kernel` (a kind's WGSL file for `pass`) for `storage` and `tiles`,
    /// compiled on first use.
    pub(crate) fn pipeline(
        &self,
        pass: PassId,
        kernel: &'static str,
        storage: Storage,
        tiles: TileConfig,
    ) -> Result<wgpu::ComputePipeline> {
        let key = PipelineKey {
            pass,
            kernel: (kernel.as_ptr() as usize, kernel.len()),
            storage,
            tiles,
        };
        if let Some(p) = self.pipelines.pipelines.lock().map_err(poisoned)?.get(&key) {
            return Ok(p.clone());
        }
        let (_, layout) = self.layouts(pass)?;
        let src = pass::source(pass, kernel, storage, &tiles);
        let label = format!("webattn {}", pass.name());
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
                layout: Some(&layout),
                module: &module,
                entry_point: Some("main"),
                compilation_options: Default::default(),
                cache: None,
            });
        Counters::bump(&self.counters.pipelines);
        self.pipelines
            .pipelines
            .lock()
            .map_err(poisoned)?
            .insert(key, pipeline.clone());
        Ok(pipeline)
    }
}
