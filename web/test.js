// Browser checks of webattn: GPU (WebGPU) results against the f64 CPU reference compiled into
// the same wasm module, for every registered kind and option set (testing.optionMatrix), f32
// and f16 inputs, the weights kernels, the sink measure, decoding over a KV cache (KvCache,
// attn.decode, attn.decoder) and the errors. Inputs, metric and
// tolerances come from the crate's testing module through the bindings (testing.*), with a
// fresh seed per run: test.html?seed=N replays one; test.html?only=forward (or decode, or lm)
// runs one part alone. The language-model checks are in test-lm.js. Results go to the page (a
// table) and to window.__webattnTests ({done, seed, info, checks: [{name, group, kind, pass, errors, tol,
// ms, note}], passed, failed}), which web/test.mjs reads from headless Chromium.
// (Over 500 lines on purpose: one check per behaviour the browser must show, each spelled out;
// the metric, generators and option matrix come from the bindings' testing exports.)

import init, {
  WebAttn,
  KvCache,
  kinds,
  reference,
  referenceWeights,
  f32ToF16,
  f16ToF32,
  sinkMeasure,
  testing,
} from "./pkg/webattn.js";
import { describeOptions, sci } from "./common.js";
import { lmChecks } from "./test-lm.js";

const params = new URLSearchParams(location.search);
const state = { done: false, seed: null, info: null, checks: [], passed: 0, failed: 0, error: null };
window.__webattnTests = state;

const table = document.getElementById("results");
const status = document.getElementById("status");

function record(c) {
  state.checks.push(c);
  if (c.pass) state.passed++;
  else state.failed++;
  const tr = document.createElement("tr");
  tr.className = c.pass ? "pass" : "fail";
  const errs = Object.entries(c.errors ?? {})
    .map(([k, e]) => `${k}: rel ${sci(e.relErr)}, max ${sci(e.maxAbs)}${e.finite === false ? ", NON-FINITE" : ""}` +
      (e.e32 !== undefined && e.bound > c.tol ? ` (e32 ${sci(e.e32)}, bound ${sci(e.bound)})` : ""))
    .join("; ");
  for (const text of [c.pass ? "PASS" : "FAIL", c.name, errs || c.note || "", c.ms.toFixed(0) + " ms"]) {
    const td = document.createElement("td");
    td.textContent = text;
    tr.appendChild(td);
  }
  table.appendChild(tr);
  status.textContent = `seed ${state.seed}: ${state.passed} passed, ${state.failed} failed so far...`;
}

/** Runs one check; `meta` ({group, kind}) lets test.mjs sum up errors per kind. */
async function check(name, fn, meta = {}) {
  const t0 = performance.now();
  let c;
  try {
    c = await fn();
  } catch (e) {
    c = { pass: false, note: `threw: ${e && e.message ? e.message : e}` };
  }
  record({ name, ms: performance.now() - t0, ...meta, ...c });
}

/** testing.judge's verdict as a check result: errors per output, with e32 and the bound. */
function judged(args, got) {
  const j = testing.judge(args, got);
  const errors = Object.fromEntries(j.verdicts.map((v) => [v.output, v]));
  return { pass: j.pass, errors, tol: j.tol, note: j.note };
}

const f16Args = (args) => ({ ...args, q: f32ToF16(args.q), k: f32ToF16(args.k), v: f32ToF16(args.v) });

function describe(shape, options, dtype) {
  const s = testing.fullShape(shape);
  const dims = `B${s.batch} Hq${s.qHeads}${s.kvHeads !== s.qHeads ? `/Hkv${s.kvHeads}` : ""} ` +
    `Tq${s.qLen}${s.kvLen !== s.qLen ? `/Tk${s.kvLen}` : ""} D${s.headDim}`;
  return `${dtype} ${options.kind} ${dims}${describeOptions(options)}`;
}

// Hand-picked cases (kind, shape and options, flat as the JS API takes them): T = 200, D = 80,
// GQA with batches, sinks, windows, a T = 1 decode row over 100 keys.
const FORWARD = [
  [{ batch: 2, qHeads: 3, qLen: 37, headDim: 64 }, { kind: "softmax" }],
  [{ qHeads: 4, kvHeads: 2, qLen: 50, headDim: 80 }, { kind: "softmax", causal: true, sinks: [0.5, -1, 2, 0] }],
  [{ qHeads: 2, qLen: 20, kvLen: 70, headDim: 64 }, { kind: "softmax", causal: true, window: 16 }],
  [{ qHeads: 2, qLen: 200, headDim: 64 }, { kind: "softmax", causal: true, scale: 0.2 }],
  [{ qHeads: 2, qLen: 45, headDim: 64 }, { kind: "sigmoid", bias: "minus-log-n" }],
  [{ batch: 2, qHeads: 4, kvHeads: 2, qLen: 33, headDim: 80 }, { kind: "sigmoid", causal: true, bias: 0, normalize: true, window: 20 }],
  [{ qHeads: 4, kvHeads: 2, qLen: 67, headDim: 64 }, { kind: "stick-breaking" }],
  [{ qHeads: 2, qLen: 41, headDim: 80 }, { kind: "stick-breaking", attendCurrent: true, remainder: "to-current", window: 24 }],
  [{ qHeads: 2, qLen: 1, kvLen: 100, headDim: 64 }, { kind: "stick-breaking" }],
  [{ qHeads: 2, qLen: 200, headDim: 64 }, { kind: "stick-breaking", remainder: "current" }],
];

const F16 = [
  [{ qHeads: 4, kvHeads: 2, qLen: 45, headDim: 64 }, { kind: "softmax", causal: true }],
  [{ qHeads: 2, qLen: 33, headDim: 80 }, { kind: "softmax", sinks: new Float32Array([1, -1]) }],
  [{ qHeads: 2, qLen: 50, headDim: 64 }, { kind: "sigmoid", causal: true }],
  [{ qHeads: 2, qLen: 29, headDim: 80 }, { kind: "sigmoid", bias: 0, normalize: true }],
  [{ qHeads: 4, kvHeads: 2, qLen: 67, headDim: 64 }, { kind: "stick-breaking" }],
  [{ qHeads: 2, qLen: 40, headDim: 80 }, { kind: "stick-breaking", attendCurrent: true, remainder: "to-current" }],
];

const WEIGHTS = [
  [{ qHeads: 4, kvHeads: 2, qLen: 33, headDim: 64 }, { kind: "softmax", causal: true, sinks: [0, 1, -1, 0.5] }, "f32"],
  [{ qHeads: 2, qLen: 33, headDim: 80 }, { kind: "sigmoid", causal: true, bias: 0, normalize: true }, "f32"],
  [{ qHeads: 2, qLen: 33, headDim: 64 }, { kind: "stick-breaking", attendCurrent: true }, "f32"],
  [{ qHeads: 2, qLen: 40, headDim: 80 }, { kind: "stick-breaking" }, "f16"],
];

// The shapes every option set of every kind runs on, in f32 and f16: T = 1, T not a multiple
// of the tile with GQA and batches, Tq < Tk (chunked prefill), Tq > Tk (rows without keys),
// and Tk = 0 (an empty cache: every row is empty). D = 64 throughout, so that SwiftShader
// compiles no pipeline beyond those of the checks above (D = 80 and other head dims are
// covered there and by the Rust tests).
const MATRIX_SHAPES = [
  { qHeads: 2, qLen: 1, headDim: 64 },
  { batch: 2, qHeads: 4, kvHeads: 2, qLen: 37, headDim: 64 },
  { qHeads: 2, qLen: 7, kvLen: 70, headDim: 64 },
  { qHeads: 2, qLen: 40, kvLen: 20, headDim: 64 },
  { qHeads: 2, qLen: 3, kvLen: 0, headDim: 64 },
];

async function run() {
  await init();
  state.seed = params.has("seed") ? Number(params.get("seed")) : testing.freshSeed();
  let n = 0;
  // Every check draws its inputs from its own seed, derived from the run's.
  const nextSeed = () => (state.seed + n++) % 2 ** 53;
  const inputs = (shape) => testing.randomQkv(shape, nextSeed());
  document.getElementById("seed").textContent = `seed ${state.seed} (replay: test.html?seed=${state.seed})`;

  const attn = await WebAttn.create();
  state.info = attn.info();
  document.getElementById("adapter").textContent = state.info.summary;

  // test.html?only=forward (or decode, or lm) runs one part of the checks.
  const only = params.get("only");
  if (!only || only === "forward") await forwardChecks(attn, inputs);
  // The prefill of the decode-steps check reuses the forward pipelines compiled above.
  if (!only || only === "decode") await decodeChecks(attn, nextSeed);
  // Last: the language models (test-lm.js), on the same WebAttn.
  if (!only || only === "lm") await lmChecks(attn, check);
}

/** The checks of forward, weights, the registry, the sink measure and the errors. */
async function forwardChecks(attn, inputs) {
  for (const [shape, options] of FORWARD) {
    await check(describe(shape, options, "f32"), async () => {
      const args = { ...options, shape, ...inputs(shape) };
      return judged(args, await attn.forward(args));
    }, { group: "f32", kind: options.kind });
  }

  for (const [shape, options] of F16) {
    await check(describe(shape, options, "f16") + ` (shader-f16: ${state.info.shaderF16})`, async () => {
      // The reference sees the same f16-rounded values (Uint16Array, widened exactly).
      const args = f16Args({ ...options, shape, ...inputs(shape) });
      return judged(args, await attn.forward(args));
    }, { group: "f16", kind: options.kind });
  }

  for (const [shape, options, dtype] of WEIGHTS) {
    await check("weights " + describe(shape, options, dtype), async () => {
      let args = { ...options, shape, ...inputs(shape) };
      if (dtype === "f16") args = f16Args(args);
      const got = await attn.weights(args);
      const e = testing.compare(got, referenceWeights(args));
      const tol = testing.tolerance(dtype);
      const s = testing.fullShape(shape);
      const len = s.batch * s.qHeads * s.qLen * s.kvLen;
      return { pass: e.relErr < tol && e.finite && got.length === len, errors: { A: e }, tol };
    }, { group: "weights", kind: options.kind });
  }

  // The option matrix of the registry (every kind, every option set), f32 and f16-packed.
  const registered = kinds();
  for (const shape of MATRIX_SHAPES) {
    for (const [name, options] of testing.optionMatrix(shape)) {
      for (const dtype of ["f32", "f16"]) {
        await check(`matrix ${describe(shape, options, dtype)} [${name}]`, async () => {
          let args = { ...options, shape, ...inputs(shape) };
          if (dtype === "f16") args = f16Args(args);
          return judged(args, await attn.forward(args));
        }, { group: dtype, kind: options.kind });
      }
    }
  }

  // Extreme logits (scale 200): the conditioned bound max(tol, 2 * e32) of SPEC.md section 6.
  const extreme = { qHeads: 2, qLen: 33, headDim: 64 };
  for (const [name, options] of testing.extremeMatrix(extreme)) {
    await check(`extreme ${describe(extreme, options, "f32")} [${name}]`, async () => {
      const args = { ...options, shape: extreme, ...inputs(extreme) };
      return judged(args, await attn.forward(args));
    }, { group: "extreme", kind: options.kind });
  }

  await check("kinds() lists the registry; every kind's default options run; all typed", async () => {
    const untyped = testing.untypedKinds();
    const shape = { qHeads: 2, qLen: 9, headDim: 64 };
    const notes = [];
    for (const k of registered) {
      const args = { ...k.default, shape, ...inputs(shape) };
      const j = testing.judge(args, await attn.forward(args));
      if (!j.pass) notes.push(`${k.name} default fails`);
      for (const alias of k.aliases) {
        const out = await attn.forward({ ...args, kind: alias });
        if (!testing.judge(args, out).pass) notes.push(`alias ${alias} fails`);
      }
    }
    const pass = registered.length >= 3 && untyped.length === 0 && notes.length === 0 &&
      registered.every((k) => k.name && k.about && k.default.kind === k.name);
    return { pass, note: `${registered.map((k) => k.name).join(", ")}; untyped: [${untyped}] ${notes.join("; ")}` };
  });

  // The split of the work over heads when a tensor exceeds the storage-binding size.
  await check("f32 softmax split over (batch, head) chunks: maxBindingSize 32 KiB, B2 H4 T64 D64", async () => {
    const small = await WebAttn.create({ maxBindingSize: 32768 });
    try {
      const shape = { batch: 2, qHeads: 4, qLen: 64, headDim: 64 };
      const args = { kind: "softmax", causal: true, shape, ...inputs(shape) };
      return judged(args, await small.forward(args));
    } finally {
      small.free();
    }
  }, { group: "f32", kind: "softmax" });

  // The sink measure through wasm against an independent JS computation (SPEC.md section 5).
  await check("sinkMeasure (wasm) = JS alpha_k of GPU softmax weights, B2 H3 T64", async () => {
    const shape = { batch: 2, qHeads: 3, qLen: 64, headDim: 64 };
    const args = { kind: "softmax", causal: true, shape, ...inputs(shape) };
    const w = await attn.weights(args);
    const [B, H, T] = [2, 3, 64];
    const notes = [];
    let pass = true;
    for (const normalize of [false, true]) {
      const m = sinkMeasure(w, { batch: B, heads: H, len: T }, { normalize });
      const alpha = new Float64Array(H * T);
      for (let b = 0; b < B; b++)
        for (let h = 0; h < H; h++) {
          const base = (b * H + h) * T * T;
          for (let i = 0; i < T; i++) {
            let rs = 0;
            for (let j = 0; j < T; j++) rs += w[base + i * T + j];
            const d = normalize ? rs + 1e-8 : 1;
            for (let k = 0; k <= i; k++) alpha[h * T + k] += w[base + i * T + k] / d / (T - k) / B;
          }
        }
      // Both sides are f64 computations of the same f32 weights: equal to rounding.
      const maxAbs = alpha.reduce((acc, a, i) => Math.max(acc, Math.abs(a - m.alpha[i])), 0);
      notes.push(`alpha(${normalize ? "normalised" : "raw"}) max abs ${sci(maxAbs)}`);
      const rate0 = alpha.filter((_, i) => i % T === 0).filter((a) => a > 0.3).length / H;
      pass &&= maxAbs < 1e-12 && m.alpha.length === H * T && m.rate.length === T && m.firstToken === rate0;
    }
    return { pass, note: notes.join(", "), tol: 1e-12 };
  });

  await check("f32ToF16 / f16ToF32 round to nearest even", async () => {
    const bits = Array.from(f32ToF16(new Float32Array([1, 0.5, 65504, 1e-8, -2, 1 + 2 ** -11, 70000])));
    const want = [0x3c00, 0x3800, 0x7bff, 0, 0xc000, 0x3c00, 0x7c00];
    const back = Array.from(f16ToF32(new Uint16Array([0x3c00, 0x3555, 0x0001, 0xfc00])));
    const wantBack = [1, 0.333251953125, 2 ** -24, -Infinity];
    const pass = JSON.stringify(bits) === JSON.stringify(want) && back.every((x, i) => x === wantBack[i]);
    return { pass, note: `bits ${bits.map((b) => b.toString(16))}; back ${back}` };
  });

  await check("WebAttn.device is the GPUDevice webattn uses", async () => {
    const d = attn.device;
    const pass = typeof GPUDevice !== "undefined" && d instanceof GPUDevice && d.limits.maxStorageBufferBindingSize > 0;
    return { pass, note: `${d}; maxStorageBufferBindingSize ${d?.limits?.maxStorageBufferBindingSize}` };
  });

  await check("error: WebAttn.create with an unknown adapter option", async () => {
    const want = 'invalid option: options.adapter must be "auto" or "software", got "gpu"';
    try {
      (await WebAttn.create({ adapter: "gpu" })).free();
      return { pass: false, note: "no exception" };
    } catch (e) {
      return { pass: e instanceof Error && e.message === want, note: e.message };
    }
  });

  await check("error: WebAttn.create with a misspelt option", async () => {
    const want = "invalid option: create options: unknown field `adaptor`, expected `adapter` or `maxBindingSize`";
    try {
      (await WebAttn.create({ adaptor: "software" })).free();
      return { pass: false, note: "no exception" };
    } catch (e) {
      return { pass: e instanceof Error && e.message === want, note: e.message };
    }
  });

  // Errors reach JavaScript as exceptions carrying the Rust Error's Display text.
  const okShape = { qHeads: 2, qLen: 8, headDim: 16 };
  const ok = inputs(okShape);
  const ERRORS = [
    ["shape mismatch (q too short)", { kind: "softmax", shape: okShape, ...ok, q: ok.q.subarray(0, 100) },
      "shape mismatch: q has 100 elements, shape [1, 2, 8, 16] needs 256", true],
    ["query heads not a multiple of kv heads", { kind: "softmax", shape: { ...okShape, qHeads: 3, kvHeads: 2 }, ...ok },
      "shape mismatch: query heads 3 are not a multiple of kv heads 2", true],
    ["unknown shape key", { kind: "softmax", shape: { ...okShape, qlen: 8 }, ...ok },
      "shape mismatch: shape: unknown field `qlen`, expected one of `batch`, `qHeads`, `kvHeads`, `qLen`, `kvLen`, `headDim`, `vDim`", true],
    ["wrong number of sinks", { kind: "softmax", shape: okShape, ...ok, sinks: [0.5, 0.5, 0.5] },
      "invalid option: softmax sinks: 3 values for 2 query heads", true],
    ["unknown option key", { kind: "softmax", shape: okShape, ...ok, casual: true },
      "invalid option: softmax options: unknown field `casual`, expected `causal` or `sinks`", true],
    ["option of another kind", { kind: "sigmoid", shape: okShape, ...ok, sinks: [0, 0] },
      "invalid option: sigmoid options: unknown field `sinks`, expected one of `causal`, `bias`, `normalize`", true],
    ["options nested the old way", { kind: "softmax", shape: okShape, ...ok, options: { causal: true } },
      "invalid option: softmax options: unknown field `options`, expected `causal` or `sinks`", true],
    ["an option of the wrong type", { kind: "stick-breaking", shape: okShape, ...ok, remainder: "keep" },
      "invalid option: stick-breaking options: unknown variant `keep`, expected one of `drop`, `current`, `to-current`", true],
    ["a non-finite scale", { kind: "softmax", shape: okShape, ...ok, scale: NaN },
      "invalid option: scale must be a finite number, got NaN", true],
    ["unsupported head dim", { kind: "stick-breaking", shape: { ...okShape, headDim: 6 }, ...inputs({ ...okShape, headDim: 6 }) },
      "unsupported head dim D=6, Dv=6: both must be multiples of 4 between 4 and 256", false],
    ["dtype mismatch (f32 q, f16 k)", { kind: "softmax", shape: okShape, ...ok, k: f32ToF16(ok.k) },
      "dtype mismatch: k must be F32, got F16", true],
    ["unknown kind", { kind: "linear", shape: okShape, ...ok },
      `invalid option: unknown attention kind 'linear' (known: ${registered.map((k) => k.name).join(", ")})`, true],
    ["no kind", { shape: okShape, ...ok }, "invalid option: 'kind' is missing", true],
  ];
  for (const [name, args, want, cpuToo] of ERRORS) {
    await check(`error: ${name}`, async () => {
      const got = [];
      try {
        await attn.forward(args);
        got.push("forward: no exception");
      } catch (e) {
        got.push(e instanceof Error ? e.message : `non-Error ${e}`);
      }
      if (cpuToo) {
        try {
          reference(args);
          got.push("reference: no exception");
        } catch (e) {
          got.push(e instanceof Error ? e.message : `non-Error ${e}`);
        }
      }
      return { pass: got.every((m) => m === want), note: got.join(" | ") };
    });
  }

  await check("an option set to undefined or null counts as absent", async () => {
    const shape = { qHeads: 2, qLen: 9, headDim: 64 };
    const args = { kind: "softmax", shape, ...inputs(shape), causal: true, window: undefined, sinks: null };
    return judged(args, await attn.forward(args));
  });
}

// ---------------------------------------------------------------------------------------------
// Decoding over a KV cache (SPEC.md section 4): every step is judged sequence by sequence
// against the f64 reference on the sequence's dense prefix (testing.judgeDecode, which gathers
// it in Rust from the cache-layout host copy), with the bound of SPEC.md section 6.

const NAN16 = 0x7e00; // an f16 NaN

/** Host copy of a cache's contents, [B, H, cap, dim]: sequence b's first lens[b] slots random,
 *  the rest NaN; f16 bits (Uint16Array) for f16. */
function cacheData(B, H, cap, dim, lens, seed, dtype) {
  const x = testing.uniform(B * H * cap * dim, seed);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) x.fill(NaN, ((b * H + h) * cap + lens[b]) * dim, (b * H + h + 1) * cap * dim);
  return dtype === "f16" ? f32ToF16(x) : x;
}

const nanOf = (x) => (x instanceof Uint16Array ? NAN16 : NaN);

/** A [B, H, t, dim] block whose last take[b] rows (sequence b) are slots from[b].. of the
 *  cache-layout array `all`; every other row is NaN (an append must never copy it). */
function block(all, [B, H, cap, dim], t, from, take) {
  const out = new all.constructor(B * H * t * dim).fill(nanOf(all));
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const src = ((b * H + h) * cap + from[b]) * dim;
      out.set(all.subarray(src, src + take[b] * dim), ((b * H + h) * t + t - take[b]) * dim);
    }
  return out;
}

/** Fills every slot of a cache with NaN through the API (a full append, then reset). */
function poison(cache) {
  const [B, H, cap] = [cache.batch, cache.kvHeads, cache.capacity];
  const fill = (dim) => (cache.dtype === "f16" ? new Uint16Array(B * H * cap * dim).fill(NAN16) : new Float32Array(B * H * cap * dim).fill(NaN));
  cache.append(fill(cache.headDim), fill(cache.vDim), new Array(B).fill(cap));
  cache.reset();
}

/** Row t of a [B, H, T, dim] array as [B, H, 1, dim]. */
function rowOf(x, B, H, T, dim, t) {
  const out = new x.constructor(B * H * dim);
  for (let u = 0; u < B * H; u++) out.set(x.subarray((u * T + t) * dim, (u * T + t + 1) * dim), u * dim);
  return out;
}

/** testing.judgeDecode's verdict as a check result. */
function judgedDecode(args, lens, got) {
  const j = testing.judgeDecode(args, lens, got);
  return { pass: j.pass, errors: Object.fromEntries(j.verdicts.map((v) => [v.output, v])), tol: j.tol, note: j.note };
}

/**
 * One decode step to check: a cache of capacity `cap` poisoned with NaN, a ragged prefill
 * (sequence b gets lens[b] - min(lens[b], tq) rows, from a block whose other rows are NaN),
 * then the step: the last min(lens[b], tq) rows appended and tq query rows attended, through
 * attn.decode (after cache.append) or a DecodeSession's step. `nanBeforeWindow: w` also puts
 * NaN into the slots before every row's window of w keys (the GPU's copy only: the reference
 * sees values there, which it must not read either).
 */
async function decodeCase(attn, c, options, seeds) {
  const { B, Hq, Hkv, D, cap, tq, lens, dtype = "f32" } = c;
  const Dv = c.Dv ?? D;
  const kAll = cacheData(B, Hkv, cap, D, lens, seeds(), dtype);
  const vAll = cacheData(B, Hkv, cap, Dv, lens, seeds(), dtype);
  const q32 = testing.uniform(B * Hq * tq * D, seeds());
  const q = dtype === "f16" ? f32ToF16(q32) : q32;
  const rows = lens.map((l) => Math.min(l, tq));
  const pre = lens.map((l, b) => l - rows[b]);
  const cache = new KvCache(attn, { batch: B, kvHeads: Hkv, capacity: cap, headDim: D, vDim: Dv, dtype });
  try {
    poison(cache);
    let [kGpu, vGpu] = [kAll, vAll];
    if (c.nanBeforeWindow) {
      [kGpu, vGpu] = [kAll.slice(), vAll.slice()];
      for (let b = 0; b < B; b++) {
        const lo = Math.max(0, lens[b] - tq - c.nanBeforeWindow + 1);
        for (let h = 0; h < Hkv; h++) {
          kGpu.fill(nanOf(kGpu), (b * Hkv + h) * cap * D, ((b * Hkv + h) * cap + lo) * D);
          vGpu.fill(nanOf(vGpu), (b * Hkv + h) * cap * Dv, ((b * Hkv + h) * cap + lo) * Dv);
        }
      }
    }
    const tPre = Math.max(0, ...pre);
    const zero = new Array(B).fill(0);
    if (tPre > 0) cache.append(block(kGpu, [B, Hkv, cap, D], tPre, zero, pre), block(vGpu, [B, Hkv, cap, Dv], tPre, zero, pre), pre);
    const k1 = block(kGpu, [B, Hkv, cap, D], tq, pre, rows);
    const v1 = block(vGpu, [B, Hkv, cap, Dv], tq, pre, rows);
    const shape = { qHeads: Hq, qLen: tq };
    let got;
    if (c.session) {
      const dec = attn.decoder({ ...options, shape, cache, plan: c.plan });
      try {
        got = await dec.step(q, k1, v1, rows);
      } finally {
        dec.free();
      }
    } else {
      cache.append(k1, v1, rows);
      got = await attn.decode({ ...options, q, shape, cache, plan: c.plan });
    }
    const lensOk = Array.from(cache.lens).join() === lens.join();
    const full = { batch: B, qHeads: Hq, kvHeads: Hkv, qLen: tq, kvLen: cap, headDim: D, vDim: Dv };
    const r = judgedDecode({ ...options, q, k: kAll, v: vAll, shape: full }, lens, got);
    if (!lensOk) Object.assign(r, { pass: false, note: `${r.note} lens ${Array.from(cache.lens)} != ${lens}` });
    return r;
  } finally {
    cache.free();
  }
}

function describeDecode(c, options, name) {
  const gqa = `Hq${c.Hq}/Hkv${c.Hkv}`;
  const plan = c.plan ? ` plan ${c.plan.minChunk}/${c.plan.maxChunks}` : " auto plan";
  const api = c.session ? "session" : "decode";
  return `decode ${c.dtype ?? "f32"} ${options.kind} B${c.B} ${gqa} Tq${c.tq} D${c.D} lens [${c.lens}]${plan} (${api})` +
    `${describeOptions(options)}${name ? ` [${name}]` : ""}`;
}

async function decodeChecks(attn, nextSeed) {
  const seeds = () => nextSeed();
  const run = (c, options, name, group = c.dtype ?? "f32") =>
    check(describeDecode(c, options, name), () => decodeCase(attn, c, options, seeds), { group: `decode ${group}`, kind: options.kind });
  const small = { minChunk: 32, maxChunks: 16 };

  // Every option set of every kind; Tq 1, 2, 5; GQA 4:2 and 8:1; ragged lengths with an empty
  // sequence, a one-key one and a full one; chunks of 32 keys (up to 9 per sequence). One
  // configuration goes through attn.decode, the other through a DecodeSession. (The rows of a
  // kv head, group x Tq, pick the kernels' row block: 2, 8 and 16 here and below, so that
  // SwiftShader compiles few pipelines; 4:2 with Tq 5 has a block of 16 with 6 rows unused,
  // 8:1 with Tq 5 three blocks.)
  const CONFIGS = [
    { B: 4, Hq: 4, Hkv: 2, D: 32, cap: 200, lens: [0, 1, 200, 137], plan: small, tqs: [1, 5] },
    { B: 3, Hq: 8, Hkv: 1, D: 32, cap: 260, lens: [260, 0, 1], plan: small, session: true, tqs: [1, 2, 5] },
  ];
  for (const base of CONFIGS) {
    for (const tq of base.tqs) {
      const c = { ...base, tq };
      for (const [name, options] of testing.optionMatrix({ batch: c.B, qHeads: c.Hq, kvHeads: c.Hkv, qLen: tq, headDim: c.D })) {
        await run(c, options, name);
      }
    }
  }

  // f16 caches (the packed route on SwiftShader, which has no shader-f16): GQA 4:1 with one
  // new row and 2:1 with two (both 4 rows per kv head: one set of pipelines per kind).
  for (const [Hq, tq] of [[8, 1], [4, 2]]) {
    const c = { B: 3, Hq, Hkv: 2, D: 32, cap: 300, lens: [0, 300, 97], plan: small, tq, dtype: "f16", session: tq === 1 };
    for (const [name, options] of testing.optionMatrix({ batch: 3, qHeads: Hq, kvHeads: 2, qLen: tq, headDim: 32 })) {
      await run(c, options, name);
    }
  }

  // Lengths at the edges of 64-key chunks, a single key and 1100 keys (18 chunks), in one
  // batch: every option set with one new row, every other one with three.
  for (const tq of [1, 3]) {
    const c = { B: 8, Hq: 2, Hkv: 1, D: 32, cap: 1100, lens: [1, 63, 64, 65, 127, 128, 129, 1100], plan: { minChunk: 64, maxChunks: 64 }, tq };
    const sets = testing.optionMatrix({ batch: 8, qHeads: 2, kvHeads: 1, qLen: tq, headDim: 32 });
    for (const [name, options] of sets.filter((_, i) => tq === 1 || i % 2 === 0)) {
      await run(c, options, name);
    }
  }

  // The automatic plan: chunks of L = 256 keys (attn.splitPlan), lengths at L +- 1 and 2L +- 1,
  // 1030 keys (5 chunks) and an empty sequence.
  {
    const lens = [255, 256, 257, 511, 512, 513, 1030, 0];
    const c = { B: 8, Hq: 8, Hkv: 1, D: 32, cap: 1030, lens, tq: 1 };
    await check("decode: attn.splitPlan gives chunks of 256 keys here", async () => {
      const cache = new KvCache(attn, { batch: 8, kvHeads: 1, capacity: 1030, headDim: 32 });
      try {
        const p = attn.splitPlan(cache, { qHeads: 8 });
        const L = Math.max(p.minChunk, Math.ceil(1030 / p.maxChunks));
        return { pass: p.minChunk === 256 && L === 256, note: `plan ${JSON.stringify(p)}: chunks of ${L} keys for 1030` };
      } finally {
        cache.free();
      }
    });
    for (const [name, options] of testing.optionMatrix({ batch: 8, qHeads: 8, kvHeads: 1, qLen: 1, headDim: 32 })) {
      await run({ ...c, session: name.length % 2 === 0 }, options, name);
    }
  }

  // Sink logits of 20, -20 and 0 enter once, at the merge (16 chunks of 32 keys).
  for (const causal of [true, false]) {
    for (const tq of [1, 5]) {
      const c = { B: 2, Hq: 4, Hkv: 2, D: 32, cap: 500, lens: [500, 211], plan: { minChunk: 32, maxChunks: 32 }, tq };
      await run(c, { kind: "softmax", causal, sinks: [20, -20, 0, 20] });
    }
  }

  // Windows across chunk boundaries (chunks of 32 keys), NaN in every slot before every
  // row's window: those chunks are skipped, not computed and masked.
  const WINDOW_KINDS = [
    { kind: "softmax", causal: true },
    { kind: "softmax" },
    { kind: "sigmoid", causal: true, bias: -1 },
    { kind: "stick-breaking" },
    { kind: "stick-breaking", remainder: "to-current" },
  ];
  for (const w of [1, 31, 33, 100, 250]) {
    for (const tq of [2, 8]) {
      const c = { B: 3, Hq: 2, Hkv: 2, D: 32, cap: 400, lens: [400, 290, 40], plan: { minChunk: 32, maxChunks: 32 }, tq, nanBeforeWindow: w, session: tq === 8 };
      for (const options of WINDOW_KINDS) await run(c, { ...options, window: w }, `window ${w}, NaN before it`);
    }
  }

  // N single-token steps through a DecodeSession equal one prefill (forward) over the same
  // tokens, row by row: each step within its bound of the f64 reference, and within twice
  // that of the forward's row. Sigmoid with explicit biases (-ln n would follow the step's
  // length). The loop creates no wgpu object after its first step.
  {
    const [B, Hq, Hkv, D, n] = [2, 4, 2, 64, 40];
    const shape = { batch: B, qHeads: Hq, kvHeads: Hkv, qLen: n, headDim: D };
    const STEPS = [
      { kind: "softmax", causal: true },
      { kind: "softmax", causal: true, sinks: [0.5, -1, 2, 0], window: 17 },
      { kind: "sigmoid", causal: true, bias: -2 },
      { kind: "sigmoid", causal: true, bias: 0.5, normalize: true },
      { kind: "stick-breaking" },
      { kind: "stick-breaking", attendCurrent: true },
      { kind: "stick-breaking", remainder: "to-current", window: 13 },
    ];
    for (const options of STEPS) {
      await check(`decode: ${n} steps = one prefill, ${options.kind} B${B} Hq${Hq}/Hkv${Hkv} D${D}${describeOptions(options)} (session, plan 16/8)`, async () => {
        const { q, k, v } = testing.randomQkv(shape, seeds());
        const args = { ...options, q, k, v, shape };
        const full = await attn.forward(args);
        const fj = testing.judge(args, full);
        const cache = new KvCache(attn, { batch: B, kvHeads: Hkv, capacity: n, headDim: D });
        let dec;
        try {
          poison(cache);
          dec = attn.decoder({ ...options, shape: { qHeads: Hq }, cache, plan: { minChunk: 16, maxChunks: 8 } });
          let worst = 0, before = null;
          const notes = [];
          const errors = {};
          for (let t = 0; t < n; t++) {
            const qt = rowOf(q, B, Hq, n, D, t);
            const got = await dec.step(qt, rowOf(k, B, Hkv, n, D, t), rowOf(v, B, Hkv, n, D, t));
            if (t === 0) before = attn.objectsCreated();
            // k and v are the cache's contents at capacity n; every sequence holds t + 1 keys.
            const j = testing.judgeDecode({ ...options, q: qt, k, v, shape: { ...shape, qLen: 1, kvLen: n } }, [t + 1, t + 1], got);
            for (const vd of j.verdicts) {
              const fromPrefill = rowOf(full[vd.output], B, Hq, n, vd.output === "o" ? D : 1, t);
              const e = testing.compare(got[vd.output], Float64Array.from(fromPrefill));
              const ok = vd.ok && e.finite && e.relErr <= 2 * vd.bound;
              if (!ok) notes.push(`step ${t} ${vd.output}: vs f64 ${sci(vd.relErr)} (bound ${sci(vd.bound)}), vs prefill ${sci(e.relErr)}`);
              worst = Math.max(worst, e.relErr);
              if (!errors[vd.output] || vd.relErr / vd.bound > errors[vd.output].relErr / errors[vd.output].bound) errors[vd.output] = vd;
            }
            if (!j.pass) notes.push(`step ${t}: ${j.note}`);
          }
          const after = attn.objectsCreated();
          const same = JSON.stringify(before) === JSON.stringify(after);
          if (!same) notes.push(`objects created by steps: ${JSON.stringify(before)} -> ${JSON.stringify(after)}`);
          if (!fj.pass) notes.push(`prefill: ${fj.note || "outside its bound"}`);
          const lensOk = Array.from(cache.lens).join() === `${n},${n}`;
          if (!lensOk) notes.push(`lens ${Array.from(cache.lens)}`);
          return { pass: notes.length === 0, errors, tol: testing.tolerance("f32"), note: `largest step vs prefill difference ${sci(worst)}; no wgpu object after step 1: ${same}; ${notes.slice(0, 3).join("; ")}` };
        } finally {
          dec?.free();
          cache.free();
        }
      }, { group: "decode f32", kind: options.kind });
    }
  }

  // Appends copy the last rows of each sequence's block, ragged, into the right slots, and
  // leave every other slot alone; setLen, truncate and reset move lengths only.
  await check("decode: KvCache.append is ragged and bottom-aligned; lens, truncate, setLen, reset", async () => {
    const [B, H, D, cap] = [3, 2, 4, 6];
    const cache = new KvCache(attn, { batch: B, kvHeads: H, capacity: cap, headDim: D });
    try {
      poison(cache);
      const x = Float32Array.from({ length: B * H * 3 * D }, (_, i) => i);
      cache.append(x, x, [0, 1, 3]);
      cache.append(x, x, new Uint32Array([2, 1, 3]));
      const notes = [];
      if (Array.from(cache.lens).join() !== "2,2,6") notes.push(`lens ${Array.from(cache.lens)}`);
      const { k, v } = await cache.read();
      for (let b = 0; b < B; b++)
        for (let h = 0; h < H; h++) {
          const want = [];
          for (const r of [[0, 1, 3][b], [2, 1, 3][b]]) for (let i = 3 - r; i < 3; i++) want.push((b * H + h) * 3 + i);
          for (let slot = 0; slot < cap; slot++) {
            const got = Array.from(k.subarray(((b * H + h) * cap + slot) * D, ((b * H + h) * cap + slot + 1) * D));
            const gotV = Array.from(v.subarray(((b * H + h) * cap + slot) * D, ((b * H + h) * cap + slot + 1) * D));
            const exp = slot < want.length ? Array.from(x.subarray(want[slot] * D, (want[slot] + 1) * D)) : null;
            const ok = exp ? got.join() === exp.join() && gotV.join() === exp.join() : got.every(Number.isNaN);
            if (!ok) notes.push(`seq ${b} head ${h} slot ${slot}: ${got}`);
          }
        }
      cache.truncate(2, 4);
      cache.setLen(0, 6);
      if (Array.from(cache.lens).join() !== "6,2,4") notes.push(`after truncate/setLen ${Array.from(cache.lens)}`);
      cache.reset();
      if (Array.from(cache.lens).join() !== "0,0,0") notes.push(`after reset ${Array.from(cache.lens)}`);
      const props = `${cache.batch} ${cache.kvHeads} ${cache.capacity} ${cache.headDim} ${cache.vDim} ${cache.dtype}`;
      if (props !== "3 2 6 4 4 f32") notes.push(`properties ${props}`);
      return { pass: notes.length === 0, note: notes.slice(0, 4).join("; ") };
    } finally {
      cache.free();
    }
  });

  // Errors: each a JavaScript Error carrying the Rust error's text.
  await check("decode errors: CacheFull, shapes, dtypes, caches freed or of another WebAttn, options", async () => {
    const notes = [];
    const expect = async (what, fn, want) => {
      try {
        await fn();
        notes.push(`${what}: no exception`);
      } catch (e) {
        const msg = e instanceof Error ? e.message : `non-Error ${e}`;
        if (!(want instanceof RegExp ? want.test(msg) : msg === want)) notes.push(`${what}: ${msg}`);
      }
    };
    const [B, Hq, Hkv, D, cap] = [2, 4, 2, 16, 8];
    const cache = new KvCache(attn, { batch: B, kvHeads: Hkv, capacity: cap, headDim: D });
    const block3 = new Float32Array(B * Hkv * 3 * D).fill(0.5);
    const q = new Float32Array(B * Hq * D).fill(0.25);
    const shape = { qHeads: Hq };
    try {
      cache.append(block3, block3, [3, 3]);
      cache.append(block3, block3, [3, 1]);
      await expect("append past the capacity", () => cache.append(block3, block3, [3, 0]),
        "KV cache full: sequence 0 holds 6 of 8 slots and cannot take 3 more");
      if (Array.from(cache.lens).join() !== "6,4") notes.push(`a refused append moved lens: ${Array.from(cache.lens)}`);
      await expect("setLen past the capacity", () => cache.setLen(1, 9),
        "KV cache full: sequence 1 holds 4 of 8 slots and cannot take 5 more");
      await expect("truncate longer", () => cache.truncate(1, 5),
        "invalid option: truncate: sequence 1 has 4 slots, cannot truncate to 5");
      await expect("append rows past T", () => cache.append(block3, block3, [4, 0]),
        "shape mismatch: sequence 0 appends 4 rows but k_new has 3");
      await expect("append with rows of the wrong count", () => cache.append(block3, block3, [1]),
        "shape mismatch: rows_per_seq has 1 entries for a batch of 2");
      await expect("append v of another T", () => cache.append(block3, block3.subarray(0, B * Hkv * 2 * D), [1, 1]),
        `shape mismatch: v has ${B * Hkv * 2 * D} elements, shape [2, 2, 3, 16] needs ${B * Hkv * 3 * D}`);
      await expect("append f16 to an f32 cache", () => cache.append(f32ToF16(block3), f32ToF16(block3), [1, 1]),
        "dtype mismatch: k must be F32, got F16");
      await expect("append negative rows", () => cache.append(block3, block3, [-1, 0]),
        /^invalid option: rows must be an array of 2 non-negative integers/);
      await expect("decode q of the wrong length", () => attn.decode({ kind: "softmax", q: q.subarray(1), shape, cache }),
        `shape mismatch: q has ${q.length - 1} elements, shape [2, 4, 1, 16] needs ${q.length}`);
      await expect("decode f16 q on an f32 cache", () => attn.decode({ kind: "softmax", q: f32ToF16(q), shape, cache }),
        "dtype mismatch: q must be F32, got F16");
      await expect("decode shape with kvLen", () => attn.decode({ kind: "softmax", q, shape: { qHeads: Hq, kvLen: 8 }, cache }),
        /^shape mismatch: shape: unknown field `kvLen`/);
      await expect("decode shape of another head dim", () => attn.decode({ kind: "softmax", q, shape: { qHeads: Hq, headDim: 32 }, cache }),
        "shape mismatch: shape.headDim is 32 but the cache's is 16");
      await expect("decode query heads not a multiple", () => attn.decode({ kind: "softmax", q: q.subarray(0, B * 3 * D), shape: { qHeads: 3 }, cache }),
        "shape mismatch: query heads 3 are not a multiple of kv heads 2");
      await expect("decode with a misspelt option", () => attn.decode({ kind: "softmax", casual: true, q, shape, cache }),
        "invalid option: softmax options: unknown field `casual`, expected `causal` or `sinks`");
      await expect("decode with sinks of the wrong count", () => attn.decoder({ kind: "softmax", sinks: [1], shape, cache }),
        "invalid option: softmax sinks: 1 values for 4 query heads");
      await expect("decode with a bad plan", () => attn.decode({ kind: "softmax", q, shape, cache, plan: { minChunk: 0, maxChunks: 4 } }),
        /^invalid option: split plan/);
      await expect("decode without a cache", () => attn.decode({ kind: "softmax", q, shape, cache: {} }),
        "invalid option: cache must be a KvCache (new KvCache(attn, {...})), got a Object");
      await expect("decoder given q", () => attn.decoder({ kind: "softmax", q, shape, cache }),
        "invalid option: softmax options: unknown field `q`, expected `causal` or `sinks`");
      const other = await WebAttn.create();
      try {
        await expect("a cache of another WebAttn", () => other.decode({ kind: "softmax", q, shape, cache }),
          "invalid option: the KvCache belongs to another WebAttn (create it on the one that decodes)");
      } finally {
        other.free();
      }
      const dec = attn.decoder({ kind: "sigmoid", bias: 0, shape, cache });
      try {
        const one = new Float32Array(B * Hkv * D).fill(0.5);
        const first = dec.step(q, one, one, [1, 0]);
        await expect("a step before the previous one ended", () => dec.step(q),
          "invalid option: DecodeSession.step: the previous step has not finished (await it first)");
        await first;
        await dec.step(q, one, one, [1, 0]);
        await expect("a step past the capacity", () => dec.step(q, one, one, [1, 0]),
          "KV cache full: sequence 0 holds 8 of 8 slots and cannot take 1 more");
        await expect("a step with k of the wrong length", () => dec.step(q, block3, block3),
          `shape mismatch: k has ${block3.length} elements, shape [2, 2, 1, 16] needs ${one.length}`);
        if (Array.from(dec.lens).join() !== "8,4") notes.push(`session lens ${Array.from(dec.lens)}`);
      } finally {
        dec.free();
      }
      await expect("a misspelt cache option", () => new KvCache(attn, { kvHeads: 1, capacity: 8, headDim: 16, dtyp: "f16" }),
        /^invalid option: cache options: unknown field `dtyp`/);
      await expect("an unsupported head dim", () => new KvCache(attn, { kvHeads: 1, capacity: 8, headDim: 6 }),
        "unsupported head dim D=6, Dv=6: both must be multiples of 4 between 4 and 256");
      await expect("a zero capacity", () => new KvCache(attn, { kvHeads: 1, capacity: 0, headDim: 16 }),
        "shape mismatch: a KV cache's capacity must be at least 1");
    } finally {
      cache.free();
    }
    await expect("a freed cache", () => attn.decode({ kind: "softmax", q, shape, cache }), "invalid option: the KvCache was freed");
    return { pass: notes.length === 0, note: notes.join("; ") };
  });
}

run()
  .catch((e) => {
    state.error = String(e && e.stack ? e.stack : e);
    record({ name: "setup", pass: false, ms: 0, note: state.error });
  })
  .finally(() => {
    state.done = true;
    status.textContent = `seed ${state.seed}: ${state.passed} passed, ${state.failed} failed`;
    document.body.dataset.done = "1";
  });

// For manual experiments from the console.
window.__webattn = { kinds, reference, referenceWeights, testing };
