"""Train one of the tiny byte-level language models of docs/lm.md and export it.

    python3 train/train.py --kind sb-nope --steps 4000 --data train/data --out runs/sb-nope \\
        [--batch 32 --seq 512 --lr 3e-3 --seed 0 --time-budget 470]

Recipe: AdamW (betas 0.9/0.95, weight decay 0.1 on matrices only, none on norm weights),
gradient clipping at 1.0, learning rate: linear warm-up, constant, then linear decay to 0 over
the last 20% of the steps (or from --decay-start). Batches are random windows of seq+1 bytes
of train.bin, drawn by a numpy Generator seeded with --seed; weights are initialised after
torch.manual_seed(--seed). bf16 autocast on CUDA (attention itself in f32, model.py), f32 on
the CPU.

Time budget (--time-budget SECONDS, counted from the start of this process): while the
learning rate is still constant, the script projects the end of the run from the recent step
time (plus evaluations and the final export); when that would exceed the budget it lowers the
number of steps to what fits and moves the decay start so that the decay (20% of the new
total, or what is left of the constant phase) still ends in time. The actual steps and decay
start are recorded (config.json `training.reproduce`): rerunning with `--steps S
--decay-start D` and no budget gives the same schedule and the same data order. If time still
runs out during the decay, the run stops there (recorded as `stopped_by: time-budget`; the
reproduce command then carries `--stop-after N`).

Outputs in --out: train.jsonl (JSON lines: training logs, evaluations, schedule changes),
checkpoints/step<N>.pt at about 10%, 30%, 60% of the steps and at the end (model state in
f32, step, schedule; not shipped), model.safetensors (f16, docs/lm.md names and shapes) and
config.json (docs/lm.md, with the `training` section).
"""

import time

T0 = time.time()  # the time budget counts from here, before importing torch

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import LM, MODELS, ModelConfig, count_params, export_state, expected_shapes  # noqa: E402

CHECKPOINT_FRACTIONS = (0.1, 0.3, 0.6)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description="Train a tiny byte-level LM (docs/lm.md).")
    ap.add_argument("--kind", required=True, choices=sorted(MODELS))
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=None,
                    help="warm-up steps (default: 100, at most 10%% of --steps)")
    ap.add_argument("--decay-frac", type=float, default=0.2,
                    help="fraction of the steps with the linear decay to 0")
    ap.add_argument("--decay-start", type=int, default=None,
                    help="first step of the decay (default: steps * (1 - decay-frac))")
    ap.add_argument("--stop-after", type=int, default=None,
                    help="stop after this many steps without changing the schedule")
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--beta1", type=float, default=0.9)
    ap.add_argument("--beta2", type=float, default=0.95)
    ap.add_argument("--grad-clip", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                    "data"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--time-budget", type=float, default=0.0,
                    help="seconds from process start to the end of the export (0: none)")
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--eval-windows", type=int, default=0,
                    help="evaluate on at most this many windows (0: all of val.bin)")
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument("--device", default=None, help="cuda or cpu (default: cuda if present)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model")
    return ap.parse_args(argv)


def lr_at(step, base_lr, total, warmup, decay_start):
    """Learning rate of step `step` (0-based): warm-up, constant, linear decay to 0."""
    if step < warmup:
        return base_lr * (step + 1) / warmup
    if step >= decay_start:
        return base_lr * (total - step) / max(1, total - decay_start)
    return base_lr


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Evaluator:
    """Bits per byte on fixed windows: consecutive windows of val.bin, a fixed random sample
    of as many windows of train.bin (seed + 1)."""

    def __init__(self, train, val, seq, batch, max_windows, seed, device, autocast):
        starts = np.arange(0, len(val) - seq - 1, seq)
        if max_windows:
            starts = starts[:max_windows]
        self.val = self._windows(val, starts, seq)
        rng = np.random.default_rng(seed + 1)
        tstarts = np.sort(rng.integers(0, len(train) - seq - 1, size=len(starts)))
        self.train = self._windows(train, tstarts, seq)
        self.batch, self.device, self.autocast = batch, device, autocast

    @staticmethod
    def _windows(data, starts, seq):
        return torch.from_numpy(data[starts[:, None] + np.arange(seq + 1)[None, :]].astype(np.int64))

    @torch.no_grad()
    def bpb(self, model, windows):
        model.eval()
        total, count = 0.0, 0
        for i in range(0, len(windows), self.batch):
            w = windows[i:i + self.batch].to(self.device)
            with self.autocast():
                logits = model(w[:, :-1])
            loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]),
                                   w[:, 1:].reshape(-1), reduction="sum")
            total += loss.item()
            count += w[:, 1:].numel()
        model.train()
        return total / count / math.log(2)


def main(argv=None):
    args = parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cuda = device.type == "cuda"
    os.makedirs(os.path.join(args.out, "checkpoints"), exist_ok=True)
    log_file = open(os.path.join(args.out, "train.jsonl"), "w")

    def log(record):
        record = {"t": round(time.time() - T0, 3), **record}
        line = json.dumps(record)
        print(line, flush=True)
        log_file.write(line + "\n")
        log_file.flush()

    # Data.
    train = np.fromfile(os.path.join(args.data, "train.bin"), dtype=np.uint8)
    val = np.fromfile(os.path.join(args.data, "val.bin"), dtype=np.uint8)
    corpus_meta = {}
    meta_path = os.path.join(args.data, "corpus.json")
    if os.path.exists(meta_path):
        with open(meta_path) as f:
            corpus_meta = json.load(f)
    corpus = {"train_bytes": int(len(train)), "val_bytes": int(len(val)),
              "train_sha256": sha256_file(os.path.join(args.data, "train.bin")),
              "val_sha256": sha256_file(os.path.join(args.data, "val.bin")),
              "recipe": corpus_meta.get("recipe"), "packages": corpus_meta.get("packages")}
    data_rng = np.random.default_rng(args.seed)
    offsets = np.arange(args.seq + 1)[None, :]

    def next_batch():
        starts = data_rng.integers(0, len(train) - args.seq - 1, size=args.batch)
        b = torch.from_numpy(train[starts[:, None] + offsets].astype(np.int64))
        if cuda:
            b = b.pin_memory().to(device, non_blocking=True)
        return b[:, :-1], b[:, 1:]

    # Model and optimiser.
    torch.manual_seed(args.seed)
    cfg = ModelConfig.for_model(args.kind)
    model = LM(cfg).to(device)
    n_params = count_params(model)
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    def autocast():
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=cuda)

    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(args.beta1, args.beta2), eps=1e-8,
                            **({"fused": True} if cuda else {}))
    fwd = torch.compile(model) if args.compile else model
    evaluator = Evaluator(train, val, args.seq, args.batch, args.eval_windows, args.seed,
                          device, autocast)

    # Schedule (may be shortened by the time budget, only while the lr is constant).
    total = args.steps
    warmup = args.warmup if args.warmup is not None else max(1, min(100, total // 10))
    decay_start = args.decay_start if args.decay_start is not None else \
        total - int(round(args.decay_frac * total))
    decay_start = max(warmup, min(decay_start, total))
    saved_fractions = set()
    log({"event": "start", "kind": args.kind, "params": n_params, "device": str(device),
         "torch": torch.__version__, "steps": total, "warmup": warmup,
         "decay_start": decay_start, "argv": sys.argv[1:]})

    def save_checkpoint(step):
        path = os.path.join(args.out, "checkpoints", f"step{step:06d}.pt")
        torch.save({"model": model.state_dict(), "step": step, "steps": total,
                    "decay_start": decay_start, "config": cfg.to_json()}, path)

    eval_time = 0.0
    evals = []

    def run_eval(step):
        nonlocal eval_time
        t = time.time()
        rec = {"step": step, "val_bpb": evaluator.bpb(fwd, evaluator.val)}
        if cuda:
            torch.cuda.synchronize()
        eval_time = time.time() - t
        rec["eval_s"] = round(eval_time, 3)
        evals.append(rec)
        log({"event": "eval", **rec})
        return rec

    run_eval(0)
    reserve = 10.0 + 3 * eval_time  # final evaluations, checkpoint, export
    budget_end = T0 + args.time_budget if args.time_budget > 0 else None
    stopped_by = "steps"
    step_times = []  # (step, time) marks for the recent step rate
    t_train = time.time()
    tokens = 0
    step = 0
    model.train()
    while step < total:
        lr = lr_at(step, args.lr, total, warmup, decay_start)
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = next_batch()
        with autocast():
            logits = fwd(x)
        loss = F.cross_entropy(logits.float().reshape(-1, cfg.vocab), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        step += 1
        tokens += x.numel()

        if step % args.log_every == 0 or step == total:
            log({"step": step, "loss": round(loss.item(), 5),
                 "bpb": round(loss.item() / math.log(2), 5), "lr": lr,
                 "grad_norm": round(gnorm.item(), 4), "tokens": tokens})
        if step % args.eval_every == 0 and step < total:
            run_eval(step)
        for frac in CHECKPOINT_FRACTIONS:
            if frac not in saved_fractions and step >= frac * total and step < total:
                saved_fractions.add(frac)
                save_checkpoint(step)

        # Time budget.
        if budget_end is not None:
            if step % 10 == 0:
                if cuda:
                    torch.cuda.synchronize()
                step_times.append((step, time.time()))
                step_times = step_times[-6:]
            now = time.time()
            if step < decay_start and len(step_times) >= 3 and step % 10 == 0:
                (s0, t0), (s1, t1) = step_times[0], step_times[-1]
                # Seconds per step, evaluations included, and the steps that still fit.
                per_step = (t1 - t0) / (s1 - s0) + eval_time / args.eval_every
                fit = int((budget_end - now - reserve) / per_step)
                if step + fit < total:
                    total = max(step + 1, step + fit)
                    decay_start = max(step, total - int(round(args.decay_frac * total)))
                    log({"event": "replan", "step": step, "steps": total,
                         "decay_start": decay_start, "s_per_step": round(per_step, 5)})
            if now > budget_end - reserve and step < total:
                log({"event": "time-budget-stop", "step": step, "planned_steps": total})
                stopped_by = "time-budget"
                break
        if args.stop_after is not None and step >= args.stop_after:
            stopped_by = "stop-after"
            break
    if cuda:
        torch.cuda.synchronize()
    train_time = time.time() - t_train

    # Final evaluation, checkpoint, export.
    final = {"step": step,
             "train_bpb": evaluator.bpb(fwd, evaluator.train),
             "val_bpb": evaluator.bpb(fwd, evaluator.val)}
    tensors = export_state(model, torch.float16)
    assert {k: tuple(v.shape) for k, v in tensors.items()} == expected_shapes(cfg)
    shipped = LM(cfg).to(device)
    shipped.load_state_dict({k: v.float() for k, v in tensors.items()})
    final["val_bpb_f16_weights"] = evaluator.bpb(shipped, evaluator.val)
    log({"event": "final", **final})
    save_checkpoint(step)

    from safetensors.torch import save_file
    save_file(tensors, os.path.join(args.out, "model.safetensors"), metadata={"format": "pt"})
    reproduce = ["python3", "train/train.py", "--kind", args.kind, "--steps", str(total),
                 "--decay-start", str(decay_start), "--warmup", str(warmup),
                 *(["--stop-after", str(step)] if step < total else []),
                 "--batch", str(args.batch), "--seq", str(args.seq), "--lr", repr(args.lr),
                 "--seed", str(args.seed), "--data", "DATA", "--out", "OUT"]
    training = {
        "command": "python3 train/train.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "reproduce": " ".join(reproduce),
        "seed": args.seed,
        "steps": step,
        "schedule_steps": total,
        "requested_steps": args.steps,
        "warmup": warmup,
        "decay_start": decay_start,
        "stopped_by": stopped_by,
        "batch": args.batch, "seq": args.seq, "tokens_seen": tokens,
        "optimizer": {"name": "AdamW", "lr": args.lr, "betas": [args.beta1, args.beta2],
                      "eps": 1e-8, "weight_decay": args.weight_decay,
                      "weight_decay_on": "matrices (tok_emb, w*); not norms",
                      "grad_clip": args.grad_clip,
                      "schedule": "linear warm-up, constant, linear decay to 0 from decay_start"},
        "precision": "bf16 autocast, f32 attention and master weights" if cuda else "f32",
        "final_train_bpb": round(final["train_bpb"], 5),
        "final_val_bpb": round(final["val_bpb"], 5),
        "final_val_bpb_f16_weights": round(final["val_bpb_f16_weights"], 5),
        "evals": [{"step": e["step"], "val_bpb": round(e["val_bpb"], 5)} for e in evals],
        "train_time_s": round(train_time, 2),
        "wall_time_s": round(time.time() - T0, 2),
        "params": n_params,
        "device": torch.cuda.get_device_name(device) if cuda else "cpu",
        "torch": torch.__version__,
        "data": {"source": "Debian bible-kjv / bible-kjv-text, train/corpus.py", **corpus},
    }
    config = cfg.to_json()
    config["training"] = training
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    log({"event": "done", "wall_time_s": training["wall_time_s"], "steps": step,
         "decay_start": decay_start, "val_bpb": training["final_val_bpb"]})
    log_file.close()


if __name__ == "__main__":
    main()
