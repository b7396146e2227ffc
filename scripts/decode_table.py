#!/usr/bin/env python3
"""Merges `webattn bench --decode --json` and `torch_peers.py --mode decode --json` output (taken
in the same device call) into the decode table of docs/perf.md: GB/s, % of the copy bandwidth
measured in that call, and the ratio of our GB/s to SDPA's (higher is better).

    python3 scripts/decode_table.py docs/h100-decode.json docs/h100-peers-decode.json
"""
import json, sys

ours = json.load(open(sys.argv[1]))
rows = json.load(open(sys.argv[2]))
peers = {p["shape"]: p for p in rows if p.get("mode") == "decode"}
copy = next((p["copy_gb_s"] for p in rows if p.get("mode") == "ceiling"), None)
print(f"Copy bandwidth in the same call: {copy:.0f} GB/s.\n")
print("| kind | dtype | B×Hq×Hkv×Tk×D | chunks × keys | ours ms | GB/s | % of copy | SDPA GB/s (same dtype) | ours / SDPA | naive torch fp16 GB/s |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in ours:
    p = peers.get(r["shape"], {})
    sdpa = p.get("sdpa_fp16_gb_s") if r["dtype"] == "f16" else p.get("sdpa_fp32_gb_s")
    naive = {"sigmoid": p.get("naive_sigmoid_fp16_gb_s"), "stick-breaking": p.get("naive_stick_breaking_fp16_gb_s")}.get(r["kind"])
    pct = 100 * r["gb_s"] / copy if copy else float("nan")
    ratio = f"{r['gb_s'] / sdpa:.2f}" if sdpa else ""
    print(f"| {r['kind']} | {r['dtype']} | {r['shape'].replace('x', '×')} | {r['chunks']} × {r['chunk_len']} | {r['median_ms']:.4f} | {r['gb_s']:.0f} | {pct:.0f}% | {sdpa or ''} | {ratio} | {naive or '' if r['dtype'] == 'f16' else ''} |")
