// Browser checks of webattn: GPU (WebGPU) results against the f64 CPU reference compiled into
// the same wasm module, for every kind, f32 and f16 inputs, the weights kernels, the sink
// measure and the errors. Results go to the page (a table) and to window.__webattnTests
// ({done, info, checks: [{name, pass, errors, tol, ms, note}], passed, failed}), which
// web/test.mjs reads from headless Chromium.

import init, {
  WebAttn,
  reference,
  referenceWeights,
  f32ToF16,
  f16ToF32,
  sinkMeasure,
} from "./pkg/webattn.js";
import { compare, fullShape, randn, randomQkv, sci, sizes } from "./common.js";

const TOL_F32 = 1e-5;
const TOL_F16 = 5e-3;

const state = { done: false, info: null, checks: [], passed: 0, failed: 0, error: null };
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
    .map(([k, e]) => `${k}: rel ${sci(e.relErr)}, max ${sci(e.maxAbs)}${e.nonFinite ? `, ${e.nonFinite} non-finite` : ""}`)
    .join("; ");
  for (const text of [c.pass ? "PASS" : "FAIL", c.name, errs || c.note || "", c.ms.toFixed(0) + " ms"]) {
    const td = document.createElement("td");
    td.textContent = text;
    tr.appendChild(td);
  }
  table.appendChild(tr);
  status.textContent = `${state.passed} passed, ${state.failed} failed so far...`;
}

async function check(name, fn) {
  const t0 = performance.now();
  let c;
  try {
    c = await fn();
  } catch (e) {
    c = { pass: false, note: `threw: ${e && e.message ? e.message : e}` };
  }
  record({ name, ms: performance.now() - t0, ...c });
}

/** Errors of each output against the reference, and whether all are within `tol`. */
function judge(kind, got, want, tol) {
  const errors = { o: compare(got.o, want.o) };
  const aux = kind === "softmax" ? "lse" : kind === "stick-breaking" ? "rem" : null;
  const notes = [];
  if (aux) errors[aux] = compare(got[aux], want[aux]);
  for (const k of ["lse", "rem"]) {
    if (k !== aux && got[k] !== undefined) notes.push(`unexpected output ${k}`);
  }
  const pass =
    notes.length === 0 &&
    Object.values(errors).every((e) => e.relErr < tol && e.nonFinite === 0 && !e.note);
  return { pass, errors, tol, note: notes.join("; ") };
}

function f16Args(args) {
  return { ...args, q: f32ToF16(args.q), k: f32ToF16(args.k), v: f32ToF16(args.v) };
}

const FORWARD = [
  // kind, shape, options
  ["softmax", { batch: 2, qHeads: 3, qLen: 37, headDim: 64 }, {}],
  ["softmax", { qHeads: 4, kvHeads: 2, qLen: 50, headDim: 80 }, { causal: true, sinks: [0.5, -1, 2, 0] }],
  ["softmax", { qHeads: 2, qLen: 20, kvLen: 70, headDim: 64 }, { causal: true, window: 16 }],
  ["softmax", { qHeads: 2, qLen: 200, headDim: 64 }, { causal: true, scale: 0.2 }],
  ["sigmoid", { qHeads: 2, qLen: 45, headDim: 64 }, { bias: "minus-log-n" }],
  ["sigmoid", { batch: 2, qHeads: 4, kvHeads: 2, qLen: 33, headDim: 80 }, { causal: true, bias: 0, normalize: true, window: 20 }],
  ["stick-breaking", { qHeads: 4, kvHeads: 2, qLen: 67, headDim: 64 }, {}],
  ["stick-breaking", { qHeads: 2, qLen: 41, headDim: 80 }, { attendCurrent: true, remainder: "current", window: 24 }],
  ["stick-breaking", { qHeads: 2, qLen: 1, kvLen: 100, headDim: 64 }, {}],
  ["stick-breaking", { qHeads: 2, qLen: 200, headDim: 64 }, { remainder: "current" }],
];

const F16 = [
  ["softmax", { qHeads: 4, kvHeads: 2, qLen: 45, headDim: 64 }, { causal: true }],
  ["softmax", { qHeads: 2, qLen: 33, headDim: 80 }, { sinks: [1, -1] }],
  ["sigmoid", { qHeads: 2, qLen: 50, headDim: 64 }, { causal: true }],
  ["sigmoid", { qHeads: 2, qLen: 29, headDim: 80 }, { bias: 0, normalize: true }],
  ["stick-breaking", { qHeads: 4, kvHeads: 2, qLen: 67, headDim: 64 }, {}],
  ["stick-breaking", { qHeads: 2, qLen: 40, headDim: 80 }, { attendCurrent: true, remainder: "current" }],
];

const WEIGHTS = [
  ["softmax", { qHeads: 4, kvHeads: 2, qLen: 33, headDim: 64 }, { causal: true, sinks: [0, 1, -1, 0.5] }, "f32"],
  ["sigmoid", { qHeads: 2, qLen: 33, headDim: 80 }, { causal: true, bias: 0, normalize: true }, "f32"],
  ["stick-breaking", { qHeads: 2, qLen: 33, headDim: 64 }, { attendCurrent: true }, "f32"],
  ["stick-breaking", { qHeads: 2, qLen: 40, headDim: 80 }, {}, "f16"],
];

function describe(kind, shape, options, dtype) {
  const s = fullShape(shape);
  const dims = `B${s.batch} Hq${s.qHeads}${s.kvHeads !== s.qHeads ? `/Hkv${s.kvHeads}` : ""} ` +
    `Tq${s.qLen}${s.kvLen !== s.qLen ? `/Tk${s.kvLen}` : ""} D${s.headDim}`;
  const opts = Object.entries(options)
    .map(([k, v]) => (v === true ? k : `${k}=${Array.isArray(v) ? `[${v}]` : v}`))
    .join(",");
  return `${dtype} ${kind} ${dims}${opts ? " " + opts : ""}`;
}

async function run() {
  await init();
  const attn = await WebAttn.create();
  state.info = attn.info();
  document.getElementById("adapter").textContent = state.info.summary;
  let seed = 1000;

  for (const [kind, shape, options] of FORWARD) {
    const s = seed++ * 7;
    await check(describe(kind, shape, options, "f32"), async () => {
      const args = { kind, shape, options, ...randomQkv(shape, s) };
      const got = await attn.forward(args);
      return judge(kind, got, reference(args), TOL_F32);
    });
  }

  for (const [kind, shape, options] of F16) {
    const s = seed++ * 7;
    await check(describe(kind, shape, options, "f16") + ` (shader-f16: ${state.info.shaderF16})`, async () => {
      // The reference sees the same f16-rounded values (Uint16Array, widened exactly).
      const args = f16Args({ kind, shape, options, ...randomQkv(shape, s) });
      const got = await attn.forward(args);
      return judge(kind, got, reference(args), TOL_F16);
    });
  }

  for (const [kind, shape, options, dtype] of WEIGHTS) {
    const s = seed++ * 7;
    await check("weights " + describe(kind, shape, options, dtype), async () => {
      let args = { kind, shape, options, ...randomQkv(shape, s) };
      if (dtype === "f16") args = f16Args(args);
      const got = await attn.weights(args);
      const want = referenceWeights(args);
      const e = compare(got, want);
      const tol = dtype === "f16" ? TOL_F16 : TOL_F32;
      return { pass: e.relErr < tol && e.nonFinite === 0 && got.length === sizes(shape).weights, errors: { A: e }, tol };
    });
  }

  // The split of the work over heads when a tensor exceeds the storage-binding size.
  await check("f32 softmax split over (batch, head) chunks: maxBindingSize 32 KiB, B2 H4 T64 D64", async () => {
    const small = await WebAttn.create({ maxBindingSize: 32768 });
    try {
      const shape = { batch: 2, qHeads: 4, qLen: 64, headDim: 64 };
      const args = { kind: "softmax", shape, options: { causal: true }, ...randomQkv(shape, 4242) };
      return judge("softmax", await small.forward(args), reference(args), TOL_F32);
    } finally {
      small.free();
    }
  });

  // The sink measure through wasm against an independent JS computation (SPEC.md section 5).
  await check("sinkMeasure (wasm) = JS alpha_k of GPU softmax weights, B2 H3 T64", async () => {
    const shape = { batch: 2, qHeads: 3, qLen: 64, headDim: 64 };
    const args = { kind: "softmax", shape, options: { causal: true }, ...randomQkv(shape, 77) };
    const w = await attn.weights(args);
    const [B, H, T] = [2, 3, 64];
    const errors = {};
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
      const e = compare(m.alpha, alpha);
      errors[normalize ? "alpha(normalised)" : "alpha(raw)"] = e;
      const rate0 = alpha.filter((_, i) => i % T === 0).filter((a) => a > 0.3).length / H;
      pass &&= e.relErr < 1e-12 && m.rate.length === T && m.firstToken === rate0;
    }
    return { pass, errors, tol: 1e-12 };
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

  // Errors reach JavaScript as exceptions carrying the Rust Error's Display text.
  const okShape = { qHeads: 2, qLen: 8, headDim: 16 };
  const ok = randomQkv(okShape, 5);
  const ERRORS = [
    ["shape mismatch (q too short)", { kind: "softmax", shape: okShape, ...ok, q: ok.q.subarray(0, 100) },
      "shape mismatch: q has 100 elements, shape [1, 2, 8, 16] needs 256", true],
    ["query heads not a multiple of kv heads", { kind: "softmax", shape: { ...okShape, qHeads: 3, kvHeads: 2 }, ...ok },
      "shape mismatch: query heads 3 are not a multiple of kv heads 2", true],
    ["wrong number of sinks", { kind: "softmax", shape: okShape, ...ok, options: { sinks: [0.5, 0.5, 0.5] } },
      "invalid option: softmax sinks: 3 values for 2 query heads", true],
    ["option of another kind", { kind: "sigmoid", shape: okShape, ...ok, options: { sinks: [0, 0] } },
      "invalid option: options.sinks does not apply to sigmoid attention", true],
    ["unsupported head dim", { kind: "stick-breaking", shape: { ...okShape, headDim: 6 }, ...randomQkv({ ...okShape, headDim: 6 }, 9) },
      "unsupported head dim D=6, Dv=6: both must be multiples of 4 between 4 and 256", false],
    ["dtype mismatch (f32 q, f16 k)", { kind: "softmax", shape: okShape, ...ok, k: f32ToF16(ok.k) },
      "dtype mismatch: k must be F32, got F16", true],
    ["unknown kind", { kind: "linear", shape: okShape, ...ok },
      'invalid option: kind must be "softmax", "sigmoid" or "stick-breaking", got "linear"', true],
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
}

run()
  .catch((e) => {
    state.error = String(e && e.stack ? e.stack : e);
    record({ name: "setup", pass: false, ms: 0, note: state.error });
  })
  .finally(() => {
    state.done = true;
    status.textContent = `${state.passed} passed, ${state.failed} failed`;
    document.body.dataset.done = "1";
  });

// Keep randn referenced for manual experiments from the console.
window.__webattn = { randn, reference, referenceWeights };
