//! The language-model runner in JavaScript (cargo feature `lm`; the contract is docs/lm.md):
//! `LmModel` (a model's weights and kernels on a `WebAttn`'s GPU, `generate` and `inspect`),
//! `LmSession` (prefill, decode steps, logits) and `LmSampler` (greedy, temperature, top-k,
//! seeded). Every error of the runner reaches JavaScript as an `Error` named `LmError` whose
//! message is the Rust [`LmError`]'s `Display` text and whose `kind` says which variant it is
//! (`"Json"`, `"Config"`, `"UnknownAttention"`, `"Safetensors"`, `"MissingTensor"`,
//! `"UnexpectedTensor"`, `"Shape"`, `"DType"`, `"Usage"`, `"Gpu"`).

use std::cell::{Cell, RefCell};

use js_sys::{Array, ArrayBuffer, Float32Array, Function, Reflect, Uint8Array};
use serde::Serialize;
use tsify::{Ts, Tsify};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::args::{describe, from_js_strict};
use super::types::f32_array;
use super::{hook, to_js, WebAttn};
use crate::dtype::DType;
use crate::lm::{LmError, LmResult, Model, Sampler, Session};

use super::lm_types::{
    GenerateOptions, GenerateResult, LmConfig, LmInspection, LmToken, SamplerOptions,
};

/// What the runner's exports return: errors are JavaScript `Error`s named `LmError`.
type LmJsResult<T> = std::result::Result<T, JsValue>;

/// The variant's name, the `kind` of the JavaScript error.
fn kind_of(e: &LmError) -> &'static str {
    match e {
        LmError::Json(_) => "Json",
        LmError::Config(_) => "Config",
        LmError::UnknownAttention(_) => "UnknownAttention",
        LmError::Safetensors(_) => "Safetensors",
        LmError::MissingTensor(_) => "MissingTensor",
        LmError::UnexpectedTensor(_) => "UnexpectedTensor",
        LmError::Shape { .. } => "Shape",
        LmError::DType { .. } => "DType",
        LmError::Usage(_) => "Usage",
        LmError::Gpu(_) => "Gpu",
    }
}

/// The JavaScript `Error` of a runner error: message the `Display` text, name `LmError`,
/// `kind` the variant.
fn lm_err(e: LmError) -> JsValue {
    let err = js_sys::Error::new(&e.to_string());
    err.set_name("LmError");
    // Setting a property on a fresh Error cannot fail.
    let _ = Reflect::set(&err, &"kind".into(), &kind_of(&e).into());
    err.into()
}

/// A usage error (wrong arguments), as a JavaScript `LmError`.
fn usage(msg: String) -> JsValue {
    lm_err(LmError::Usage(msg))
}

/// Serialises a result for JavaScript, as [`super::to_js`] does.
fn to_js_lm<T: Serialize + Tsify>(x: &T) -> LmJsResult<Ts<T>> {
    to_js(x).map_err(JsValue::from)
}

/// `"f32"` or `"f16"` (default f32).
fn parse_dtype(d: Option<String>) -> LmResult<DType> {
    match d.as_deref() {
        None | Some("f32") => Ok(DType::F32),
        Some("f16") => Ok(DType::F16),
        Some(x) => Err(LmError::Usage(format!(
            "dtype must be \"f32\" or \"f16\", got {x:?}"
        ))),
    }
}

/// One prompt or token list: a string (its UTF-8 bytes), a `Uint8Array`, or an array of
/// integers 0 to 255.
fn bytes_of(v: &JsValue, what: &str) -> LmResult<Vec<u8>> {
    if let Some(s) = v.as_string() {
        return Ok(s.into_bytes());
    }
    if let Some(a) = v.dyn_ref::<Uint8Array>() {
        return Ok(a.to_vec());
    }
    let bad = || {
        LmError::Usage(format!(
            "{what} must be a string, a Uint8Array or an array of byte values (0 to 255), got {}",
            describe(v)
        ))
    };
    let arr = if Array::is_array(v) {
        v.clone()
    } else if ArrayBuffer::is_view(v) {
        Array::from(v).into()
    } else {
        return Err(bad());
    };
    let xs: Vec<f64> = serde_wasm_bindgen::from_value(arr).map_err(|_| bad())?;
    xs.iter()
        .map(|&x| {
            if (0.0..256.0).contains(&x) && x.fract() == 0.0 {
                Ok(x as u8)
            } else {
                Err(LmError::Usage(format!(
                    "{what}: {x} is not a byte token (an integer 0 to 255)"
                )))
            }
        })
        .collect()
}

/// Decodes bytes to text as they arrive: complete characters come out, an incomplete one
/// waits for its next bytes, invalid bytes become U+FFFD.
#[derive(Default)]
struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    fn push(&mut self, b: u8) -> String {
        self.pending.push(b);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let ok = e.valid_up_to();
                    // The prefix is valid UTF-8 by the error's own account.
                    out.push_str(std::str::from_utf8(&self.pending[..ok]).unwrap_or_default());
                    match e.error_len() {
                        None => {
                            self.pending.drain(..ok);
                            return out;
                        }
                        Some(n) => {
                            out.push('\u{fffd}');
                            self.pending.drain(..ok + n);
                        }
                    }
                }
            }
        }
    }
}

/// A tiny byte-level language model (docs/lm.md) on a `WebAttn`'s GPU.
///
/// ```js
/// const attn = await WebAttn.create();
/// const config = await (await fetch("models/sb-nope/config.json")).text();
/// const weights = new Uint8Array(await (await fetch("models/sb-nope/model.safetensors")).arrayBuffer());
/// const model = new LmModel(attn, config, weights, "f16");
/// const r = await model.generate("And God said", { maxTokens: 100 }, (t) => out.append(t.text));
/// console.log(r.text, r.prefillTokensPerS, r.decodeTokensPerS);
/// ```
#[wasm_bindgen]
pub struct LmModel {
    model: Model,
}

#[wasm_bindgen]
impl LmModel {
    /// Loads a model on `attn`'s GPU from its `config.json` text and `model.safetensors`
    /// bytes. `dtype` `"f32"` (default: weights widened to f32, f32 KV caches) or `"f16"`
    /// (weights stay f16, read as packed pairs: no shader-f16 needed; f16 KV caches).
    /// Throws an `LmError` naming what is wrong with the files.
    #[wasm_bindgen(constructor)]
    pub fn new(
        attn: &WebAttn,
        config: &str,
        weights: &[u8],
        #[wasm_bindgen(unchecked_optional_param_type = "\"f32\" | \"f16\"")] dtype: Option<String>,
    ) -> LmJsResult<LmModel> {
        hook();
        let dtype = parse_dtype(dtype).map_err(lm_err)?;
        let model = Model::load(attn.ctx.clone(), config, weights, dtype).map_err(lm_err)?;
        Ok(LmModel { model })
    }

    /// The model's config.
    #[wasm_bindgen(getter)]
    pub fn config(&self) -> LmJsResult<Ts<LmConfig>> {
        let c = self.model.config();
        to_js_lm(&LmConfig {
            name: c.name.clone(),
            vocab: c.vocab,
            d_model: c.d_model,
            n_layer: c.n_layer,
            n_head: c.n_head,
            n_kv_head: c.n_kv_head,
            head_dim: c.head_dim,
            d_ff: c.d_ff,
            norm_eps: c.norm_eps,
            rope_base: c.rope.map(|r| r.base),
            context: c.context,
            attention: c.attention_json.clone(),
        })
    }

    /// The model's name (`config.name`).
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.model.config().name.clone()
    }

    /// The precision of weights, caches and attention: `"f32"` or `"f16"`.
    #[wasm_bindgen(getter, unchecked_return_type = "\"f32\" | \"f16\"")]
    pub fn dtype(&self) -> String {
        super::decode::dtype_name(self.model.precision()).into()
    }

    /// A session of `batch` sequences with room for `capacity` tokens each (prompt and
    /// generated).
    pub fn session(&self, batch: usize, capacity: usize) -> LmJsResult<LmSession> {
        let session = Session::new(&self.model, batch, capacity).map_err(lm_err)?;
        Ok(LmSession {
            session: RefCell::new(session),
            busy: Cell::new(false),
        })
    }

    /// Generates from `prompt` (a string, a `Uint8Array` or byte values) on a session of its
    /// own: prefill, then one token at a time, each passed to `onToken({token, index, text})`
    /// as soon as it is drawn (returning `false` from it stops). Options: `maxTokens`
    /// (default 100), `temperature` (0, default: greedy), `topK`, `seed`. Resolves to the
    /// tokens, the text and the prefill and decode speeds.
    pub async fn generate(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | Uint8Array | number[]")] prompt: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "GenerateOptions")] options: Option<JsValue>,
        #[wasm_bindgen(unchecked_optional_param_type = "(token: LmToken) => boolean | void")]
        on_token: Option<Function>,
    ) -> LmJsResult<Ts<GenerateResult>> {
        hook();
        let o: GenerateOptions = match options {
            Some(v) if !v.is_undefined() && !v.is_null() => {
                from_js_strict(v).map_err(|e| usage(format!("generate options: {e}")))?
            }
            _ => GenerateOptions::default(),
        };
        let prompt = bytes_of(&prompt, "prompt").map_err(lm_err)?;
        let n = o.max_tokens.unwrap_or(100);
        if n == 0 {
            return Err(usage("generate: maxTokens must be at least 1".into()));
        }
        let (mut sampler, seed) = SamplerOptions {
            temperature: o.temperature,
            top_k: o.top_k,
            seed: o.seed,
        }
        .sampler()
        .map_err(lm_err)?;
        let mut s = Session::new(&self.model, 1, prompt.len() + n).map_err(lm_err)?;
        let now = || web_time::Instant::now();
        let t0 = now();
        s.prefill(&[&prompt]).map_err(lm_err)?;
        let mut logits = s.logits().await.map_err(lm_err)?;
        let prefill_ms = t0.elapsed().as_secs_f64() * 1e3;
        let t1 = now();
        let mut in_callback = 0.0;
        let mut tokens = Vec::with_capacity(n);
        let mut utf8 = Utf8Stream::default();
        let mut stopped = false;
        for i in 0..n {
            let t = sampler.sample(&logits);
            tokens.push(t);
            if let Some(f) = &on_token {
                let c0 = now();
                let arg = to_js_lm(&LmToken {
                    token: t,
                    index: i,
                    text: utf8.push(t),
                })?;
                let r = f.call1(&JsValue::NULL, &arg.into())?;
                in_callback += c0.elapsed().as_secs_f64() * 1e3;
                if r.as_bool() == Some(false) {
                    stopped = true;
                    break;
                }
            }
            if i + 1 == n {
                break;
            }
            s.step(&[t]).map_err(lm_err)?;
            logits = s.logits().await.map_err(lm_err)?;
        }
        let decode_ms = (t1.elapsed().as_secs_f64() * 1e3 - in_callback).max(0.0);
        let steps = tokens.len().saturating_sub(1);
        to_js_lm(&GenerateResult {
            text: String::from_utf8_lossy(&tokens).into_owned(),
            tokens: Uint8Array::from(&tokens[..]).into(),
            seed: seed as f64,
            stopped,
            prefill_tokens: prompt.len(),
            prefill_ms,
            prefill_tokens_per_s: prompt.len() as f64 / (prefill_ms / 1e3).max(1e-9),
            decode_tokens: steps,
            decode_ms,
            decode_tokens_per_s: if steps == 0 {
                0.0
            } else {
                steps as f64 / (decode_ms / 1e3).max(1e-9)
            },
        })
    }

    /// Runs `text` (1 to 1024 tokens: a string, a `Uint8Array` or byte values) through the
    /// model and reads back, per layer, the attention weights `[heads, T, T]`, the
    /// stick-breaking remainder `[heads, T]` and the sink measure (α per head and key, raw
    /// and row-normalised, and the first-token sink rate).
    pub async fn inspect(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | Uint8Array | number[]")] text: JsValue,
    ) -> LmJsResult<Ts<LmInspection>> {
        hook();
        let text = bytes_of(&text, "text").map_err(lm_err)?;
        let i = self.model.inspect(&text).await.map_err(lm_err)?;
        to_js_lm(&LmInspection::from(i))
    }
}

/// B sequences of a model decoded together (`model.session(batch, capacity)`).
///
/// ```js
/// const s = model.session(1, 256);
/// s.prefill(["And God said"]);
/// const sampler = new LmSampler();             // greedy
/// for (let i = 0; i < 50; i++) {
///   const next = sampler.sample(await s.logits());
///   s.step([next]);
/// }
/// ```
#[wasm_bindgen]
pub struct LmSession {
    session: RefCell<Session>,
    /// A `logits()` call is waiting for the GPU.
    busy: Cell<bool>,
}

/// Clears a session's busy flag when a read ends, however it ends.
struct Busy<'a>(&'a Cell<bool>);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

impl LmSession {
    fn session_mut(&self) -> LmResult<std::cell::RefMut<'_, Session>> {
        if self.busy.get() {
            return Err(LmError::Usage(
                "the session is reading logits: await logits() first".into(),
            ));
        }
        self.session
            .try_borrow_mut()
            .map_err(|_| LmError::Usage("the session is in use by another call".into()))
    }

    fn prefill_inner(&self, prompts: &JsValue) -> LmResult<()> {
        let list: Vec<Vec<u8>> = if Array::is_array(prompts) {
            Array::from(prompts)
                .iter()
                .enumerate()
                .map(|(i, p)| bytes_of(&p, &format!("prompts[{i}]")))
                .collect::<LmResult<_>>()?
        } else if prompts.is_string() || prompts.is_instance_of::<Uint8Array>() {
            vec![bytes_of(prompts, "prompt")?]
        } else {
            return Err(LmError::Usage(format!(
                "prefill takes an array of prompts (one per sequence: strings, Uint8Arrays or \
                 arrays of byte values) or one prompt, got {}",
                describe(prompts)
            )));
        };
        let refs: Vec<&[u8]> = list.iter().map(|p| &p[..]).collect();
        self.session_mut()?.prefill(&refs)
    }

    fn step_inner(&self, tokens: &JsValue) -> LmResult<()> {
        let toks = match tokens.as_f64() {
            Some(_) => bytes_of(&Array::of1(tokens).into(), "tokens")?,
            None => bytes_of(tokens, "tokens")?,
        };
        self.session_mut()?.step(&toks)
    }

    // The shared borrow lives across the read-back; no call borrows mutably meanwhile, as
    // every mutating call checks `busy` first (and gets an error, not a panic).
    #[allow(clippy::await_holding_refcell_ref)]
    async fn logits_inner(&self) -> LmResult<Vec<f32>> {
        if self.busy.replace(true) {
            return Err(LmError::Usage(
                "logits(): the previous call has not finished (await it first)".into(),
            ));
        }
        let _busy = Busy(&self.busy);
        let s = self
            .session
            .try_borrow()
            .map_err(|_| LmError::Usage("the session is in use by another call".into()))?;
        s.logits().await
    }
}

#[wasm_bindgen]
impl LmSession {
    /// Runs the prompts (an array, one per sequence: strings, `Uint8Array`s or arrays of byte
    /// values; a single string or `Uint8Array` for one sequence) through the model on an
    /// empty session and fills its KV caches. The logits at each prompt's last token are then
    /// ready for `logits()`.
    pub fn prefill(
        &self,
        #[wasm_bindgen(
            unchecked_param_type = "Array<string | Uint8Array | number[]> | string | Uint8Array"
        )]
        prompts: JsValue,
    ) -> LmJsResult<()> {
        self.prefill_inner(&prompts).map_err(lm_err)
    }

    /// One decode step: sequence b takes `tokens[b]` (a `Uint8Array`, an array of byte
    /// values, or one number for a single sequence) at its next position. The logits of the
    /// following token are then ready for `logits()`. Throws `KV cache full: ...` once a
    /// sequence is full.
    pub fn step(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array | number[] | number")] tokens: JsValue,
    ) -> LmJsResult<()> {
        self.step_inner(&tokens).map_err(lm_err)
    }

    /// The logits `[batch, vocab]` after the last prefill or step (waits for the GPU). Await
    /// it before the next call.
    pub async fn logits(&self) -> LmJsResult<Float32Array> {
        let l = self.logits_inner().await.map_err(lm_err)?;
        Ok(f32_array(&l))
    }

    /// Empties every sequence (a new prefill may follow).
    pub fn reset(&self) -> LmJsResult<()> {
        self.session_mut().map_err(lm_err)?.reset();
        Ok(())
    }

    /// Tokens each sequence holds so far.
    #[wasm_bindgen(getter)]
    pub fn lens(&self) -> Vec<u32> {
        self.session
            .try_borrow()
            .map(|s| s.lens().iter().map(|&l| l as u32).collect())
            .unwrap_or_default()
    }

    /// Sequences B.
    #[wasm_bindgen(getter)]
    pub fn batch(&self) -> u32 {
        self.session.try_borrow().map_or(0, |s| s.batch() as u32)
    }

    /// Slots per sequence.
    #[wasm_bindgen(getter)]
    pub fn capacity(&self) -> u32 {
        self.session.try_borrow().map_or(0, |s| s.capacity() as u32)
    }
}

/// Draws tokens from logits on the CPU (the Rust `webattn::lm::Sampler`): greedy by default,
/// or `{temperature, topK, seed}`.
#[wasm_bindgen]
pub struct LmSampler {
    sampler: Sampler,
    seed: u64,
}

#[wasm_bindgen]
impl LmSampler {
    /// A sampler: `{temperature?, topK?, seed?}` (temperature 0, the default, is greedy: the
    /// arg max, lowest index on ties).
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_optional_param_type = "SamplerOptions")] options: Option<JsValue>,
    ) -> LmJsResult<LmSampler> {
        hook();
        let (sampler, seed) = SamplerOptions::read(options, "sampler options")
            .and_then(|o| o.sampler())
            .map_err(lm_err)?;
        Ok(LmSampler { sampler, seed })
    }

    /// Draws one token from the logits of sequence `row` (default 0) of `logits`
    /// (`[batch, vocab]`, as `session.logits()` gives them; `vocab` default 256).
    pub fn sample(
        &mut self,
        logits: &[f32],
        row: Option<usize>,
        vocab: Option<usize>,
    ) -> LmJsResult<u8> {
        let (row, vocab) = (row.unwrap_or(0), vocab.unwrap_or(256));
        let rows = logits.len().checked_div(vocab).unwrap_or(0);
        if vocab == 0 || !logits.len().is_multiple_of(vocab) || row >= rows {
            return Err(usage(format!(
                "sample: row {row} of {} logits in rows of {vocab}",
                logits.len()
            )));
        }
        Ok(self.sampler.sample(&logits[row * vocab..][..vocab]))
    }

    /// The temperature (0: greedy).
    #[wasm_bindgen(getter)]
    pub fn temperature(&self) -> f32 {
        self.sampler.temperature
    }

    /// Top-k (0: all).
    #[wasm_bindgen(getter, js_name = topK)]
    pub fn top_k(&self) -> usize {
        self.sampler.top_k
    }

    /// The seed it started from.
    #[wasm_bindgen(getter)]
    pub fn seed(&self) -> f64 {
        self.seed as f64
    }
}
