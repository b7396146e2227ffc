//! Recording one pass into an encoder: the chunk planner (units split so every binding fits
//! the device's storage-binding limit), the bind-group cache (a repeated call with the same
//! buffers and parameters reuses its bind group and uniform buffer: no wgpu object is
//! created), and the dispatches.

use wgpu::util::DeviceExt;

use crate::contract::{Access, Params};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::pass::{Extent, PassId};
use crate::shader::{Storage, TileConfig};
use crate::shape::Shape;

use super::caches::{BindKey, CAPACITY};
use super::context::{Context, Counters};

/// One pass to record.
pub(crate) struct Dispatch<'a> {
    pub pass: PassId,
    /// The kind's WGSL kernel of the pass.
    pub kernel: &'static str,
    pub storage: Storage,
    pub tiles: TileConfig,
    pub shape: &'a Shape,
    pub dtype: DType,
    /// Parameters; the chunk planner fills `unit0` and the `*_base` fields.
    pub params: Params,
    /// One buffer per binding of the pass (slot 0, the parameters, is ignored); `None`: an
    /// unused binding (a stand-in is bound).
    pub buffers: Vec<Option<&'a wgpu::Buffer>>,
    /// GPU timestamps: `record_pass` writes query `i` at the start of the first dispatch and
    /// `i + 1` at the end of the last; `record_grid` takes the set and writes the queries its
    /// grid names.
    pub timestamps: Option<(&'a wgpu::QuerySet, u32)>,
}

/// The workgroup grid of a pass: (x, units, z), the units split into chunks by the planner.
pub(crate) struct Grid {
    pub x: u32,
    pub z: u32,
    /// Units of work; every extent of the pass is per unit (kv-indexed ones per unit / group).
    pub units: usize,
    pub group: usize,
    /// Timestamp query written when the first compute pass begins, if any.
    pub begin: Option<u32>,
    /// Timestamp query written when the last compute pass ends, if any.
    pub end: Option<u32>,
}

struct Bound {
    offset: u64,
    size: u64,
}

/// Units [u0, u1) and each binding's range.
struct Chunk {
    u0: usize,
    u1: usize,
    bound: Vec<Option<Bound>>,
}

fn poisoned<T>(_: T) -> Error {
    Error::Gpu("webattn's bind-group cache lock was poisoned by a panic".into())
}

impl Context {
    /// Splits units (b, h) into chunks whose bindings all fit the storage-binding limit and
    /// whose unit count fits one dispatch dimension. kv-indexed bindings cover the kv units
    /// their query units read, so chunks need not be whole GQA groups.
    fn plan_chunks(&self, extents: &[Extent], units: usize, group: usize) -> Result<Vec<Chunk>> {
        let limit = self.info.max_storage_binding;
        let align = self.info.storage_offset_alignment.max(4) as u64;
        let max_units = self.info.max_workgroups_per_dim as usize;
        let range = |e: &Extent, u0: usize, u1: usize| -> Option<Bound> {
            let Extent::PerUnit { bytes, kv, .. } = *e else {
                return None;
            };
            let (a, b) = if kv {
                (u0 / group, u1.div_ceil(group))
            } else {
                (u0, u1)
            };
            let start = a as u64 * bytes;
            let offset = start - start % align;
            Some(Bound {
                offset,
                size: b as u64 * bytes - offset,
            })
        };
        let fits = |u0: usize, u1: usize| -> Option<Vec<Option<Bound>>> {
            let b: Vec<Option<Bound>> = extents.iter().map(|e| range(e, u0, u1)).collect();
            (u1 - u0 <= max_units && b.iter().flatten().all(|x| x.size <= limit)).then_some(b)
        };
        let mut chunks = Vec::new();
        let mut u0 = 0;
        while u0 < units {
            let mut u1 = u0 + 1;
            let mut bound = fits(u0, u1).ok_or_else(|| {
                let size = extents
                    .iter()
                    .filter_map(|e| range(e, u0, u0 + 1))
                    .map(|b| b.size)
                    .max()
                    .unwrap_or(0);
                Error::TensorTooLarge {
                    what: "the bytes one (batch, head) unit binds (the work cannot be split \
                           finer than a unit)"
                        .into(),
                    size,
                    limit,
                }
            })?;
            // Grow by doubling, then step down, to keep planning cheap for many heads.
            let mut step = 1;
            while u1 < units {
                let next = (u1 + step).min(units);
                match fits(u0, next) {
                    Some(b) => {
                        u1 = next;
                        bound = b;
                        step *= 2;
                    }
                    None if step > 1 => step /= 2,
                    None => break,
                }
            }
            chunks.push(Chunk { u0, u1, bound });
            u0 = u1;
        }
        Ok(chunks)
    }

    /// A storage buffer holding `values` (cached by value).
    pub(crate) fn f32_buffer(&self, values: &[f32]) -> Result<wgpu::Buffer> {
        let key: Vec<u32> = values.iter().map(|x| x.to_bits()).collect();
        let mut cache = self.binds.sinks.lock().map_err(poisoned)?;
        if let Some(b) = cache.get(&key) {
            return Ok(b.clone());
        }
        if cache.len() >= CAPACITY {
            cache.clear();
        }
        let mut bytes: Vec<u8> = bytemuck::cast_slice(values).to_vec();
        bytes.resize(bytes.len().max(16), 0);
        let b = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("webattn sinks"),
                contents: &bytes,
                usage: wgpu::BufferUsages::STORAGE,
            });
        Counters::bump(&self.counters.buffers);
        cache.insert(key, b.clone());
        Ok(b)
    }

    fn bind_group(&self, key: BindKey) -> Result<wgpu::BindGroup> {
        let mut cache = self.binds.groups.lock().map_err(poisoned)?;
        if let Some(g) = cache.get(&key) {
            return Ok(g.clone());
        }
        if cache.len() >= CAPACITY {
            cache.clear();
        }
        let layout = self.bind_layout(key.pass)?;
        let ubuf = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("webattn params"),
                contents: &key.params,
                usage: wgpu::BufferUsages::UNIFORM,
            });
        Counters::bump(&self.counters.buffers);
        let entries: Vec<wgpu::BindGroupEntry> = key
            .entries
            .iter()
            .enumerate()
            .map(|(i, (buf, offset, size))| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: if i == 0 {
                    ubuf.as_entire_binding()
                } else {
                    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: buf,
                        offset: *offset,
                        size: wgpu::BufferSize::new(*size),
                    })
                },
            })
            .collect();
        let g = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(&format!("webattn {}", key.pass.name())),
            layout: &layout,
            entries: &entries,
        });
        Counters::bump(&self.counters.bind_groups);
        cache.insert(key, g.clone());
        Ok(g)
    }

    /// Records `d` into `encoder`: one compute pass per chunk of units, with a grid of
    /// ceil(Tq / rows per workgroup) x units; timestamps as `d.timestamps` says.
    pub(crate) fn record_pass(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        d: Dispatch,
    ) -> Result<()> {
        let pass = d.pass.pass();
        let s = d.shape;
        let rows = (pass.rows_per_workgroup)(&d.tiles) as usize;
        let groups_x = s.q_len.div_ceil(rows);
        if groups_x > self.info.max_workgroups_per_dim as usize {
            return Err(Error::TensorTooLarge {
                what: "query length (workgroups in one dispatch dimension)".into(),
                size: groups_x as u64,
                limit: self.info.max_workgroups_per_dim as u64,
            });
        }
        let grid = Grid {
            x: groups_x as u32,
            z: 1,
            units: s.batch * s.q_heads,
            group: s.group(),
            begin: d.timestamps.map(|(_, i)| i),
            end: d.timestamps.map(|(_, i)| i.saturating_add(1)),
        };
        self.record_grid(encoder, &d, grid)
    }

    /// Records `d` into `encoder` on an explicit grid: one compute pass per chunk of
    /// `grid.units` (the pass's extents are per unit), each dispatching
    /// (x, units of the chunk, z) workgroups. Timestamps `grid.begin` / `grid.end` (queries
    /// of `d.timestamps`' set) are written at the start of the first and the end of the last
    /// compute pass.
    pub(crate) fn record_grid(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        d: &Dispatch,
        grid: Grid,
    ) -> Result<()> {
        self.grid_inner(Some(encoder), d, grid)
    }

    /// Creates (or finds in the caches) the pipeline and bind groups that [`Context::record_grid`]
    /// would use for `d` over `units`, recording nothing: a caller that records a pass only on
    /// some steps creates its objects up front, so no later step creates one.
    pub(crate) fn prepare_grid(&self, d: &Dispatch, units: usize, group: usize) -> Result<()> {
        let grid = Grid {
            x: 1,
            z: 1,
            units,
            group,
            begin: None,
            end: None,
        };
        self.grid_inner(None, d, grid)
    }

    fn grid_inner(
        &self,
        mut encoder: Option<&mut wgpu::CommandEncoder>,
        d: &Dispatch,
        grid: Grid,
    ) -> Result<()> {
        let pass = d.pass.pass();
        let pipeline = self.pipeline(d.pass, d.kernel, d.storage, d.tiles)?;
        let max = self.info.max_workgroups_per_dim;
        if grid.x > max || grid.z > max {
            return Err(Error::TensorTooLarge {
                what: format!(
                    "the {} pass's grid (workgroups per dimension)",
                    pass.id.name()
                ),
                size: grid.x.max(grid.z) as u64,
                limit: max as u64,
            });
        }
        let extents = (pass.extents)(d.shape, d.dtype);
        let chunks = self.plan_chunks(&extents, grid.units, grid.group)?;
        for (ci, c) in chunks.iter().enumerate() {
            let mut params = d.params;
            params.unit0 = c.u0 as u32;
            let mut entries = Vec::with_capacity(pass.bindings.len());
            for (i, b) in pass.bindings.iter().enumerate() {
                let dummy = match b.access {
                    Access::ReadWrite => &self.dummy_rw,
                    _ => &self.dummy_ro,
                };
                let buf = d.buffers.get(i).copied().flatten();
                match (b.access, buf, &c.bound[i], extents[i]) {
                    (Access::Uniform, ..) => entries.push((self.dummy_ro.clone(), 0, 0)),
                    (_, Some(buf), Some(r), Extent::PerUnit { elem, base, .. }) => {
                        base(&mut params, (r.offset / elem) as u32);
                        entries.push((buf.clone(), r.offset, r.size));
                    }
                    (_, Some(buf), _, _) => entries.push((buf.clone(), 0, 0)),
                    (_, None, ..) => entries.push((dummy.clone(), 0, 0)),
                }
            }
            let bg = self.bind_group(BindKey {
                pass: d.pass,
                params: bytemuck::bytes_of(&params).to_vec(),
                entries,
            })?;
            let Some(encoder) = encoder.as_deref_mut() else {
                continue;
            };
            let ts = d.timestamps.and_then(|(qs, _)| {
                let begin = grid.begin.filter(|_| ci == 0);
                let end = grid.end.filter(|_| ci + 1 == chunks.len());
                (begin.is_some() || end.is_some()).then_some(wgpu::ComputePassTimestampWrites {
                    query_set: qs,
                    beginning_of_pass_write_index: begin,
                    end_of_pass_write_index: end,
                })
            });
            let mut cp = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(pass.id.name()),
                timestamp_writes: ts,
            });
            cp.set_pipeline(&pipeline);
            cp.set_bind_group(0, &bg, &[]);
            cp.dispatch_workgroups(grid.x, (c.u1 - c.u0) as u32, grid.z);
        }
        Ok(())
    }
}
