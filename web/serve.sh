#!/usr/bin/env bash
# One command to see the demo: builds web/pkg if it is missing, then serves web/ on
# http://127.0.0.1:${1:-8080}/ (open it in a browser with WebGPU: Chrome, Edge, Safari 26, Firefox 141+).
set -euo pipefail
cd "$(dirname "$0")"
[ -f pkg/webattn_bg.wasm ] || ./build.sh
exec node serve.mjs "${1:-8080}"
