#!/usr/bin/env bash
# Every test: formatting, lints, the naga shader validation, the GPU tests on the software
# adapter (lavapipe) or a real GPU, the Metal/DX12/WebGPU cross checks, and the browser tests.
set -euo pipefail
export CARGO_TERM_COLOR=never
cd "$(dirname "$0")/.."
bash scripts/setup.sh --all
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
step() { echo; echo "== $*"; }

step "cargo fmt --check";  cargo fmt --all -- --check
step "cargo clippy";       cargo clippy --all-targets -- -D warnings
step "cargo clippy (wasm32 bindings)"
cargo clippy --quiet --lib --target wasm32-unknown-unknown --no-default-features -- -D warnings
step "cross checks: Metal (aarch64-apple-darwin), DX12 (x86_64-pc-windows-msvc), WebGPU (wasm32)"
cargo check --quiet --lib --target aarch64-apple-darwin
cargo check --quiet --lib --target x86_64-pc-windows-msvc
cargo check --quiet --lib --target wasm32-unknown-unknown
log=$(mktemp)
step "cargo test (shader validation, GPU against the f64 reference, errors, properties, CLI, docs)"
cargo test --all-targets 2>&1 | tee -a "$log"
cargo test --doc 2>&1 | tee -a "$log"
if [ -x web/test.sh ]; then
  step "browser tests (headless Chromium, WebGPU on SwiftShader)"
  web/test.sh 2>&1 | tee -a "$log"
fi
# One closing line over everything: cargo's "test result" lines and the browser's summary.
passed=$(grep -hoE '[0-9]+ passed' "$log" | awk '{s += $1} END {print s + 0}')
failed=$(grep -hoE '[0-9]+ failed' "$log" | awk '{s += $1} END {print s + 0}')
rm -f "$log"
echo
echo "Total: ${passed:-0} passed, ${failed:-0} failed"
[ "${failed:-0}" = 0 ]
