//! `webattn run`: q, k, v (and sinks) from a .safetensors file through one attention call; o
//! and lse or rem (and the weights) written to another.
//!
//! Dtype rule: the kernels keep the input's storage type (F32 -> f32 kernels, F16 -> f16
//! kernels; BF16 -> f32, since bf16's range exceeds f16's), unless `--compute` says otherwise;
//! o is written as `--out-dtype` (default: the compute dtype); lse, rem and weights as F32.
//!
//! With `--lengths`, k and v [B, Hkv, Tk_max, D] are a KV cache: they are copied into a
//! `KvCache` of capacity Tk_max (the same layout), sequence b's length is set to L_b, and q is
//! one decode step through `Context::record_decode` (its rows bottom-right aligned to each
//! sequence's length). The slots past a sequence's length are copied too and never read.

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use webattn::{Attention, Context, DType, KvCache, Output, Shape, Tensor};

use crate::output;
use crate::RunArgs;

/// One tensor of the input file, as stored.
struct HostTensor {
    name: &'static str,
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl HostTensor {
    fn read(st: &SafeTensors, name: &'static str) -> Result<Self, String> {
        let t = st
            .tensor(name)
            .map_err(|e| format!("tensor '{name}': {e}"))?;
        if !matches!(t.dtype(), Dtype::F32 | Dtype::F16 | Dtype::BF16) {
            return Err(format!(
                "tensor '{name}' is {:?}; F32, F16 or BF16 expected",
                t.dtype()
            ));
        }
        Ok(HostTensor {
            name,
            dtype: t.dtype(),
            shape: t.shape().to_vec(),
            bytes: t.data().to_vec(),
        })
    }

    fn to_f32(&self) -> Vec<f32> {
        match self.dtype {
            Dtype::F16 => bytemuck::pod_collect_to_vec::<u8, half::f16>(&self.bytes)
                .into_iter()
                .map(f32::from)
                .collect(),
            Dtype::BF16 => bytemuck::pod_collect_to_vec::<u8, half::bf16>(&self.bytes)
                .into_iter()
                .map(f32::from)
                .collect(),
            _ => bytemuck::pod_collect_to_vec(&self.bytes),
        }
    }

    fn to_f16(&self) -> Vec<half::f16> {
        match self.dtype {
            Dtype::F16 => bytemuck::pod_collect_to_vec(&self.bytes),
            _ => self.to_f32().into_iter().map(half::f16::from_f32).collect(),
        }
    }

    /// Uploads the tensor in `dtype`, warning when values overflow f16.
    fn upload(&self, ctx: &Context, dtype: DType) -> Result<Tensor, String> {
        match dtype {
            DType::F32 => ctx.tensor_f32(&self.shape, &self.to_f32()),
            DType::F16 => {
                let h = self.to_f16();
                if self.dtype != Dtype::F16 {
                    let inf = h.iter().filter(|x| x.is_infinite()).count();
                    let was = self.to_f32().iter().filter(|x| x.is_infinite()).count();
                    if inf > was {
                        eprintln!(
                            "warning: {} values of {} exceed f16's range and became infinite",
                            inf - was,
                            self.name
                        );
                    }
                }
                ctx.tensor_f16(&self.shape, &h)
            }
        }
        .map_err(|e| format!("{}: {e}", self.name))
    }
}

/// The input's `sinks` tensor, if any: 1-D with one value per query head.
fn file_sinks(st: &SafeTensors, hq: usize) -> Result<Option<Vec<f32>>, String> {
    if !st.names().contains(&"sinks") {
        return Ok(None);
    }
    let t = HostTensor::read(st, "sinks")?;
    if t.shape != [hq] {
        return Err(format!(
            "tensor 'sinks' has shape {:?}; it must be 1-D [Hq] = [{hq}]",
            t.shape
        ));
    }
    Ok(Some(t.to_f32()))
}

fn f32_bytes(x: &[f32]) -> Vec<u8> {
    bytemuck::cast_slice(x).to_vec()
}

/// Checks `--lengths` against the input: one length per sequence, each at most Tk_max.
fn check_lengths(lens: &[usize], shape: &Shape) -> Result<(), String> {
    if lens.len() != shape.batch {
        return Err(format!(
            "--lengths has {} values for a batch of {} (one length per sequence)",
            lens.len(),
            shape.batch
        ));
    }
    if let Some((b, l)) = lens.iter().enumerate().find(|(_, &l)| l > shape.kv_len) {
        return Err(format!(
            "--lengths: sequence {b} has length {l} but k and v hold {} slots per sequence \
             (Tk_max, their third dimension)",
            shape.kv_len
        ));
    }
    Ok(())
}

/// One decode step of `attn`: k and v become a KV cache whose sequence b holds `lens[b]`
/// keys, and q its new rows.
fn decode_step(
    ctx: &Context,
    attn: &Attention,
    [q, k, v]: [&Tensor; 3],
    shape: &Shape,
    lens: &[usize],
) -> Result<Output, String> {
    let gpu = |e: webattn::Error| e.to_string();
    let (b, hkv) = (shape.batch, shape.kv_heads);
    // A cache has at least one slot; with Tk_max = 0 every length is 0 and it stays unread.
    let cap = shape.kv_len.max(1);
    let mut cache =
        KvCache::new(ctx, b, hkv, cap, shape.head_dim, shape.v_dim, q.dtype()).map_err(gpu)?;
    let mut enc = ctx
        .device()
        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("webattn run --lengths"),
        });
    if shape.kv_len > 0 {
        // Same layout: [B, Hkv, Tk_max, D] is the cache at capacity Tk_max.
        enc.copy_buffer_to_buffer(k.buffer(), 0, cache.k().buffer(), 0, k.byte_len());
        enc.copy_buffer_to_buffer(v.buffer(), 0, cache.v().buffer(), 0, v.byte_len());
    }
    for (seq, &len) in lens.iter().enumerate() {
        cache.set_len(seq, len).map_err(gpu)?;
    }
    let out = ctx
        .alloc_decode_output(attn, &cache, shape.q_heads, shape.q_len)
        .map_err(gpu)?;
    eprintln!(
        "decode step: lengths {lens:?} of {} slots, {} new row(s), split plan {:?}",
        shape.kv_len,
        shape.q_len,
        out.plan()
    );
    ctx.record_decode(&mut enc, attn, q, &cache, &out)
        .map_err(gpu)?;
    ctx.submit(enc).map_err(gpu)?;
    Ok(out.output().clone())
}

pub fn run(a: &RunArgs) -> Result<(), String> {
    // Refuse an output that is the input before any work (fail fast).
    output::check_target(&a.input, &a.output, a.in_place)?;
    // The whole input is read into memory: with --in-place, nothing is written before this.
    let bytes =
        std::fs::read(&a.input).map_err(|e| format!("reading {}: {e}", a.input.display()))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| format!("{}: not a .safetensors file: {e}", a.input.display()))?;
    let [q, k, v] = ["q", "k", "v"].map(|n| HostTensor::read(&st, n));
    let (q, k, v) = (q?, k?, v?);
    for t in [&k, &v] {
        if t.dtype != q.dtype {
            return Err(format!(
                "q is {:?} but {} is {:?}: q, k and v must have one dtype",
                q.dtype, t.name, t.dtype
            ));
        }
    }
    let shape = Shape::from_shapes(&q.shape, &k.shape, &v.shape).map_err(|e| e.to_string())?;
    if let Some(lens) = &a.lengths {
        check_lengths(lens, &shape)?;
    }
    let sinks = file_sinks(&st, shape.q_heads)?;
    if sinks.is_some() && !crate::options::accepts(a.kind, "sinks") {
        eprintln!(
            "note: the input's 'sinks' tensor is not used: {} attention has no sink logits",
            a.kind.name
        );
    }
    let attn = a.attn.attention(a.kind, sinks)?;
    // Checks the options against the shape (e.g. one sink per query head) before any GPU work.
    attn.aux(&shape).map_err(|e| e.to_string())?;
    let compute = a.compute.map(DType::from).unwrap_or(match q.dtype {
        Dtype::F16 => DType::F16,
        _ => DType::F32,
    });
    let out_dtype = a.out_dtype.map(DType::from).unwrap_or(compute);

    let ctx = crate::context(&a.device)?;
    if a.weights {
        // Refused before the forward pass runs (it may take long on big inputs).
        ctx.check_weights_fit(&shape)
            .map_err(|e| format!("--weights: {e}"))?;
    }
    eprintln!(
        "adapter: {} ({}); input {:?}, compute {}, o written as {}",
        ctx.info().name,
        ctx.info().backend,
        q.dtype,
        compute.name(),
        out_dtype.name()
    );
    let [qt, kt, vt] = [&q, &k, &v].map(|t| t.upload(&ctx, compute));
    let (qt, kt, vt) = (qt?, kt?, vt?);
    drop((q, k, v, st));
    let gpu = |e: webattn::Error| e.to_string();
    let (out, weights) = match &a.lengths {
        Some(lens) => (
            decode_step(&ctx, &attn, [&qt, &kt, &vt], &shape, lens)?,
            None,
        ),
        None => {
            let mut enc = ctx
                .device()
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("webattn run"),
                });
            let out = ctx.record(&mut enc, &attn, &qt, &kt, &vt).map_err(gpu)?;
            let weights = if a.weights {
                Some(
                    ctx.record_weights(&mut enc, &attn, &qt, &kt, &vt)
                        .map_err(gpu)?,
                )
            } else {
                None
            };
            ctx.submit(enc).map_err(gpu)?;
            (out, weights)
        }
    };

    // (name, dtype, shape, bytes) of every output.
    let mut tensors: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    let o = if out_dtype == compute {
        pollster::block_on(ctx.read_bytes(&out.o)).map_err(gpu)?
    } else {
        let x = pollster::block_on(ctx.read_f32(&out.o)).map_err(gpu)?;
        match out_dtype {
            DType::F32 => f32_bytes(&x),
            DType::F16 => bytemuck::cast_slice(
                &x.iter()
                    .map(|&y| half::f16::from_f32(y))
                    .collect::<Vec<_>>(),
            )
            .to_vec(),
        }
    };
    let st_dtype = |d: DType| match d {
        DType::F32 => Dtype::F32,
        DType::F16 => Dtype::F16,
    };
    tensors.push(("o", st_dtype(out_dtype), shape.o().to_vec(), o));
    for (name, t) in [("lse", &out.lse), ("rem", &out.rem), ("weights", &weights)] {
        if let Some(t) = t {
            let x = pollster::block_on(ctx.read_f32(t)).map_err(gpu)?;
            tensors.push((name, Dtype::F32, t.shape().to_vec(), f32_bytes(&x)));
        }
    }
    let views = tensors
        .iter()
        .map(|(n, d, s, b)| {
            TensorView::new(*d, s.clone(), b)
                .map(|v| (n.to_string(), v))
                .map_err(|e| format!("output {n}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let file = safetensors::serialize(views, None).map_err(|e| format!("serializing: {e}"))?;
    output::write(&a.output, &file)?;
    eprintln!(
        "wrote {} ({})",
        a.output.display(),
        tensors
            .iter()
            .map(|t| format!("{} {:?} {:?}", t.0, t.1, t.2))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}
