#!/usr/bin/env bash
# The browser tests: builds web/pkg (release wasm + wasm-bindgen), installs the node test
# driver (playwright-core, from package-lock.json) if missing, then runs web/test.mjs, which
# serves web/ on 127.0.0.1, drives Debian's headless Chromium (WebGPU on SwiftShader) and
# ends with "N passed, M failed". Needs chromium, node >= 20 and wasm-bindgen-cli
# (bash scripts/setup.sh --all installs them).
set -euo pipefail
cd "$(dirname "$0")"
command -v node >/dev/null || { echo "web/test.sh: node is missing (Debian: apt-get install nodejs npm)" >&2; exit 1; }
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || {
  echo "web/test.sh: ${CHROMIUM:-/usr/bin/chromium} is missing (Debian: apt-get install chromium)" >&2; exit 1; }
./build.sh
if [ ! -d node_modules/playwright-core ]; then
  npm ci --no-audit --no-fund
fi
exec node test.mjs
