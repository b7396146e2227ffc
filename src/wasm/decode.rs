//! Decoding from JavaScript (SPEC.md section 4, README "Decoding"): the `KvCache` class (one
//! layer's [`crate::KvCache`]), `attn.decode` (one step, allocating its outputs) and the
//! `DecodeSession` that `attn.decoder` returns (a decode loop that allocates nothing per step:
//! it owns the step's q, k and v tensors, the [`DecodeOutput`] and a read-back buffer, writes
//! each step's inputs into them with queue writes and records the append, the decode and the
//! read-back copy into one submit).
//! The decode loop (`DecodeSession`) is in `session.rs`.
//!
//! A `KvCache` passed inside an arguments object (`{cache, ...}`) cannot be borrowed the way a
//! direct parameter is (wasm-bindgen would move it out of the JavaScript object), so every
//! cache has an id, read through a hidden getter, and a registry of the live caches maps it
//! back (a freed cache's getter throws, and its entry is gone).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::sync::Arc;

use js_sys::{Array, ArrayBuffer, Reflect};
use serde::Serialize;
use tsify::{Ts, Tsify};
use wasm_bindgen::prelude::*;

use super::args::{
    describe, from_js_strict, CacheOptions, Data, DecodeCall, DecodeShape, SplitPlanOptions,
};
use super::types::f32_array;
use super::{js_err, to_js, JsResult, WebAttn};
use crate::attention::{Attention, HostOutput};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::gpu::{Context, DecodeOutput, KvCache};
use crate::pass::decode::SplitPlan;
use crate::shape::Shape;
use crate::tensor::Tensor;

/// A cache and the context it lives on, shared by its `KvCache` object and the sessions that
/// decode from it.
pub(super) struct CacheCell {
    ctx: Arc<Context>,
    cache: RefCell<KvCache>,
}

thread_local! {
    /// The live caches by id (the `KvCache` object holds the strong reference).
    static CACHES: RefCell<HashMap<u32, Weak<CacheCell>>> = RefCell::new(HashMap::new());
    static NEXT_ID: Cell<u32> = const { Cell::new(1) };
}

/// The hidden getter that gives a `KvCache` object's id.
const ID_KEY: &str = "__webattnCacheId";

impl CacheCell {
    /// Every sequence's length, as the host tracks it.
    pub(super) fn lens(&self) -> Vec<u32> {
        self.cache
            .borrow()
            .lens()
            .iter()
            .map(|&l| l as u32)
            .collect()
    }

    pub(super) fn cache(&self) -> Result<std::cell::RefMut<'_, KvCache>> {
        self.cache
            .try_borrow_mut()
            .map_err(|_| Error::InvalidOption("the KV cache is in use by another call".into()))
    }
}

/// The cache a JavaScript value (`args.cache`) names, which must live on `ctx`.
pub(super) fn cache_of(v: &JsValue, ctx: &Arc<Context>) -> Result<Rc<CacheCell>> {
    let not_a_cache = || {
        Error::InvalidOption(format!(
            "cache must be a KvCache (new KvCache(attn, {{...}})), got {}",
            describe(v)
        ))
    };
    let freed = || Error::InvalidOption("the KvCache was freed".into());
    if !v.is_object() {
        return Err(not_a_cache());
    }
    // A freed KvCache's getter throws (its Rust object is gone).
    let id = Reflect::get(v, &ID_KEY.into()).map_err(|_| freed())?;
    let id = id.as_f64().ok_or_else(not_a_cache)? as u32;
    let cell = CACHES
        .with(|c| c.borrow().get(&id).and_then(Weak::upgrade))
        .ok_or_else(freed)?;
    if !Arc::ptr_eq(&cell.ctx, ctx) {
        return Err(Error::InvalidOption(
            "the KvCache belongs to another WebAttn (create it on the one that decodes)".into(),
        ));
    }
    Ok(cell)
}

/// Per-sequence row counts: `undefined` gives `t` to every sequence; else an array (or typed
/// array) of `b` non-negative integers.
pub(super) fn row_counts(v: &JsValue, b: usize, t: usize) -> Result<Vec<usize>> {
    if v.is_undefined() || v.is_null() {
        return Ok(vec![t; b]);
    }
    let bad = || {
        Error::InvalidOption(format!(
            "rows must be an array of {b} non-negative integers (one per sequence), got {}",
            describe(v)
        ))
    };
    let arr = if ArrayBuffer::is_view(v) {
        Array::from(v).into()
    } else {
        v.clone()
    };
    let xs: Vec<f64> = serde_wasm_bindgen::from_value(arr).map_err(|_| bad())?;
    if xs
        .iter()
        .any(|&x| !(x >= 0.0 && x.fract() == 0.0 && x < 4294967296.0))
    {
        return Err(bad());
    }
    // A count of sequences that is not the batch is the cache's error (a ShapeMismatch).
    Ok(xs.into_iter().map(|x| x as usize).collect())
}

/// Uploads host data as a new tensor of `shape`.
pub(super) fn upload(ctx: &Context, shape: &[usize], x: &Data) -> Result<Tensor> {
    match x {
        Data::F32(v) => ctx.tensor_f32(shape, v),
        Data::F16(v) => ctx.tensor_f16(shape, v),
    }
}

/// Checks that `x` (named `what`) has the storage type `dtype` and `n` elements of `shape`.
pub(super) fn check_data(
    x: &Data,
    what: &'static str,
    dtype: DType,
    shape: &[usize],
) -> Result<()> {
    if x.dtype() != dtype {
        return Err(Error::DTypeMismatch {
            what,
            expected: dtype,
            found: x.dtype(),
        });
    }
    Shape::check_len(what, shape, x.len())
}

pub(super) fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::F32 => "f32",
        DType::F16 => "f16",
    }
}

/// The outputs of a decode call on `cache` for `shape`, with `plan` or the automatic one.
pub(super) fn alloc_out(
    ctx: &Context,
    attn: &Attention,
    cache: &KvCache,
    s: &Shape,
    plan: Option<SplitPlan>,
) -> Result<DecodeOutput> {
    match plan {
        Some(p) => ctx.alloc_decode_output_with(attn, cache, s.q_heads, s.q_len, p),
        None => ctx.alloc_decode_output(attn, cache, s.q_heads, s.q_len),
    }
}

/// A cache's contents (`cache.read()`), widened to f32.
#[derive(Serialize, Tsify)]
pub struct CacheContents {
    /// Keys `[batch, kvHeads, capacity, headDim]` (slots past a sequence's length hold
    /// whatever was there).
    #[serde(with = "serde_wasm_bindgen::preserve")]
    #[tsify(type = "Float32Array")]
    pub k: JsValue,
    /// Values `[batch, kvHeads, capacity, vDim]`.
    #[serde(with = "serde_wasm_bindgen::preserve")]
    #[tsify(type = "Float32Array")]
    pub v: JsValue,
}

/// One layer's KV cache for a batch of sequences of different lengths, on the GPU of a
/// `WebAttn` (the Rust `webattn::KvCache`).
///
/// ```js
/// const cache = new KvCache(attn, { batch: 2, kvHeads: 2, capacity: 1024, headDim: 64 });
/// cache.append(kPrompt, vPrompt, [300, 120]);   // [B, Hkv, T, D] blocks, ragged rows
/// cache.lens;                                    // Uint32Array [300, 120]
/// ```
///
/// k is `[batch, kvHeads, capacity, headDim]` and v `[batch, kvHeads, capacity, vDim]`, f32 or
/// f16. The host tracks the lengths (`lens`); nothing is read back. Free it with `free()`.
#[wasm_bindgen(js_name = KvCache)]
pub struct JsKvCache {
    id: u32,
    cell: Rc<CacheCell>,
}

impl Drop for JsKvCache {
    fn drop(&mut self) {
        // `try_with`: nothing to do if the thread's registry is already gone.
        let _ = CACHES.try_with(|c| c.borrow_mut().remove(&self.id));
    }
}

#[wasm_bindgen(js_class = KvCache)]
impl JsKvCache {
    /// An empty cache (every length 0) on `attn`'s GPU: `{batch?, kvHeads, capacity, headDim,
    /// vDim?, dtype?}` (batch 1, vDim = headDim, dtype `"f32"` by default). Head dims must be
    /// multiples of 4 from 4 to 256.
    #[wasm_bindgen(constructor)]
    pub fn new(attn: &WebAttn, options: Ts<CacheOptions>) -> JsResult<JsKvCache> {
        super::hook();
        Self::create(&attn.ctx, options.js_value()).map_err(js_err)
    }

    fn create(ctx: &Arc<Context>, options: JsValue) -> Result<JsKvCache> {
        let o: CacheOptions = from_js_strict(options)
            .map_err(|e| Error::InvalidOption(format!("cache options: {e}")))?;
        let dtype = o.dtype()?;
        let cache = KvCache::new(
            ctx,
            o.batch.unwrap_or(1),
            o.kv_heads,
            o.capacity,
            o.head_dim,
            o.v_dim.unwrap_or(o.head_dim),
            dtype,
        )?;
        let cell = Rc::new(CacheCell {
            ctx: ctx.clone(),
            cache: RefCell::new(cache),
        });
        let id = NEXT_ID.with(|n| {
            let id = n.get();
            n.set(id.wrapping_add(1).max(1));
            id
        });
        CACHES.with(|c| c.borrow_mut().insert(id, Rc::downgrade(&cell)));
        Ok(JsKvCache { id, cell })
    }

    /// The registry id (a hidden getter: how `attn.decode({cache})` finds the cache).
    #[wasm_bindgen(getter = __webattnCacheId, skip_typescript)]
    pub fn registry_id(&self) -> u32 {
        self.id
    }

    /// Appends new keys and values and submits the copy: `k` `[batch, kvHeads, T, headDim]` and
    /// `v` `[batch, kvHeads, T, vDim]` (any T >= 1; `Float32Array` for an f32 cache,
    /// `Uint16Array` of f16 bits for an f16 one). Sequence b appends the **last** `rows[b]`
    /// rows of its blocks (bottom-right aligned, like query rows), so sequences append
    /// different counts in one call; `rows` defaults to T for every sequence. Throws
    /// `KV cache full: ...` (and changes nothing) if a sequence would pass the capacity.
    pub fn append(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Float32Array | Uint16Array | number[]")] k: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Float32Array | Uint16Array | number[]")] v: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "ArrayLike<number>")] rows: Option<JsValue>,
    ) -> JsResult<()> {
        self.append_inner(&k, &v, &rows.unwrap_or(JsValue::UNDEFINED))
            .map_err(js_err)
    }

    fn append_inner(&self, k: &JsValue, v: &JsValue, rows: &JsValue) -> Result<()> {
        let ctx = &self.cell.ctx;
        let mut cache = self.cell.cache()?;
        let (b, h, d, dv) = (
            cache.batch(),
            cache.kv_heads(),
            cache.head_dim(),
            cache.v_dim(),
        );
        let (k, v) = (Data::from_js(k, "k")?, Data::from_js(v, "v")?);
        let per = b * h * d;
        if k.len() == 0 || k.len() % per != 0 {
            return Err(Error::ShapeMismatch(format!(
                "k has {} elements; this cache appends [{b}, {h}, T, {d}] blocks (a multiple of \
                 {per}, T >= 1)",
                k.len()
            )));
        }
        let t = k.len() / per;
        check_data(&k, "k", cache.dtype(), &[b, h, t, d])?;
        check_data(&v, "v", cache.dtype(), &[b, h, t, dv])?;
        let rows = row_counts(rows, b, t)?;
        let kt = upload(ctx, &[b, h, t, d], &k)?;
        let vt = upload(ctx, &[b, h, t, dv], &v)?;
        let mut enc = ctx.device().create_command_encoder(&Default::default());
        cache.append(&mut enc, &kt, &vt, &rows)?;
        ctx.submit(enc)
    }

    /// Every sequence's length (slots holding keys), as the host tracks it.
    #[wasm_bindgen(getter)]
    pub fn lens(&self) -> Vec<u32> {
        self.cell.lens()
    }

    /// Empties every sequence (the slots keep their data, which no output reads).
    pub fn reset(&self) -> JsResult<()> {
        self.cell.cache().map_err(js_err)?.reset();
        Ok(())
    }

    /// Sets sequence `seq`'s length to `len` <= capacity (its slots `[0, len)` must hold keys
    /// and values: those appended earlier, e.g. to go back after a `truncate`). Throws
    /// `KV cache full: ...` past the capacity.
    #[wasm_bindgen(js_name = setLen)]
    pub fn set_len(&self, seq: u32, len: u32) -> JsResult<()> {
        let mut c = self.cell.cache().map_err(js_err)?;
        c.set_len(seq as usize, len as usize).map_err(js_err)
    }

    /// Shortens sequence `seq` to `len` slots (at most its length), e.g. to drop rejected
    /// speculative tokens.
    pub fn truncate(&self, seq: u32, len: u32) -> JsResult<()> {
        let mut c = self.cell.cache().map_err(js_err)?;
        c.truncate(seq as usize, len as usize).map_err(js_err)
    }

    /// Reads the whole cache back (every slot, f16 widened): for tests and inspection.
    pub async fn read(&self) -> JsResult<Ts<CacheContents>> {
        let (k, v) = {
            let c = self.cell.cache.borrow();
            (c.k().clone(), c.v().clone())
        };
        let ctx = &self.cell.ctx;
        let k = ctx.read_f32(&k).await.map_err(js_err)?;
        let v = ctx.read_f32(&v).await.map_err(js_err)?;
        to_js(&CacheContents {
            k: f32_array(&k).into(),
            v: f32_array(&v).into(),
        })
    }

    /// Sequences B.
    #[wasm_bindgen(getter)]
    pub fn batch(&self) -> u32 {
        self.cell.cache.borrow().batch() as u32
    }

    /// Kv heads Hkv.
    #[wasm_bindgen(getter, js_name = kvHeads)]
    pub fn kv_heads(&self) -> u32 {
        self.cell.cache.borrow().kv_heads() as u32
    }

    /// Slots per (sequence, kv head).
    #[wasm_bindgen(getter)]
    pub fn capacity(&self) -> u32 {
        self.cell.cache.borrow().capacity() as u32
    }

    /// Key head dim D.
    #[wasm_bindgen(getter, js_name = headDim)]
    pub fn head_dim(&self) -> u32 {
        self.cell.cache.borrow().head_dim() as u32
    }

    /// Value head dim Dv.
    #[wasm_bindgen(getter, js_name = vDim)]
    pub fn v_dim(&self) -> u32 {
        self.cell.cache.borrow().v_dim() as u32
    }

    /// Storage type: `"f32"` or `"f16"`.
    #[wasm_bindgen(getter, unchecked_return_type = "\"f32\" | \"f16\"")]
    pub fn dtype(&self) -> String {
        dtype_name(self.cell.cache.borrow().dtype()).into()
    }
}

/// `attn.decode`: uploads q, allocates the outputs, records and submits the step, reads the
/// outputs back.
pub(super) async fn decode_once(ctx: &Arc<Context>, args: &JsValue) -> Result<HostOutput> {
    let call = DecodeCall::parse(args, true)?;
    let cell = cache_of(&call.cache, ctx)?;
    let out = {
        let cache = cell.cache()?;
        let s = call.shape.resolve(&cache)?;
        let q = call
            .q
            .as_ref()
            .ok_or_else(|| Error::InvalidOption("q is missing".into()))?;
        check_data(q, "q", cache.dtype(), &s.q())?;
        let qt = upload(ctx, &s.q(), q)?;
        let out = alloc_out(ctx, &call.attn, &cache, &s, call.plan)?;
        let mut enc = ctx.device().create_command_encoder(&Default::default());
        ctx.record_decode(&mut enc, &call.attn, &qt, &cache, &out)?;
        ctx.submit(enc)?;
        out
    };
    ctx.read_output(out.output()).await
}

/// `attn.splitPlan`.
pub(super) fn split_plan(
    ctx: &Context,
    cache: &JsKvCache,
    shape: JsValue,
) -> Result<SplitPlanOptions> {
    let cache = cache.cell.cache()?;
    let s = DecodeShape::from_js(shape)?.resolve(&cache)?;
    Ok(ctx.split_plan(&cache, s.q_heads, s.q_len)?.into())
}
