"""PyTorch side of bench_attack (and helpers for tests/test_attack_torch.py).

    python3 bench/bench_attack_torch.py --model FILE.safetensors [--n 1000] [--reps 3] [--threads 2]
                                        [--eps 0.1] [--steps 20] [--batch 256]

Loads a skeptic model file (safetensors; the spec in __metadata__
["skeptic.spec"]) into the equivalent torch.nn.Sequential, takes the first N
Fashion-MNIST test points, and runs a plain L-inf PGD: no random start, step
2.5 eps / steps, x <- clip(x + a sign(grad CE)), projected on the eps ball and
[0,1] after every step; robust accuracy is measured at the last iterate (the
usual PyTorch loop). Parameters have requires_grad off (only dL/dx is
computed, as in skeptic). Prints one JSON line with robust accuracy and
samples/s (median of R runs).
"""
import argparse
import gzip
import json
import os
import statistics
import struct
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {}) or {}
    tensors = {}
    for name, t in header.items():
        assert t["dtype"] == "F32", f"{name}: dtype {t['dtype']}"
        a, b = t["data_offsets"]
        tensors[name] = np.frombuffer(data[a:b], dtype="<f4").reshape(t["shape"]).copy()
    return tensors, meta


def build(spec):
    """torch.nn.Sequential for the spec kinds this bench uses (mlp:..., cnn:/seq: with
    dense, conv, maxpool, flatten, relu, tanh, sigmoid, dropout)."""
    kind, rest = spec.split(":", 1)
    mods = []
    if kind == "mlp":
        parts = rest.split(":")
        dims = [int(v) for v in parts[0].split("-")]
        act = parts[1] if len(parts) > 1 and not parts[1].startswith("dropout") else "relu"
        drop = [p for p in parts[1:] if p.startswith("dropout")]
        acts = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU, "softplus": nn.Softplus}
        for i in range(len(dims) - 1):
            mods.append(nn.Linear(dims[i], dims[i + 1]))
            if i < len(dims) - 2:
                mods.append(acts[act]())
                if drop:
                    mods.append(nn.Dropout(float(drop[0][7:])))
        return nn.Sequential(*mods), (dims[0],)
    toks = rest.split("-")
    shape = [int(v) for v in toks[0].split("x")]
    c = shape[0]
    h, w = (shape[1], shape[2]) if len(shape) == 3 else (1, 1)
    flat = c * h * w if len(shape) == 1 else None
    import re
    for t in toks[1:]:
        if t.startswith("dense"):
            o = int(t[5:])
            mods.append(nn.Linear(flat, o))
            flat = o
        elif t.startswith("conv"):
            m = re.match(r"conv(\d+)k(\d+)(?:s(\d+))?(?:p(\d+))?$", t)
            oc, k, s, p = int(m[1]), int(m[2]), int(m[3] or 1), int(m[4] or 0)
            mods.append(nn.Conv2d(c, oc, k, stride=s, padding=p))
            c, h, w = oc, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        elif t.startswith("maxpool"):
            k = int(t[7:])
            mods.append(nn.MaxPool2d(k))
            h, w = h // k, w // k
        elif t == "flatten":
            mods.append(nn.Flatten())
            flat = c * h * w
        elif t == "relu":
            mods.append(nn.ReLU())
        elif t == "tanh":
            mods.append(nn.Tanh())
        elif t == "sigmoid":
            mods.append(nn.Sigmoid())
        elif t.startswith("dropout"):
            mods.append(nn.Dropout(float(t[7:])))
        else:
            raise SystemExit(f"bench_attack_torch: layer '{t}' not supported here")
    return nn.Sequential(*mods), tuple(shape)


def load_model(path):
    tensors, meta = read_safetensors(path)
    spec = meta.get("skeptic.spec")
    if not spec:
        raise SystemExit(f"{path}: no skeptic.spec in the metadata")
    net, shape = build(spec)
    sd = {k: torch.from_numpy(v) for k, v in tensors.items() if not k.endswith("running_mean") and not k.endswith("running_var")}
    net.load_state_dict(sd, strict=True)
    prep = json.loads(meta.get("skeptic.preprocess", '{"kind":"none"}'))
    if prep.get("kind", "none") != "none":
        # the file's preprocessing is the model's first step: inputs stay raw, as in skeptic
        net = torch.nn.Sequential(InputTransform(prep["shift"], prep["scale"]), net)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net, shape, spec


class InputTransform(torch.nn.Module):
    """(x - shift) * scale per feature, on rows flattened as skeptic stores them."""

    def __init__(self, shift, scale):
        super().__init__()
        self.register_buffer("shift", torch.tensor(shift, dtype=torch.float32))
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32))

    def forward(self, x):
        shape = x.shape
        return ((x.reshape(shape[0], -1) - self.shift) * self.scale).reshape(shape)


def load_fashion_test(n, d=None):
    d = d or os.environ.get("SKEPTIC_FASHION_MNIST", "/usr/share/datasets/fashion-mnist")

    def opn(stem):
        for name in (stem + ".gz", stem):
            p = os.path.join(d, name)
            if os.path.exists(p):
                return gzip.open(p, "rb") if p.endswith(".gz") else open(p, "rb")
        raise SystemExit(f"Fashion-MNIST file {stem} not found in {d}")

    with opn("t10k-images-idx3-ubyte") as f:
        x = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 784)[:n].astype(np.float32) / 255.0
    with opn("t10k-labels-idx1-ubyte") as f:
        y = np.frombuffer(f.read(), dtype=np.uint8, offset=8)[:n].astype(np.int64)
    return x, y


def pgd(net, x, y, eps, steps, alpha, shape):
    """plain PGD from x (no random start); returns the last iterate"""
    xs = x.reshape((-1,) + shape)
    xa = xs.clone()
    for _ in range(steps):
        xa.requires_grad_(True)
        loss = F.cross_entropy(net(xa), y, reduction="sum")
        (g,) = torch.autograd.grad(loss, xa)
        with torch.no_grad():
            xa = xa + alpha * g.sign()
            xa = torch.min(torch.max(xa, xs - eps), xs + eps).clamp(0.0, 1.0)
    return xa.detach().reshape(x.shape)


def input_grad(net, x, y, shape):
    xs = x.reshape((-1,) + shape).clone().requires_grad_(True)
    loss = F.cross_entropy(net(xs), y, reduction="sum")
    (g,) = torch.autograd.grad(loss, xs)
    return g.reshape(x.shape)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eps", type=float, default=0.1)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=256)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    net, shape, spec = load_model(a.model)
    xn, yn = load_fashion_test(a.n)
    x, y = torch.from_numpy(xn), torch.from_numpy(yn)
    alpha = 2.5 * a.eps / a.steps
    with torch.no_grad():
        clean = (net(x.reshape((-1,) + shape)).argmax(1) == y).float().mean().item()
    sps, acc = [], None
    for _ in range(a.reps):
        t0 = time.perf_counter()
        outs = [pgd(net, x[i:i + a.batch], y[i:i + a.batch], a.eps, a.steps, alpha, shape) for i in range(0, len(x), a.batch)]
        sps.append(len(x) / (time.perf_counter() - t0))
        xa = torch.cat(outs)
        with torch.no_grad():
            acc = (net(xa.reshape((-1,) + shape)).argmax(1) == y).float().mean().item()
    print(json.dumps({"bench": "attack-torch", "model": os.path.basename(a.model), "spec": spec, "n": len(x),
                      "clean_acc": round(clean, 4), "pgd20_eps0.1" if a.steps == 20 and a.eps == 0.1 else "pgd": round(acc, 4),
                      "samples_per_s": round(statistics.median(sps), 1), "runs": [round(v, 1) for v in sps],
                      "threads": a.threads, "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
