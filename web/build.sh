#!/usr/bin/env bash
# Builds the browser package: the wasm32 library (release), then wasm-bindgen --target web
# into web/pkg (webattn.js, webattn.d.ts, webattn_bg.wasm). Prints the wasm size, raw and gzip.
# Needs: rustup target wasm32-unknown-unknown and wasm-bindgen-cli at the version Cargo.lock
# pins for the wasm-bindgen crate (bash scripts/setup.sh --all installs both).
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-target}"

want=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ -z "$have" ]; then
  echo "web/build.sh: wasm-bindgen not found; install it with: cargo install wasm-bindgen-cli --version $want" >&2
  exit 1
fi
if [ "$want" != "$have" ]; then
  echo "web/build.sh: wasm-bindgen-cli is $have but Cargo.lock pins the wasm-bindgen crate at $want;" >&2
  echo "  run: cargo install wasm-bindgen-cli --version $want" >&2
  exit 1
fi

# `--no-default-features --features lm`: the library and the language-model runner (src/lm/,
# the `LmModel` bindings of web/lm.html); the `cli` feature, the native program, is never
# wanted here. One codegen unit: with several, each unit
# that inlines a kind's `shader()` keeps its own copy of the WGSL sources (include_str!), and
# the module grows by about 110 KB (780 KB instead of 669 KB). Only this build gets it: the
# setting travels in the environment, not in Cargo.toml's release profile.
CARGO_PROFILE_RELEASE_CODEGEN_UNITS="${CARGO_PROFILE_RELEASE_CODEGEN_UNITS:-1}" \
  cargo build --lib --target wasm32-unknown-unknown --release --no-default-features --features lm
wasm-bindgen --target web --typescript --out-dir web/pkg \
  "$target_dir/wasm32-unknown-unknown/release/webattn.wasm"

wasm=web/pkg/webattn_bg.wasm
raw=$(wc -c <"$wasm")
gz=$(gzip -9 -c "$wasm" | wc -c)
js=$(wc -c <web/pkg/webattn.js)
awk -v r="$raw" -v g="$gz" -v j="$js" 'BEGIN {
  printf "web/pkg: webattn_bg.wasm %d bytes (%.1f KiB), gzip -9 %d bytes (%.1f KiB); webattn.js %d bytes\n",
    r, r / 1024, g, g / 1024, j }'
