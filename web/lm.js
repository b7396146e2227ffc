// The language-model page: loads a model from ../models/<name>/ (config.json and
// model.safetensors) onto one WebAttn (the same GPU device for every model), streams
// generated text with its speed, and shows for the current text the attention map of a layer
// and head, the remaining stick per byte (stick-breaking) and the sink measure per layer.
// URL parameters preset the form: ?model=softmax-rope&dtype=f32&tokens=50&temperature=0
// &topK=0&seed=1&prompt=...; &run=0 skips generating on load. window.__lm = {ready,
// generated, inspected, text, error, runs} tells web/test.mjs where the page is.

import init, { WebAttn, LmModel } from "./pkg/webattn.js";
import { drawHeatmap, drawLegend } from "./common.js";

const INSPECT_CAP = 192; // bytes of the text the attention map shows (T x T weights per head)

const $ = (id) => document.getElementById(id);
const form = $("controls");
const state = { ready: false, generated: false, inspected: false, text: "", error: null, runs: 0 };
window.__lm = state;

let attn; // the one WebAttn (GPU device) of the page
const files = new Map(); // model name -> {config, weights}, fetched once
const models = new Map(); // "name dtype" -> LmModel, loaded once
const warm = new Set(); // models that have run once (their pipelines are compiled)
let current = null; // the generation under way: {stop, done}
let inspection = null; // {bytes, result} of the current text
const runs = new Map(); // model name -> the last run's {dtype, text, prefill, decode}, for one prompt
let runsPrompt = null;

const encoder = new TextEncoder();
const rate = (x) => x.toFixed(x < 10 ? 1 : 0); // tokens/s

function setStatus(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "muted";
}

function params() {
  const f = new FormData(form);
  const num = (k) => (f.get(k) === "" ? undefined : Number(f.get(k)));
  return {
    model: f.get("model"),
    dtype: f.get("dtype"),
    tokens: num("tokens") ?? 100,
    temperature: num("temperature") ?? 0,
    topK: num("topK") ?? 0,
    seed: num("seed"),
  };
}

/** Presets the form (and the prompt) from the URL. */
function fromUrl() {
  const q = new URLSearchParams(location.search);
  for (const k of ["model", "dtype", "tokens", "temperature", "topK", "seed"]) {
    if (q.has(k)) form.elements[k].value = q.get(k);
  }
  if (q.has("prompt")) $("prompt").value = q.get("prompt");
  return q.get("run") !== "0";
}

async function fetchFiles(name) {
  if (!files.has(name)) {
    const get = async (file) => {
      const r = await fetch(`../models/${name}/${file}`);
      if (!r.ok) throw new Error(`../models/${name}/${file}: HTTP ${r.status} (serve web/ with web/serve.sh, which serves models/ too)`);
      return r;
    };
    const [config, weights] = await Promise.all([
      get("config.json").then((r) => r.text()),
      get("model.safetensors").then((r) => r.arrayBuffer()),
    ]);
    files.set(name, { config, weights: new Uint8Array(weights) });
  }
  return files.get(name);
}

/** The model `name` in `dtype` on the page's GPU, loaded on first use. */
async function getModel(name, dtype) {
  const key = `${name} ${dtype}`;
  if (!models.has(key)) {
    setStatus(`fetching ../models/${name}/ ...`);
    const f = await fetchFiles(name);
    setStatus(`loading ${name} (${(f.weights.length / 1e6).toFixed(1)} MB) in ${dtype}...`);
    models.set(key, new LmModel(attn, f.config, f.weights, dtype));
  }
  return models.get(key);
}

// ---------- generating ----------

/** Generates from the prompt with the form's settings, streaming into the page; a run under
 *  way is stopped first. Then inspects the text. */
async function generate() {
  if (current) {
    current.stop = true;
    await current.done;
  }
  const run = { stop: false };
  run.done = generateRun(run).finally(() => {
    if (current === run) current = null;
    $("stop").disabled = true;
  });
  current = run;
  $("stop").disabled = false;
  return run.done;
}

async function generateRun(run) {
  const p = params();
  const prompt = $("prompt").value;
  const promptBytes = encoder.encode(prompt);
  $("output").querySelector(".prompt").textContent = prompt;
  const out = $("output").querySelector(".generated");
  out.textContent = "";
  $("speed").textContent = "-";
  $("speed-detail").textContent = "";
  state.generated = false;
  state.inspected = false;
  try {
    const model = await getModel(p.model, p.dtype);
    const c = model.config;
    $("model-title").textContent = `${c.name}, ${model.dtype}: ${c.nLayer} layers, ${c.nHead} heads (${c.nKvHead} kv), ` +
      `${JSON.stringify(c.attention)}${c.ropeBase ? ", RoPE" : ""}`;
    setStatus(`prefill of ${promptBytes.length} bytes...`);
    const generated = [];
    let t0 = 0;
    const result = await model.generate(promptBytes, { maxTokens: p.tokens, temperature: p.temperature, topK: p.topK, seed: p.seed },
      (t) => {
        if (t.index === 0) t0 = performance.now();
        generated.push(t.token);
        out.textContent += t.text;
        if (t.index > 0) {
          const perS = t.index / ((performance.now() - t0) / 1e3);
          $("speed").textContent = `${perS.toFixed(1)} tokens/s`;
        }
        setStatus(`generating: ${t.index + 1} of ${p.tokens} bytes`);
        return !run.stop;
      });
    out.textContent = result.text; // the whole text, decoded at once
    $("speed").textContent = `${result.decodeTokensPerS.toFixed(1)} tokens/s decode`;
    $("speed-detail").textContent = `prefill: ${result.prefillTokens} bytes in ${result.prefillMs.toFixed(0)} ms ` +
      `(${rate(result.prefillTokensPerS)} tokens/s); decode: ${result.decodeTokens} steps in ${result.decodeMs.toFixed(0)} ms; ` +
      `seed ${result.seed}${warm.has(model) ? "" : " (the model's first run: its kernels compiled on the way)"}`;
    warm.add(model);
    state.text = prompt + result.text;
    state.generated = true;
    state.runs++;
    if (runsPrompt !== prompt) runs.clear();
    runsPrompt = prompt;
    runs.set(p.model, { dtype: model.dtype, text: result.text, prefill: result.prefillTokensPerS, decode: result.decodeTokensPerS });
    drawRuns();
    setStatus(`${result.stopped ? "stopped" : "done"}: ${result.tokens.length} bytes; inspecting the text...`);
    await inspect(model, new Uint8Array([...promptBytes, ...result.tokens]));
    setStatus(`${result.stopped ? "stopped" : "done"}: ${result.tokens.length} bytes generated with ${p.model} (${model.dtype})`);
  } catch (e) {
    state.error = e.message ?? String(e);
    setStatus(`${e.name ?? "Error"}${e.kind ? ` (${e.kind})` : ""}: ${state.error}`, true);
  }
}

function drawRuns() {
  const table = $("runs");
  table.replaceChildren(row("th", ["model", "weights", "decode tokens/s", "prefill tokens/s", "text"]));
  for (const [name, r] of runs) {
    const tr = row("td", [name, r.dtype, rate(r.decode), rate(r.prefill), r.text]);
    tr.lastChild.className = "text";
    tr.lastChild.title = r.text;
    table.appendChild(tr);
  }
}

function row(cell, values) {
  const tr = document.createElement("tr");
  for (const v of values) {
    const td = document.createElement(cell);
    td.textContent = v;
    tr.appendChild(td);
  }
  return tr;
}

// ---------- inspecting ----------

async function inspect(model, bytes) {
  bytes = bytes.subarray(0, INSPECT_CAP);
  const result = await model.inspect(bytes);
  inspection = { bytes, result, sb: model.config.attention.kind === "stick-breaking" };
  const layer = $("layer"), head = $("head");
  const keep = (sel, n) => {
    const v = Math.min(Number(sel.value || 0), n - 1);
    sel.replaceChildren(...Array.from({ length: n }, (_, i) => new Option(String(i), String(i))));
    sel.value = String(v);
  };
  keep(layer, result.layers.length);
  keep(head, result.heads);
  drawSinks();
  drawInspection();
  state.inspected = true;
}

/** The selected layer's and head's attention map and remaining stick. */
function drawInspection() {
  if (!inspection) return;
  const { result, bytes, sb } = inspection;
  const T = result.tokens, l = Number($("layer").value), h = Number($("head").value);
  const layer = result.layers[l];
  const a = layer.weights.subarray(h * T * T, (h + 1) * T * T);
  let maxA = 0;
  for (const x of a) maxA = Math.max(maxA, x);
  drawHeatmap($("heatmap"), a, T, maxA);
  $("legend-max").textContent = maxA.toPrecision(2);
  $("map-title").textContent = `(layer ${l}, head ${h}, T = ${T})`;
  drawRem(sb ? layer.rem.subarray(h * T, (h + 1) * T) : null, bytes);
}

/** One bar per byte: the stick left after the earlier bytes took theirs. */
function drawRem(rem, bytes) {
  const canvas = $("rem");
  const ctx = canvas.getContext("2d");
  const { width: w, height: h } = canvas;
  ctx.clearRect(0, 0, w, h);
  ctx.font = "11px ui-monospace, monospace";
  ctx.fillStyle = "#556";
  ctx.textAlign = "left";
  if (!rem) {
    $("rem-title").textContent = "(stick-breaking only: this model's attention has no remainder)";
    ctx.fillText("no remaining stick: softmax and sigmoid attention have none", 8, 20);
    return;
  }
  $("rem-title").textContent = `(layer ${$("layer").value}, head ${$("head").value})`;
  const pad = { l: 28, r: 4, t: 6, b: 18 };
  const T = rem.length, bw = (w - pad.l - pad.r) / T, ph = h - pad.t - pad.b;
  ctx.textAlign = "right";
  ctx.fillText("1", pad.l - 4, pad.t + 8);
  ctx.fillText("0", pad.l - 4, h - pad.b);
  ctx.textAlign = "center";
  for (let i = 0; i < T; i++) {
    const v = Math.min(1, Math.max(0, rem[i]));
    ctx.fillStyle = "#4c6ef5";
    ctx.fillRect(pad.l + i * bw, pad.t + ph * (1 - v), Math.max(1, bw - 1), ph * v);
    if (bw >= 6) {
      ctx.fillStyle = "#556";
      ctx.fillText(byteLabel(bytes[i]), pad.l + (i + 0.5) * bw, h - 4);
    }
  }
}

/** A byte as one printable character. */
function byteLabel(b) {
  if (b === 32) return "␣";
  if (b === 10) return "⏎";
  return b > 32 && b < 127 ? String.fromCharCode(b) : "·";
}

function drawSinks() {
  const { result } = inspection;
  const T = result.tokens, H = result.heads;
  const table = $("sinks");
  table.replaceChildren(row("th", ["layer", "α₀ raw", "α₀ normalised", "Sink₁ raw", "Sink₁ normalised"]));
  const mean0 = (alpha) => {
    let s = 0;
    for (let h = 0; h < H; h++) s += alpha[h * T];
    return s / H;
  };
  for (const [l, x] of result.layers.entries()) {
    table.appendChild(row("td", [String(l), mean0(x.alpha).toFixed(3), mean0(x.alphaNormalized).toFixed(3),
      `${Math.round(100 * x.sinkRate)}%`, `${Math.round(100 * x.sinkRateNormalized)}%`]));
  }
}

/** The byte pair under the mouse on the heatmap. */
function hover(ev) {
  if (!inspection) return;
  const canvas = $("heatmap"), r = canvas.getBoundingClientRect();
  const T = inspection.result.tokens;
  const j = Math.floor(((ev.clientX - r.left) / r.width) * T), i = Math.floor(((ev.clientY - r.top) / r.height) * T);
  if (i < 0 || j < 0 || i >= T || j >= T) return;
  const l = Number($("layer").value), h = Number($("head").value);
  const a = inspection.result.layers[l].weights[(h * T + i) * T + j];
  const b = inspection.bytes;
  $("hover").textContent = `query ${i} '${byteLabel(b[i])}' → key ${j} '${byteLabel(b[j])}': A = ${a.toPrecision(3)}`;
}

// ---------- wiring ----------

async function main() {
  drawLegend($("legend"));
  $("inspect-cap").textContent = `${INSPECT_CAP} bytes`;
  const run = fromUrl();
  try {
    await init();
    attn = await WebAttn.create(new URLSearchParams(location.search).get("adapter") === "software" ? { adapter: "software" } : undefined);
    const i = attn.info();
    $("adapter").textContent = `${i.name || "(adapter name hidden)"}: ${i.backend}, ${i.deviceType}; shader-f16 ${i.shaderF16}, f16 read as ${i.f16Storage}`;
  } catch (e) {
    state.error = e.message ?? String(e);
    setStatus(`no WebGPU: ${state.error}`, true);
    return;
  }
  state.ready = true;
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    generate();
  });
  $("stop").addEventListener("click", () => current && (current.stop = true));
  // Switching the model (or the precision) regenerates from the same prompt.
  form.elements.model.addEventListener("change", () => generate());
  form.elements.dtype.addEventListener("change", () => generate());
  $("layer").addEventListener("change", drawInspection);
  $("head").addEventListener("change", drawInspection);
  $("heatmap").addEventListener("mousemove", hover);
  if (run) await generate();
  else setStatus("ready: press Generate");
}

main();
