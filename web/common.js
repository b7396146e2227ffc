// Helpers shared by the demo (demo.js) and the browser tests (test.js).

/** A seeded PRNG (mulberry32): uniform numbers in [0, 1). */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` standard-normal samples (Box-Muller) times `std`, as a Float32Array. */
export function randn(n, seed, std = 1) {
  const u = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - u())) * std;
    const th = 2 * Math.PI * u();
    out[i] = r * Math.cos(th);
    if (i + 1 < n) out[i + 1] = r * Math.sin(th);
  }
  return out;
}

/** Full shape (defaults filled in) of a possibly partial AttentionShape. */
export function fullShape(s) {
  const qHeads = s.qHeads, qLen = s.qLen, headDim = s.headDim;
  return {
    batch: s.batch ?? 1,
    qHeads,
    kvHeads: s.kvHeads ?? qHeads,
    qLen,
    kvLen: s.kvLen ?? qLen,
    headDim,
    vDim: s.vDim ?? headDim,
  };
}

/** Element counts of q, k, v, o and per-row outputs for a shape. */
export function sizes(shape) {
  const s = fullShape(shape);
  return {
    q: s.batch * s.qHeads * s.qLen * s.headDim,
    k: s.batch * s.kvHeads * s.kvLen * s.headDim,
    v: s.batch * s.kvHeads * s.kvLen * s.vDim,
    o: s.batch * s.qHeads * s.qLen * s.vDim,
    rows: s.batch * s.qHeads * s.qLen,
    weights: s.batch * s.qHeads * s.qLen * s.kvLen,
  };
}

/** Random q, k, v (f32) for a shape. */
export function randomQkv(shape, seed) {
  const n = sizes(shape);
  return { q: randn(n.q, seed), k: randn(n.k, seed + 1), v: randn(n.v, seed + 2) };
}

/**
 * Compares `got` with the reference `want`: relative L2 error ||got - want|| / ||want||,
 * the largest absolute error, and whether `got` holds any NaN or Inf. Entries where the
 * reference is not finite (lse of a row without keys) must match exactly.
 */
export function compare(got, want) {
  if (!got || !want) return { relErr: Infinity, maxAbs: Infinity, nonFinite: 0, note: "missing output" };
  if (got.length !== want.length) {
    return { relErr: Infinity, maxAbs: Infinity, nonFinite: 0, note: `length ${got.length} != ${want.length}` };
  }
  let num = 0, den = 0, maxAbs = 0, nonFinite = 0;
  for (let i = 0; i < got.length; i++) {
    const g = got[i], w = want[i];
    if (!Number.isFinite(w)) {
      if (g !== w) nonFinite++;
      continue;
    }
    if (!Number.isFinite(g)) { nonFinite++; continue; }
    const d = g - w;
    num += d * d;
    den += w * w;
    maxAbs = Math.max(maxAbs, Math.abs(d));
  }
  const relErr = den > 0 ? Math.sqrt(num / den) : Math.sqrt(num);
  return { relErr, maxAbs, nonFinite };
}

/** A number in short scientific notation. */
export function sci(x, digits = 2) {
  if (x === 0) return "0";
  if (!Number.isFinite(x)) return String(x);
  return x.toExponential(digits);
}
