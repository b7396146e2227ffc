#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to build, run and test webattn. Idempotent.
#   bash scripts/setup.sh          native only: a Vulkan driver (Mesa lavapipe) if none is present
#   bash scripts/setup.sh --all    also the cross targets, wasm-bindgen-cli, chromium, node deps
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
apt_updated=""
apt_install() {
  [ -n "$apt_updated" ] || { $SUDO apt-get update -qq; apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

# 1. A Vulkan loader and driver. With no GPU driver present, Mesa's lavapipe (software Vulkan).
if ! ldconfig -p | grep -q 'libvulkan.so.1'; then
  echo "setup: installing the Vulkan loader"; apt_install libvulkan1
fi
if ! ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json >/dev/null 2>&1; then
  echo "setup: no Vulkan driver found; installing Mesa lavapipe (mesa-vulkan-drivers)"
  apt_install mesa-vulkan-drivers
fi

[ "${1:-}" = "--all" ] || exit 0

# 2. Cross-compilation targets checked in CI (Metal, DX12, WebGPU).
installed=$(rustup target list --installed)
for t in wasm32-unknown-unknown aarch64-apple-darwin x86_64-pc-windows-msvc; do
  grep -qx "$t" <<<"$installed" || rustup target add "$t"
done

# 3. wasm-bindgen-cli at exactly the version Cargo.lock pins for the wasm-bindgen crate.
want=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ -n "$want" ] && [ "$want" != "$have" ]; then
  echo "setup: installing wasm-bindgen-cli $want"
  cargo install -q wasm-bindgen-cli --version "$want"
fi

# 4. Headless Chromium (WebGPU on SwiftShader) and the browser-test driver.
command -v chromium >/dev/null || { echo "setup: installing chromium"; apt_install chromium; }
if [ -f web/package.json ] && [ ! -d web/node_modules/playwright-core ]; then
  (cd web && npm ci --no-audit --no-fund --silent)
fi
