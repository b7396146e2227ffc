//! Browser bindings (wasm32 only): the `WebAttn` class, the CPU helpers and the `testing`
//! namespace that `web/pkg/webattn.js` exports.
//!
//! - `args.rs`: the arguments of a call, `{kind, q, k, v, shape, ...options}`, read with
//!   serde (options through [`crate::Attention::from_json`] and the kinds' registry);
//! - `types.rs`: results and the other plain objects;
//! - `decode.rs`: decoding, the `KvCache` class and `attn.decode`;
//! - `session.rs`: the `DecodeSession` decode loop (`attn.decoder`);
//! - `testing.rs`: [`crate::testing`] for the browser tests;
//! - `lm.rs` (feature `lm`): the language-model runner, `LmModel`, `LmSession`, `LmSampler`.
//!
//! Every type that crosses the boundary derives `Tsify`, so `webattn.d.ts` is generated from
//! these definitions (and from the kinds' option structs). Every error reaches JavaScript as
//! an `Error` whose message is the Rust [`Error`]'s `Display` text.

mod args;
mod decode;
#[cfg(feature = "lm")]
mod lm;
#[cfg(feature = "lm")]
mod lm_types;
mod session;
mod testing;
mod types;

use std::sync::Arc;

use js_sys::{Float32Array, Float64Array, Uint16Array};
use serde::Serialize;
use tsify::{Ts, Tsify};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::error::{Error, Result};
use crate::gpu::{AdapterChoice, Context, ContextOptions};
use crate::kinds::registry;
use crate::sink;
use args::{
    describe, from_js_strict, Args, AttentionArgs, Data, DecodeArgs, DecodeShape, DecoderArgs,
    SplitPlanOptions,
};
pub use decode::JsKvCache;
pub use session::DecodeSession;
use types::{
    AttentionOutput, BenchResult, CreateOptions, DeviceInfo, KindInfo, ObjectCounts,
    ReferenceOutput, SinkMeasure, SinkOptions, SinkShape,
};

/// What the exported functions return: errors become JavaScript `Error`s.
type JsResult<T> = std::result::Result<T, JsError>;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(s: &str);
}

/// Installs (once) a panic hook that prints panics to the browser console; a panic is a bug,
/// every expected failure is an `Error`.
fn hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            console_error(&format!("webattn panicked: {info}"))
        }));
    });
}

/// The JavaScript `Error` of a webattn error (its message is the `Display` text).
fn js_err(e: Error) -> JsError {
    JsError::new(&e.to_string())
}

/// Serialises a result for JavaScript (plain objects, typed arrays kept as they are).
fn to_js<T: Serialize + Tsify>(x: &T) -> JsResult<Ts<T>> {
    Ts::from_rust(x).map_err(|e| JsError::new(&e.to_string()))
}

/// Every registered attention kind: its name, aliases, a line about it and its default
/// options (`{kind, ...}`), in the registry's order.
#[wasm_bindgen]
pub fn kinds() -> JsResult<Vec<Ts<KindInfo>>> {
    registry()
        .iter()
        .map(|e| {
            to_js(&KindInfo {
                name: e.name.into(),
                aliases: e.aliases.iter().map(|a| a.to_string()).collect(),
                about: e.about.into(),
                default: (e.default)().to_json(),
            })
        })
        .collect()
}

/// webattn on the browser's WebGPU: one adapter and device, cached pipelines.
///
/// ```js
/// import init, { WebAttn } from "./pkg/webattn.js";
/// await init();
/// const attn = await WebAttn.create();
/// const { o, rem } = await attn.forward({ kind: "stick-breaking", q, k, v,
///   shape: { qHeads: 4, qLen: 128, headDim: 64 } });
/// ```
#[wasm_bindgen]
pub struct WebAttn {
    /// Shared with the caches, decode sessions and models created on it (an `Arc`, as
    /// `webattn::lm::Model` takes one; on wasm nothing crosses threads).
    ctx: Arc<Context>,
}

#[wasm_bindgen]
impl WebAttn {
    /// Requests a WebGPU adapter (`options.adapter`: `"auto"` or `"software"`) and a device
    /// with every limit it offers. Rejects if the browser has no WebGPU.
    pub async fn create(options: Option<Ts<CreateOptions>>) -> JsResult<WebAttn> {
        hook();
        let opts = context_options(options).map_err(js_err)?;
        let ctx = Context::new(opts).await.map_err(js_err)?;
        #[allow(clippy::arc_with_non_send_sync)]
        Ok(WebAttn { ctx: Arc::new(ctx) })
    }

    /// What the adapter and device offer.
    pub fn info(&self) -> JsResult<Ts<DeviceInfo>> {
        to_js(&DeviceInfo::from(self.ctx.info()))
    }

    /// The `GPUDevice` webattn created (share it with the page's own WebGPU work). wgpu 30
    /// cannot wrap a device the page created, so sharing goes this way round only. Declared
    /// `any`: TypeScript's DOM library has no WebGPU types (`@webgpu/types` has).
    #[wasm_bindgen(getter, unchecked_return_type = "any")]
    pub fn device(&self) -> JsValue {
        self.ctx
            .device()
            .as_webgpu()
            .map_or(JsValue::NULL, |d| d.clone().into())
    }

    /// Runs attention on the GPU: `{kind, q, k, v, shape, ...options}` to `{o, lse?, rem?}`.
    /// f32 inputs (`Float32Array`) use f32 storage; f16 inputs (`Uint16Array` of IEEE half
    /// bits) use f16 storage with f32 accumulation, with or without shader-f16.
    pub async fn forward(&self, args: Ts<AttentionArgs>) -> JsResult<Ts<AttentionOutput>> {
        let a = Args::parse(&args).map_err(js_err)?;
        let (ctx, s) = (&self.ctx, &a.shape);
        let out = match a.q {
            Data::F32(_) => {
                ctx.attention_f32(&a.attn, s, a.q.f32(), a.k.f32(), a.v.f32())
                    .await
            }
            Data::F16(_) => {
                ctx.attention_f16(&a.attn, s, a.q.f16(), a.k.f16(), a.v.f16())
                    .await
            }
        }
        .map_err(js_err)?;
        to_js(&AttentionOutput::from(out))
    }

    /// The attention weights A `[batch, qHeads, qLen, kvLen]` on the GPU (short sequences:
    /// this is the one kernel that builds the T x T matrix).
    pub async fn weights(&self, args: Ts<AttentionArgs>) -> JsResult<Float32Array> {
        let a = Args::parse(&args).map_err(js_err)?;
        let w = match a.q {
            Data::F32(_) => {
                self.ctx
                    .weights_f32(&a.attn, &a.shape, a.q.f32(), a.k.f32(), a.v.f32())
                    .await
            }
            Data::F16(_) => self.weights_f16(&a).await,
        }
        .map_err(js_err)?;
        Ok(Float32Array::from(&w[..]))
    }

    /// Times the forward kernel: uploads once, runs once to compile and warm up, then runs
    /// `iterations` times (at least 1) and waits for the GPU.
    pub async fn bench(
        &self,
        args: Ts<AttentionArgs>,
        iterations: u32,
    ) -> JsResult<Ts<BenchResult>> {
        let a = Args::parse(&args).map_err(js_err)?;
        let b = self
            .bench_inner(&a, iterations.max(1))
            .await
            .map_err(js_err)?;
        to_js(&b)
    }

    /// One decode step: `{kind, ...options, q, shape, cache, plan?}` to `{o, lse?, rem?}`.
    /// `q` holds the step's query rows `[batch, qHeads, qLen, headDim]` in the cache's storage
    /// type and `shape` is `{qHeads, qLen?}` (qLen 1 by default; batch and head dims come from
    /// the cache). Sequence b's row i sits at position i + lens[b] - qLen, so append this
    /// step's keys and values to the cache first. Allocates its outputs on every call: a loop
    /// should use `decoder`.
    pub async fn decode(&self, args: Ts<DecodeArgs>) -> JsResult<Ts<AttentionOutput>> {
        hook();
        let out = decode::decode_once(&self.ctx, &args.js_value())
            .await
            .map_err(js_err)?;
        to_js(&AttentionOutput::from(out))
    }

    /// A decode loop on one cache, allocated once: `{kind, ...options, shape, cache, plan?}`
    /// (as `decode`, without q). Its `step(q, k?, v?, rows?)` appends and attends in one
    /// submit and creates no GPU object.
    pub fn decoder(&self, args: Ts<DecoderArgs>) -> JsResult<DecodeSession> {
        hook();
        DecodeSession::create(&self.ctx, &args.js_value()).map_err(js_err)
    }

    /// The split plan `decode` and `decoder` use by default for `shape` (`{qHeads, qLen?}`) on
    /// `cache`: `{minChunk, maxChunks}` (chunks of at least 256 keys, enough of them to fill
    /// the GPU).
    #[wasm_bindgen(js_name = splitPlan)]
    pub fn split_plan(
        &self,
        cache: &JsKvCache,
        shape: Ts<DecodeShape>,
    ) -> JsResult<Ts<SplitPlanOptions>> {
        let p = decode::split_plan(&self.ctx, cache, shape.js_value()).map_err(js_err)?;
        to_js(&p)
    }

    /// wgpu objects created so far (buffers, bind groups, pipelines): repeated calls of one
    /// shape, and decode steps, add none.
    #[wasm_bindgen(js_name = objectsCreated)]
    pub fn objects_created(&self) -> JsResult<Ts<ObjectCounts>> {
        to_js(&ObjectCounts::from(self.ctx.objects_created()))
    }

    /// The f64 CPU reference (the same as the module function `reference`).
    pub fn reference(&self, args: Ts<AttentionArgs>) -> JsResult<Ts<ReferenceOutput>> {
        reference(args)
    }

    /// The f64 CPU reference weights (the same as the module function `referenceWeights`).
    #[wasm_bindgen(js_name = referenceWeights)]
    pub fn reference_weights(&self, args: Ts<AttentionArgs>) -> JsResult<Float64Array> {
        reference_weights(args)
    }
}

/// Reads `WebAttn.create`'s options.
fn context_options(options: Option<Ts<CreateOptions>>) -> Result<ContextOptions> {
    let o: CreateOptions = match options {
        Some(o) if !o.js_value().is_undefined() && !o.js_value().is_null() => {
            from_js_strict(o.js_value())
                .map_err(|e| Error::InvalidOption(format!("create options: {e}")))?
        }
        _ => CreateOptions::default(),
    };
    let mut opts = ContextOptions::default();
    if let Some(a) = o.adapter {
        opts.adapter = match AdapterChoice::parse(&a) {
            Some(c @ (AdapterChoice::Auto | AdapterChoice::Software)) => c,
            _ => {
                return Err(Error::InvalidOption(format!(
                    "options.adapter must be \"auto\" or \"software\", got {a:?}"
                )))
            }
        };
    }
    if let Some(m) = o.max_binding_size {
        if m < 4 {
            return Err(Error::InvalidOption(format!(
                "options.maxBindingSize must be at least 4, got {m}"
            )));
        }
        opts.max_binding_size = Some(m);
    }
    Ok(opts)
}

impl WebAttn {
    async fn weights_f16(&self, a: &Args) -> Result<Vec<f32>> {
        a.check_lens()?;
        a.attn.validate()?;
        let (ctx, s) = (&self.ctx, &a.shape);
        ctx.check_weights_fit(s)?;
        let q = ctx.tensor_f16(&s.q(), a.q.f16())?;
        let k = ctx.tensor_f16(&s.k(), a.k.f16())?;
        let v = ctx.tensor_f16(&s.v(), a.v.f16())?;
        let mut enc = ctx.device().create_command_encoder(&Default::default());
        let w = ctx.record_weights(&mut enc, &a.attn, &q, &k, &v)?;
        ctx.submit(enc)?;
        ctx.read_f32(&w).await
    }

    async fn bench_inner(&self, a: &Args, iterations: u32) -> Result<BenchResult> {
        a.check_lens()?;
        let (ctx, s) = (&self.ctx, &a.shape);
        let (q, k, v) = match a.q {
            Data::F32(_) => (
                ctx.tensor_f32(&s.q(), a.q.f32())?,
                ctx.tensor_f32(&s.k(), a.k.f32())?,
                ctx.tensor_f32(&s.v(), a.v.f32())?,
            ),
            Data::F16(_) => (
                ctx.tensor_f16(&s.q(), a.q.f16())?,
                ctx.tensor_f16(&s.k(), a.k.f16())?,
                ctx.tensor_f16(&s.v(), a.v.f16())?,
            ),
        };
        let out = ctx.run(&a.attn, &q, &k, &v)?;
        ctx.read_bytes(&out.o).await?;
        let t0 = web_time::Instant::now();
        let mut last = out;
        for _ in 0..iterations {
            last = ctx.run(&a.attn, &q, &k, &v)?;
        }
        ctx.read_bytes(&last.o).await?;
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        Ok(BenchResult {
            ms,
            iterations,
            ms_per_call: ms / iterations as f64,
        })
    }
}

/// Parses the arguments and runs a CPU reference on the inputs widened to f32.
fn with_host_inputs<T>(
    args: &Ts<AttentionArgs>,
    f: impl Fn(&crate::Attention, &crate::Shape, &[f32], &[f32], &[f32]) -> Result<T>,
) -> JsResult<T> {
    hook();
    let a = Args::parse(args).map_err(js_err)?;
    let [q, k, v] = a.host_f32();
    f(&a.attn, &a.shape, &q, &k, &v).map_err(js_err)
}

/// The f64 CPU reference of SPEC.md (no GPU): `{o, lse?, rem?}` as `Float64Array`s.
/// f16 inputs (`Uint16Array`) are widened exactly, so this is the reference of the
/// f16-rounded values.
#[wasm_bindgen]
pub fn reference(args: Ts<AttentionArgs>) -> JsResult<Ts<ReferenceOutput>> {
    let r = with_host_inputs(&args, crate::reference)?;
    to_js(&ReferenceOutput::from(r))
}

/// The f64 CPU reference of the attention weights `[batch, qHeads, qLen, kvLen]`.
#[wasm_bindgen(js_name = referenceWeights)]
pub fn reference_weights(args: Ts<AttentionArgs>) -> JsResult<Float64Array> {
    let w = with_host_inputs(&args, crate::reference_weights)?;
    Ok(Float64Array::from(&w[..]))
}

/// Rounds f32 values to IEEE f16 (round to nearest even), returned as their bit patterns.
#[wasm_bindgen(js_name = f32ToF16)]
pub fn f32_to_f16(x: &[f32]) -> Uint16Array {
    let bits: Vec<u16> = x
        .iter()
        .map(|&v| half::f16::from_f32(v).to_bits())
        .collect();
    Uint16Array::from(&bits[..])
}

/// Widens IEEE f16 bit patterns to f32 (exact).
#[wasm_bindgen(js_name = f16ToF32)]
pub fn f16_to_f32(bits: &[u16]) -> Float32Array {
    let x: Vec<f32> = bits
        .iter()
        .map(|&b| half::f16::from_bits(b).to_f32())
        .collect();
    Float32Array::from(&x[..])
}

/// The attention-sink measure (SPEC.md section 5) of dense causal weights
/// `[batch, heads, len, len]` (a `Float32Array` or `Float64Array`): `alpha` averaged over the
/// batch and the `Sink^eps` rate per key over heads. `options.normalize` row-normalises first
/// (`A / (rowsum + 1e-8)`); `options.eps` defaults to 0.3.
#[wasm_bindgen(js_name = sinkMeasure)]
pub fn sink_measure(
    #[wasm_bindgen(unchecked_param_type = "Float32Array | Float64Array")] weights: JsValue,
    shape: Ts<SinkShape>,
    options: Option<Ts<SinkOptions>>,
) -> JsResult<Ts<SinkMeasure>> {
    hook();
    let m = sink_inner(&weights, shape, options).map_err(js_err)?;
    to_js(&m)
}

fn sink_inner(
    weights: &JsValue,
    shape: Ts<SinkShape>,
    options: Option<Ts<SinkOptions>>,
) -> Result<SinkMeasure> {
    let shape: SinkShape = from_js_strict(shape.js_value())
        .map_err(|e| Error::ShapeMismatch(format!("sink shape: {e}")))?;
    let options: SinkOptions = match options.map(|o| o.js_value()) {
        Some(o) if !o.is_undefined() && !o.is_null() => {
            from_js_strict(o).map_err(|e| Error::InvalidOption(format!("sink options: {e}")))?
        }
        _ => SinkOptions::default(),
    };
    let (batch, heads, t) = (shape.batch.unwrap_or(1), shape.heads, shape.len);
    let w: Vec<f64> = if let Some(a) = weights.dyn_ref::<Float64Array>() {
        a.to_vec()
    } else if let Some(a) = weights.dyn_ref::<Float32Array>() {
        a.to_vec().into_iter().map(f64::from).collect()
    } else {
        return Err(Error::InvalidOption(format!(
            "weights must be a Float32Array or Float64Array, got {}",
            describe(weights)
        )));
    };
    let normalize = options.normalize.unwrap_or(false);
    let alpha = sink::alpha(&w, batch * heads, t, normalize)?;
    let alpha = sink::mean_over_batch(&alpha, batch, heads, t)?;
    let rate = sink::sink_rates(&alpha, t, options.eps.unwrap_or(sink::DEFAULT_EPS))?;
    Ok(SinkMeasure {
        first_token: rate.first().copied().unwrap_or(0.0),
        alpha: Float64Array::from(&alpha[..]).into(),
        rate: Float64Array::from(&rate[..]).into(),
    })
}
