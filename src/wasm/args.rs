//! The arguments of an attention call, `{kind, q, k, v, shape, ...options}`, read with serde.
//! (Over 500 lines on purpose: it is the one place where JS values become Rust values for every
//! call, so the parsing rules and their error messages are read and changed together.)
//!
//! Everything but the tensors goes through serde: the shape into [`AttentionShape`], the rest
//! (the kind and its options) into a JSON object that [`Attention::from_json`] parses strictly
//! through the kinds' registry, so an unknown or misplaced key is an error naming it, and the
//! parsing knows no kind by name (only the TypeScript union [`KindOptions`] names them, for the
//! declarations). q, k and v stay JavaScript typed arrays until they are copied into wasm
//! memory once.

use js_sys::{Array, ArrayBuffer, Float32Array, Object, Reflect, Uint16Array};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use tsify::{Ts, Tsify};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::attention::Attention;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kinds::stick_breaking::StickBreakingOptions;
use crate::kinds::{registry, sigmoid::SigmoidOptions, softmax::SoftmaxOptions};
use crate::pass::decode::SplitPlan;
use crate::shape::Shape;

/// Problem sizes: q `[batch, qHeads, qLen, headDim]`, k `[batch, kvHeads, kvLen, headDim]`,
/// v `[batch, kvHeads, kvLen, vDim]`. Omitted fields default to batch 1, kvHeads = qHeads,
/// kvLen = qLen, vDim = headDim. `kvLen: 0` (an empty cache) is valid: every row is empty.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, Deserialize, Tsify)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttentionShape {
    /// Batch B (default 1).
    #[tsify(optional)]
    pub batch: Option<usize>,
    /// Query heads Hq (a multiple of kvHeads).
    pub q_heads: usize,
    /// Key/value heads Hkv (default qHeads).
    #[tsify(optional)]
    pub kv_heads: Option<usize>,
    /// Query length Tq.
    pub q_len: usize,
    /// Key length Tk (default qLen; 0 is an empty cache).
    #[tsify(optional)]
    pub kv_len: Option<usize>,
    /// Query/key head dim D.
    pub head_dim: usize,
    /// Value head dim Dv (default headDim).
    #[tsify(optional)]
    pub v_dim: Option<usize>,
}

impl AttentionShape {
    /// The shape with the defaults filled in, checked.
    pub fn resolve(&self) -> Result<Shape> {
        let s = Shape {
            batch: self.batch.unwrap_or(1),
            q_heads: self.q_heads,
            kv_heads: self.kv_heads.unwrap_or(self.q_heads),
            q_len: self.q_len,
            kv_len: self.kv_len.unwrap_or(self.q_len),
            head_dim: self.head_dim,
            v_dim: self.v_dim.unwrap_or(self.head_dim),
        };
        s.validate()?;
        Ok(s)
    }

    /// Every field given.
    pub fn full(s: &Shape) -> Self {
        AttentionShape {
            batch: Some(s.batch),
            q_heads: s.q_heads,
            kv_heads: Some(s.kv_heads),
            q_len: s.q_len,
            kv_len: Some(s.kv_len),
            head_dim: s.head_dim,
            v_dim: Some(s.v_dim),
        }
    }

    /// Reads a JavaScript shape object (unknown keys are errors).
    pub fn from_js(v: JsValue) -> Result<Shape> {
        from_js_strict::<AttentionShape>(v)
            .map_err(|e| Error::ShapeMismatch(format!("shape: {e}")))?
            .resolve()
    }
}

/// The kind and its options, tagged by `kind` (for the TypeScript declarations: the values
/// are parsed by the registry through [`Attention::from_json`], which takes every registered
/// kind and its aliases; `testing.untypedKinds()` lists registered kinds missing here).
#[allow(dead_code)] // the options are only read to check that this type covers the registry
#[derive(Deserialize, Tsify)]
#[serde(tag = "kind")]
pub enum KindOptions {
    /// Softmax attention (SPEC.md section 1): o and the log-sum-exp per row.
    #[serde(rename = "softmax")]
    Softmax(SoftmaxOptions),
    /// Sigmoid attention (SPEC.md section 2): o.
    #[serde(rename = "sigmoid")]
    Sigmoid(SigmoidOptions),
    /// Stick-breaking attention (SPEC.md section 3, always causal): o and the stick left per
    /// row.
    #[serde(rename = "stick-breaking")]
    StickBreaking(StickBreakingOptions),
}

/// Options of an attention call: `kind` (a name from `kinds()`), the kind's own options,
/// and `scale` and `window`. The JSON form of `webattn::Attention` (the CLI reads the same).
/// An option the kind does not have is an error; `undefined` or `null` counts as absent.
#[allow(dead_code)] // a declaration: the options are parsed by `Attention::from_json`
#[derive(Tsify)]
pub struct AttentionOptions {
    /// The kind and its options (a union: a type alias, which an interface cannot extend).
    #[serde(flatten)]
    #[tsify(type = "KindOptions")]
    pub kind: KindOptions,
    /// Logit scale (default 1 / sqrt(headDim)).
    #[tsify(optional)]
    pub scale: Option<f32>,
    /// Sliding window: query i sees keys j > p_i - window only (at least 1).
    #[tsify(optional)]
    pub window: Option<u32>,
}

impl KindOptions {
    /// Names of registered kinds whose default options this type does not describe.
    pub fn untyped() -> Vec<String> {
        registry()
            .iter()
            .filter(|e| {
                let mut json = (e.default)().to_json();
                if let Some(m) = json.as_object_mut() {
                    m.remove("scale");
                    m.remove("window");
                }
                serde_json::from_value::<KindOptions>(json).is_err()
            })
            .map(|e| e.name.to_string())
            .collect()
    }
}

/// Arguments of `forward`, `weights`, `bench`, `reference`, `referenceWeights` and
/// `testing.judge`: the tensors, the shape and the attention options side by side.
/// q, k, v are all `Float32Array` (f32 storage) or all `Uint16Array` (IEEE f16 bits: f16
/// storage, f32 accumulation); plain arrays of numbers count as f32.
#[derive(Deserialize, Tsify)]
pub struct AttentionArgs {
    /// Queries `[batch, qHeads, qLen, headDim]`.
    #[serde(with = "serde_wasm_bindgen::preserve")]
    #[tsify(type = "Float32Array | Uint16Array | number[]")]
    pub q: JsValue,
    /// Keys `[batch, kvHeads, kvLen, headDim]`.
    #[serde(with = "serde_wasm_bindgen::preserve")]
    #[tsify(type = "Float32Array | Uint16Array | number[]")]
    pub k: JsValue,
    /// Values `[batch, kvHeads, kvLen, vDim]`.
    #[serde(with = "serde_wasm_bindgen::preserve")]
    #[tsify(type = "Float32Array | Uint16Array | number[]")]
    pub v: JsValue,
    /// The sizes.
    #[serde(with = "serde_wasm_bindgen::preserve")]
    #[tsify(type = "AttentionShape")]
    pub shape: JsValue,
    /// `kind`, `scale`, `window` and the kind's options.
    #[serde(flatten)]
    #[tsify(type = "AttentionOptions")]
    pub options: serde_json::Map<String, serde_json::Value>,
}

/// The keys of [`AttentionArgs`] that are not options.
const NOT_OPTIONS: [&str; 4] = ["q", "k", "v", "shape"];

/// q, k or v as the host holds it.
pub enum Data {
    /// f32 storage.
    F32(Vec<f32>),
    /// f16 storage.
    F16(Vec<half::f16>),
}

impl Data {
    /// Reads a `Float32Array`, a `Uint16Array` of f16 bits or an array of numbers.
    pub fn from_js(v: &JsValue, what: &str) -> Result<Data> {
        if let Some(a) = v.dyn_ref::<Float32Array>() {
            return Ok(Data::F32(a.to_vec()));
        }
        if let Some(a) = v.dyn_ref::<Uint16Array>() {
            let bits = a.to_vec();
            return Ok(Data::F16(
                bits.into_iter().map(half::f16::from_bits).collect(),
            ));
        }
        if Array::is_array(v) {
            return serde_wasm_bindgen::from_value(v.clone())
                .map(Data::F32)
                .map_err(|e| Error::InvalidOption(format!("{what}: {e}")));
        }
        Err(Error::InvalidOption(format!(
            "{what} must be a Float32Array (f32), a Uint16Array (f16 bits) or an array of \
             numbers, got {}",
            describe(v)
        )))
    }

    /// The storage type.
    pub fn dtype(&self) -> DType {
        match self {
            Data::F32(_) => DType::F32,
            Data::F16(_) => DType::F16,
        }
    }

    /// f32 values (f16 widened exactly).
    pub fn to_f32(&self) -> Vec<f32> {
        match self {
            Data::F32(x) => x.clone(),
            Data::F16(x) => x.iter().map(|h| h.to_f32()).collect(),
        }
    }

    /// The f32 values (empty for f16 data).
    pub fn f32(&self) -> &[f32] {
        match self {
            Data::F32(x) => x,
            Data::F16(_) => &[],
        }
    }

    /// The f16 values (empty for f32 data).
    pub fn f16(&self) -> &[half::f16] {
        match self {
            Data::F16(x) => x,
            Data::F32(_) => &[],
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Data::F32(x) => x.len(),
            Data::F16(x) => x.len(),
        }
    }
}

/// Everything one call needs.
pub struct Args {
    /// The kind, its options, scale and window.
    pub attn: Attention,
    /// The sizes (defaults filled in, checked).
    pub shape: Shape,
    /// Queries.
    pub q: Data,
    /// Keys.
    pub k: Data,
    /// Values.
    pub v: Data,
}

impl Args {
    /// Reads `{kind, q, k, v, shape, ...options}`: the shape and the options with serde, the
    /// tensors as typed arrays. Checks that q, k, v share one storage type.
    pub fn parse(args: &Ts<AttentionArgs>) -> Result<Args> {
        let raw: AttentionArgs =
            serde_wasm_bindgen::from_value(json_like(&args.js_value(), &NOT_OPTIONS)?)
                .map_err(|e| Error::InvalidOption(format!("arguments: {e}")))?;
        let attn = Attention::from_json(serde_json::Value::Object(raw.options))?;
        let shape = AttentionShape::from_js(raw.shape)?;
        let q = Data::from_js(&raw.q, "q")?;
        let k = Data::from_js(&raw.k, "k")?;
        let v = Data::from_js(&raw.v, "v")?;
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

    /// Checks the tensor lengths against the shape.
    pub fn check_lens(&self) -> Result<()> {
        self.shape
            .check_host(self.q.len(), self.k.len(), self.v.len())
    }

    /// q, k, v widened to f32 (the CPU references' inputs).
    pub fn host_f32(&self) -> [Vec<f32>; 3] {
        [self.q.to_f32(), self.k.to_f32(), self.v.to_f32()]
    }
}

/// A shallow copy of the arguments object in which every option value is JSON-like, so that
/// serde reads it into a `serde_json::Value`: typed arrays (`sinks: Float32Array`) become
/// arrays, `undefined` and `null` are dropped (absent), and a number JSON cannot hold (NaN,
/// an infinity) is refused rather than read as null. The keys in `keep` (q, k, v, shape, ...)
/// are kept as they are.
pub(super) fn json_like(args: &JsValue, keep: &[&str]) -> Result<JsValue> {
    if !args.is_object() || Array::is_array(args) {
        return Err(Error::InvalidOption(format!(
            "expected an object {{kind, {}, ...options}}, got {}",
            keep.join(", "),
            describe(args)
        )));
    }
    let copy = Object::new();
    for entry in Object::entries(args.unchecked_ref::<Object>()).iter() {
        let entry: Array = entry.unchecked_into();
        let (key, mut value) = (entry.get(0), entry.get(1));
        let name = key.as_string().unwrap_or_default();
        if !keep.contains(&name.as_str()) {
            if value.is_undefined() || value.is_null() {
                continue;
            }
            if ArrayBuffer::is_view(&value) {
                value = Array::from(&value).into();
            }
            if let Some(x) = value.as_f64().filter(|x| !x.is_finite()) {
                return Err(Error::InvalidOption(format!(
                    "{name} must be a finite number, got {x}"
                )));
            }
        }
        // Setting a property on a fresh plain object cannot fail.
        let _ = Reflect::set(&copy, &key, &value);
    }
    Ok(copy.into())
}

/// Reads a JavaScript object into `T` strictly: through a JSON value, so that serde sees every
/// key and `deny_unknown_fields` holds (serde-wasm-bindgen looks up a struct's own fields
/// only, so it would pass a misspelt key by).
pub fn from_js_strict<T: DeserializeOwned>(v: JsValue) -> std::result::Result<T, String> {
    let json: serde_json::Value = serde_wasm_bindgen::from_value(v).map_err(|e| e.to_string())?;
    serde_json::from_value(json).map_err(|e| e.to_string())
}

/// A short description of a JavaScript value for error messages.
pub fn describe(v: &JsValue) -> String {
    if v.is_undefined() {
        return "undefined".into();
    }
    if v.is_null() {
        return "null".into();
    }
    if let Some(b) = v.as_bool() {
        return b.to_string();
    }
    if let Some(s) = v.as_string() {
        return format!("{s:?}");
    }
    if let Some(x) = v.as_f64() {
        return format!("{x}");
    }
    if v.is_object() {
        let name = Reflect::get(v, &"constructor".into())
            .ok()
            .and_then(|c| Reflect::get(&c, &"name".into()).ok())
            .and_then(|n| n.as_string());
        return format!("a {}", name.unwrap_or_else(|| "object".into()));
    }
    v.js_typeof().as_string().unwrap_or_default()
}

/// The query side of a decode step: q is `[batch, qHeads, qLen, headDim]` on a cache of
/// `batch` sequences, `kvHeads` kv heads and head dims `headDim`, `vDim`. Only `qHeads` is
/// needed (`qLen` defaults to 1); the other fields, if given, must be the cache's.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, Deserialize, Tsify)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DecodeShape {
    /// Sequences B (the cache's).
    #[tsify(optional)]
    pub batch: Option<usize>,
    /// Query heads Hq (a multiple of the cache's kv heads).
    pub q_heads: usize,
    /// Kv heads Hkv (the cache's).
    #[tsify(optional)]
    pub kv_heads: Option<usize>,
    /// New query rows per step Tq (default 1: decoding; more: speculative or chunked prefill).
    #[tsify(optional)]
    pub q_len: Option<usize>,
    /// Query/key head dim D (the cache's).
    #[tsify(optional)]
    pub head_dim: Option<usize>,
    /// Value head dim Dv (the cache's).
    #[tsify(optional)]
    pub v_dim: Option<usize>,
}

impl DecodeShape {
    /// Reads a JavaScript decode shape (unknown keys, `kvLen` among them, are errors).
    pub fn from_js(v: JsValue) -> Result<DecodeShape> {
        from_js_strict::<DecodeShape>(v).map_err(|e| Error::ShapeMismatch(format!("shape: {e}")))
    }

    /// The attention shape of a step on `cache` (`kvLen` = the capacity), checked: every
    /// field given must be the cache's.
    pub fn resolve(&self, cache: &crate::KvCache) -> Result<Shape> {
        let q_len = self.q_len.unwrap_or(1);
        let given = [
            ("batch", self.batch, cache.batch()),
            ("kvHeads", self.kv_heads, cache.kv_heads()),
            ("headDim", self.head_dim, cache.head_dim()),
            ("vDim", self.v_dim, cache.v_dim()),
        ];
        for (name, got, want) in given {
            if let Some(g) = got.filter(|&g| g != want) {
                return Err(Error::ShapeMismatch(format!(
                    "shape.{name} is {g} but the cache's is {want}"
                )));
            }
        }
        if self.q_heads == 0 || q_len == 0 {
            return Err(Error::ShapeMismatch(format!(
                "a decode step needs qHeads >= 1 and qLen >= 1, got qHeads {} and qLen {q_len}",
                self.q_heads
            )));
        }
        let s = cache.shape(self.q_heads, q_len);
        s.validate()?;
        Ok(s)
    }
}

/// Options of `new KvCache(attn, options)`: one layer's cache of `capacity` slots per
/// (sequence, kv head), k `[batch, kvHeads, capacity, headDim]` and v
/// `[batch, kvHeads, capacity, vDim]`.
#[derive(Debug, Clone, Deserialize, Tsify)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CacheOptions {
    /// Sequences B (default 1).
    #[tsify(optional)]
    pub batch: Option<usize>,
    /// Kv heads Hkv.
    pub kv_heads: usize,
    /// Slots per (sequence, kv head): the longest sequence it holds.
    pub capacity: usize,
    /// Key head dim D (a multiple of 4, 4 to 256).
    pub head_dim: usize,
    /// Value head dim Dv (default headDim).
    #[tsify(optional)]
    pub v_dim: Option<usize>,
    /// Storage: `"f32"` (default) or `"f16"` (appended and queried with `Uint16Array`s of
    /// IEEE half bits; f32 accumulation).
    #[tsify(optional, type = "\"f32\" | \"f16\"")]
    pub dtype: Option<String>,
}

impl CacheOptions {
    /// The storage type named by `dtype`.
    pub fn dtype(&self) -> Result<DType> {
        match self.dtype.as_deref() {
            None | Some("f32") => Ok(DType::F32),
            Some("f16") => Ok(DType::F16),
            Some(x) => Err(Error::InvalidOption(format!(
                "cache options: dtype must be \"f32\" or \"f16\", got {x:?}"
            ))),
        }
    }
}

/// How a long cache is split into chunks that run in parallel and are merged (the Rust
/// `SplitPlan`): chunks of at least `minChunk` keys, at most `maxChunks` per (sequence, kv
/// head). Omitted: the plan `attn.splitPlan` gives (chunks of at least 256 keys).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, Deserialize, Tsify)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SplitPlanOptions {
    /// The fewest keys in a chunk (>= 1; rounded up to the kernel's key tile).
    pub min_chunk: u32,
    /// The most chunks per (sequence, kv head) (1 to 4096).
    pub max_chunks: u32,
}

impl From<SplitPlan> for SplitPlanOptions {
    fn from(p: SplitPlan) -> Self {
        SplitPlanOptions {
            min_chunk: p.min_chunk,
            max_chunks: p.max_chunks,
        }
    }
}

impl SplitPlanOptions {
    /// Reads `plan` (absent: `None`), checked.
    pub fn from_js(v: &JsValue) -> Result<Option<SplitPlan>> {
        if v.is_undefined() || v.is_null() {
            return Ok(None);
        }
        let p: SplitPlanOptions =
            from_js_strict(v.clone()).map_err(|e| Error::InvalidOption(format!("plan: {e}")))?;
        let plan = SplitPlan {
            min_chunk: p.min_chunk,
            max_chunks: p.max_chunks,
        };
        plan.validate()?;
        Ok(Some(plan))
    }
}

/// Arguments of `attn.decode`: one decode step's query rows on a cache (append this step's
/// keys and values to it first), with the attention options beside them as in `forward`.
#[derive(Deserialize, Tsify)]
pub struct DecodeArgs {
    /// The new query rows `[batch, qHeads, qLen, headDim]`, in the cache's storage type
    /// (`Float32Array` for f32, `Uint16Array` of f16 bits for f16).
    #[serde(with = "serde_wasm_bindgen::preserve")]
    #[tsify(type = "Float32Array | Uint16Array | number[]")]
    pub q: JsValue,
    /// The query sizes (the rest comes from the cache).
    #[serde(with = "serde_wasm_bindgen::preserve")]
    #[tsify(type = "DecodeShape")]
    pub shape: JsValue,
    /// The KV cache attended to (created on the same `WebAttn`).
    #[serde(with = "serde_wasm_bindgen::preserve")]
    #[tsify(type = "KvCache")]
    pub cache: JsValue,
    /// The split plan (default: `attn.splitPlan`'s).
    #[serde(with = "serde_wasm_bindgen::preserve", default)]
    #[tsify(optional, type = "SplitPlanOptions")]
    pub plan: JsValue,
    /// `kind`, `scale`, `window` and the kind's options.
    #[serde(flatten)]
    #[tsify(type = "AttentionOptions")]
    pub options: serde_json::Map<String, serde_json::Value>,
}

/// Arguments of `attn.decoder`: [`DecodeArgs`] without q (each `step` brings its own).
#[derive(Deserialize, Tsify)]
pub struct DecoderArgs {
    /// The query sizes of every step (the rest comes from the cache).
    #[serde(with = "serde_wasm_bindgen::preserve")]
    #[tsify(type = "DecodeShape")]
    pub shape: JsValue,
    /// The KV cache the steps append to and attend to (created on the same `WebAttn`).
    #[serde(with = "serde_wasm_bindgen::preserve")]
    #[tsify(type = "KvCache")]
    pub cache: JsValue,
    /// The split plan (default: `attn.splitPlan`'s).
    #[serde(with = "serde_wasm_bindgen::preserve", default)]
    #[tsify(optional, type = "SplitPlanOptions")]
    pub plan: JsValue,
    /// `kind`, `scale`, `window` and the kind's options.
    #[serde(flatten)]
    #[tsify(type = "AttentionOptions")]
    pub options: serde_json::Map<String, serde_json::Value>,
}

/// A decode call's arguments, read.
pub struct DecodeCall {
    /// The kind, its options, scale and window.
    pub attn: Attention,
    /// The query sizes (checked against the cache later).
    pub shape: DecodeShape,
    /// The `cache` value as JavaScript passed it.
    pub cache: JsValue,
    /// An explicit split plan.
    pub plan: Option<SplitPlan>,
    /// The query rows (`attn.decode` only).
    pub q: Option<Data>,
}

impl DecodeCall {
    /// Reads `attn.decode`'s arguments (`with_q`) or `attn.decoder`'s.
    pub fn parse(args: &JsValue, with_q: bool) -> Result<DecodeCall> {
        let bad = |e: serde_wasm_bindgen::Error| Error::InvalidOption(format!("arguments: {e}"));
        let (q, shape, cache, plan, options) = if with_q {
            let keep = ["q", "shape", "cache", "plan"];
            let raw: DecodeArgs =
                serde_wasm_bindgen::from_value(json_like(args, &keep)?).map_err(bad)?;
            let q = Data::from_js(&raw.q, "q")?;
            (Some(q), raw.shape, raw.cache, raw.plan, raw.options)
        } else {
            let keep = ["shape", "cache", "plan"];
            let raw: DecoderArgs =
                serde_wasm_bindgen::from_value(json_like(args, &keep)?).map_err(bad)?;
            (None, raw.shape, raw.cache, raw.plan, raw.options)
        };
        let attn = Attention::from_json(serde_json::Value::Object(options))?;
        Ok(DecodeCall {
            attn,
            shape: DecodeShape::from_js(shape)?,
            cache,
            plan: SplitPlanOptions::from_js(&plan)?,
            q,
        })
    }
}
