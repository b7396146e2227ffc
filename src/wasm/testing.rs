//! `testing.*`: the crate's one testing toolkit ([`crate::testing`]) for the browser tests
//! and the demo, so that JavaScript has no generator, metric or tolerance of its own: seeded
//! inputs with fresh seeds, the error metric and the conditioned tolerance of SPEC.md
//! section 6, and the option matrix of every registered kind.
//! (About 500 lines: one export per helper of `webattn::testing`, each a thin wrapper.)

use js_sys::{Float32Array, Float64Array};
use serde::Serialize;
use tsify::{Ts, Tsify};
use wasm_bindgen::prelude::*;

use super::args::{describe, Args, AttentionArgs, AttentionShape, KindOptions};
use super::types::{f32_array, AttentionOutput, ReferenceOutput};
use super::{hook, js_err, to_js, JsResult};
use crate::attention::{Attention, HostOutput};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::reference::{reference_in, Precision, RefOutput};
use crate::shape::Shape;
use crate::testing::{self as t, Errors, Rng, Verdict};

/// Seeds are JavaScript numbers: integers below 2^53.
const SEED_MASK: u64 = (1 << 53) - 1;

/// Seeded q, k, v.
#[derive(Serialize, Tsify)]
pub struct Qkv {
    /// Queries, uniform in [-1, 1).
    #[serde(with = "serde_wasm_bindgen::preserve")]
    #[tsify(type = "Float32Array")]
    pub q: JsValue,
    /// Keys, uniform in [-1, 1).
    #[serde(with = "serde_wasm_bindgen::preserve")]
    #[tsify(type = "Float32Array")]
    pub k: JsValue,
    /// Values, uniform in [-1, 1).
    #[serde(with = "serde_wasm_bindgen::preserve")]
    #[tsify(type = "Float32Array")]
    pub v: JsValue,
}

/// How far one output is from the reference (`testing.compare`).
#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
pub struct ErrorMeasure {
    /// Relative L2 error `||got - want|| / ||want||` over the finite reference entries.
    pub rel_err: f64,
    /// Largest absolute error.
    pub max_abs: f64,
    /// Finite wherever the reference is, and equal where it is not (lse = -Infinity); same
    /// length.
    pub finite: bool,
}

impl From<Errors> for ErrorMeasure {
    fn from(e: Errors) -> Self {
        ErrorMeasure {
            rel_err: e.rel,
            max_abs: e.max_abs,
            finite: e.finite,
        }
    }
}

/// One output's verdict under SPEC.md section 6.
#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
pub struct OutputVerdict {
    /// `"o"`, `"lse"` or `"rem"`.
    pub output: String,
    /// The GPU's relative L2 error against the f64 reference.
    pub rel_err: f64,
    /// The GPU's largest absolute error.
    pub max_abs: f64,
    /// Finite where it must be.
    pub finite: bool,
    /// The relative error of a straightforward f32 computation (the floor).
    pub e32: f64,
    /// `max(tol, 2 * e32)`.
    pub bound: f64,
    /// Finite and within the bound.
    pub ok: bool,
}

impl From<Verdict> for OutputVerdict {
    fn from(v: Verdict) -> Self {
        OutputVerdict {
            output: v.output.into(),
            rel_err: v.gpu.rel,
            max_abs: v.gpu.max_abs,
            finite: v.gpu.finite,
            e32: v.e32,
            bound: v.bound,
            ok: v.ok,
        }
    }
}

/// The verdict on one call's outputs (`testing.judge`).
#[derive(Serialize, Tsify)]
pub struct Judgement {
    /// Every output present as the reference has it and within its bound.
    pub pass: bool,
    /// The tolerance of the storage type (1e-5 for f32, 5e-3 for f16).
    pub tol: f64,
    /// One entry per output.
    pub verdicts: Vec<OutputVerdict>,
    /// Outputs missing or unexpected, if any (else empty).
    pub note: String,
}

/// One option set of the matrix: a name and the options, ready to spread into a call's
/// arguments.
#[derive(Serialize, Tsify)]
#[tsify(hashmap_as_object)]
pub struct OptionSet(
    /// A name (`"softmax causal window"`).
    pub String,
    /// `{kind, ...options}`.
    #[tsify(type = "AttentionOptions")]
    pub serde_json::Value,
);

/// A seed fresh on every call (`?seed=` in the tests replays one): an integer below 2^53.
#[wasm_bindgen(js_namespace = testing, js_name = freshSeed)]
pub fn fresh_seed() -> f64 {
    (t::fresh_seed("browser") & SEED_MASK) as f64
}

fn to_seed(x: f64) -> Result<u64> {
    if x >= 0.0 && x.fract() == 0.0 && x <= SEED_MASK as f64 {
        Ok(x as u64)
    } else {
        Err(Error::InvalidOption(format!(
            "seed must be an integer from 0 to 2^53 - 1, got {x}"
        )))
    }
}

/// Random q, k, v for `shape` from `seed` (uniform in [-1, 1), never zero; the generator of
/// the Rust tests, so a seed gives the same inputs here and there).
#[wasm_bindgen(js_namespace = testing, js_name = randomQkv)]
pub fn random_qkv(shape: Ts<AttentionShape>, seed: f64) -> JsResult<Ts<Qkv>> {
    hook();
    let s = AttentionShape::from_js(shape.js_value()).map_err(js_err)?;
    let (q, k, v) = Rng(to_seed(seed).map_err(js_err)?).qkv(&s);
    let arr = |x: Vec<f32>| JsValue::from(f32_array(&x));
    let qkv = Qkv {
        q: arr(q),
        k: arr(k),
        v: arr(v),
    };
    to_js(&qkv)
}

/// `n` values uniform in [-amp, amp) (default amp 1), never zero, from `seed`.
#[wasm_bindgen(js_namespace = testing)]
pub fn uniform(n: u32, seed: f64, amp: Option<f32>) -> JsResult<Float32Array> {
    let mut r = Rng(to_seed(seed).map_err(js_err)?);
    Ok(f32_array(&r.vec(n as usize, amp.unwrap_or(1.0))))
}

/// A `Float32Array` or an array of numbers as f32 values (`what` names it in errors).
fn f32s(v: &JsValue, what: &str) -> Result<Vec<f32>> {
    if let Some(a) = v.dyn_ref::<Float32Array>() {
        return Ok(a.to_vec());
    }
    serde_wasm_bindgen::from_value(v.clone()).map_err(|e| {
        Error::InvalidOption(format!(
            "{what} must be a Float32Array or numbers, got {} ({e})",
            describe(v)
        ))
    })
}

/// A `Float64Array`, another typed array or an array of numbers as f64 values.
fn f64s(v: &JsValue, what: &str) -> Result<Vec<f64>> {
    if let Some(a) = v.dyn_ref::<Float64Array>() {
        return Ok(a.to_vec());
    }
    // Other typed arrays (a cache's `lens` is a Uint32Array) as arrays of numbers.
    let arr: JsValue = if js_sys::ArrayBuffer::is_view(v) {
        js_sys::Array::from(v).into()
    } else {
        v.clone()
    };
    serde_wasm_bindgen::from_value(arr).map_err(|e| {
        Error::InvalidOption(format!(
            "{what} must be a Float64Array or numbers, got {} ({e})",
            describe(v)
        ))
    })
}

/// Compares GPU values (`Float32Array`) with the reference (`Float64Array`): relative L2
/// error, largest absolute error, and whether every entry is finite where the reference is
/// (non-finite reference entries must match exactly). Magnitudes below f32's normal range
/// compare as 0.
#[wasm_bindgen(js_namespace = testing)]
pub fn compare(
    #[wasm_bindgen(unchecked_param_type = "Float32Array | number[]")] got: JsValue,
    #[wasm_bindgen(unchecked_param_type = "Float64Array | number[]")] want: JsValue,
) -> JsResult<Ts<ErrorMeasure>> {
    let e = t::compare(
        &f32s(&got, "got").map_err(js_err)?,
        &f64s(&want, "want").map_err(js_err)?,
    );
    to_js(&ErrorMeasure::from(e))
}

/// The relative L2 tolerance of SPEC.md section 6 for a storage type: `"f32"` 1e-5,
/// `"f16"` 5e-3.
#[wasm_bindgen(js_namespace = testing)]
pub fn tolerance(
    #[wasm_bindgen(unchecked_param_type = "\"f32\" | \"f16\"")] dtype: String,
) -> JsResult<f64> {
    match dtype.as_str() {
        "f32" => Ok(t::tolerance(DType::F32)),
        "f16" => Ok(t::tolerance(DType::F16)),
        _ => Err(js_err(Error::InvalidOption(format!(
            "dtype must be \"f32\" or \"f16\", got {dtype:?}"
        )))),
    }
}

/// Judges a forward call's outputs `got` against the f64 reference of the same arguments
/// under SPEC.md section 6: each output's error must be at most `max(tol, 2 * e32)`, `e32`
/// being the error of a straightforward f32 computation (the floor of ill-conditioned cases),
/// with `tol` that of the inputs' storage type. Outputs the reference has must be there, and
/// no other.
#[wasm_bindgen(js_namespace = testing)]
pub fn judge(args: Ts<AttentionArgs>, got: Ts<AttentionOutput>) -> JsResult<Ts<Judgement>> {
    hook();
    let j = judge_inner(&args, got).map_err(js_err)?;
    to_js(&j)
}

/// A forward call's outputs as the host holds them.
fn host_output(got: Ts<AttentionOutput>) -> Result<HostOutput> {
    let got: AttentionOutput = serde_wasm_bindgen::from_value(got.js_value())
        .map_err(|e| Error::InvalidOption(format!("got: {e}")))?;
    let opt = |v: &JsValue, what| (!v.is_undefined()).then(|| f32s(v, what)).transpose();
    Ok(HostOutput {
        o: f32s(&got.o, "got.o")?,
        lse: opt(&got.lse, "got.lse")?,
        rem: opt(&got.rem, "got.rem")?,
    })
}

/// Notes on outputs present in `got` and not in `want` or the other way round.
fn presence_notes(got: &HostOutput, want: &RefOutput) -> Vec<String> {
    let mut notes = Vec::new();
    for (name, g, w) in [
        ("lse", got.lse.is_some(), want.lse.is_some()),
        ("rem", got.rem.is_some(), want.rem.is_some()),
    ] {
        if g != w {
            notes.push(format!(
                "{} output {name}",
                if g { "unexpected" } else { "missing" }
            ));
        }
    }
    notes
}

fn judge_inner(args: &Ts<AttentionArgs>, got: Ts<AttentionOutput>) -> Result<Judgement> {
    let a = Args::parse(args)?;
    let got = host_output(got)?;
    let [q, k, v] = a.host_f32();
    let want = reference_in(&a.attn, &a.shape, &q, &k, &v, Precision::F64)?;
    let plain = reference_in(&a.attn, &a.shape, &q, &k, &v, Precision::F32)?;
    let tol = t::tolerance(a.q.dtype());
    let verdicts = t::judge_against_in(&got, &want, &plain, tol, a.q.dtype());
    let notes = presence_notes(&got, &want);
    Ok(Judgement {
        pass: notes.is_empty() && verdicts.iter().all(|v| v.ok),
        tol,
        verdicts: verdicts.into_iter().map(OutputVerdict::from).collect(),
        note: notes.join("; "),
    })
}

/// A decode step's problem, sequence by sequence: each sequence's q rows and the dense
/// prefix of its keys and values (its `lens[b]` slots), gathered from cache-layout k and v.
struct DecodeProblem {
    attn: Attention,
    /// The whole step: `kv_len` = the cache's capacity.
    shape: Shape,
    lens: Vec<usize>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    dtype: DType,
}

impl DecodeProblem {
    fn parse(args: &Ts<AttentionArgs>, lens: &JsValue) -> Result<DecodeProblem> {
        let a = Args::parse(args)?;
        a.check_lens()?;
        let s = a.shape;
        let lens: Vec<f64> = f64s(lens, "lens")?;
        if lens.len() != s.batch
            || lens
                .iter()
                .any(|&l| !(l >= 0.0 && l.fract() == 0.0 && l <= s.kv_len as f64))
        {
            return Err(Error::ShapeMismatch(format!(
                "lens must hold {} integers from 0 to the capacity kvLen = {}, got {lens:?}",
                s.batch, s.kv_len
            )));
        }
        let [q, k, v] = a.host_f32();
        Ok(DecodeProblem {
            dtype: a.q.dtype(),
            attn: a.attn,
            shape: s,
            lens: lens.into_iter().map(|l| l as usize).collect(),
            q,
            k,
            v,
        })
    }

    /// Sequence `b`'s shape and inputs: q `[1, Hq, Tq, D]`, k `[1, Hkv, len, D]`,
    /// v `[1, Hkv, len, Dv]`.
    fn sequence(&self, b: usize) -> (Shape, Vec<f32>, Vec<f32>, Vec<f32>) {
        let s = &self.shape;
        let len = self.lens[b];
        let one = Shape {
            batch: 1,
            kv_len: len,
            ..*s
        };
        let nq = s.q_heads * s.q_len * s.head_dim;
        let q = self.q[b * nq..(b + 1) * nq].to_vec();
        let prefix = |x: &[f32], dim: usize| -> Vec<f32> {
            (0..s.kv_heads)
                .flat_map(|h| {
                    let start = ((b * s.kv_heads + h) * s.kv_len) * dim;
                    x[start..start + len * dim].iter().copied()
                })
                .collect()
        };
        (
            one,
            q,
            prefix(&self.k, s.head_dim),
            prefix(&self.v, s.v_dim),
        )
    }

    /// The references of every sequence in `precision`, laid out as the batch's outputs.
    fn reference(&self, precision: Precision) -> Result<RefOutput> {
        let mut all = RefOutput {
            o: Vec::new(),
            lse: None,
            rem: None,
        };
        for b in 0..self.shape.batch {
            let (one, q, k, v) = self.sequence(b);
            let r = reference_in(&self.attn, &one, &q, &k, &v, precision)?;
            all.o.extend(r.o);
            for (dst, src) in [(&mut all.lse, r.lse), (&mut all.rem, r.rem)] {
                if let Some(x) = src {
                    dst.get_or_insert_with(Vec::new).extend(x);
                }
            }
        }
        Ok(all)
    }
}

/// The f64 reference of a decode step (no GPU), sequence by sequence: `args` is a forward
/// call's arguments whose k and v are the cache's contents `[batch, kvHeads, capacity, ..]`
/// (`shape.kvLen` = the capacity) and q the step's rows; sequence b attends to its first
/// `lens[b]` slots (the slots past them may hold anything, NaN included). `{o, lse?, rem?}`
/// as Float64Arrays laid out as the step's outputs.
#[wasm_bindgen(js_namespace = testing, js_name = referenceDecode)]
pub fn reference_decode(
    args: Ts<AttentionArgs>,
    #[wasm_bindgen(unchecked_param_type = "ArrayLike<number>")] lens: JsValue,
) -> JsResult<Ts<ReferenceOutput>> {
    hook();
    let p = DecodeProblem::parse(&args, &lens).map_err(js_err)?;
    let r = p.reference(Precision::F64).map_err(js_err)?;
    to_js(&ReferenceOutput::from(r))
}

/// `testing.judge` for a decode step (see `referenceDecode` for `args` and `lens`): every
/// sequence's outputs against the f64 reference on its dense prefix, within SPEC.md
/// section 6's bound. Each verdict is the worst sequence's for that output (relative to its
/// bound); `note` names the failing sequences.
#[wasm_bindgen(js_namespace = testing, js_name = judgeDecode)]
pub fn judge_decode(
    args: Ts<AttentionArgs>,
    #[wasm_bindgen(unchecked_param_type = "ArrayLike<number>")] lens: JsValue,
    got: Ts<AttentionOutput>,
) -> JsResult<Ts<Judgement>> {
    hook();
    let j = judge_decode_inner(&args, &lens, got).map_err(js_err)?;
    to_js(&j)
}

fn judge_decode_inner(
    args: &Ts<AttentionArgs>,
    lens: &JsValue,
    got: Ts<AttentionOutput>,
) -> Result<Judgement> {
    let p = DecodeProblem::parse(args, lens)?;
    let got = host_output(got)?;
    let s = &p.shape;
    let tol = t::tolerance(p.dtype);
    let (no, nr) = (s.q_heads * s.q_len * s.v_dim, s.q_heads * s.q_len);
    if got.o.len() != s.batch * no {
        return Err(Error::ShapeMismatch(format!(
            "got.o has {} elements, the step's o [{}, {}, {}, {}] needs {}",
            got.o.len(),
            s.batch,
            s.q_heads,
            s.q_len,
            s.v_dim,
            s.batch * no
        )));
    }
    let mut worst: Vec<Verdict> = Vec::new();
    let mut notes = Vec::new();
    for b in 0..s.batch {
        let (one, q, k, v) = p.sequence(b);
        let part = |x: &Option<Vec<f32>>| {
            x.as_ref()
                .map(|x| x.get(b * nr..(b + 1) * nr).unwrap_or_default().to_vec())
        };
        let mine = HostOutput {
            o: got.o[b * no..(b + 1) * no].to_vec(),
            lse: part(&got.lse),
            rem: part(&got.rem),
        };
        let want = reference_in(&p.attn, &one, &q, &k, &v, Precision::F64)?;
        let plain = reference_in(&p.attn, &one, &q, &k, &v, Precision::F32)?;
        if b == 0 {
            notes.extend(presence_notes(&mine, &want));
        }
        for v in t::judge_against(&mine, &want, &plain, tol) {
            if !v.ok {
                notes.push(format!(
                    "sequence {b} (Tk {}): {} rel {:e} > bound {:e}{}",
                    p.lens[b],
                    v.output,
                    v.gpu.rel,
                    v.bound,
                    if v.gpu.finite { "" } else { ", non-finite" }
                ));
            }
            let ratio = |x: &Verdict| {
                if x.ok {
                    x.gpu.rel / x.bound
                } else {
                    f64::INFINITY
                }
            };
            match worst.iter_mut().find(|w| w.output == v.output) {
                Some(w) if ratio(&v) > ratio(w) => *w = v,
                Some(_) => {}
                None => worst.push(v),
            }
        }
    }
    Ok(Judgement {
        pass: notes.is_empty() && worst.iter().all(|v| v.ok),
        tol,
        verdicts: worst.into_iter().map(OutputVerdict::from).collect(),
        note: notes.join("; "),
    })
}

fn option_sets(sets: Vec<(String, Attention)>) -> JsResult<Vec<Ts<OptionSet>>> {
    sets.into_iter()
        .map(|(name, a)| to_js(&OptionSet(name, a.to_json())))
        .collect()
}

/// Every registered kind's option sets for `shape` (each takes a distinct kernel path): the
/// matrix the Rust tests run, as `[name, {kind, ...options}]` pairs.
#[wasm_bindgen(js_namespace = testing, js_name = optionMatrix)]
pub fn option_matrix(shape: Ts<AttentionShape>) -> JsResult<Vec<Ts<OptionSet>>> {
    let s = AttentionShape::from_js(shape.js_value()).map_err(js_err)?;
    option_sets(t::option_matrix(&s))
}

/// One option set per kind with extreme logits (scale 200: |z| up to about 1e3), where the
/// f32 floor of SPEC.md section 6 sets the bound.
#[wasm_bindgen(js_namespace = testing, js_name = extremeMatrix)]
pub fn extreme_matrix(shape: Ts<AttentionShape>) -> JsResult<Vec<Ts<OptionSet>>> {
    let s = AttentionShape::from_js(shape.js_value()).map_err(js_err)?;
    option_sets(t::extreme_matrix(&s))
}

/// `shape` with every default filled in (batch, kvHeads, kvLen, vDim), checked.
#[wasm_bindgen(js_namespace = testing, js_name = fullShape)]
pub fn full_shape(shape: Ts<AttentionShape>) -> JsResult<Ts<AttentionShape>> {
    let s = AttentionShape::from_js(shape.js_value()).map_err(js_err)?;
    to_js(&AttentionShape::full(&s))
}

/// Registered kinds that the TypeScript type `AttentionOptions` does not describe (empty
/// unless a kind was registered without adding it to the bindings' declarations).
#[wasm_bindgen(js_namespace = testing, js_name = untypedKinds)]
pub fn untyped_kinds() -> Vec<String> {
    KindOptions::untyped()
}
