//! The arguments of an attention call, `{kind, q, k, v, shape, ...options}`, read with serde.
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

use crate::kinds::stick_breaking::StickBreakingOptions;
use crate::kinds::{registry, sigmoid::SigmoidOptions, softmax::SoftmaxOptions};
use crate::{Attention, DType, Error, Result, Shape};

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
const TENSORS: [&str; 3] = ["q", "k", "v"];

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
        let raw: AttentionArgs = serde_wasm_bindgen::from_value(json_like(&args.js_value())?)
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
/// an infinity) is refused rather than read as null. q, k, v and shape are kept as they are.
fn json_like(args: &JsValue) -> Result<JsValue> {
    if !args.is_object() || Array::is_array(args) {
        return Err(Error::InvalidOption(format!(
            "expected an object {{kind, q, k, v, shape, ...options}}, got {}",
            describe(args)
        )));
    }
    let copy = Object::new();
    for entry in Object::entries(args.unchecked_ref::<Object>()).iter() {
        let entry: Array = entry.unchecked_into();
        let (key, mut value) = (entry.get(0), entry.get(1));
        let name = key.as_string().unwrap_or_default();
        if !TENSORS.contains(&name.as_str()) && name != "shape" {
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
