// Display helpers shared by the demo (demo.js) and the browser tests (test.js). Inputs,
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
