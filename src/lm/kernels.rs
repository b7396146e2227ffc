//! The runner's own WGSL kernels (`shaders/lm/*.wgsl`): their sources with the generated
//! header (uniform block, and the bindings whose element type follows the precision), the
//! compiled pipelines of a model, and [`Op`], one recorded dispatch with its bind group.
//!
//! Matrices (weights) and attention tensors are f32, or f16 read and written as packed u32
//! pairs (`unpack2x16float` / `pack2x16float`), so the f16 path needs no shader-f16 feature.
//! Activations are f32 everywhere.

use bytemuck::{Pod, Zeroable};
use wgpu::util::DeviceExt;

use crate::gpu::Context;

/// The uniform block every lm kernel reads (each uses the fields it needs).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Pod, Zeroable)]
pub(crate) struct LmParams {
    /// Output rows (activations).
    pub rows: u32,
    /// Output columns.
    pub n: u32,
    /// Inner dimension of a matmul.
    pub k: u32,
    /// Tokens per sequence in the block (row r = b * t + token).
    pub t: u32,
    /// Heads (split and merge).
    pub heads: u32,
    /// Head dim.
    pub hd: u32,
    /// Matmul epilogue: 0 store, 1 add, 2 gelu.
    pub mode: u32,
    /// Bit 0: rmsnorm gathers rows through `sel`; heads applies RoPE.
    pub flags: u32,
    /// RMSNorm epsilon.
    pub eps: f32,
    pub _pad: [u32; 3],
}

const PARAMS_WGSL: &str = "struct P {
    rows: u32, n: u32, k: u32, t: u32, heads: u32, hd: u32, mode: u32, flags: u32,
    eps: f32, pad0: u32, pad1: u32, pad2: u32,
}
@group(0) @binding(0) var<uniform> p: P;
";

/// The runner's kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kernel {
    Embed,
    RmsNorm,
    MatmulTiled,
    Matvec,
    Heads,
    MergeHeads,
}

impl Kernel {
    pub const ALL: [Kernel; 6] = [
        Kernel::Embed,
        Kernel::RmsNorm,
        Kernel::MatmulTiled,
        Kernel::Matvec,
        Kernel::Heads,
        Kernel::MergeHeads,
    ];

    fn file(self) -> &'static str {
        match self {
            Kernel::Embed => include_str!("../../shaders/lm/embed.wgsl"),
            Kernel::RmsNorm => include_str!("../../shaders/lm/rmsnorm.wgsl"),
            Kernel::MatmulTiled | Kernel::Matvec => include_str!("../../shaders/lm/matmul.wgsl"),
            Kernel::Heads => include_str!("../../shaders/lm/heads.wgsl"),
            Kernel::MergeHeads => include_str!("../../shaders/lm/merge_heads.wgsl"),
        }
    }

    fn entry(self) -> &'static str {
        match self {
            Kernel::MatmulTiled => "tiled",
            Kernel::Matvec => "matvec",
            _ => "main",
        }
    }

    /// The binding whose element type follows the precision, with its role.
    fn varying(self) -> Option<(u32, Role)> {
        match self {
            Kernel::Embed | Kernel::MatmulTiled | Kernel::Matvec => Some((1, Role::Weights)),
            Kernel::Heads => Some((3, Role::Out)),
            Kernel::MergeHeads => Some((1, Role::In)),
            Kernel::RmsNorm => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Role {
    Weights,
    In,
    Out,
}

/// The full WGSL of `kernel` with f16 (packed) or f32 matrices and attention tensors.
pub(crate) fn source(kernel: Kernel, f16: bool) -> String {
    let mut s = String::from(PARAMS_WGSL);
    if let Some((b, role)) = kernel.varying() {
        let (name, access, f) = match role {
            Role::Weights => ("w", "read", "w2"),
            Role::In => ("src", "read", "get2"),
            Role::Out => ("dst", "read_write", "put2"),
        };
        let elem = if f16 { "u32" } else { "f32" };
        s += &format!("@group(0) @binding({b}) var<storage, {access}> {name}: array<{elem}>;\n");
        s += &match (role, f16) {
            (Role::Out, false) => format!(
                "fn {f}(i: u32, v: vec2<f32>) {{ {name}[i] = v.x; {name}[i + 1u] = v.y; }}\n"
            ),
            (Role::Out, true) => {
                format!("fn {f}(i: u32, v: vec2<f32>) {{ {name}[i >> 1u] = pack2x16float(v); }}\n")
            }
            (_, false) => format!(
                "fn {f}(i: u32) -> vec2<f32> {{ return vec2<f32>({name}[i], {name}[i + 1u]); }}\n"
            ),
            (_, true) => {
                format!(
                    "fn {f}(i: u32) -> vec2<f32> {{ return unpack2x16float({name}[i >> 1u]); }}\n"
                )
            }
        };
    }
    s + kernel.file()
}

/// Every kernel source in both precisions, with a label (the naga validation test).
pub fn all_sources() -> Vec<(String, String)> {
    Kernel::ALL
        .iter()
        .flat_map(|&k| {
            [false, true]
                .map(|f| (format!("lm {k:?} f16={f}"), source(k, f)))
                .into_iter()
        })
        .collect()
}

/// A model's compiled pipelines (one precision).
#[derive(Debug)]
pub(crate) struct Pipelines {
    pipes: Vec<(Kernel, wgpu::ComputePipeline)>,
}

impl Pipelines {
    pub fn new(ctx: &Context, f16: bool) -> Self {
        let dev = ctx.device();
        let pipes = Kernel::ALL
            .iter()
            .map(|&k| {
                let module = dev.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some("webattn lm"),
                    source: wgpu::ShaderSource::Wgsl(source(k, f16).into()),
                });
                let p = dev.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some("webattn lm"),
                    layout: None,
                    module: &module,
                    entry_point: Some(k.entry()),
                    compilation_options: Default::default(),
                    cache: None,
                });
                (k, p)
            })
            .collect();
        Pipelines { pipes }
    }

    fn get(&self, k: Kernel) -> &wgpu::ComputePipeline {
        // Every kernel is compiled in `new`.
        &self.pipes[Kernel::ALL.iter().position(|&x| x == k).unwrap_or(0)].1
    }

    /// One dispatch of `kernel` over `buffers` (bindings 1, 2, ... in order) with `params`
    /// and `groups` workgroups. Creates its uniform buffer and bind group: call it when a
    /// session or a prefill is set up, never per decode step.
    pub fn op(
        &self,
        ctx: &Context,
        kernel: Kernel,
        params: LmParams,
        buffers: &[&wgpu::Buffer],
        groups: [u32; 3],
    ) -> Op {
        let dev = ctx.device();
        let uniform = dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("webattn lm params"),
            contents: bytemuck::bytes_of(&params),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let pipe = self.get(kernel);
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: uniform.as_entire_binding(),
        }];
        for (i, b) in buffers.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource: b.as_entire_binding(),
            });
        }
        let bind = dev.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("webattn lm"),
            layout: &pipe.get_bind_group_layout(0),
            entries: &entries,
        });
        Op {
            pipe: pipe.clone(),
            bind,
            groups,
        }
    }
}

/// One recorded dispatch: pipeline, bind group (with its uniform) and grid.
#[derive(Debug, Clone)]
pub(crate) struct Op {
    pipe: wgpu::ComputePipeline,
    bind: wgpu::BindGroup,
    groups: [u32; 3],
}

/// Records `ops` in order into one compute pass.
pub(crate) fn record(encoder: &mut wgpu::CommandEncoder, ops: &[&Op]) {
    if ops.is_empty() {
        return;
    }
    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
        label: Some("webattn lm"),
        timestamp_writes: None,
    });
    for op in ops {
        pass.set_pipeline(&op.pipe);
        pass.set_bind_group(0, &op.bind, &[]);
        pass.dispatch_workgroups(op.groups[0], op.groups[1], op.groups[2]);
    }
}

/// A 1-D grid of `invocations` (256 per workgroup) folded into x and y.
pub(crate) fn grid_1d(invocations: usize) -> [u32; 3] {
    let groups = invocations.div_ceil(256).max(1) as u32;
    if groups <= 65535 {
        [groups, 1, 1]
    } else {
        [65535, groups.div_ceil(65535), 1]
    }
}

/// One workgroup per row, folded into x and y.
pub(crate) fn grid_rows(rows: usize) -> [u32; 3] {
    let rows = rows.max(1) as u32;
    if rows <= 65535 {
        [rows, 1, 1]
    } else {
        [65535, rows.div_ceil(65535), 1]
    }
}
