#!/usr/bin/env bash
# Every test: repository hygiene, formatting, lints, packaging, the Metal/DX12/WebGPU cross
# checks, the naga shader validation and contract test, the GPU tests on the software adapter
# (lavapipe) or a real GPU, the CLI tests, and the browser tests. Seeds are fresh on every run
# and printed with any failure (WEBATTN_SEED=N replays one).
set -euo pipefail
export CARGO_TERM_COLOR=never
cd "$(dirname "$0")/.."
bash scripts/setup.sh --all
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
step() { echo; echo "== $*"; }

step "file names (Windows-reserved names fail)"; bash scripts/check-names.sh
step "cargo fmt --check";  cargo fmt --all -- --check
step "cargo clippy";       cargo clippy --all-targets --features cli -- -D warnings
step "cargo clippy (wasm32 bindings)"
cargo clippy --quiet --lib --target wasm32-unknown-unknown -- -D warnings
cargo clippy --quiet --lib --target wasm32-unknown-unknown --features lm -- -D warnings
step "cross checks: Metal (aarch64-apple-darwin), DX12 (x86_64-pc-windows-msvc), WebGPU (wasm32)"
cargo check --quiet --lib --target aarch64-apple-darwin
cargo check --quiet --lib --target x86_64-pc-windows-msvc
cargo check --quiet --lib --target wasm32-unknown-unknown
step "cargo package (the crate's files build on their own; no warnings)"
# Packaged without cargo's own verification (a full rebuild in a separate folder), then the
# unpacked crate is checked against the shared target folder: the same proof that every file
# the crate includes (shaders included) is in the package, in a fraction of the time.
pkg_log=$(mktemp)
cargo package --allow-dirty --no-verify 2>&1 | tee "$pkg_log" | grep -vE '^\s+(Packaging|Packaged|Updating|Locking|Archiving)' || true
if grep -qE '^(warning|error)' "$pkg_log"; then
  echo "cargo package printed warnings or errors" >&2; exit 1
fi
rm -f "$pkg_log"
version=$(awk -F'"' '/^version = /{print $2; exit}' Cargo.toml)
rm -rf target/package/unpacked && mkdir -p target/package/unpacked
tar -xzf "target/package/webattn-$version.crate" -C target/package/unpacked
(cd "target/package/unpacked/webattn-$version" &&
  CARGO_TARGET_DIR="$PWD/../../.." cargo check --quiet --lib --tests --examples --features cli)
if [ -x web/pack-check.sh ]; then
  step "npm pack (the browser package has what web/README.md says)"; web/pack-check.sh
fi
log=$(mktemp)
step "cargo test (shader validation, contract, GPU against the f64 reference, errors, properties, CLI, docs)"
cargo test --all-targets --features cli 2>&1 | tee -a "$log"
cargo test --doc --features cli 2>&1 | tee -a "$log"
step "decode tests again on the layouts that are off by default (q in registers; prefetch)"
WEBATTN_DECODE_QREG=1 cargo test --test gpu --features cli decode 2>&1 | tee -a "$log"
WEBATTN_DECODE_LOADS=2 cargo test --test gpu --features cli decode 2>&1 | tee -a "$log"
step "decode tests on the cooperative-matrix kernel (lavapipe of Mesa 26: scripts/lavapipe-coop.sh)"
if icd=$(bash scripts/lavapipe-coop.sh); then
  VK_DRIVER_FILES="$icd" WEBATTN_DECODE_VARIANT=coopmat cargo test --test gpu --features cli decode \
    2>&1 | tee -a "$log"
else
  echo "SKIPPED: no lavapipe with cooperative matrices could be set up (see above)"
fi
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
