#!/usr/bin/env bash
# The main job: set up a Vulkan driver if the machine has none, then show the adapter and run
# every attention kind on the GPU (or the software adapter) against the f64 reference.
# Extra arguments go to `webattn check` (e.g. --q-len 1000 --dim 128 --kind stick-breaking).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
cargo build --release --quiet --features cli
./target/release/webattn info
./target/release/webattn check "$@"
# With no arguments, the main job also generates text with each shipped tiny language model
# (models/, docs/lm.md): greedy, 120 bytes, on the same adapter.
if [ $# -eq 0 ]; then
  for m in models/*/; do
    echo "== $m"
    ./target/release/webattn generate --model "$m" --prompt "And God said" -n 120
  done
fi
