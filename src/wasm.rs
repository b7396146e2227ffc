//! Browser bindings (wasm32 only): the `WebAttn` class and the CPU helpers that
//! `web/pkg/webattn.js` exports. Arguments are plain JavaScript objects read with
//! `js_sys::Reflect`; tensors are `Float32Array`s (or `Uint16Array`s holding f16 bits).
//! Every error reaches JavaScript as an `Error` whose message is the Rust [`Error`]'s
//! `Display` text.

use js_sys::{Array, Float32Array, Float64Array, Object, Reflect, Uint16Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::{
    sink, AdapterChoice, Attention, Context, ContextOptions, DType, Error, HostOutput, Kind,
    Remainder, Result, Shape, SigmoidBias, SigmoidOptions, SoftmaxOptions, StickBreakingOptions,
};

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** Which attention mechanism to run. */
export type AttentionKind = "softmax" | "sigmoid" | "stick-breaking";

/** Problem sizes: q [batch, qHeads, qLen, headDim], k [batch, kvHeads, kvLen, headDim],
 *  v [batch, kvHeads, kvLen, vDim]. Omitted fields default to batch 1, kvHeads = qHeads,
 *  kvLen = qLen, vDim = headDim. */
export interface AttentionShape {
  batch?: number;
  qHeads: number;
  kvHeads?: number;
  qLen: number;
  kvLen?: number;
  headDim: number;
  vDim?: number;
}

/** Options of an attention call. Options that do not apply to the kind are errors. */
export interface AttentionOptions {
  /** Causal mask, bottom-right aligned (softmax, sigmoid; stick-breaking is always causal). */
  causal?: boolean;
  /** Sliding window: query i sees keys j > p_i - window only. */
  window?: number | null;
  /** Logit scale; default 1 / sqrt(headDim). */
  scale?: number | null;
  /** Softmax only: one sink logit per query head (denominator only). */
  sinks?: Float32Array | number[] | null;
  /** Sigmoid only: bias b in sigmoid(z + b); "minus-log-n" (default) is -ln(kvLen). */
  bias?: "minus-log-n" | number;
  /** Sigmoid only: row-normalised variant. */
  normalize?: boolean;
  /** Stick-breaking only: the current token takes a share of the stick too. */
  attendCurrent?: boolean;
  /** Stick-breaking only: drop the remaining stick (default) or give it to the current token. */
  remainder?: "drop" | "current";
}

/** Arguments of forward, weights, bench, reference and referenceWeights.
 *  q, k, v are all Float32Array (f32) or all Uint16Array (IEEE f16 bits). */
export interface AttentionArgs {
  kind: AttentionKind;
  q: Float32Array | Uint16Array | number[];
  k: Float32Array | Uint16Array | number[];
  v: Float32Array | Uint16Array | number[];
  shape: AttentionShape;
  options?: AttentionOptions;
}

/** GPU outputs (always f32, f16 results widened). */
export interface AttentionOutput {
  /** [batch, qHeads, qLen, vDim] */
  o: Float32Array;
  /** Softmax: log-sum-exp per row [batch, qHeads, qLen]. */
  lse?: Float32Array;
  /** Stick-breaking: remaining stick per row [batch, qHeads, qLen]. */
  rem?: Float32Array;
}

/** The f64 CPU reference's outputs. */
export interface ReferenceOutput {
  o: Float64Array;
  lse?: Float64Array;
  rem?: Float64Array;
}

/** Options of WebAttn.create. */
export interface CreateOptions {
  /** "auto" (default: high-performance adapter) or "software" (force the fallback adapter). */
  adapter?: "auto" | "software";
  /** Lower the storage-binding size webattn assumes (bytes), to split work over heads. */
  maxBindingSize?: number;
}

/** What the adapter and device offer. */
export interface DeviceInfo {
  name: string;
  backend: string;
  deviceType: string;
  driver: string;
  shaderF16: boolean;
  /** How f16 tensors are read: "F16" (shader-f16) or "F16Packed" (core WebGPU). */
  f16Storage: string;
  variant: string;
  subgroups: boolean;
  subgroupSizes: [number, number];
  timestampQuery: boolean;
  maxStorageBinding: number;
  maxBuffer: number;
  maxWorkgroupStorage: number;
  maxInvocations: number;
  maxWorkgroupsPerDim: number;
  storageOffsetAlignment: number;
  /** The multi-line text the Rust DeviceInfo prints. */
  summary: string;
}

/** Result of WebAttn.bench. */
export interface BenchResult {
  /** Wall time of all iterations, milliseconds (GPU work awaited). */
  ms: number;
  iterations: number;
  msPerCall: number;
}

/** Sizes of the weights handed to sinkMeasure: [batch, heads, len, len]. */
export interface SinkShape {
  batch?: number;
  heads: number;
  len: number;
}

/** Result of sinkMeasure (SPEC.md section 5). */
export interface SinkMeasure {
  /** alpha_k averaged over the batch: [heads, len]. */
  alpha: Float64Array;
  /** Sink_k^eps for every key k: fraction (0..1) of heads with alpha_k > eps, [len]. */
  rate: Float64Array;
  /** Sink_0^eps, the first-token sink rate (0..1). */
  firstToken: number;
}
"#;

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

fn js_err(e: Error) -> JsError {
    JsError::new(&e.to_string())
}

fn opt_err(msg: String) -> Error {
    Error::InvalidOption(msg)
}

/// A short description of a JS value for error messages.
fn describe(v: &JsValue) -> String {
    if v.is_undefined() {
        return "undefined".into();
    }
    if v.is_null() {
        return "null".into();
    }
    if let Some(s) = v.as_string() {
        return format!("{s:?}");
    }
    if let Some(x) = v.as_f64() {
        return format!("{x}");
    }
    if let Some(b) = v.as_bool() {
        return format!("{b}");
    }
    if v.is_object() {
        let name = Reflect::get(v, &"constructor".into())
            .ok()
            .and_then(|c| Reflect::get(&c, &"name".into()).ok())
            .and_then(|n| n.as_string());
        return format!("a {}", name.unwrap_or_else(|| "object".into()));
    }
    v.js_typeof()
        .as_string()
        .unwrap_or_else(|| "a value".into())
}

fn field(obj: &JsValue, key: &str) -> JsValue {
    if !obj.is_object() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

fn absent(v: &JsValue) -> bool {
    v.is_undefined() || v.is_null()
}

fn opt_bool(obj: &JsValue, key: &str) -> Result<Option<bool>> {
    let v = field(obj, key);
    if absent(&v) {
        return Ok(None);
    }
    v.as_bool().map(Some).ok_or_else(|| {
        opt_err(format!(
            "options.{key} must be a boolean, got {}",
            describe(&v)
        ))
    })
}

fn opt_f64(obj: &JsValue, key: &str) -> Result<Option<f64>> {
    let v = field(obj, key);
    if absent(&v) {
        return Ok(None);
    }
    v.as_f64().map(Some).ok_or_else(|| {
        opt_err(format!(
            "options.{key} must be a number, got {}",
            describe(&v)
        ))
    })
}

/// A positive integer field of `obj` (`what` names it in messages); `default` when absent.
fn dim(obj: &JsValue, what: &str, key: &str, default: Option<usize>) -> Result<usize> {
    let v = field(obj, key);
    if absent(&v) {
        return default.ok_or_else(|| Error::ShapeMismatch(format!("{what}.{key} is missing")));
    }
    match v.as_f64() {
        Some(x) if x >= 1.0 && x.fract() == 0.0 && x <= u32::MAX as f64 => Ok(x as usize),
        _ => Err(Error::ShapeMismatch(format!(
            "{what}.{key} must be a positive integer, got {}",
            describe(&v)
        ))),
    }
}

fn parse_shape(v: &JsValue) -> Result<Shape> {
    if !v.is_object() {
        return Err(Error::ShapeMismatch(format!(
            "shape must be an object {{batch, qHeads, kvHeads, qLen, kvLen, headDim, vDim}}, got {}",
            describe(v)
        )));
    }
    let q_heads = dim(v, "shape", "qHeads", None)?;
    let q_len = dim(v, "shape", "qLen", None)?;
    let head_dim = dim(v, "shape", "headDim", None)?;
    let s = Shape {
        batch: dim(v, "shape", "batch", Some(1))?,
        q_heads,
        kv_heads: dim(v, "shape", "kvHeads", Some(q_heads))?,
        q_len,
        kv_len: dim(v, "shape", "kvLen", Some(q_len))?,
        head_dim,
        v_dim: dim(v, "shape", "vDim", Some(head_dim))?,
    };
    s.validate()?;
    Ok(s)
}

fn parse_kind(v: &JsValue) -> Result<&'static str> {
    match v
        .as_string()
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("softmax") => Ok("softmax"),
        Some("sigmoid") => Ok("sigmoid"),
        Some("stick-breaking" | "stick_breaking" | "stickbreaking") => Ok("stick-breaking"),
        _ => Err(opt_err(format!(
            "kind must be \"softmax\", \"sigmoid\" or \"stick-breaking\", got {}",
            describe(v)
        ))),
    }
}

fn f32_list(v: &JsValue, what: &str) -> Result<Vec<f32>> {
    if let Some(a) = v.dyn_ref::<Float32Array>() {
        return Ok(a.to_vec());
    }
    if Array::is_array(v) {
        let a: &Array = v.unchecked_ref();
        return a
            .iter()
            .map(|x| {
                x.as_f64().map(|x| x as f32).ok_or_else(|| {
                    opt_err(format!("{what} must hold numbers, found {}", describe(&x)))
                })
            })
            .collect();
    }
    Err(opt_err(format!(
        "{what} must be a Float32Array or an array of numbers, got {}",
        describe(v)
    )))
}

/// Builds the [`Attention`] of `kind` from the options object, refusing options that do not
/// apply to the kind (so a typo'd or misplaced option never passes silently).
fn parse_attention(kind: &str, o: &JsValue) -> Result<Attention> {
    if !absent(o) && !o.is_object() {
        return Err(opt_err(format!(
            "options must be an object, got {}",
            describe(o)
        )));
    }
    let known: &[&str] = match kind {
        "softmax" => &["causal", "window", "scale", "sinks"],
        "sigmoid" => &["causal", "window", "scale", "bias", "normalize"],
        _ => &["causal", "window", "scale", "attendCurrent", "remainder"],
    };
    if o.is_object() {
        for key in Object::keys(o.unchecked_ref::<Object>()).iter() {
            let key = key.as_string().unwrap_or_default();
            let all = [
                "causal",
                "window",
                "scale",
                "sinks",
                "bias",
                "normalize",
                "attendCurrent",
                "remainder",
            ];
            if !known.contains(&key.as_str()) && !absent(&field(o, &key)) {
                return Err(opt_err(if all.contains(&key.as_str()) {
                    format!("options.{key} does not apply to {kind} attention")
                } else {
                    format!("unknown option {key:?} (known: {})", all.join(", "))
                }));
            }
        }
    }
    let causal = opt_bool(o, "causal")?;
    let kind = match kind {
        "softmax" => {
            let sinks = field(o, "sinks");
            Kind::Softmax(SoftmaxOptions {
                causal: causal.unwrap_or(false),
                sinks: if absent(&sinks) {
                    None
                } else {
                    Some(f32_list(&sinks, "options.sinks")?)
                },
            })
        }
        "sigmoid" => {
            let b = field(o, "bias");
            let bias = if absent(&b) {
                SigmoidBias::MinusLogKeys
            } else if let Some(x) = b.as_f64() {
                SigmoidBias::Value(x as f32)
            } else if b.as_string().as_deref() == Some("minus-log-n") {
                SigmoidBias::MinusLogKeys
            } else {
                return Err(opt_err(format!(
                    "options.bias must be a number or \"minus-log-n\", got {}",
                    describe(&b)
                )));
            };
            Kind::Sigmoid(SigmoidOptions {
                causal: causal.unwrap_or(false),
                bias,
                normalize: opt_bool(o, "normalize")?.unwrap_or(false),
            })
        }
        _ => {
            if causal == Some(false) {
                return Err(opt_err(
                    "stick-breaking attention is always causal (options.causal: false)".into(),
                ));
            }
            let r = field(o, "remainder");
            let remainder = match r.as_string().as_deref() {
                _ if absent(&r) => Remainder::Drop,
                Some("drop") => Remainder::Drop,
                Some("current") => Remainder::ToCurrent,
                _ => {
                    return Err(opt_err(format!(
                        "options.remainder must be \"drop\" or \"current\", got {}",
                        describe(&r)
                    )))
                }
            };
            Kind::StickBreaking(StickBreakingOptions {
                attend_current: opt_bool(o, "attendCurrent")?.unwrap_or(false),
                remainder,
            })
        }
    };
    let mut attn = Attention::of(kind);
    if let Some(s) = opt_f64(o, "scale")? {
        attn.scale = Some(s as f32);
    }
    if let Some(w) = opt_f64(o, "window")? {
        if !(w >= 1.0 && w.fract() == 0.0 && w <= u32::MAX as f64) {
            return Err(opt_err(format!(
                "options.window must be a positive integer, got {w}"
            )));
        }
        attn.window = Some(w as u32);
    }
    Ok(attn)
}

/// q, k or v as the host sees it.
enum Data {
    F32(Vec<f32>),
    F16(Vec<half::f16>),
}

impl Data {
    fn dtype(&self) -> DType {
        match self {
            Data::F32(_) => DType::F32,
            Data::F16(_) => DType::F16,
        }
    }
    /// f32 values (f16 widened exactly).
    fn to_f32(&self) -> Vec<f32> {
        match self {
            Data::F32(x) => x.clone(),
            Data::F16(x) => x.iter().map(|h| h.to_f32()).collect(),
        }
    }
    fn f16(&self) -> &[half::f16] {
        match self {
            Data::F16(x) => x,
            Data::F32(_) => &[],
        }
    }
    fn f32(&self) -> &[f32] {
        match self {
            Data::F32(x) => x,
            Data::F16(_) => &[],
        }
    }
}

fn parse_data(v: &JsValue, what: &str) -> Result<Data> {
    if let Some(a) = v.dyn_ref::<Float32Array>() {
        return Ok(Data::F32(a.to_vec()));
    }
    if let Some(a) = v.dyn_ref::<Uint16Array>() {
        return Ok(Data::F16(
            a.to_vec().into_iter().map(half::f16::from_bits).collect(),
        ));
    }
    if Array::is_array(v) {
        return Ok(Data::F32(f32_list(v, what)?));
    }
    Err(opt_err(format!(
        "{what} must be a Float32Array (f32), a Uint16Array (f16 bits) or an array of numbers, \
         got {}",
        describe(v)
    )))
}

/// Everything one call needs, read off `{kind, q, k, v, shape, options}`.
struct Args {
    attn: Attention,
    shape: Shape,
    q: Data,
    k: Data,
    v: Data,
}

impl Args {
    fn parse(args: &JsValue) -> Result<Args> {
        if !args.is_object() {
            return Err(opt_err(format!(
                "expected an object {{kind, q, k, v, shape, options}}, got {}",
                describe(args)
            )));
        }
        let kind = parse_kind(&field(args, "kind"))?;
        let attn = parse_attention(kind, &field(args, "options"))?;
        let shape = parse_shape(&field(args, "shape"))?;
        let q = parse_data(&field(args, "q"), "q")?;
        let k = parse_data(&field(args, "k"), "k")?;
        let v = parse_data(&field(args, "v"), "v")?;
        for (what, t) in [("k", &k), ("v", &v)] {
            if t.dtype() != q.dtype() {
                return Err(Error::DTypeMismatch {
                    what,
                    expected: q.dtype(),
                    found: t.dtype(),
                });
            }
        }
        Ok(Args {
            attn,
            shape,
            q,
            k,
            v,
        })
    }

    fn lens(&self) -> Result<()> {
        let s = &self.shape;
        let len = |d: &Data| match d {
            Data::F32(x) => x.len(),
            Data::F16(x) => x.len(),
        };
        for (what, want, d) in [
            ("q", s.q(), &self.q),
            ("k", s.k(), &self.k),
            ("v", s.v(), &self.v),
        ] {
            let n: usize = want.iter().product();
            if n != len(d) {
                return Err(Error::ShapeMismatch(format!(
                    "{what} has {} elements, shape {want:?} needs {n}",
                    len(d)
                )));
            }
        }
        Ok(())
    }
}

fn set(obj: &Object, key: &str, v: impl Into<JsValue>) {
    // Setting a property on a fresh plain object cannot fail.
    let _ = Reflect::set(obj, &JsValue::from_str(key), &v.into());
}

fn now_ms() -> f64 {
    let perf = Reflect::get(&js_sys::global(), &"performance".into()).unwrap_or(JsValue::NULL);
    Reflect::get(&perf, &"now".into())
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
        .and_then(|f| f.call0(&perf).ok())
        .and_then(|x| x.as_f64())
        .unwrap_or_else(js_sys::Date::now)
}

fn host_output(out: HostOutput) -> JsValue {
    let obj = Object::new();
    set(&obj, "o", Float32Array::from(&out.o[..]));
    if let Some(l) = out.lse {
        set(&obj, "lse", Float32Array::from(&l[..]));
    }
    if let Some(r) = out.rem {
        set(&obj, "rem", Float32Array::from(&r[..]));
    }
    obj.into()
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
    ctx: Context,
}

#[wasm_bindgen]
impl WebAttn {
    /// Requests a WebGPU adapter (`options.adapter`: `"auto"` or `"software"`) and a device
    /// with every limit it offers. Rejects if the browser has no WebGPU.
    pub async fn create(
        #[wasm_bindgen(unchecked_optional_param_type = "CreateOptions")] options: JsValue,
    ) -> std::result::Result<WebAttn, JsError> {
        hook();
        let mut opts = ContextOptions::default();
        let a = field(&options, "adapter");
        if !absent(&a) {
            opts.adapter = match a.as_string().as_deref().and_then(AdapterChoice::parse) {
                Some(c @ (AdapterChoice::Auto | AdapterChoice::Software)) => c,
                _ => {
                    return Err(js_err(opt_err(format!(
                        "options.adapter must be \"auto\" or \"software\", got {}",
                        describe(&a)
                    ))))
                }
            };
        }
        let m = field(&options, "maxBindingSize");
        if !absent(&m) {
            match m.as_f64() {
                Some(x) if x >= 4.0 && x.fract() == 0.0 => opts.max_binding_size = Some(x as u64),
                _ => {
                    return Err(js_err(opt_err(format!(
                        "options.maxBindingSize must be an integer >= 4, got {}",
                        describe(&m)
                    ))))
                }
            }
        }
        let ctx = Context::new(opts).await.map_err(js_err)?;
        Ok(WebAttn { ctx })
    }

    /// What the adapter and device offer, as a plain object.
    #[wasm_bindgen(unchecked_return_type = "DeviceInfo")]
    pub fn info(&self) -> JsValue {
        let i = self.ctx.info();
        let o = Object::new();
        set(&o, "name", i.name.as_str());
        set(&o, "backend", i.backend.as_str());
        set(&o, "deviceType", i.device_type.as_str());
        set(&o, "driver", i.driver.as_str());
        set(&o, "shaderF16", i.shader_f16);
        set(&o, "f16Storage", format!("{:?}", i.f16_storage));
        set(&o, "variant", format!("{:?}", i.variant));
        set(&o, "subgroups", i.subgroups);
        let sizes = Array::of2(&i.subgroup_sizes.0.into(), &i.subgroup_sizes.1.into());
        set(&o, "subgroupSizes", sizes);
        set(&o, "timestampQuery", i.timestamp_query);
        set(&o, "maxStorageBinding", i.max_storage_binding as f64);
        set(&o, "maxBuffer", i.max_buffer as f64);
        set(&o, "maxWorkgroupStorage", i.max_workgroup_storage);
        set(&o, "maxInvocations", i.max_invocations);
        set(&o, "maxWorkgroupsPerDim", i.max_workgroups_per_dim);
        set(&o, "storageOffsetAlignment", i.storage_offset_alignment);
        set(&o, "summary", i.to_string());
        o.into()
    }

    /// The `GPUDevice` webattn created (share it with the page's own WebGPU work). wgpu 30
    /// cannot wrap a device the page created, so sharing goes this way round only.
    #[wasm_bindgen(getter, unchecked_return_type = "any")]
    pub fn device(&self) -> JsValue {
        self.ctx
            .device()
            .as_webgpu()
            .map_or(JsValue::NULL, |d| d.clone().into())
    }

    /// Runs attention on the GPU: `{kind, q, k, v, shape, options}` to `{o, lse?, rem?}`.
    /// f32 inputs (`Float32Array`) use f32 storage; f16 inputs (`Uint16Array` of IEEE half
    /// bits) use f16 storage with f32 accumulation, on adapters with or without shader-f16.
    #[wasm_bindgen(unchecked_return_type = "AttentionOutput")]
    pub async fn forward(
        &self,
        #[wasm_bindgen(unchecked_param_type = "AttentionArgs")] args: JsValue,
    ) -> std::result::Result<JsValue, JsError> {
        let a = Args::parse(&args).map_err(js_err)?;
        let out = match a.q {
            Data::F32(_) => {
                self.ctx
                    .attention_f32(&a.attn, &a.shape, a.q.f32(), a.k.f32(), a.v.f32())
                    .await
            }
            Data::F16(_) => {
                self.ctx
                    .attention_f16(&a.attn, &a.shape, a.q.f16(), a.k.f16(), a.v.f16())
                    .await
            }
        }
        .map_err(js_err)?;
        Ok(host_output(out))
    }

    /// The attention weights A `[batch, qHeads, qLen, kvLen]` on the GPU (short sequences:
    /// this is the one kernel that builds the T x T matrix).
    pub async fn weights(
        &self,
        #[wasm_bindgen(unchecked_param_type = "AttentionArgs")] args: JsValue,
    ) -> std::result::Result<Float32Array, JsError> {
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
    /// `iterations` times and waits for the GPU. Returns `{ms, iterations, msPerCall}`.
    #[wasm_bindgen(unchecked_return_type = "BenchResult")]
    pub async fn bench(
        &self,
        #[wasm_bindgen(unchecked_param_type = "AttentionArgs")] args: JsValue,
        iterations: u32,
    ) -> std::result::Result<JsValue, JsError> {
        let a = Args::parse(&args).map_err(js_err)?;
        self.bench_inner(&a, iterations.max(1))
            .await
            .map_err(js_err)
    }

    /// The f64 CPU reference (same as the module function [`reference`]).
    #[wasm_bindgen(unchecked_return_type = "ReferenceOutput")]
    pub fn reference(
        &self,
        #[wasm_bindgen(unchecked_param_type = "AttentionArgs")] args: JsValue,
    ) -> std::result::Result<JsValue, JsError> {
        reference(args)
    }

    /// The f64 CPU reference weights (same as the module function [`reference_weights`]).
    #[wasm_bindgen(js_name = referenceWeights)]
    pub fn reference_weights(
        &self,
        #[wasm_bindgen(unchecked_param_type = "AttentionArgs")] args: JsValue,
    ) -> std::result::Result<Float64Array, JsError> {
        reference_weights(args)
    }
}

impl WebAttn {
    async fn weights_f16(&self, a: &Args) -> Result<Vec<f32>> {
        a.lens()?;
        let s = &a.shape;
        let q = self.ctx.tensor_f16(&s.q(), a.q.f16())?;
        let k = self.ctx.tensor_f16(&s.k(), a.k.f16())?;
        let v = self.ctx.tensor_f16(&s.v(), a.v.f16())?;
        let mut enc = self
            .ctx
            .device()
            .create_command_encoder(&Default::default());
        let w = self.ctx.record_weights(&mut enc, &a.attn, &q, &k, &v)?;
        self.ctx.submit(enc)?;
        self.ctx.read_f32(&w).await
    }

    async fn bench_inner(&self, a: &Args, iterations: u32) -> Result<JsValue> {
        a.lens()?;
        let s = &a.shape;
        let ctx = &self.ctx;
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
        let t0 = now_ms();
        let mut last = out;
        for _ in 0..iterations {
            last = ctx.run(&a.attn, &q, &k, &v)?;
        }
        ctx.read_bytes(&last.o).await?;
        let ms = now_ms() - t0;
        let obj = Object::new();
        set(&obj, "ms", ms);
        set(&obj, "iterations", iterations);
        set(&obj, "msPerCall", ms / iterations as f64);
        Ok(obj.into())
    }
}

/// Parses the arguments and runs a CPU reference on the inputs widened to f32.
fn with_host_inputs<T>(
    args: &JsValue,
    f: impl Fn(&crate::Attention, &crate::Shape, &[f32], &[f32], &[f32]) -> crate::Result<T>,
) -> std::result::Result<T, JsError> {
    hook();
    let a = Args::parse(args).map_err(js_err)?;
    f(
        &a.attn,
        &a.shape,
        &a.q.to_f32(),
        &a.k.to_f32(),
        &a.v.to_f32(),
    )
    .map_err(js_err)
}

/// The f64 CPU reference of SPEC.md (no GPU): `{o, lse?, rem?}` as `Float64Array`s.
/// f16 inputs (`Uint16Array`) are widened exactly, so this is the reference of the
/// f16-rounded values.
#[wasm_bindgen(unchecked_return_type = "ReferenceOutput")]
pub fn reference(
    #[wasm_bindgen(unchecked_param_type = "AttentionArgs")] args: JsValue,
) -> std::result::Result<JsValue, JsError> {
    let r = with_host_inputs(&args, crate::reference)?;
    let obj = Object::new();
    set(&obj, "o", Float64Array::from(&r.o[..]));
    if let Some(l) = r.lse {
        set(&obj, "lse", Float64Array::from(&l[..]));
    }
    if let Some(x) = r.rem {
        set(&obj, "rem", Float64Array::from(&x[..]));
    }
    Ok(obj.into())
}

/// The f64 CPU reference of the attention weights `[batch, qHeads, qLen, kvLen]`.
#[wasm_bindgen(js_name = referenceWeights)]
pub fn reference_weights(
    #[wasm_bindgen(unchecked_param_type = "AttentionArgs")] args: JsValue,
) -> std::result::Result<Float64Array, JsError> {
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
#[wasm_bindgen(js_name = sinkMeasure, unchecked_return_type = "SinkMeasure")]
pub fn sink_measure(
    #[wasm_bindgen(unchecked_param_type = "Float32Array | Float64Array")] weights: JsValue,
    #[wasm_bindgen(unchecked_param_type = "SinkShape")] shape: JsValue,
    #[wasm_bindgen(unchecked_optional_param_type = "{ normalize?: boolean; eps?: number }")]
    options: JsValue,
) -> std::result::Result<JsValue, JsError> {
    hook();
    sink_inner(&weights, &shape, &options).map_err(js_err)
}

fn sink_inner(weights: &JsValue, shape: &JsValue, options: &JsValue) -> Result<JsValue> {
    let batch = dim(shape, "shape", "batch", Some(1))?;
    let heads = dim(shape, "shape", "heads", None)?;
    let t = dim(shape, "shape", "len", None)?;
    let normalize = opt_bool(options, "normalize")?.unwrap_or(false);
    let eps = opt_f64(options, "eps")?.unwrap_or(sink::DEFAULT_EPS);
    let w: Vec<f64> = if let Some(a) = weights.dyn_ref::<Float64Array>() {
        a.to_vec()
    } else if let Some(a) = weights.dyn_ref::<Float32Array>() {
        a.to_vec().into_iter().map(f64::from).collect()
    } else {
        return Err(opt_err(format!(
            "weights must be a Float32Array or Float64Array, got {}",
            describe(weights)
        )));
    };
    let alpha = sink::alpha(&w, batch * heads, t, normalize)?;
    let alpha = sink::mean_over_batch(&alpha, batch, heads, t)?;
    let rate = sink::sink_rates(&alpha, t, eps)?;
    let obj = Object::new();
    set(&obj, "firstToken", rate[0]);
    set(&obj, "alpha", Float64Array::from(&alpha[..]));
    set(&obj, "rate", Float64Array::from(&rate[..]));
    Ok(obj.into())
}
