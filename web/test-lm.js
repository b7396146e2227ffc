// Browser checks of the language-model runner (LmModel, LmSession, LmSampler; docs/lm.md),
// run by test.js after the attention checks (test.html?only=lm runs them alone). For each
// shipped model (../models/<name>/, served by serve.mjs), in f32 and in f16 (weights read as
// packed pairs: SwiftShader has no shader-f16), the fixture prompts of fixtures.json (made by
// PyTorch in f64) are prefilled and decoded greedily, one sequence each in one session (a
// step costs about as much for 3 sequences as for 1 on SwiftShader): the first STEPS tokens
// of each must equal the fixture's and the 9 logits rows must be within 1e-4 (f32) / 1e-2
// (f16) relative L2, with the near-tie rule of tests/lm/fixtures.rs (a step whose PyTorch
// margin is below 1e-3 ends the token comparison). Then generate (streaming, tokens/s) and inspect (weights, remainder,
// sink measure) on one model, and malformed files and calls: each must throw an Error named
// LmError whose message says what is wrong.

import { LmModel, LmSampler, testing } from "./pkg/webattn.js";

export const MODELS = ["sb-nope", "softmax-rope", "sigmoid-rope"];
// Fixture tokens compared per prompt (the fixtures hold 48): SwiftShader takes about a second
// per decode step of these models, so the browser compares the first 16 (all 9 logits rows lie within them); the
// native tests (tests/lm/fixtures.rs) compare all 48.
export const STEPS = 16;
const NEAR_TIE = 1e-3;
const TOL = { f32: 1e-4, f16: 1e-2 };

/** Fetches a model's files from ../models/<name>/. */
export async function fetchModel(name) {
  const get = async (file) => {
    const r = await fetch(`../models/${name}/${file}`);
    if (!r.ok) throw new Error(`../models/${name}/${file}: HTTP ${r.status}`);
    return r;
  };
  const [config, weights, fixtures] = await Promise.all([
    get("config.json").then((r) => r.text()),
    get("model.safetensors").then((r) => r.arrayBuffer()).then((b) => new Uint8Array(b)),
    get("fixtures.json").then((r) => r.json()),
  ]);
  return { config, weights, fixtures };
}

/** Greedy decoding of every fixture case of a model at once (one session, a sequence per
 *  prompt: ragged prefill, batched steps), each sequence compared as tests/lm/fixtures.rs
 *  compares its case: logits row i (while there is one) before the near-tie test, then the
 *  token. A sequence that fails or reaches a near tie is compared no further (it keeps
 *  decoding with its greedy token, as the others need a step). One result per case. */
async function fixtureCases(model, cases, dtype) {
  const B = cases.length;
  const steps = Math.min(STEPS, ...cases.map((c) => c.steps));
  const cap = Math.max(...cases.map((c) => c.prompt_bytes.length)) + steps;
  const s = model.session(B, cap);
  const sampler = new LmSampler(); // greedy
  const res = cases.map(() => ({ pass: true, errors: { logits: { relErr: 0, maxAbs: 0, finite: true } }, tol: TOL[dtype], notes: [], matched: 0, open: true }));
  try {
    s.prefill(cases.map((c) => new Uint8Array(c.prompt_bytes)));
    for (let i = 0; i < steps; i++) {
      const logits = await s.logits();
      const next = new Uint8Array(B);
      for (const [b, c] of cases.entries()) {
        const r = res[b];
        next[b] = sampler.sample(logits, b);
        if (!r.open) continue;
        if (i < c.logits.length) {
          const e = testing.compare(logits.subarray(b * 256, (b + 1) * 256), new Float64Array(c.logits[i]));
          if (e.relErr >= r.errors.logits.relErr || !e.finite) r.errors.logits = e;
          if (!(e.relErr < TOL[dtype]) || !e.finite) {
            Object.assign(r, { pass: false, open: false });
            r.notes.push(`logits row ${i}: rel L2 ${e.relErr}`);
            continue;
          }
        }
        if (c.margins[i] < NEAR_TIE) {
          r.open = false;
          r.notes.push(`near tie at step ${i} (margin ${c.margins[i].toExponential(1)}), stop comparing tokens`);
          continue;
        }
        if (next[b] !== c.tokens[i]) {
          Object.assign(r, { pass: false, open: false });
          r.notes.push(`token ${i}: got ${next[b]}, want ${c.tokens[i]}`);
          continue;
        }
        r.matched++;
      }
      if (i + 1 < steps) s.step(next);
    }
  } finally {
    s.free();
    sampler.free();
  }
  return res.map((r) => ({ pass: r.pass, errors: r.errors, tol: r.tol, note: [`${r.matched} tokens equal`, ...r.notes].join("; ") }));
}

/** Runs `fn`, which must throw an LmError (of `kind`) whose message matches `pattern`. */
async function throwsLm(fn, kind, pattern) {
  try {
    await fn();
  } catch (e) {
    const ok = e instanceof Error && e.name === "LmError" && e.kind === kind && pattern.test(e.message);
    return { pass: ok, note: `${e?.name} (${e?.kind}): ${e?.message}` };
  }
  return { pass: false, note: "did not throw" };
}

/** A copy of the config JSON with `edit` applied to the parsed object. */
function editConfig(text, edit) {
  const c = JSON.parse(text);
  edit(c);
  return JSON.stringify(c);
}

/** The LM checks. `check(name, fn, meta)` is test.js's runner. */
export async function lmChecks(attn, check) {
  const files = {};
  for (const name of MODELS) {
    await check(`lm ${name}: fetch config.json, model.safetensors, fixtures.json`, async () => {
      files[name] = await fetchModel(name);
      const f = files[name];
      return { pass: f.weights.length > 0 && f.fixtures.cases.length > 0, note: `${f.weights.length} bytes, ${f.fixtures.cases.length} cases` };
    });
    const f = files[name];
    if (!f) continue;
    for (const dtype of ["f32", "f16"]) {
      let model;
      await check(`lm ${name} ${dtype}: load`, async () => {
        model = new LmModel(attn, f.config, f.weights, dtype);
        const c = model.config;
        return { pass: model.name === name && model.dtype === dtype && c.vocab === 256, note: `${c.nLayer} layers, ${c.nHead}/${c.nKvHead} heads, ${JSON.stringify(c.attention)}` };
      });
      if (!model) continue;
      try {
        // The cases decode together; the first check's time is the whole batch's.
        const results = fixtureCases(model, f.fixtures.cases, dtype);
        results.catch(() => {}); // reported by each case's check
        for (const [ci, c] of f.fixtures.cases.entries()) {
          await check(`lm ${name} ${dtype} case ${ci} ${JSON.stringify(c.prompt)}: ${STEPS} greedy tokens, 9 logits rows (batch of ${f.fixtures.cases.length})`,
            async () => (await results)[ci], { group: `lm ${dtype}`, kind: name });
        }
      } finally {
        model.free();
      }
    }
  }
  const sb = files["sb-nope"];
  if (sb) await generateAndInspect(attn, sb, check);
  if (sb) await errorChecks(attn, sb, check);
}

/** generate (streaming, greedy = the fixture) and inspect, on sb-nope in f16. */
async function generateAndInspect(attn, f, check) {
  const model = new LmModel(attn, f.config, f.weights, "f16");
  try {
    const c = f.fixtures.cases[0];
    await check(`lm generate: streams ${STEPS} greedy tokens equal to the fixture's, tokens/s`, async () => {
      const seen = [];
      let text = "";
      const r = await model.generate(c.prompt, { maxTokens: STEPS }, (t) => {
        seen.push(t.token);
        text += t.text;
      });
      const want = c.tokens.slice(0, STEPS);
      const same = seen.length === STEPS && seen.every((t, i) => t === want[i]) &&
        Array.from(r.tokens).every((t, i) => t === want[i]) && r.text === text;
      const speeds = r.prefillTokens === c.prompt_bytes.length && r.decodeTokens === STEPS - 1 &&
        r.prefillTokensPerS > 0 && r.decodeTokensPerS > 0;
      return { pass: same && speeds && !r.stopped, note: `${JSON.stringify(r.text)}; prefill ${r.prefillTokensPerS.toFixed(1)} tokens/s, decode ${r.decodeTokensPerS.toFixed(2)} tokens/s` };
    });
    await check("lm generate: the callback's false stops; temperature, topK and seed replay", async () => {
      let calls = 0;
      const r = await model.generate("And", { maxTokens: 10 }, () => ++calls < 3);
      const opts = { maxTokens: 4, temperature: 0.8, topK: 20, seed: 7 };
      const a = await model.generate("And", opts);
      const b = await model.generate("And", opts);
      const pass = r.stopped && r.tokens.length === 3 && calls === 3 && a.seed === 7 &&
        a.text === b.text && a.tokens.length === 4;
      return { pass, note: `stopped after ${r.tokens.length}; sampled ${JSON.stringify(a.text)} twice` };
    });
    await check("lm inspect: weights [H, T, T] causal rows, remainder, sink measure", async () => {
      const text = "And God said";
      const T = text.length;
      const ins = await model.inspect(text);
      const H = ins.heads;
      const problems = [];
      if (ins.tokens !== T || ins.layers.length !== 6) problems.push(`tokens ${ins.tokens}, layers ${ins.layers.length}`);
      for (const [l, layer] of ins.layers.entries()) {
        const w = layer.weights;
        if (w.length !== H * T * T) problems.push(`layer ${l}: ${w.length} weights`);
        if (!layer.rem || layer.rem.length !== H * T) problems.push(`layer ${l}: no remainder [H, T]`);
        if (layer.alpha.length !== H * T || layer.alphaNormalized.length !== H * T) problems.push(`layer ${l}: alpha`);
        if (!(layer.sinkRate >= 0 && layer.sinkRate <= 1)) problems.push(`layer ${l}: sink rate ${layer.sinkRate}`);
        // Stick-breaking with the remainder to the current token: each row plus nothing sums
        // to 1, with no weight above the diagonal.
        for (let h = 0; h < H; h++) {
          for (let i = 0; i < T; i++) {
            let sum = 0;
            for (let j = 0; j < T; j++) {
              const a = w[(h * T + i) * T + j];
              if (j > i && a !== 0) problems.push(`layer ${l} head ${h}: A[${i}, ${j}] = ${a} above the diagonal`);
              sum += a;
            }
            if (Math.abs(sum - 1) > 1e-2) problems.push(`layer ${l} head ${h}: row ${i} sums to ${sum}`);
          }
        }
      }
      const rates = ins.layers.map((x) => `${Math.round(100 * x.sinkRate)}%`).join(" ");
      return { pass: problems.length === 0, note: problems.slice(0, 3).join("; ") || `sink rate per layer ${rates}` };
    });
  } finally {
    model.free();
  }
}

/** Malformed files and calls. */
async function errorChecks(attn, f, check) {
  const load = (config, weights, dtype = "f32") => () => new LmModel(attn, config, weights, dtype).free();
  const cases = [
    ["truncated model.safetensors", load(f.config, f.weights.subarray(0, 100_000)), "Safetensors", /^model\.safetensors: /],
    ["empty model.safetensors", load(f.config, new Uint8Array(0)), "Safetensors", /^model\.safetensors: /],
    ["config.json not JSON", load("{", f.weights), "Json", /^config\.json: /],
    ["config.json with an unknown key", load(editConfig(f.config, (c) => (c.layers = 6)), f.weights), "Json", /unknown field `layers`/],
    ["config.json with an unknown attention kind", load(editConfig(f.config, (c) => (c.attention = { kind: "linear" })), f.weights),
      "UnknownAttention", /^config\.json: attention: .*linear/],
    ["config.json with 5 layers for 6 in the file", load(editConfig(f.config, (c) => (c.n_layer = 5)), f.weights),
      "UnexpectedTensor", /tensor 'layers\.5\..*' is not part of the model/],
    ["config.json with 7 layers for 6 in the file", load(editConfig(f.config, (c) => (c.n_layer = 7)), f.weights),
      "MissingTensor", /tensor 'layers\.6\..*' is missing/],
    ["config.json with d_ff 512 for 1024", load(editConfig(f.config, (c) => (c.d_ff = 512)), f.weights),
      "Shape", /tensor 'layers\.0\.w1' has shape \[1024, 256\], the config needs \[512, 256\]/],
    ["dtype \"f64\"", load(f.config, f.weights, "f64"), "Usage", /dtype must be "f32" or "f16"/],
  ];
  for (const [what, fn, kind, pattern] of cases) {
    await check(`lm error: ${what}`, () => throwsLm(fn, kind, pattern));
  }
  const model = new LmModel(attn, f.config, f.weights, "f32");
  try {
    const calls = [
      ["logits before prefill", async () => { const s = model.session(1, 8); try { await s.logits(); } finally { s.free(); } }, /no logits yet/],
      ["a prompt longer than the capacity", () => { const s = model.session(1, 4); try { s.prefill(["In the beginning"]); } finally { s.free(); } }, /prompts need 1 to 4 tokens/],
      ["two prompts for one sequence", () => { const s = model.session(1, 8); try { s.prefill(["a", "b"]); } finally { s.free(); } }, /2 prompts for a session of 1 sequences/],
      ["a token of 300", () => { const s = model.session(1, 8); try { s.prefill("a"); s.step([300]); } finally { s.free(); } }, /300 is not a byte token/],
      ["a session of batch 0", () => model.session(0, 8).free(), /at least 1/],
      ["generate with a misspelt option", () => model.generate("a", { maxToken: 3 }), /unknown field `maxToken`/],
      ["a negative temperature", () => new LmSampler({ temperature: -1 }), /temperature must be/],
      ["inspect of an empty text", () => model.inspect(""), /inspect takes 1 to 1024 tokens/],
    ];
    for (const [what, fn, pattern] of calls) {
      await check(`lm error: ${what}`, () => throwsLm(fn, "Usage", pattern));
    }
    // A full cache is the attention library's error, inside LmError::Gpu.
    await check("lm error: a step past the capacity", () => throwsLm(() => {
      const s = model.session(1, 2);
      try {
        s.prefill("ab");
        s.step(1);
      } finally {
        s.free();
      }
    }, "Gpu", /^KV cache full: sequence 0 holds 2 of 2 slots/));
    await check("lm error: a second logits() before the first resolves", async () => {
      const s = model.session(1, 8);
      try {
        s.prefill("ab");
        const first = s.logits();
        const second = await throwsLm(() => s.logits(), "Usage", /previous call has not finished/);
        const busyStep = await throwsLm(() => s.step(1), "Usage", /await logits\(\) first/);
        const l = await first;
        s.step(1);
        await s.logits();
        return { pass: second.pass && busyStep.pass && l.length === 256, note: `${second.note}; ${busyStep.note}` };
      } finally {
        s.free();
      }
    });
  } finally {
    model.free();
  }
}
