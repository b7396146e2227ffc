#!/bin/bash
# Trains the three tiny LMs (docs/lm.md) concurrently on the one lent H100, in one device call
# that ends within about 8.5 minutes, export included (train/README.md).
# Run from the repo root with `.devbin` carried; the corpus must be in .devbin/data/
# (here, before the call: python3 train/corpus.py --out .devbin/data). Results in $OUT:
#   models/<name>/model.safetensors, models/<name>/config.json   (3 x 2 files, ~27 MB)
#   logs.tar.gz    each run's train.jsonl and stdout/stderr, summary.txt
#   summary.txt    steps, decay start, final bits per byte, wall time per model
# The device returns at most 8 files (16 MiB each, 64 MiB in all), so the checkpoints
# (runs/<name>/checkpoints/, f32, ~17.6 MB each) stay on the machine.
# Knobs (environment): STEPS (4000), BUDGET (seconds per process, 470), DATA, RUNS, and
# EXTRA (more train.py arguments, e.g. "--batch 2 --seq 64 --eval-windows 4" to test on a CPU).
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}  # 3 processes, 16 cores
DATA=${DATA:-.devbin/data}
STEPS=${STEPS:-4000}
BUDGET=${BUDGET:-470}
RUNS=${RUNS:-/tmp/lm-runs}
OUT=${OUT:-/tmp/lm-out}
KINDS="sb-nope softmax-rope sigmoid-rope"
mkdir -p "$RUNS" "$OUT/models"
start=$(date +%s)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c 'import torch; print("torch", torch.__version__)'
[ -f "$DATA/train.bin" ] || { echo "no corpus in $DATA (python3 train/corpus.py --out $DATA)"; exit 1; }

declare -A pid
for k in $KINDS; do
  timeout -s INT $((BUDGET + 30)) python3 train/train.py --kind "$k" --steps "$STEPS" \
    --time-budget "$BUDGET" --data "$DATA" --out "$RUNS/$k" ${EXTRA:-} > "$RUNS/$k.log" 2>&1 &
  pid[$k]=$!
done
for k in $KINDS; do
  wait "${pid[$k]}"; echo "$k exit $?" >> "$RUNS/exit.txt"
done

{
  echo "# h100-train.sh: STEPS=$STEPS BUDGET=$BUDGET, $(($(date +%s) - start)) s"
  cat "$RUNS/exit.txt"
  for k in $KINDS; do
    if [ -f "$RUNS/$k/config.json" ]; then
      mkdir -p "$OUT/models/$k"
      cp "$RUNS/$k/model.safetensors" "$RUNS/$k/config.json" "$OUT/models/$k/"
      python3 - "$RUNS/$k/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); t = c["training"]
print(f'{c["name"]:13s} steps {t["steps"]} (decay from {t["decay_start"]}, {t["stopped_by"]}) '
      f'tokens {t["tokens_seen"]} train bpb {t["final_train_bpb"]} val bpb {t["final_val_bpb"]} '
      f'(f16 {t["final_val_bpb_f16_weights"]}) train {t["train_time_s"]} s wall {t["wall_time_s"]} s')
print("   evals:", " ".join(f'{e["step"]}:{e["val_bpb"]:.3f}' for e in t["evals"]))
PY
    else
      echo "$k: FAILED, no export; last lines of its log:"; tail -5 "$RUNS/$k.log"
    fi
    ls "$RUNS/$k/checkpoints" 2>/dev/null | tr '\n' ' '; echo
  done
  echo "total $(($(date +%s) - start)) s"
} > "$RUNS/summary.txt" 2>&1
cp "$RUNS/summary.txt" "$OUT/summary.txt"
(cd "$RUNS" && tar czf "$OUT/logs.tar.gz" summary.txt exit.txt ./*.log ./*/train.jsonl)
cat "$OUT/summary.txt"
