//! One step's GPU work for a block of B sequences x T tokens: the scratch buffers, every
//! dispatch with its bind group (built once), and the recording of a step into one encoder
//! (the runner's kernels, webattn's attention, the KV-cache writes, the logits copy).

use super::error::{LmError, LmResult};
use super::kernels::{grid_1d, grid_rows, record, Kernel, LmParams, Op};
use super::model::Model;
use crate::attention::Output;
use crate::dtype::DType;
use crate::gpu::{Context, DecodeOutput, KvCache};
use crate::shape::Shape;
use crate::tensor::Tensor;

/// A u32 storage buffer of `n` elements, written with `queue.write_buffer`.
pub(crate) fn u32_buffer(ctx: &Context, n: usize) -> wgpu::Buffer {
    ctx.device().create_buffer(&wgpu::BufferDescriptor {
        label: Some("webattn lm u32"),
        size: (4 * n as u64).max(16).next_multiple_of(16),
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// The attention outputs a graph writes: a forward call's (prefill) or a decode step's.
#[derive(Debug)]
pub(crate) enum AttnOut {
    Prefill(Output),
    Decode(DecodeOutput),
}

/// Extra outputs of an inspection: per layer, the attention weights and the remainder.
#[derive(Debug)]
pub(crate) struct InspectBufs {
    pub weights: Vec<Tensor>,
    pub rem: Vec<Option<Tensor>>,
}

/// The buffers and dispatches of one step shape (B sequences x T tokens).
#[derive(Debug)]
pub(crate) struct Graph {
    pub b: usize,
    pub t: usize,
    pub tok: wgpu::Buffer,
    pub pos0: wgpu::Buffer,
    pub sel: wgpu::Buffer,
    pub q: Tensor,
    pub k: Tensor,
    pub v: Tensor,
    pub out: AttnOut,
    pub logits: Tensor,
    embed: Op,
    layers: Vec<(Vec<Op>, Vec<Op>)>,
    fin: Vec<Op>,
    _scratch: Vec<Tensor>,
}

impl Graph {
    /// Buffers and bind groups for B x T tokens. `dec`: the decode output (decode graphs),
    /// else a forward output is allocated. `rope`: the session's cos/sin table.
    pub fn new(
        model: &Model,
        b: usize,
        t: usize,
        rope: &wgpu::Buffer,
        dec: Option<DecodeOutput>,
    ) -> LmResult<Self> {
        let (ctx, c, w, pipes) = (model.context(), model.config(), model.gpu(), model.pipes());
        let dt = model.precision();
        let rows = b * t;
        let (d, hd, nh, nkv) = (c.d_model, c.head_dim, c.n_head, c.n_kv_head);
        let (hq, hkv) = (nh * hd, nkv * hd);
        let f = |shape: &[usize]| ctx.empty(shape, DType::F32);
        let (x, h, qp, kp, vp) = (
            f(&[rows, d])?,
            f(&[rows, d])?,
            f(&[rows, hq])?,
            f(&[rows, hkv])?,
            f(&[rows, hkv])?,
        );
        let (ao, ff, hf, logits) = (
            f(&[rows, hq])?,
            f(&[rows, c.d_ff])?,
            f(&[b, d])?,
            f(&[b, c.vocab])?,
        );
        let q = ctx.empty(&[b, nh, t, hd], dt)?;
        let k = ctx.empty(&[b, nkv, t, hd], dt)?;
        let v = ctx.empty(&[b, nkv, t, hd], dt)?;
        let out = match dec {
            Some(o) => AttnOut::Decode(o),
            None => AttnOut::Prefill(ctx.alloc_output(
                &c.attention,
                &Shape::gqa(b, nh, nkv, t, hd),
                dt,
            )?),
        };
        let o = match &out {
            AttnOut::Prefill(o) => o.o.clone(),
            AttnOut::Decode(o) => o.o().clone(),
        };
        let (tok, pos0, sel) = (
            u32_buffer(ctx, rows),
            u32_buffer(ctx, b),
            u32_buffer(ctx, b),
        );
        let eps = c.norm_eps as f32;
        let p = LmParams {
            rows: rows as u32,
            t: t as u32,
            hd: hd as u32,
            eps,
            ..Default::default()
        };
        let lin = |wt: &Tensor, a: &Tensor, y: &Tensor, rows: usize, mode: u32| -> Op {
            let (n, kk) = (wt.shape()[0], wt.shape()[1]);
            let params = LmParams {
                rows: rows as u32,
                n: n as u32,
                k: kk as u32,
                mode,
                ..p
            };
            let bufs = [wt.buffer(), a.buffer(), y.buffer()];
            if rows <= 8 {
                let g = [n.div_ceil(8) as u32, 1, 1];
                pipes.op(ctx, Kernel::Matvec, params, &bufs, g)
            } else {
                let g = [n.div_ceil(64) as u32, rows.div_ceil(32) as u32, 1];
                pipes.op(ctx, Kernel::MatmulTiled, params, &bufs, g)
            }
        };
        let norm = |g: &Tensor, src: &Tensor, dst: &Tensor, rows: usize, flags: u32| -> Op {
            let params = LmParams {
                rows: rows as u32,
                n: d as u32,
                flags,
                ..p
            };
            let bufs = [g.buffer(), &sel, src.buffer(), dst.buffer()];
            pipes.op(ctx, Kernel::RmsNorm, params, &bufs, grid_rows(rows))
        };
        let heads = |src: &Tensor, dst: &Tensor, n: usize, rope_on: bool| -> Op {
            let params = LmParams {
                heads: n as u32,
                flags: u32::from(rope_on),
                ..p
            };
            let bufs = [src.buffer(), &pos0, dst.buffer(), rope];
            pipes.op(
                ctx,
                Kernel::Heads,
                params,
                &bufs,
                grid_1d(rows * n * hd / 4),
            )
        };
        let embed = pipes.op(
            ctx,
            Kernel::Embed,
            LmParams { n: d as u32, ..p },
            &[w.tok_emb.buffer(), &tok, x.buffer()],
            grid_1d(rows * d / 2),
        );
        let rope_on = c.rope.is_some();
        let layers = w
            .layers
            .iter()
            .map(|l| {
                let pre = vec![
                    norm(&l.attn_norm, &x, &h, rows, 0),
                    lin(&l.wq, &h, &qp, rows, 0),
                    lin(&l.wk, &h, &kp, rows, 0),
                    lin(&l.wv, &h, &vp, rows, 0),
                    heads(&qp, &q, nh, rope_on),
                    heads(&kp, &k, nkv, rope_on),
                    heads(&vp, &v, nkv, false),
                ];
                let merge = pipes.op(
                    ctx,
                    Kernel::MergeHeads,
                    LmParams {
                        heads: nh as u32,
                        ..p
                    },
                    &[o.buffer(), ao.buffer()],
                    grid_1d(rows * hq / 2),
                );
                let post = vec![
                    merge,
                    lin(&l.wo, &ao, &x, rows, 1),
                    norm(&l.mlp_norm, &x, &h, rows, 0),
                    lin(&l.w1, &h, &ff, rows, 2),
                    lin(&l.w2, &ff, &x, rows, 1),
                ];
                (pre, post)
            })
            .collect();
        let fin = vec![
            norm(&w.norm, &x, &hf, b, 1),
            lin(&w.tok_emb, &hf, &logits, b, 0),
        ];
        Ok(Graph {
            b,
            t,
            tok,
            pos0,
            sel,
            q,
            k,
            v,
            out,
            logits,
            embed,
            layers,
            fin,
            _scratch: vec![x, h, qp, kp, vp, ao, ff, hf],
        })
    }

    /// Records the whole step. Prefill (`lens`: each sequence's prompt length, rows past it
    /// are padding): forward attention per layer, then the real rows of k and v copied into
    /// the (empty) caches. Decode: append to each cache, then the decode passes.
    pub fn record(
        &self,
        model: &Model,
        encoder: &mut wgpu::CommandEncoder,
        caches: &mut [KvCache],
        lens: &[usize],
        inspect: Option<&InspectBufs>,
    ) -> LmResult<()> {
        let ctx = model.context();
        let attn = &model.config().attention;
        let mut pending: Vec<&Op> = vec![&self.embed];
        for (i, (pre, post)) in self.layers.iter().enumerate() {
            pending.extend(pre);
            record(encoder, &pending);
            pending.clear();
            let cache = caches
                .get_mut(i)
                .ok_or_else(|| LmError::Usage("a KV cache per layer is needed".into()))?;
            match &self.out {
                AttnOut::Prefill(out) => {
                    ctx.record_into(encoder, attn, &self.q, &self.k, &self.v, out)?;
                    if let Some(ins) = inspect {
                        ctx.record_weights_into(
                            encoder,
                            attn,
                            &self.q,
                            &self.k,
                            &self.v,
                            &ins.weights[i],
                        )?;
                        if let (Some(dst), Some(src)) = (&ins.rem[i], &out.rem) {
                            encoder.copy_buffer_to_buffer(
                                src.buffer(),
                                0,
                                dst.buffer(),
                                0,
                                src.byte_len(),
                            );
                        }
                    }
                    self.copy_prompt(encoder, cache, lens);
                }
                AttnOut::Decode(out) => {
                    cache.append(encoder, &self.k, &self.v, &vec![1; self.b])?;
                    ctx.record_decode(encoder, attn, &self.q, cache, out)?;
                }
            }
            pending.extend(post);
        }
        pending.extend(&self.fin);
        record(encoder, &pending);
        Ok(())
    }

    /// Copies rows [0, lens[b]) of every kv head of k and v into the cache's slots
    /// [0, lens[b]) (the cache is empty; its lengths are set by the caller).
    fn copy_prompt(&self, encoder: &mut wgpu::CommandEncoder, cache: &KvCache, lens: &[usize]) {
        let (nkv, hd) = (cache.kv_heads(), cache.head_dim());
        let row = (hd * cache.dtype().size()) as u64;
        for (b, &len) in lens.iter().enumerate() {
            for h in 0..nkv {
                let unit = (b * nkv + h) as u64;
                for (src, dst) in [(&self.k, cache.k()), (&self.v, cache.v())] {
                    encoder.copy_buffer_to_buffer(
                        src.buffer(),
                        unit * self.t as u64 * row,
                        dst.buffer(),
                        unit * cache.capacity() as u64 * row,
                        len as u64 * row,
                    );
                }
            }
        }
    }
}
