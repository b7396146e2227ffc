#!/bin/bash
# One device call on the H100 (docs/perf.md): correctness of every variant (the GPU test suite
# with the automatic variants and with the portable one forced, and `check --sweep` for every
# variant and dtype), then `webattn bench` beside shared/bench/torch_peers.py (prefill; decode
# too when the binary has `bench --decode`). Needs .gl/ (from ../shared/tools/gpu-setup.sh)
# and .devbin/ (scripts/h100-prepare.sh). Results land in $OUT.
for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=/tmp
B=.devbin/webattn
$B info > $OUT/info.txt 2>&1
{
echo "## gpu tests, auto variant"; timeout 200 .devbin/gpu-tests --test-threads 4 2>&1 | grep -E "^test |test result|panicked|seed" | tail -60
echo "## gpu tests, portable"; WEBATTN_VARIANT=portable timeout 200 .devbin/gpu-tests --test-threads 4 2>&1 | grep -E "test result|panicked|FAILED|seed" | tail -8
for v in auto portable subgroup coopmat; do for dt in f32 f16; do
  [ $v = coopmat ] && [ $dt = f32 ] && continue
  echo "## sweep $v $dt"; if [ $v = auto ]; then a=""; else a="--variant $v"; fi
  timeout 100 $B check --sweep --dtype $dt $a 2>&1 | tail -14
done; done
} > $OUT/check.txt 2>&1
grep -E "##|result|runs|FAIL|panicked|error|seed" $OUT/check.txt | tail -40
timeout 240 $B bench --json $OUT/bench.json > $OUT/bench.md 2>&1; tail -26 $OUT/bench.md
timeout 120 $B bench --variant portable --dtype f32 --json $OUT/bench_portable.json > $OUT/bench_portable.md 2>&1; tail -14 $OUT/bench_portable.md
timeout 200 python3 .devbin/torch_peers.py --shapes 1x16x1024x64,1x16x4096x64,1x16x16384x64,4x12x4096x128 --json $OUT/peers.json > $OUT/peers.txt 2>&1; tail -5 $OUT/peers.txt
