#!/usr/bin/env python3
"""The tiny LMs' tokens/s table (docs/perf.md, README): webattn's `generate --bench` rows
(docs/lm/lm_<model>_<dtype>.json) beside train/bench_lm.py's PyTorch eager and torch.compile
rows (docs/lm/lm_peers_eager.json, docs/lm/lm_peers_compile.json), all from the H100.

    python3 scripts/lm_table.py [docs/lm]
"""
import json
import os
import sys

d = sys.argv[1] if len(sys.argv) > 1 else "docs/lm"
ours = {}
for m in ("sb-nope", "softmax-rope", "sigmoid-rope"):
    for dt in ("f16", "f32"):
        p = os.path.join(d, f"lm_{m}_{dt}.json")
        if os.path.exists(p):
            for r in json.load(open(p)):
                ours[(m, dt, r["batch"])] = r
peers = {}
for f in ("lm_peers_eager.json", "lm_peers_compile.json"):
    p = os.path.join(d, f)
    if os.path.exists(p):
        for r in json.load(open(p))["results"]:
            if "tokens_per_s" in r:
                dt = {"fp16": "f16", "fp32": "f32"}[r["dtype"]]
                peers[(r["model"], dt, r["batch"], r["mode"], r["phase"])] = r["tokens_per_s"]


def f(x):
    return "" if x is None else f"{x:,.0f}"


def ratio(a, b):
    return "" if a is None or b is None else f"{a / b:.2f}"


print("| model | dtype | batch | phase | webattn tok/s | eager tok/s | compile tok/s "
      "| webattn / eager | webattn / compile |")
print("|---|---|---|---|---|---|---|---|---|")
for (m, dt, b), r in sorted(ours.items()):
    for ph, key in (("prefill 512", "prefill_tokens_per_s"), ("decode 256", "decode_tokens_per_s")):
        phase = ph.split()[0]
        w = r[key]
        e = peers.get((m, dt, b, "eager", phase))
        c = peers.get((m, dt, b, "compile", phase))
        print(f"| {m} | {dt} | {b} | {ph} | {f(w)} | {f(e)} | {f(c)} | {ratio(w, e)} | {ratio(w, c)} |")
