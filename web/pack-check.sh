#!/usr/bin/env bash
# Checks that `npm pack` in web/ makes the package web/README.md describes: builds web/pkg
# (web/build.sh; `--no-build` skips that when pkg/ is fresh), runs `npm pack --dry-run --json`
# and checks that the tarball holds the module (pkg/webattn.js), its declarations
# (pkg/webattn.d.ts), the wasm (pkg/webattn_bg.wasm) and README.md, that every entry point of
# package.json (main, module, types, exports) is one of its files, and that nothing else than
# package.json's `files` (and package.json) went in. Prints the file list; exits non-zero on any
# miss. Needs node and npm (nothing is downloaded: a dry run packs nothing).
set -euo pipefail
cd "$(dirname "$0")"
command -v npm >/dev/null || { echo "web/pack-check.sh: npm is missing (Debian: apt-get install npm)" >&2; exit 1; }
if [ "${1:-}" != "--no-build" ]; then
  ./build.sh
fi
for f in pkg/webattn.js pkg/webattn.d.ts pkg/webattn_bg.wasm; do
  [ -s "$f" ] || { echo "web/pack-check.sh: $f is missing: run web/build.sh" >&2; exit 1; }
done

npm pack --dry-run --json --ignore-scripts 2>/dev/null | node --input-type=module -e '
import { readFileSync } from "node:fs";
const input = readFileSync(0, "utf8");
let pack;
try {
  [pack] = JSON.parse(input);
} catch (e) {
  console.error(`web/pack-check.sh: npm pack --dry-run --json gave no JSON: ${e.message}\n${input}`);
  process.exit(1);
}
const pkg = JSON.parse(readFileSync("package.json", "utf8"));
const files = new Map(pack.files.map((f) => [f.path, f.size]));
const problems = [];
for (const want of ["package.json", "README.md", "pkg/webattn.js", "pkg/webattn.d.ts", "pkg/webattn_bg.wasm"]) {
  if (!files.has(want)) problems.push(`${want} is not in the package`);
}
const entries = [pkg.main, pkg.module, pkg.types];
const walk = (x) => (typeof x === "string" ? entries.push(x) : x && Object.values(x).forEach(walk));
walk(pkg.exports);
for (const e of entries) {
  if (e === undefined) continue;
  const path = e.replace(/^\.\//, "");
  if (!files.has(path)) problems.push(`package.json points at ${e}, which is not in the package`);
}
for (const f of ["main", "types"]) if (!pkg[f]) problems.push(`package.json has no "${f}"`);
const allowed = new Set(["package.json", ...pkg.files]);
for (const f of files.keys()) if (!allowed.has(f)) problems.push(`unexpected file in the package: ${f}`);
console.log(`${pack.filename}: ${pack.entryCount} files, ${pack.size} bytes packed, ${pack.unpackedSize} unpacked`);
for (const [f, size] of files) console.log(`  ${String(size).padStart(9)}  ${f}`);
if (problems.length) {
  for (const p of problems) console.error(`web/pack-check.sh: ${p}`);
  process.exit(1);
}
console.log("web/pack-check.sh: the package holds webattn.js, webattn.d.ts, webattn_bg.wasm and README.md");
'
