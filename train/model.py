"""The tiny byte-level language model of docs/lm.md, in plain PyTorch.

One model, three attention kinds (the model's `attention` object, webattn's JSON form):

    sb-nope       stick-breaking, remainder to the current token, no positional encoding
    softmax-rope  causal softmax, RoPE
    sigmoid-rope  causal sigmoid with the explicit bias -ln 512, no normalisation, RoPE

Attention is written naively from /work/shared/SPEC.md sections 1-3: the full T x Tk logit
matrix is materialised, in f32 (f64 when the model runs in f64), whatever the storage type.

Parameter names are the safetensors names of docs/lm.md (`tok_emb`, `layers.i.wq`, ...,
`norm`), so `model.state_dict()` is the export, cast to f16.

The forward pass takes the absolute positions of its tokens and, optionally, a KV cache
(`KVCache`, preallocated): prefill writes the prompt's k and v, each decode step writes one
more position and attends to the cache. Causal masks use absolute positions (key slot j is
position j), so cache slots past the current length are masked out by causality itself and
a static cache of fixed length works (torch.compile, CUDA graphs).
"""

import math
from dataclasses import asdict, dataclass, field
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

# The three models: name -> (rope, attention JSON). The sigmoid bias is -ln 512 written as in
# docs/lm.md, the value the runner reads from config.json.
MODELS = {
    "sb-nope": (None, {"kind": "stick-breaking", "remainder": "to-current"}),
    "softmax-rope": ({"base": 10000.0}, {"kind": "softmax", "causal": True}),
    "sigmoid-rope": ({"base": 10000.0},
                     {"kind": "sigmoid", "causal": True, "bias": -6.238324625}),
}


@dataclass
class ModelConfig:
    """The architecture part of config.json (docs/lm.md); `training` is added on export."""
    name: str
    attention: dict
    rope: Optional[dict] = None
    vocab: int = 256
    d_model: int = 256
    n_layer: int = 6
    n_head: int = 4
    n_kv_head: int = 2
    head_dim: int = 64
    d_ff: int = 1024
    norm_eps: float = 1e-5
    context: int = 512

    @staticmethod
    def for_model(name):
        """The config of one of the three models of docs/lm.md."""
        rope, attention = MODELS[name]
        return ModelConfig(name=name, attention=dict(attention),
                           rope=None if rope is None else dict(rope))

    def to_json(self):
        """config.json's keys, in the order of docs/lm.md."""
        d = asdict(self)
        order = ["name", "vocab", "d_model", "n_layer", "n_head", "n_kv_head", "head_dim",
                 "d_ff", "norm_eps", "rope", "context", "attention"]
        return {k: d[k] for k in order}

    @staticmethod
    def from_json(d):
        """Read config.json (the `training` section is ignored)."""
        keys = {k: v for k, v in d.items() if k != "training"}
        return ModelConfig(**keys)


# ---------------------------------------------------------------------------------------
# Pieces


def rmsnorm(x, weight, eps):
    """x / sqrt(mean(x^2) + eps) * weight per row, computed in f32 (or f64)."""
    dt = torch.promote_types(x.dtype, torch.float32)
    xf = x.to(dt)
    y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return (y * weight.to(dt)).to(x.dtype)


def rope(x, pos, base):
    """Rotate-half (GPT-NeoX) RoPE on x [B, H, T, D] at absolute positions pos [T].

    For d < D/2: f_d = base^(-2d/D), a = pos * f_d,
    x'[d] = x[d] cos a - x[d+D/2] sin a,  x'[d+D/2] = x[d+D/2] cos a + x[d] sin a.
    Computed in f32 (f64 for f64 inputs); returns that type.
    """
    dt = torch.promote_types(x.dtype, torch.float32)
    half = x.shape[-1] // 2
    d = torch.arange(half, device=x.device, dtype=torch.float64)
    freq = (base ** (-2.0 * d / x.shape[-1])).to(dt)
    a = pos.to(dt)[:, None] * freq[None, :]          # [T, half]
    cos, sin = torch.cos(a), torch.sin(a)
    xf = x.to(dt)
    x1, x2 = xf[..., :half], xf[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def softplus(x):
    """softplus(x) = log(1 + exp(x)), stable for any x (= max(x,0) + log1p(exp(-|x|)))."""
    return torch.logaddexp(x, torch.zeros((), dtype=x.dtype, device=x.device))


def attention(q, k, v, qpos, spec, scale=None):
    """Naive attention of SPEC.md sections 1-3, causal, with grouped-query heads.

    q: [B, Hq, Tq, D]; k, v: [B, Hkv, Tk, D] (key slot j is absolute position j);
    qpos: [Tq] absolute positions of the query rows; spec: the attention JSON object.
    Returns o [B, Hq, Tq, D] in f32 (f64 for f64 inputs).
    """
    dt = torch.promote_types(q.dtype, torch.float32)
    with torch.autocast(device_type=q.device.type, enabled=False):
        q, k, v = q.to(dt), k.to(dt), v.to(dt)
        group = q.shape[1] // k.shape[1]
        if group > 1:  # query head h reads kv head h // group
            k = k.repeat_interleave(group, dim=1)
            v = v.repeat_interleave(group, dim=1)
        if scale is None:
            scale = 1.0 / math.sqrt(q.shape[-1])
        z = torch.matmul(q, k.transpose(-1, -2)) * scale        # [B, Hq, Tq, Tk]
        kpos = torch.arange(k.shape[2], device=q.device)
        qp = qpos.to(q.device)[:, None]
        kind = spec["kind"]
        if kind == "softmax":
            allowed = kpos[None, :] <= qp                        # S(i): j <= p_i
            p = torch.softmax(z.masked_fill(~allowed, float("-inf")), dim=-1)
            return torch.matmul(p, v)
        if kind == "sigmoid":
            allowed = kpos[None, :] <= qp
            w = torch.where(allowed, torch.sigmoid(z + spec["bias"]), 0.0)
            return torch.matmul(w, v)
        if kind == "stick-breaking":
            if spec.get("attend_current", False):
                allowed = kpos[None, :] <= qp                    # V(i): j <= p_i
            else:
                allowed = kpos[None, :] < qp                     # V(i): j < p_i (default)
            sp = torch.where(allowed, softplus(z), 0.0)          # -log(1 - beta_ij) on V(i)
            # suffix[j] = sum_{l >= j} sp_l (reverse cumsum); after[j] = sum_{l > j} sp_l.
            suffix = torch.flip(torch.cumsum(torch.flip(sp, [-1]), dim=-1), [-1])
            after = F.pad(suffix[..., 1:], (0, 1))
            log_a = F.logsigmoid(z) - after                     # log A_ij
            a = torch.where(allowed, torch.exp(log_a), 0.0)
            o = torch.matmul(a, v)
            remainder = spec.get("remainder", "none")
            if remainder == "to-current":
                rem = torch.exp(-suffix[..., 0])                 # prod_{l in V(i)} (1 - beta)
                o = o + rem[..., None] * v.index_select(2, qpos.to(q.device))
            elif remainder not in ("none", "keep-out", "out"):
                raise ValueError(f"unknown stick-breaking remainder policy {remainder!r}")
            return o
        raise ValueError(f"unknown attention kind {kind!r}")


# ---------------------------------------------------------------------------------------
# Model


class KVCache:
    """Preallocated keys and values, [n_layer, B, Hkv, max_len, head_dim] each.

    Slot j holds absolute position j. The forward pass writes its positions with
    `index_copy_` and masks by position, so the cache never needs to know its length.
    """

    def __init__(self, cfg, batch, max_len, device=None, dtype=torch.float32):
        shape = (cfg.n_layer, batch, cfg.n_kv_head, max_len, cfg.head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.max_len = max_len


class Block(nn.Module):
    """One pre-norm block: attention then MLP, each with a residual connection."""

    def __init__(self, cfg):
        super().__init__()
        d, hd = cfg.d_model, cfg.head_dim
        self.cfg = cfg
        self.attn_norm = nn.Parameter(torch.ones(d))
        self.wq = nn.Parameter(torch.empty(cfg.n_head * hd, d))
        self.wk = nn.Parameter(torch.empty(cfg.n_kv_head * hd, d))
        self.wv = nn.Parameter(torch.empty(cfg.n_kv_head * hd, d))
        self.wo = nn.Parameter(torch.empty(d, cfg.n_head * hd))
        self.mlp_norm = nn.Parameter(torch.ones(d))
        self.w1 = nn.Parameter(torch.empty(cfg.d_ff, d))
        self.w2 = nn.Parameter(torch.empty(d, cfg.d_ff))

    def forward(self, x, pos, cache=None, layer=0, kv_len=None):
        cfg = self.cfg
        b, t, _ = x.shape
        h = rmsnorm(x, self.attn_norm, cfg.norm_eps)
        q = F.linear(h, self.wq).view(b, t, cfg.n_head, cfg.head_dim).transpose(1, 2)
        k = F.linear(h, self.wk).view(b, t, cfg.n_kv_head, cfg.head_dim).transpose(1, 2)
        v = F.linear(h, self.wv).view(b, t, cfg.n_kv_head, cfg.head_dim).transpose(1, 2)
        if cfg.rope is not None:
            q = rope(q, pos, cfg.rope["base"])
            k = rope(k, pos, cfg.rope["base"])
        if cache is not None:
            ck, cv = cache.k[layer], cache.v[layer]
            ck.index_copy_(2, pos, k.to(ck.dtype))
            cv.index_copy_(2, pos, v.to(cv.dtype))
            n = cache.max_len if kv_len is None else kv_len
            k, v = ck[:, :, :n], cv[:, :, :n]
        o = attention(q, k, v, pos, cfg.attention)
        o = o.transpose(1, 2).reshape(b, t, cfg.n_head * cfg.head_dim).to(x.dtype)
        x = x + F.linear(o, self.wo).to(x.dtype)
        h = rmsnorm(x, self.mlp_norm, cfg.norm_eps)
        x = x + F.linear(F.gelu(F.linear(h, self.w1), approximate="tanh"), self.w2).to(x.dtype)
        return x


class LM(nn.Module):
    """The language model: byte embedding (tied head), n_layer blocks, final RMSNorm."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Parameter(torch.empty(cfg.vocab, cfg.d_model))
        self.layers = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)])
        self.norm = nn.Parameter(torch.ones(cfg.d_model))
        self.reset_parameters()

    def reset_parameters(self):
        """GPT-2 style init: N(0, 0.02), residual outputs scaled by 1/sqrt(2 n_layer)."""
        std = 0.02
        nn.init.normal_(self.tok_emb, std=std)
        for blk in self.layers:
            for w in (blk.wq, blk.wk, blk.wv, blk.w1):
                nn.init.normal_(w, std=std)
            for w in (blk.wo, blk.w2):
                nn.init.normal_(w, std=std / math.sqrt(2 * self.cfg.n_layer))
            nn.init.ones_(blk.attn_norm)
            nn.init.ones_(blk.mlp_norm)
        nn.init.ones_(self.norm)

    def forward(self, idx, pos=None, cache=None, kv_len=None, last_only=False):
        """Logits [B, T, vocab] (or [B, 1, vocab] with last_only) for bytes idx [B, T].

        pos: absolute positions [T] of the tokens (default 0..T-1). With a cache, the
        tokens' k and v are written at pos and attention reads cache slots [0, kv_len)
        (default: all of them; causality masks the slots past pos).
        """
        t = idx.shape[1]
        if pos is None:
            pos = torch.arange(t, device=idx.device)
        x = F.embedding(idx, self.tok_emb)
        for i, blk in enumerate(self.layers):
            x = blk(x, pos, cache, i, kv_len)
        if last_only:
            x = x[:, -1:]
        x = rmsnorm(x, self.norm, self.cfg.norm_eps)
        return F.linear(x, self.tok_emb)


def count_params(model):
    return sum(p.numel() for p in model.parameters())


def export_state(model, dtype=torch.float16):
    """The safetensors tensors of docs/lm.md: name -> contiguous CPU tensor of `dtype`."""
    return {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}


def expected_shapes(cfg):
    """name -> shape, exactly as docs/lm.md lists them."""
    d, hd = cfg.d_model, cfg.head_dim
    shapes = {"tok_emb": (cfg.vocab, d), "norm": (d,)}
    for i in range(cfg.n_layer):
        p = f"layers.{i}."
        shapes.update({p + "attn_norm": (d,), p + "wq": (cfg.n_head * hd, d),
                       p + "wk": (cfg.n_kv_head * hd, d), p + "wv": (cfg.n_kv_head * hd, d),
                       p + "wo": (d, cfg.n_head * hd), p + "mlp_norm": (d,),
                       p + "w1": (cfg.d_ff, d), p + "w2": (d, cfg.d_ff)})
    return shapes


def load_model(model_dir, dtype=torch.float64, device="cpu"):
    """Load models/<name>/ (config.json + model.safetensors), cast to dtype; checks shapes."""
    import json
    import os
    from safetensors.torch import load_file

    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = ModelConfig.from_json(json.load(f))
    tensors = load_file(os.path.join(model_dir, "model.safetensors"))
    want = expected_shapes(cfg)
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    if got != want:
        raise ValueError(f"tensor names/shapes differ from docs/lm.md: {sorted(set(got.items()) ^ set(want.items()))}")
    model = LM(cfg)
    model.load_state_dict({k: v.to(torch.float32) for k, v in tensors.items()})
    return model.to(device=device, dtype=dtype).eval()
