"""Tests of train/model.py, on the CPU in f64: `python3 train/test_model.py` (or pytest).

- attention(): each kind against a direct, loop-by-loop transcription of SPEC.md's formulas
  (products of (1 - beta), not the log-space form), with GQA and bottom-right positions;
- RoPE against the formula of docs/lm.md, element by element;
- the KV-cache path (prefill of a prompt, then one token at a time, and chunked prefill)
  equals the full forward pass, for the three models;
- the exported names and shapes are those of docs/lm.md, about 4.4M parameters.
"""

import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import (MODELS, KVCache, LM, ModelConfig, attention, count_params,  # noqa: E402
                   expected_shapes, export_state, rope)


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def attention_loops(q, k, v, qpos, spec):
    """SPEC.md sections 1-3 transcribed with Python loops (f64)."""
    b_, hq, tq, d = q.shape
    hkv, tk = k.shape[1], k.shape[2]
    scale = 1.0 / math.sqrt(d)
    o = torch.zeros(b_, hq, tq, d, dtype=torch.float64)
    for b in range(b_):
        for h in range(hq):
            g = h // (hq // hkv)
            for i in range(tq):
                p = int(qpos[i])
                z = [scale * float(q[b, h, i] @ k[b, g, j]) for j in range(tk)]
                kind = spec["kind"]
                if kind == "softmax":
                    s = [j for j in range(tk) if j <= p]
                    m = max(z[j] for j in s)
                    den = sum(math.exp(z[j] - m) for j in s)
                    for j in s:
                        o[b, h, i] += math.exp(z[j] - m) / den * v[b, g, j]
                elif kind == "sigmoid":
                    for j in range(tk):
                        if j <= p:
                            o[b, h, i] += sigmoid(z[j] + spec["bias"]) * v[b, g, j]
                else:
                    vi = [j for j in range(tk) if j < p]
                    total = 0.0
                    for j in vi:
                        a = sigmoid(z[j])
                        for l in vi:
                            if l > j:
                                a *= 1.0 - sigmoid(z[l])
                        total += a
                        o[b, h, i] += a * v[b, g, j]
                    if spec.get("remainder") == "to-current":
                        o[b, h, i] += (1.0 - total) * v[b, g, p]
    return o


def test_attention_matches_loops():
    g = torch.Generator().manual_seed(1)
    b, hq, hkv, d, tk = 2, 4, 2, 8, 7
    for name, (_, spec) in MODELS.items():
        for tq in (7, 3, 1):  # prefill, chunk, decode (bottom-right aligned)
            q = torch.randn(b, hq, tq, d, generator=g, dtype=torch.float64) * 2
            k = torch.randn(b, hkv, tk, d, generator=g, dtype=torch.float64) * 2
            v = torch.randn(b, hkv, tk, d, generator=g, dtype=torch.float64)
            qpos = torch.arange(tk - tq, tk)
            got = attention(q, k, v, qpos, spec)
            want = attention_loops(q, k, v, qpos, spec)
            err = (got - want).abs().max().item()
            assert err < 1e-12, (name, tq, err)


def test_stick_breaking_large_logits_finite():
    # Log-space form: huge logits must not give NaN or Inf.
    q = torch.full((1, 1, 6, 4), 30.0, dtype=torch.float32)
    k = torch.full((1, 1, 6, 4), 30.0, dtype=torch.float32)
    v = torch.randn(1, 1, 6, 4)
    o = attention(q, k, v, torch.arange(6), MODELS["sb-nope"][1])
    assert torch.isfinite(o).all()
    # beta ~ 1: the nearest previous key takes everything.
    assert torch.allclose(o[0, 0, 1:], v[0, 0, :-1], atol=1e-5)


def test_rope_formula():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(1, 2, 5, 64, generator=g, dtype=torch.float64)
    pos = torch.tensor([0, 3, 7, 100, 511])
    y = rope(x, pos, 10000.0)
    for t in range(5):
        for dd in range(32):
            a = int(pos[t]) * 10000.0 ** (-2 * dd / 64)
            x0, x1 = x[0, 1, t, dd].item(), x[0, 1, t, dd + 32].item()
            assert abs(y[0, 1, t, dd].item() - (x0 * math.cos(a) - x1 * math.sin(a))) < 1e-12
            assert abs(y[0, 1, t, dd + 32].item() - (x1 * math.cos(a) + x0 * math.sin(a))) < 1e-12


def make_model(name, seed=0):
    torch.manual_seed(seed)
    model = LM(ModelConfig.for_model(name)).double().eval()
    # Larger weights than the init, so that attention is far from uniform.
    with torch.no_grad():
        for blk in model.layers:
            blk.wq.mul_(8)
            blk.wk.mul_(8)
    return model


def test_kv_cache_equals_full_forward():
    torch.manual_seed(3)
    idx = torch.randint(0, 256, (2, 40))
    for name in MODELS:
        model = make_model(name)
        with torch.no_grad():
            full = model(idx)
            # Prefill 25 tokens, then one at a time, cache longer than needed.
            cache = KVCache(model.cfg, 2, 64, dtype=torch.float64)
            out = [model(idx[:, :25], cache=cache)]
            for t in range(25, 40):
                pos = torch.tensor([t])
                out.append(model(idx[:, t:t + 1], pos=pos, cache=cache))
            inc = torch.cat(out, dim=1)
            err = ((inc - full).norm() / full.norm()).item()
            assert err < 1e-12, (name, "decode", err)
            # Same with kv_len (attend to the filled part only) and chunks of 10.
            cache = KVCache(model.cfg, 2, 64, dtype=torch.float64)
            out = []
            for t0 in range(0, 40, 10):
                pos = torch.arange(t0, t0 + 10)
                out.append(model(idx[:, t0:t0 + 10], pos=pos, cache=cache, kv_len=t0 + 10))
            err = ((torch.cat(out, 1) - full).norm() / full.norm()).item()
            assert err < 1e-12, (name, "chunks", err)
            last = model(idx, last_only=True)
            assert torch.allclose(last, full[:, -1:], rtol=0, atol=1e-12)


def test_export_names_and_shapes():
    for name in MODELS:
        model = LM(ModelConfig.for_model(name))
        st = export_state(model)
        assert {k: tuple(v.shape) for k, v in st.items()} == expected_shapes(model.cfg)
        assert all(v.dtype == torch.float16 for v in st.values())
        n = count_params(model)
        assert 4.3e6 < n < 4.5e6, n


def test_training_step_runs():
    torch.manual_seed(4)
    for name in MODELS:
        model = LM(ModelConfig.for_model(name))
        idx = torch.randint(0, 256, (2, 17))
        logits = model(idx[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 256), idx[:, 1:].reshape(-1))
        loss.backward()
        assert abs(loss.item() - math.log(256)) < 0.5
        assert all(torch.isfinite(p.grad).all() for p in model.parameters())


if __name__ == "__main__":
    for fn_name, fn in list(globals().items()):
        if fn_name.startswith("test_") and callable(fn):
            fn()
            print("ok", fn_name)
