// Browser checks of webattn: GPU (WebGPU) results against the f64 CPU reference compiled into
// the same wasm module, for every registered kind and option set (testing.optionMatrix), f32
// and f16 inputs, the weights kernels, the sink measure and the errors. Inputs, metric and
// tolerances come from the crate's testing module through the bindings (testing.*), with a
// fresh seed per run: test.html?seed=N replays one. Results go to the page (a table) and to
// window.__webattnTests ({done, seed, info, checks: [{name, group, kind, pass, errors, tol,
// ms, note}], passed, failed}), which web/test.mjs reads from headless Chromium.

import init, {
  WebAttn,
  kinds,
  reference,
  referenceWeights,
  f32ToF16,
  f16ToF32,
  sinkMeasure,
  testing,
} from "./pkg/webattn.js";
import { describeOptions, sci } from "./common.js";

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
