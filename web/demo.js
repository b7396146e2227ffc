// The webattn demo: runs the kernels on the page's WebGPU adapter and draws what they compute.
// window.__demo = {rendered, error, ...} tells web/test.mjs when the first render is done.

import init, { WebAttn, f32ToF16, kinds, sinkMeasure, testing } from "./pkg/webattn.js";
import { drawHeatmap, drawLegend, sci } from "./common.js";

let KINDS = []; // the registry's kinds (kinds()), filled once the module is loaded
const SINK_T = 64; // the paper's sequence length for the sink measure
const SINK_BATCH = 4; // random sequences averaged
const MAP_T = 64; // the attention map's length (at most)

const $ = (id) => document.getElementById(id);
const form = $("controls");
const demo = { rendered: false, error: null };
window.__demo = demo;

let attn;

function params() {
  const f = new FormData(form);
  return {
    kind: f.get("kind"),
    len: Number(f.get("len")),
    heads: Number(f.get("heads")),
    dim: Number(f.get("dim")),
    dtype: f.get("dtype"),
    causal: f.get("causal") === "on",
    plant: Number(f.get("plant")),
  };
}

/** Options (`{kind, ...}`) for `kind` in the demo's setting: the kind's defaults from the
 *  registry, with the causal switch where the kind has one, and a sigmoid-style bias of 0
 *  (the attention-sink paper's setting) where it has a bias. */
function optionsFor(kind, causal) {
  const options = { ...KINDS.find((k) => k.name === kind).default };
  if ("causal" in options) options.causal = causal;
  if ("bias" in options) options.bias = 0;
  return options;
}

/** Seeded random q, k, v (the crate's generator, uniform in [-1, 1)). */
const randomQkv = (shape, seed) => testing.randomQkv(shape, seed);

/** Random q, k, v with a planted sink: the same direction added to every query and to key 0
 *  (logits of key 0 rise by about s^2). */
function sinkInputs(shape, s, seed) {
  const { q, k, v } = randomQkv(shape, seed);
  const D = shape.headDim, T = shape.qLen, units = (shape.batch ?? 1) * shape.qHeads;
  const u = testing.uniform(D, seed + 99);
  const norm = Math.hypot(...u);
  const len = Math.pow(D, 0.25); // |u|^2 * scale = 1 with scale = 1/sqrt(D)
  for (let i = 0; i < D; i++) u[i] *= (s * len) / norm;
  for (let n = 0; n < units; n++) {
    for (let i = 0; i < T; i++) for (let d = 0; d < D; d++) q[(n * T + i) * D + d] += u[d];
    for (let d = 0; d < D; d++) k[n * T * D + d] += u[d];
  }
  return { q, k, v };
}

const asDtype = (args, dtype) =>
  dtype === "f16" ? { ...args, q: f32ToF16(args.q), k: f32ToF16(args.k), v: f32ToF16(args.v) } : args;

// ---------- drawing ----------

function axes(ctx, w, h, pad, yMax, yLabel) {
  ctx.strokeStyle = "#889";
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.moveTo(pad.l, pad.t);
  ctx.lineTo(pad.l, h - pad.b);
  ctx.lineTo(w - pad.r, h - pad.b);
  ctx.stroke();
  ctx.fillStyle = "#556";
  ctx.font = "11px system-ui, sans-serif";
  ctx.textAlign = "right";
  ctx.fillText(yLabel(yMax), pad.l - 4, pad.t + 8);
  ctx.fillText(yLabel(0), pad.l - 4, h - pad.b);
}

/** Bar chart of alpha_k (raw, bars) with the row-normalised alpha_k (dots) and eps. */
function drawSinkChart(canvas, raw, norm, eps) {
  const ctx = canvas.getContext("2d");
  const { width: w, height: h } = canvas;
  const pad = { l: 34, r: 8, t: 8, b: 22 };
  ctx.clearRect(0, 0, w, h);
  const yMax = 1;
  const T = raw.length;
  const x = (k) => pad.l + ((w - pad.l - pad.r) * k) / T;
  const y = (v) => h - pad.b - ((h - pad.t - pad.b) * Math.min(v, yMax)) / yMax;
  axes(ctx, w, h, pad, yMax, (v) => v.toFixed(1));
  const bw = Math.max(1, (w - pad.l - pad.r) / T - 1);
  for (let k = 0; k < T; k++) {
    ctx.fillStyle = k === 0 ? "#d9480f" : "#4c6ef5";
    ctx.fillRect(x(k), y(raw[k]), bw, h - pad.b - y(raw[k]));
  }
  ctx.fillStyle = "#111";
  for (let k = 0; k < T; k++) {
    ctx.beginPath();
    ctx.arc(x(k) + bw / 2, y(norm[k]), 1.8, 0, 2 * Math.PI);
    ctx.fill();
  }
  ctx.setLineDash([4, 3]);
  ctx.strokeStyle = "#c92a2a";
  ctx.beginPath();
  ctx.moveTo(pad.l, y(eps));
  ctx.lineTo(w - pad.r, y(eps));
  ctx.stroke();
  ctx.setLineDash([]);
  ctx.fillStyle = "#556";
  ctx.textAlign = "center";
  ctx.fillText("key k = 0", x(0) + 18, h - 6);
  ctx.fillText(String(T - 1), x(T - 1), h - 6);
}

/** One line per head of rem_i (log10 scale). */
function drawRem(canvas, rem, heads, T) {
  const ctx = canvas.getContext("2d");
  const { width: w, height: h } = canvas;
  const pad = { l: 48, r: 10, t: 10, b: 22 };
  ctx.clearRect(0, 0, w, h);
  const floor = -12;
  const lg = (v) => Math.max(floor, Math.log10(Math.max(v, 1e-300)));
  const x = (i) => pad.l + ((w - pad.l - pad.r) * i) / (T - 1);
  const y = (l) => pad.t + ((h - pad.t - pad.b) * -l) / -floor;
  axes(ctx, w, h, pad, 0, () => "");
  ctx.fillStyle = "#556";
  ctx.textAlign = "right";
  for (let l = 0; l >= floor; l -= 3) ctx.fillText(`1e${l}`, pad.l - 4, y(l) + 4);
  ctx.textAlign = "center";
  ctx.fillText("query i = 0", x(0) + 28, h - 6);
  ctx.fillText(String(T - 1), x(T - 1) - 6, h - 6);
  for (let hd = 0; hd < heads; hd++) {
    ctx.strokeStyle = `hsl(${(hd * 360) / heads}, 65%, 45%)`;
    ctx.beginPath();
    for (let i = 0; i < T; i++) {
      const v = lg(rem[hd * T + i]);
      if (i === 0) ctx.moveTo(x(i), y(v));
      else ctx.lineTo(x(i), y(v));
    }
    ctx.stroke();
  }
}

/** Fills the kind selector and one sink chart per registered kind. */
function setUpKinds(list) {
  KINDS = list;
  const sel = form.kind;
  const keep = sel.value;
  sel.innerHTML = "";
  for (const k of KINDS) sel.add(new Option(k.name, k.name, false, k.name === keep));
  const box = $("sinks");
  box.innerHTML = "";
  for (const k of KINDS) {
    const fig = document.createElement("figure");
    const cap = document.createElement("figcaption");
    cap.id = `sink-${k.name}-title`;
    cap.textContent = k.name;
    cap.title = k.about;
    const canvas = document.createElement("canvas");
    canvas.id = `sink-${k.name}`;
    canvas.width = 360;
    canvas.height = 200;
    fig.append(cap, canvas);
    box.appendChild(fig);
  }
}

// ---------- the runs ----------

async function runTiming(p) {
  const shape = { qHeads: p.heads, qLen: p.len, headDim: p.dim };
  const args = asDtype({ ...optionsFor(p.kind, p.causal), shape, ...randomQkv(shape, 1) }, p.dtype);
  $("timing").textContent = "running...";
  const t0 = performance.now();
  await attn.forward(args);
  const first = performance.now() - t0;
  // One timed run to estimate, then enough runs for about a second (1 to 20).
  const est = await attn.bench(args, 1);
  const iterations = Math.max(1, Math.min(20, Math.round(1000 / Math.max(est.msPerCall, 1e-3))));
  const b = iterations > 1 ? await attn.bench(args, iterations) : est;
  // Multiply-adds of QK^T and PV: 2 * 2 * T^2 * D per head; a causal mask halves it (kinds
  // without the switch, such as stick-breaking, are causal by definition).
  const causal = optionsFor(p.kind, p.causal).causal ?? true;
  const flops = 4 * p.heads * p.len * p.len * p.dim * (causal ? 0.5 : 1);
  $("timing").textContent = `${b.msPerCall.toFixed(2)} ms`;
  $("timing-detail").textContent =
    `${p.kind}, ${p.dtype}, B 1, H ${p.heads}, T ${p.len}, D ${p.dim}: ${(flops / b.msPerCall / 1e6).toFixed(1)} GFLOP/s ` +
    `(mean of ${iterations} run${iterations > 1 ? "s" : ""} after a warm-up; first call with upload, pipeline compile and read-back ${first.toFixed(0)} ms)`;
}

async function runBadge(p) {
  const shape = { batch: 1, qHeads: 2, qLen: 37, headDim: p.dim };
  const args = asDtype({ ...optionsFor(p.kind, p.causal), shape, ...randomQkv(shape, 5) }, p.dtype);
  const got = await attn.forward(args);
  // Against the f64 reference on the CPU (wasm), from the same (rounded) inputs, with the
  // tolerance of SPEC.md section 6 for the storage type.
  const j = testing.judge(args, got);
  const ok = j.pass, tol = j.tol;
  const e = j.verdicts.find((v) => v.output === "o");
  const auxV = j.verdicts.find((v) => v.output !== "o");
  const aux = auxV ? [auxV.output, auxV] : null;
  const badge = $("badge");
  badge.className = `badge ${ok ? "ok" : "bad"}`;
  badge.textContent = ok
    ? `✓ GPU matches the CPU reference (rel. error ${sci(e.relErr)})`
    : `✗ GPU differs from the CPU reference (rel. error ${sci(e.relErr)})`;
  $("badge-detail").textContent =
    `${p.kind} ${p.dtype}, B 1, H 2, T 37, D ${p.dim} against the f64 reference in wasm: o rel. L2 ${sci(e.relErr)}, ` +
    `max abs ${sci(e.maxAbs)}` + (aux ? `; ${aux[0]} rel. L2 ${sci(aux[1].relErr)}` : "") + ` (tolerance ${tol}).`;
}

let mapWeights = null;
async function runMap(p) {
  const T = Math.min(MAP_T, p.len);
  const shape = { qHeads: p.heads, qLen: T, headDim: p.dim };
  const args = asDtype({ ...optionsFor(p.kind, p.causal), shape, ...sinkInputs(shape, p.plant, 7) }, p.dtype);
  mapWeights = { a: await attn.weights(args), T, heads: p.heads, kind: p.kind };
  const sel = $("map-head");
  const keep = Math.min(Number(sel.value || 0), p.heads - 1);
  sel.innerHTML = "";
  for (let h = 0; h < p.heads; h++) sel.add(new Option(String(h), String(h)));
  sel.value = String(keep);
  drawMap();
}

function drawMap() {
  if (!mapWeights) return;
  const { a, T, kind } = mapWeights;
  const h = Number($("map-head").value || 0);
  const head = a.subarray(h * T * T, (h + 1) * T * T);
  let maxA = 0;
  for (const x of head) maxA = Math.max(maxA, x);
  drawHeatmap($("heatmap"), head, T, maxA);
  $("legend-max").textContent = maxA.toPrecision(3);
  $("map-title").textContent = `(${kind}, T = ${T}, head ${h})`;
}

async function runSinks(p) {
  const heads = Math.min(p.heads, 16);
  const shape = { batch: SINK_BATCH, qHeads: heads, qLen: SINK_T, headDim: p.dim };
  const qkv = sinkInputs(shape, p.plant, 11);
  $("sink-seq").textContent = String(SINK_BATCH);
  let rem = null;
  for (const { name: kind } of KINDS) {
    const args = { ...optionsFor(kind, true), shape, ...qkv };
    const w = await attn.weights(args);
    const dims = { batch: SINK_BATCH, heads, len: SINK_T };
    const raw = sinkMeasure(w, dims, { normalize: false });
    const norm = sinkMeasure(w, dims, { normalize: true });
    // Mean over heads for the chart.
    const meanHeads = (alpha) => {
      const out = new Float64Array(SINK_T);
      for (let h = 0; h < heads; h++) for (let k = 0; k < SINK_T; k++) out[k] += alpha[h * SINK_T + k] / heads;
      return out;
    };
    drawSinkChart($(`sink-${kind}`), meanHeads(raw.alpha), meanHeads(norm.alpha), 0.3);
    $(`sink-${kind}-title`).textContent =
      `${kind}: Sink₁ (ε 0.3) ${(100 * raw.firstToken).toFixed(0)}% raw, ${(100 * norm.firstToken).toFixed(0)}% normalised`;
    rem ??= (await attn.forward(args)).rem; // the first kind with a remaining stick
  }
  // First sequence, every head.
  if (rem) drawRem($("rem"), rem.subarray(0, heads * SINK_T), heads, SINK_T);
}

async function runAll() {
  const button = $("run");
  button.disabled = true;
  const p = params();
  try {
    await runMap(p);
    await runTiming(p);
    await runBadge(p);
    await runSinks(p);
    demo.rendered = true;
    demo.error = null;
  } catch (e) {
    demo.error = String(e && e.message ? e.message : e);
    $("timing").innerHTML = "";
    const div = document.createElement("div");
    div.className = "error";
    div.textContent = demo.error;
    $("timing").appendChild(div);
  } finally {
    button.disabled = false;
  }
}

async function main() {
  drawLegend($("legend"));
  form.plant.addEventListener("input", () => (form.plantOut.value = form.plant.value));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    runAll();
  });
  $("map-head").addEventListener("change", drawMap);
  await init();
  setUpKinds(kinds());
  try {
    const adapter = new URLSearchParams(location.search).get("adapter") ?? "auto";
    attn = await WebAttn.create({ adapter });
  } catch (e) {
    demo.error = e.message;
    $("adapter").className = "error";
    $("adapter").textContent = `${e.message}. This page needs a browser with WebGPU (Chrome/Edge 113+, Safari 26, Firefox 141+).`;
    return;
  }
  const i = attn.info();
  demo.info = i;
  $("adapter").textContent =
    `adapter: ${i.name || "(name hidden by the browser)"} · ${i.deviceType} · ${i.backend} · shader-f16 ${i.shaderF16 ? "yes" : "no"} ` +
    `(f16 read as ${i.f16Storage}) · subgroups ${i.subgroups ? "yes" : "no"} · max storage binding ${(i.maxStorageBinding / 2 ** 20).toFixed(0)} MiB`;
  await runAll();
}

main();
