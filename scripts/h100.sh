#!/bin/bash
# Device calls on the H100 (docs/perf.md), each within the 10-minute limit of one call:
#   bash scripts/h100.sh check   the GPU test suite with the automatic variants and with the
#                                portable one forced, and `check --sweep` per variant and dtype
#   bash scripts/h100.sh bench   `webattn bench` (prefill, every kind and dtype; portable f32)
#                                beside shared/bench/torch_peers.py, in the same call
#   bash scripts/h100.sh lm      the tiny LMs (models/): `webattn generate --bench` per model and
#                                dtype beside train/bench_lm.py (PyTorch eager, torch.compile)
#   bash scripts/h100.sh decode  `webattn bench --decode` beside torch_peers.py --mode decode
#   bash scripts/h100.sh decode4 decode changes D4-D5 in one call: the decode GPU tests (auto
#                                and portable), the WGSL read-bandwidth probe, the `bench
#                                --decode` runs that .devbin/runs.txt lists (binaries, their
#                                WEBATTN_DECODE_* ablations), then torch_peers.py --mode decode;
#                                JSON in $OUT/decode4.tar.gz
#   bash scripts/h100.sh check2  the GPU test suite with each cooperative-matrix variant forced
#                                (coopmat, coopmat2) and `check --sweep --dtype f16` for both
#   bash scripts/h100.sh bench2  f16 prefill, coopmat against coopmat2, in one call (issue 12)
#   bash scripts/h100.sh ablate2 coopmat2's ablations and staged K/V path (WEBATTN_COOP2_ABLATE,
#                                WEBATTN_COOP2_STAGE; docs/perf.md change 13), f16 prefill on
#                                4x12x4096x128 and 1x16x16384x64, one labelled table each,
#                                plus coopmat once (about 3 minutes)
# Needs .gl/ (../shared/tools/gpu-setup.sh) and .devbin/ (scripts/h100-prepare.sh), carried.
# Results land in $OUT.
for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=/tmp
B=.devbin/webattn
$B info > $OUT/info.txt 2>&1
case "${1:-check}" in
check)
  {
  echo "## gpu tests, auto variant"; timeout 170 .devbin/gpu-tests --test-threads 8 2>&1 | grep -E "^test |test result|panicked|seed|FAILED" | tail -80
  echo "## gpu tests, portable"; WEBATTN_VARIANT=portable timeout 170 .devbin/gpu-tests --test-threads 8 2>&1 | grep -E "test result|panicked|FAILED|seed" | tail -8
  for v in auto subgroup coopmat coopmat2 portable; do for dt in f32 f16; do
    [ $v = coopmat ] && [ $dt = f32 ] && continue
    [ $v = coopmat2 ] && [ $dt = f32 ] && continue
    [ $v = portable ] && [ $dt = f16 ] && continue
    echo "## sweep $v $dt"; if [ $v = auto ]; then a=""; else a="--variant $v"; fi
    timeout 60 $B check --sweep --dtype $dt $a 2>&1 | tail -16
  done; done
  } > $OUT/check.txt 2>&1
  grep -E "##|result|runs|FAIL|panicked|error|seed" $OUT/check.txt | tail -50
  ;;
bench)
  timeout 240 $B bench --json $OUT/bench.json > $OUT/bench.md 2>&1; tail -26 $OUT/bench.md
  timeout 100 $B bench --variant portable --dtype f32 --json $OUT/bench_portable.json > $OUT/bench_portable.md 2>&1; tail -14 $OUT/bench_portable.md
  timeout 200 python3 .devbin/torch_peers.py --shapes 1x16x1024x64,1x16x4096x64,1x16x16384x64,4x12x4096x128 --json $OUT/peers.json > $OUT/peers.txt 2>&1; tail -5 $OUT/peers.txt
  ;;
check2)
  {
  for v in coopmat2 coopmat; do
    echo "## gpu tests, $v"; WEBATTN_VARIANT=$v timeout 170 .devbin/gpu-tests --test-threads 8 2>&1 | grep -E "^test .*FAILED|test result|panicked|seed|FAILED" | tail -40
    echo "## sweep $v f16"; timeout 60 $B check --sweep --dtype f16 --variant $v 2>&1 | tail -16
  done
  } > $OUT/check2.txt 2>&1
  grep -E "##|result|runs|FAIL|panicked|error|seed" $OUT/check2.txt | tail -50
  ;;
bench2)
  for v in coopmat coopmat2 coopmat coopmat2; do
    echo "## $v"; timeout 120 $B bench --variant $v --dtype f16 --shapes 4x12x4096x128,1x16x16384x64 --json $OUT/bench_$v.json 2>&1 | tail -8
  done > $OUT/bench2.md 2>&1; cat $OUT/bench2.md
  ;;
lm)
  for m in sb-nope softmax-rope sigmoid-rope; do for dt in f16 f32; do
    echo "## webattn $m $dt"
    timeout 100 $B generate --model models/$m --bench --dtype $dt --json $OUT/lm_${m}_$dt.json 2>&1 | tail -6
  done; done > $OUT/lm.md 2>&1; cat $OUT/lm.md
  timeout 200 python3 train/bench_lm.py --models models --modes eager --json $OUT/lm_peers_eager.json > $OUT/lm_peers_eager.txt 2>&1; tail -5 $OUT/lm_peers_eager.txt
  timeout 280 python3 train/bench_lm.py --models models --modes compile --dtypes fp16 --json $OUT/lm_peers_compile.json > $OUT/lm_peers_compile.txt 2>&1; tail -5 $OUT/lm_peers_compile.txt
  ;;
ablate2)
  # label  stage  ablate   (ablate bits: k = K fragments, v = V fragments, b = phase B,
  #                         s = S store + P load; results are wrong there: timing only)
  while read label stage abl; do
    [ "$abl" = - ] && abl=""
    echo "## coopmat2 $label (WEBATTN_COOP2_STAGE=$stage WEBATTN_COOP2_ABLATE=$abl)"
    WEBATTN_COOP2_STAGE=$stage WEBATTN_COOP2_ABLATE=$abl timeout 30 $B bench --variant coopmat2 \
      --dtype f16 --reps 20 --shapes 4x12x4096x128,1x16x16384x64 2>&1 | grep -E "^\| (softmax|sigmoid|stick)"
  done > $OUT/ablate2.md 2>&1 <<'ROWS'
direct 0 -
direct-noK 0 k
direct-noV 0 v
direct-noKV 0 k,v
direct-noB 0 b
direct-noS 0 s
staged 1 -
staged-noK 1 k
staged-noV 1 v
staged-noB 1 b
staged-noS 1 s
ROWS
  echo "## coopmat" >> $OUT/ablate2.md
  timeout 30 $B bench --variant coopmat --dtype f16 --reps 20 --shapes 4x12x4096x128,1x16x16384x64 2>&1 \
    | grep -E "^\| (softmax|sigmoid|stick)" >> $OUT/ablate2.md
  cat $OUT/ablate2.md
  ;;
decode)
  timeout 300 $B bench --decode --dtype all --json $OUT/decode.json > $OUT/decode.md 2>&1; tail -30 $OUT/decode.md
  timeout 200 python3 .devbin/torch_peers.py --mode decode --shapes 1x32x8x4096x128,1x32x8x32768x128,1x32x8x131072x128,8x32x8x8192x128 --json $OUT/peers_decode.json > $OUT/peers_decode.txt 2>&1; tail -12 $OUT/peers_decode.txt
  ;;
decode4)
  # Decode measurements in one call. .devbin/runs.txt lists the bench runs, one a line:
  #   LABEL BINARY [VAR=VALUE ...] -- BENCH-ARGS   (BINARY under .devbin/; `bench --decode`)
  # Output: $OUT/decode4.md (tests, probe, one table row per line under `## LABEL`),
  # $OUT/peers_decode.txt, and the JSON of every run and of the peers in $OUT/decode4.tar.gz.
  mkdir -p /tmp/d4
  {
  # D4_FULL_TESTS=1: the whole GPU suite (prefill too) with the automatic variants first.
  [ -n "${D4_FULL_TESTS:-}" ] && { echo "## gpu tests, all, auto"; timeout 200 .devbin/gpu-tests --test-threads 8 2>&1 | grep -E "test result|panicked|FAILED|seed" | tail -12; }
  echo "## gpu decode tests, auto"; timeout 120 .devbin/gpu-tests --test-threads 8 decode 2>&1 | grep -E "test result|panicked|FAILED|seed" | tail -8
  echo "## gpu decode tests, portable"; WEBATTN_VARIANT=portable timeout 120 .devbin/gpu-tests --test-threads 8 decode 2>&1 | grep -E "test result|panicked|FAILED|seed" | tail -8
  echo "## gpu decode tests, coopmat"; WEBATTN_DECODE_VARIANT=coopmat timeout 120 .devbin/gpu-tests --test-threads 8 decode 2>&1 | grep -E "test result|panicked|FAILED|seed" | tail -8
  for mb in 512 1024; do echo "## read_bandwidth ${mb} MiB"; [ -x .devbin/read_bandwidth ] && BW_MB=$mb timeout 60 .devbin/read_bandwidth 2>&1 | tail -3; done
  if [ -x .devbin/vkstats ] && [ -d .devbin/spv ]; then
    # The driver's registers and local memory per kernel (tools/vkstats; local memory is
    # reported with bit 36 set on this driver: the bytes are the value minus 2^36).
    echo "## vkstats"; .devbin/vkstats .devbin/spv/*.spv > /tmp/d4/vkstats.txt 2>&1
    python3 -c 'import re,sys
for l in open(sys.argv[1]):
    l = re.sub(r"Local Memory Size=(\d+)", lambda m: "local=%d" % (int(m.group(1)) % (1 << 36)), l)
    print(re.sub(r" (Binary Size|Stack Size|Shared Memory Size)=\d+;", "", l).rstrip())' /tmp/d4/vkstats.txt
  fi
  while read -r label bin rest; do
    [ -z "$label" ] && continue; case "$label" in \#*) continue;; esac
    envs=(); set -- $rest; while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done; shift
    echo "## $label"
    env "${envs[@]}" timeout 200 .devbin/$bin bench --decode --json /tmp/d4/$label.json "$@" 2>&1 \
      | grep -E "^\| (softmax|sigmoid|stick)|rror"
  done < .devbin/runs.txt
  } > $OUT/decode4.md 2>&1
  [ -n "${D4_NO_PEERS:-}" ] || timeout 200 python3 .devbin/torch_peers.py --mode decode --shapes 1x32x8x4096x128,1x32x8x32768x128,1x32x8x131072x128,8x32x8x8192x128 --json /tmp/d4/peers_decode.json > $OUT/peers_decode.txt 2>&1
  tar -czf $OUT/decode4.tar.gz -C /tmp d4
  awk '/^## /{sec=$2} /^\| (softmax|sigmoid|stick)/{split($0,a,"|"); printf "%-18s %-15s %s B%s Tk%s %s ms %s\n", sec, a[2], a[3], a[4], a[7], a[11], a[13]; next} {print}' $OUT/decode4.md | grep -v "Tk 4096 " | tail -120
  ;;
esac
