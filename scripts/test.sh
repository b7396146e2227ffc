#!/usr/bin/env bash
# Every test: formatting, lints, the naga shader validation, the GPU tests on the software
# adapter (lavapipe) or a real GPU, the Metal/DX12/WebGPU cross checks, and the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --all
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
step() { echo; echo "== $*"; }

step "cargo fmt --check";  cargo fmt --all -- --check
step "cargo clippy";       cargo clippy --all-targets -- -D warnings
step "cross checks: Metal (aarch64-apple-darwin), DX12 (x86_64-pc-windows-msvc), WebGPU (wasm32)"
cargo check --quiet --lib --target aarch64-apple-darwin
cargo check --quiet --lib --target x86_64-pc-windows-msvc
cargo check --quiet --lib --target wasm32-unknown-unknown
step "cargo test (shader validation, GPU against the f64 reference, errors, properties, docs)"
cargo test --all-targets
cargo test --doc
if [ -x web/test.sh ]; then
  step "browser tests (headless Chromium, WebGPU on SwiftShader)"
  web/test.sh
fi
