//! The JS decode loop: `attn.decoder(args)` returns a [`DecodeSession`] that owns the step's
//! tensors, outputs and read-back buffer, so a step creates no GPU object. The cache, its
//! registry and the shared checks are in `decode.rs`.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

use tsify::Ts;
use wasm_bindgen::prelude::*;

use super::args::{Data, DecodeCall, SplitPlanOptions};
use super::decode::{alloc_out, cache_of, check_data, row_counts, CacheCell};
use super::{js_err, to_js, JsResult};
use crate::attention::{Attention, HostOutput};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::gpu::{Context, DecodeOutput};
use crate::shape::Shape;
use crate::tensor::Tensor;

/// A decode loop on one cache that creates no GPU object per step (`attn.decoder(args)`).
///
/// ```js
/// const dec = attn.decoder({ kind: "softmax", causal: true, shape: { qHeads: 8 }, cache });
/// for (let t = 0; t < steps; t++) {
///   const { o, lse } = await dec.step(q, kNew, vNew);   // append, then attend, one submit
/// }
/// dec.free();
/// ```
///
/// It owns the step's q `[batch, qHeads, qLen, headDim]`, k and v `[batch, kvHeads, qLen, ..]`
/// tensors, the outputs and the split-KV scratch, and a read-back buffer. `step` writes the
/// inputs into them (queue writes), records the append, the decode and the copy of the
/// outputs into one encoder, submits it, and maps the read-back buffer.
#[wasm_bindgen]
pub struct DecodeSession {
    ctx: Arc<Context>,
    cell: Rc<CacheCell>,
    attn: Attention,
    shape: Shape,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    out: DecodeOutput,
    staging: wgpu::Buffer,
    /// Bytes copied from o (a multiple of 4), then from lse or rem.
    o_copy: u64,
    aux_copy: u64,
    busy: Cell<bool>,
}

/// Clears the session's busy flag when a step ends, however it ends.
struct Busy<'a>(&'a Cell<bool>);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

impl DecodeSession {
    pub(super) fn create(ctx: &Arc<Context>, args: &JsValue) -> Result<DecodeSession> {
        let call = DecodeCall::parse(args, false)?;
        let cell = cache_of(&call.cache, ctx)?;
        let cache = cell.cache()?;
        let s = call.shape.resolve(&cache)?;
        let out = alloc_out(ctx, &call.attn, &cache, &s, call.plan)?;
        let dt = cache.dtype();
        let (b, h, t) = (s.batch, s.kv_heads, s.q_len);
        let q = ctx.empty(&s.q(), dt)?;
        let k = ctx.empty(&[b, h, t, s.head_dim], dt)?;
        let v = ctx.empty(&[b, h, t, s.v_dim], dt)?;
        let o_copy = out.o().byte_len().next_multiple_of(4);
        let aux_copy = out
            .lse()
            .or(out.rem())
            .map_or(0, |a| a.byte_len().next_multiple_of(4));
        let staging = ctx.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some("webattn decode read-back"),
            size: (o_copy + aux_copy).max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        drop(cache);
        Ok(DecodeSession {
            ctx: ctx.clone(),
            cell,
            attn: call.attn,
            shape: s,
            q,
            k,
            v,
            out,
            staging,
            o_copy,
            aux_copy,
            busy: Cell::new(false),
        })
    }

    /// Writes host data into one of the session's tensors.
    fn write(&self, t: &Tensor, x: &JsValue, what: &'static str) -> Result<()> {
        let x = Data::from_js(x, what)?;
        check_data(&x, what, t.dtype(), t.shape())?;
        match &x {
            Data::F32(v) => self.ctx.write_f32(t, v),
            Data::F16(v) => self.ctx.write_f16(t, v),
        }
    }

    async fn step_inner(
        &self,
        q: &JsValue,
        k: &JsValue,
        v: &JsValue,
        rows: &JsValue,
    ) -> Result<HostOutput> {
        if self.busy.replace(true) {
            return Err(Error::InvalidOption(
                "DecodeSession.step: the previous step has not finished (await it first)".into(),
            ));
        }
        let _busy = Busy(&self.busy);
        let given = |x: &JsValue| !x.is_undefined() && !x.is_null();
        let append = given(k) || given(v);
        // Everything is checked before anything is written.
        let rows = if append {
            row_counts(rows, self.shape.batch, self.shape.q_len)?
        } else {
            Vec::new()
        };
        self.write(&self.q, q, "q")?;
        if append {
            self.write(&self.k, k, "k")?;
            self.write(&self.v, v, "v")?;
        }
        {
            let mut cache = self.cell.cache()?;
            let mut enc = self
                .ctx
                .device()
                .create_command_encoder(&Default::default());
            if append {
                cache.append(&mut enc, &self.k, &self.v, &rows)?;
            }
            let decoded = self
                .ctx
                .record_decode(&mut enc, &self.attn, &self.q, &cache, &self.out);
            if decoded.is_ok() {
                enc.copy_buffer_to_buffer(self.out.o().buffer(), 0, &self.staging, 0, self.o_copy);
                if let Some(a) = self.out.lse().or(self.out.rem()) {
                    enc.copy_buffer_to_buffer(
                        a.buffer(),
                        0,
                        &self.staging,
                        self.o_copy,
                        self.aux_copy,
                    );
                }
            }
            // Submitted even when the decode failed: the append moved the lengths.
            self.ctx.submit(enc)?;
            decoded?;
        }
        let bytes = self.read_back().await?;
        let o_len = self.out.o().byte_len() as usize;
        let o = match self.out.o().dtype() {
            DType::F32 => bytemuck::pod_collect_to_vec::<u8, f32>(&bytes[..o_len]),
            DType::F16 => bytemuck::pod_collect_to_vec::<u8, half::f16>(&bytes[..o_len])
                .into_iter()
                .map(half::f16::to_f32)
                .collect(),
        };
        let aux = self.out.lse().or(self.out.rem()).map(|a| {
            let start = self.o_copy as usize;
            bytemuck::pod_collect_to_vec::<u8, f32>(&bytes[start..start + a.byte_len() as usize])
        });
        let (lse, rem) = if self.out.lse().is_some() {
            (aux, None)
        } else {
            (None, aux)
        };
        Ok(HostOutput { o, lse, rem })
    }

    async fn read_back(&self) -> Result<Vec<u8>> {
        let (tx, rx) = futures_channel::oneshot::channel();
        self.staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        let mapped = rx.await;
        self.ctx.check()?;
        mapped
            .map_err(|_| Error::Gpu("read-back was cancelled (device lost?)".into()))?
            .map_err(|e| Error::Gpu(format!("read-back failed: {e}")))?;
        let data = self
            .staging
            .get_mapped_range(..)
            .map_err(|e| Error::Gpu(format!("read-back failed: {e:?}")))?
            .to_vec();
        self.staging.unmap();
        Ok(data)
    }
}

#[wasm_bindgen]
impl DecodeSession {
    /// One decode step: writes `q` `[batch, qHeads, qLen, headDim]` and, if given, `k`
    /// `[batch, kvHeads, qLen, headDim]` and `v` `[batch, kvHeads, qLen, vDim]` into the
    /// session's tensors, appends k and v to the cache (sequence b takes the last `rows[b]`
    /// rows, default qLen), attends, and reads `{o, lse?, rem?}` back (Float32Arrays). Without
    /// k and v, nothing is appended (append with `cache.append` first). The cache's storage
    /// type decides the arrays: `Float32Array` or `Uint16Array` of f16 bits. Await each step
    /// before the next.
    pub async fn step(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Float32Array | Uint16Array | number[]")] q: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "Float32Array | Uint16Array | number[]")]
        k: Option<JsValue>,
        #[wasm_bindgen(unchecked_optional_param_type = "Float32Array | Uint16Array | number[]")]
        v: Option<JsValue>,
        #[wasm_bindgen(unchecked_optional_param_type = "ArrayLike<number>")] rows: Option<JsValue>,
    ) -> JsResult<Ts<super::types::AttentionOutput>> {
        let none = || JsValue::UNDEFINED;
        let out = self
            .step_inner(
                &q,
                &k.unwrap_or_else(none),
                &v.unwrap_or_else(none),
                &rows.unwrap_or_else(none),
            )
            .await
            .map_err(js_err)?;
        to_js(&super::types::AttentionOutput::from(out))
    }

    /// The split plan the session's outputs were allocated for.
    #[wasm_bindgen(getter)]
    pub fn plan(&self) -> JsResult<Ts<SplitPlanOptions>> {
        to_js(&SplitPlanOptions::from(self.out.plan()))
    }

    /// The cache's lengths (after the last step's append).
    #[wasm_bindgen(getter)]
    pub fn lens(&self) -> Vec<u32> {
        self.cell.lens()
    }
}
