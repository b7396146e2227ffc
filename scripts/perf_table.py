#!/usr/bin/env python3
"""Merges `webattn bench --json` and `torch_peers.py --json` output (taken in the same device
call) into the markdown table of docs/perf.md: our time, TFLOP/s, and ratios (ours / peer).

    python3 scripts/perf_table.py docs/h100-bench.json docs/h100-peers.json
"""
import json, sys

ours = json.load(open(sys.argv[1]))
peers = {p["shape"]: p for p in json.load(open(sys.argv[2]))}
print("| kind | dtype | B×H×T×D | variant | ours ms | TFLOP/s | SDPA fp16 ms | ratio | SDPA fp32 ms | ratio | naive torch fp16 ms | ratio |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in ours:
    p = peers.get(r["shape"], {})
    ms = r["median_ms"]
    def cell(key):
        v = p.get(key)
        return ("%.3f" % v, "%.2f" % (ms / v)) if v else ("", "")
    f16 = cell("sdpa_fp16_ms")
    f32 = cell("sdpa_fp32_ms") if r["dtype"] == "f32" else ("", "")
    naive_key = {"sigmoid": "naive_sigmoid_fp16_ms", "stick-breaking": "naive_stick_breaking_fp16_ms"}.get(r["kind"])
    naive = cell(naive_key) if naive_key else ("", "")
    print(f"| {r['kind']} | {r['dtype']} | {r['shape'].replace('x', '×')} | {r.get('variant', '')} | {ms:.3f} | {r['tflops']:.1f} | {f16[0]} | {f16[1]} | {f32[0]} | {f32[1]} | {naive[0]} | {naive[1]} |")
