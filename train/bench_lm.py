"""PyTorch peers for the model runner's benchmark: tokens/s of the tiny LMs (docs/lm.md).

    python3 train/bench_lm.py --json peers_lm.json [--models models] [--device cuda]
        [--kinds sb-nope,softmax-rope,sigmoid-rope] [--dtypes fp16,fp32] [--batches 1,8]
        [--modes eager,compile] [--prefill 512] [--decode 256] [--decode-prompt 256]

For each model (trained weights from <models>/<name>/ where present, else random weights,
seed 0), dtype (weights and KV cache; attention itself computes in f32, as model.py does),
batch size and mode it measures:

- prefill: one forward pass over `--prefill` bytes per sequence that fills the KV cache and
  returns the last position's logits; tokens/s = batch * prefill / time;
- decode: after an untimed prefill of `--decode-prompt` bytes, `--decode` greedy steps of one
  byte each (argmax on the device, fed back); tokens/s = batch * decode / time.

Modes: `eager` (decode attends to the filled part of the cache, [0, pos]) and `compile`
(torch.compile of the prefill and of one decode step; the decode step uses the static,
preallocated cache of length decode-prompt + decode, masked by position, so that its shapes
never change). The compile mode is tried as "reduce-overhead" (CUDA graphs) first, then
"max-autotune-no-cudagraphs" (--compile-modes); failures are caught and reported in the JSON
(`errors`, and `error` when no mode ran).

Timing: CUDA events on the GPU (time.perf_counter on the CPU), `--warmup` untimed runs
first (they include compilation, reported as `compile_s`), then the median of `--repeats`
runs. Results are written to --json after each measurement, so a run cut short keeps what
it measured.

On the CPU (for testing), e.g.: --device cpu --kinds sb-nope --dtypes fp32 --batches 1
--prefill 32 --decode 8 --decode-prompt 8 --repeats 2 --warmup 1
"""

import argparse
import json
import os
import statistics
import sys
import time
import traceback

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import LM, MODELS, KVCache, ModelConfig, load_model  # noqa: E402

DTYPES = {"fp16": torch.float16, "fp32": torch.float32, "bf16": torch.bfloat16}
COMPILE_MODES = ("reduce-overhead", "max-autotune-no-cudagraphs")


def get_model(kind, models_dir, device, dtype):
    """Trained weights from models_dir/kind if present, else random ones (seed 0)."""
    path = os.path.join(models_dir, kind) if models_dir else None
    if path and os.path.exists(os.path.join(path, "model.safetensors")):
        return load_model(path, dtype=dtype, device=device), "trained"
    torch.manual_seed(0)
    return LM(ModelConfig.for_model(kind)).to(device=device, dtype=dtype).eval(), "random"


class Timer:
    """Wall time of a callable: CUDA events on the GPU, perf_counter on the CPU."""

    def __init__(self, device):
        self.cuda = device.type == "cuda"

    def __call__(self, fn):
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end)
        t = time.perf_counter()
        fn()
        return (time.perf_counter() - t) * 1e3


def mark_step():
    """Tell CUDA-graph trees that a new iteration begins (outputs of the last are dead)."""
    fn = getattr(getattr(torch, "compiler", None), "cudagraph_mark_step_begin", None)
    if fn is not None:
        fn()


def make_fns(model, cache, compile_mode):
    """(prefill(idx), step(tok, pos, p)) for eager (compile_mode None) or compiled runs."""
    if compile_mode is None:
        def prefill(idx):
            return model(idx, cache=cache, kv_len=idx.shape[1], last_only=True)

        def step(tok, pos, p):
            return model(tok, pos=pos, cache=cache, kv_len=p + 1, last_only=True)
        return prefill, step

    torch._dynamo.mark_static_address(cache.k)
    torch._dynamo.mark_static_address(cache.v)

    def prefill_fn(idx):
        return model(idx, cache=cache, kv_len=idx.shape[1], last_only=True)

    def step_fn(tok, pos):
        return model(tok, pos=pos, cache=cache, last_only=True)

    cp = torch.compile(prefill_fn, mode=compile_mode, dynamic=False, fullgraph=True)
    cs = torch.compile(step_fn, mode=compile_mode, dynamic=False, fullgraph=True)

    def prefill(idx):
        mark_step()
        return cp(idx)

    def step(tok, pos, p):
        mark_step()
        return cs(tok, pos)
    return prefill, step


def measure(model, device, dtype, batch, phase, args, compile_mode):
    """One measurement; returns a dict (ms of each repeat, median, tokens/s, compile_s)."""
    cfg = model.cfg
    g = torch.Generator().manual_seed(1)
    if phase == "prefill":
        n_prompt, n_new = args.prefill, 0
    else:
        n_prompt, n_new = args.decode_prompt, args.decode
    cache = KVCache(cfg, batch, n_prompt + n_new, device=device, dtype=dtype)
    prompt = torch.randint(0, 256, (batch, n_prompt), generator=g).to(device)
    positions = torch.arange(n_prompt + n_new, device=device)
    prefill, step = make_fns(model, cache, compile_mode)

    def run_prefill():
        return prefill(prompt)

    def run_decode(first):
        tok = first
        for t in range(n_new):
            p = n_prompt + t
            logits = step(tok, positions[p:p + 1], p)
            tok = logits[:, -1].argmax(-1, keepdim=True)
        return tok

    timer = Timer(device)
    with torch.no_grad():
        t0 = time.perf_counter()
        for _ in range(args.warmup):
            if phase == "prefill":
                run_prefill()
            else:
                first = run_prefill()[:, -1].argmax(-1, keepdim=True).clone()
                run_decode(first)
        if device.type == "cuda":
            torch.cuda.synchronize()
        warm_s = time.perf_counter() - t0
        times = []
        for _ in range(args.repeats):
            if phase == "prefill":
                times.append(timer(run_prefill))
            else:
                first = run_prefill()[:, -1].argmax(-1, keepdim=True).clone()
                times.append(timer(lambda: run_decode(first)))
    ms = statistics.median(times)
    tokens = batch * (args.prefill if phase == "prefill" else args.decode)
    return {"tokens": tokens, "ms_median": round(ms, 4), "ms_all": [round(t, 4) for t in times],
            "tokens_per_s": round(tokens / (ms / 1e3), 1), "warmup_s": round(warm_s, 2)}


def main():
    ap = argparse.ArgumentParser(description="PyTorch peers for the LM runner benchmark.")
    ap.add_argument("--json", required=True)
    ap.add_argument("--models", default="models", help="folder of <name>/ with weights")
    ap.add_argument("--device", default=None)
    ap.add_argument("--kinds", default=",".join(MODELS))
    ap.add_argument("--dtypes", default="fp16,fp32")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--modes", default="eager,compile")
    ap.add_argument("--phases", default="prefill,decode")
    ap.add_argument("--prefill", type=int, default=512)
    ap.add_argument("--decode", type=int, default=256)
    ap.add_argument("--decode-prompt", type=int, default=256)
    ap.add_argument("--compile-modes", default=",".join(COMPILE_MODES),
                    help="torch.compile modes to try in order, the first that runs is kept")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32
    out = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
           "torch": torch.__version__,
           "settings": {k: getattr(args, k) for k in ("prefill", "decode", "decode_prompt",
                                                       "repeats", "warmup")},
           "notes": "attention in f32 inside (naive, T x Tk); decode eager attends to [0, pos], "
                    "compiled decode to the whole static cache (masked by position)",
           "results": []}

    def save():
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
            f.write("\n")

    for kind in args.kinds.split(","):
        for dname in args.dtypes.split(","):
            dtype = DTYPES[dname]
            model, weights = get_model(kind, args.models, device, dtype)
            for mode in args.modes.split(","):
                for batch in [int(b) for b in args.batches.split(",")]:
                    for phase in args.phases.split(","):
                        rec = {"model": kind, "weights": weights, "dtype": dname,
                               "batch": batch, "mode": mode, "phase": phase}
                        tries = [None] if mode == "eager" else args.compile_modes.split(",")
                        errors = []
                        for cmode in tries:
                            if cmode is not None:
                                torch._dynamo.reset()
                                rec["compile_mode"] = cmode
                            try:
                                rec.update(measure(model, device, dtype, batch, phase, args,
                                                   cmode))
                                break
                            except Exception as e:  # report, try the next mode
                                errors.append(f"{cmode}: {type(e).__name__}: {str(e)[:400]}")
                                traceback.print_exc(limit=2)
                        if errors:
                            rec["errors"] = errors
                        if "tokens_per_s" not in rec:
                            rec["error"] = "all modes failed"
                        out["results"].append(rec)
                        save()
                        print(json.dumps(rec), flush=True)
    save()
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
