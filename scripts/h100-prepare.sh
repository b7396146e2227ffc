#!/bin/bash
# Builds, here, what scripts/h100.sh runs on the lent H100 and copies it into the ignored
# .devbin/: the release `webattn`, the release GPU test binary, torch_peers.py and the
# official stick-breaking kernel (peers/). Then carry [".gl", ".devbin"] in the device call.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --features cli
cargo test --release --test gpu --no-run
mkdir -p .devbin
cp target/release/webattn ../shared/bench/torch_peers.py .devbin/
cp -r ../shared/bench/peers .devbin/
cp "$(ls -t target/release/deps/gpu-* | grep -v '\.d$' | head -1)" .devbin/gpu-tests
du -sh .devbin
