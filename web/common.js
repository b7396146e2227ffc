// Display helpers shared by the demo (demo.js), the language-model page (lm.js) and the
// browser tests (test.js): number format, option labels, the heatmap's colours. Inputs,
// error measures and tolerances are not here: they come from the crate's testing module
// through the bindings (`testing.randomQkv`, `testing.compare`, `testing.judge`, ...).

/** A number in short scientific notation. */
export function sci(x, digits = 2) {
  if (x === 0) return "0";
  if (!Number.isFinite(x)) return String(x);
  return x.toExponential(digits);
}

/** The options of a call other than `kind`, as a short label: " causal,window=8,sinks=[1,-1]". */
export function describeOptions(options) {
  const text = Object.entries(options)
    .filter(([k, v]) => k !== "kind" && v !== undefined && v !== null && v !== false)
    .map(([k, v]) => (v === true ? k : `${k}=${ArrayBuffer.isView(v) || Array.isArray(v) ? `[${Array.from(v)}]` : v}`))
    .join(",");
  return text ? " " + text : "";
}

// Viridis, 9 stops.
const VIRIDIS = [
  [68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
  [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37],
];
export function viridis(t) {
  t = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(t)), f = t - i;
  const a = VIRIDIS[i], b = VIRIDIS[i + 1];
  return [0, 1, 2].map((c) => Math.round(a[c] + (b[c] - a[c]) * f));
}

/** Draws T x T values `a` (row-major) scaled to the canvas, colour sqrt(a / maxA). */
export function drawHeatmap(canvas, a, T, maxA) {
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(T, T);
  for (let i = 0; i < T * T; i++) {
    const [r, g, b] = viridis(Math.sqrt(a[i] / (maxA || 1)));
    img.data.set([r, g, b, 255], i * 4);
  }
  // Draw T x T pixels, then scale up without smoothing.
  const off = new OffscreenCanvas(T, T);
  off.getContext("2d").putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(off, 0, 0, canvas.width, canvas.height);
}

/** The colour scale, top (1) to bottom (0). */
export function drawLegend(canvas) {
  const ctx = canvas.getContext("2d");
  for (let y = 0; y < canvas.height; y++) {
    const [r, g, b] = viridis(1 - y / (canvas.height - 1));
    ctx.fillStyle = `rgb(${r},${g},${b})`;
    ctx.fillRect(0, y, canvas.width, 1);
  }
}
