#!/bin/bash
# A quick check of scripts/h100-train.sh on the lent H100 (about 1-2 minutes): 20 steps of
# each model, the three concurrently, then the export is checked (names, shapes, f16) and
# fixtures.py runs on one exported model. Prints the step times (steps 10 to 20, three
# processes sharing the GPU), to set STEPS for the real run. Carry `.devbin` (corpus in
# .devbin/data/). Results in $OUT: smoke.txt and smoke-logs.tar.gz.
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}  # 3 processes, 16 cores
DATA=${DATA:-.devbin/data}
RUNS=${RUNS:-/tmp/lm-smoke}
OUT=${OUT:-/tmp/lm-out}
KINDS="sb-nope softmax-rope sigmoid-rope"
mkdir -p "$RUNS" "$OUT"
{
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
declare -A pid
for k in $KINDS; do
  timeout 300 python3 train/train.py --kind "$k" --steps 20 --log-every 5 --eval-every 10 \
    --time-budget 240 --data "$DATA" --out "$RUNS/$k" ${EXTRA:-} > "$RUNS/$k.log" 2>&1 &
  pid[$k]=$!
done
for k in $KINDS; do wait "${pid[$k]}"; echo "$k exit $?"; done
nvidia-smi --query-gpu=memory.used --format=csv,noheader
python3 - "$RUNS" <<'PY'
import json, os, sys
sys.path.insert(0, "train")
from safetensors import safe_open
from model import ModelConfig, expected_shapes
runs = sys.argv[1]
for k in ("sb-nope", "softmax-rope", "sigmoid-rope"):
    d = os.path.join(runs, k)
    if not os.path.exists(os.path.join(d, "config.json")):
        print(k, "NO EXPORT"); continue
    cfg = ModelConfig.from_json(json.load(open(os.path.join(d, "config.json"))))
    with safe_open(os.path.join(d, "model.safetensors"), "pt") as f:
        got = {n: (tuple(f.get_slice(n).get_shape()), f.get_slice(n).get_dtype()) for n in f.keys()}
    ok = {n: s for n, (s, _) in got.items()} == expected_shapes(cfg) and \
        all(t == "F16" for _, t in got.values())
    logs = [json.loads(l) for l in open(os.path.join(d, "train.jsonl"))]
    t = {r["step"]: r["t"] for r in logs if "loss" in r}
    ms = (t[20] - t[10]) / 10 * 1e3 if 10 in t and 20 in t else float("nan")
    fin = [r for r in logs if r.get("event") == "final"][0]
    print(f"{k:13s} export {'ok' if ok else 'WRONG'}  {ms:.1f} ms/step (shared GPU, steps 10-20)"
          f"  -> ~{int(450e3 / ms) if ms == ms else '?'} steps in 450 s"
          f"  val bpb {fin['val_bpb']:.3f}")
PY
timeout 120 python3 train/fixtures.py --model "$RUNS/sb-nope" --out "$RUNS/fixtures-sb-nope.json" 2>&1 | tail -4
} 2>&1 | tee "$RUNS/smoke.txt"
cp "$RUNS/smoke.txt" "$OUT/smoke.txt"
(cd "$RUNS" && tar czf "$OUT/smoke-logs.tar.gz" ./*.log ./*/train.jsonl ./*/config.json)
