"""PyTorch side of bench_curvature: lambda_max of the mean cross-entropy over
the first N Fashion-MNIST training images by S Lanczos steps (full
reorthogonalisation) on torch's double-backward Hessian-vector product.

    python3 bench/bench_curvature_torch.py --model FILE.safetensors [--n 10000] [--steps 20]
                                           [--chunk 1000] [--threads 2]

Each product runs, per chunk of C rows, a forward, the gradient with
create_graph=True and torch.autograd.grad(g . v, params), weighted by the
chunk's rows (PyHessian's dataloader_hv_product), all in float32 with the
model in eval mode. Prints one JSON line with the seconds of the whole
Lanczos run, seconds per product and lambda_max.
"""
import argparse
import gzip
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_attack_torch import load_model  # noqa: E402


def load_fashion_train(n):
    d = os.environ.get("SKEPTIC_FASHION_MNIST", "/usr/share/datasets/fashion-mnist")

    def opn(stem):
        for name in (stem + ".gz", stem):
            p = os.path.join(d, name)
            if os.path.exists(p):
                return gzip.open(p, "rb") if p.endswith(".gz") else open(p, "rb")
        raise SystemExit(f"Fashion-MNIST file {stem} not found in {d}")

    with opn("train-images-idx3-ubyte") as f:
        x = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 784)[:n].astype(np.float32) / 255.0
    with opn("train-labels-idx1-ubyte") as f:
        y = np.frombuffer(f.read(), dtype=np.uint8, offset=8)[:n].astype(np.int64)
    return x, y


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--chunk", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    net, shape, spec = load_model(a.model)
    params = list(net.parameters())
    for p in params:
        p.requires_grad_(True)
    x, y = load_fashion_train(a.n)
    n = len(y)
    xs = torch.from_numpy(x).reshape((-1,) + tuple(shape))
    ys = torch.from_numpy(y)

    def hvp(v):
        """H v with v a list of tensors shaped as the parameters."""
        out = [torch.zeros_like(p) for p in params]
        for r0 in range(0, n, a.chunk):
            xb, yb = xs[r0:r0 + a.chunk], ys[r0:r0 + a.chunk]
            loss = F.cross_entropy(net(xb), yb)
            g = torch.autograd.grad(loss, params, create_graph=True)
            hv = torch.autograd.grad(sum((gi * vi).sum() for gi, vi in zip(g, v)), params)
            w = len(yb) / n
            for o, h in zip(out, hv):
                o.add_(h, alpha=w)
        return out

    def flat(ts):
        return torch.cat([t.reshape(-1) for t in ts])

    def unflat(v):
        out, off = [], 0
        for p in params:
            out.append(v[off:off + p.numel()].view_as(p))
            off += p.numel()
        return out

    P = sum(p.numel() for p in params)
    t0 = time.perf_counter()
    g = torch.Generator().manual_seed(1)
    q = torch.randn(P, generator=g)
    Q = [q / q.norm()]
    alpha, beta = [], []
    for j in range(a.steps):
        w = flat(hvp(unflat(Q[j]))).double()
        alpha.append(float(w @ Q[j].double()))
        for _ in range(2):
            for qi in Q:
                w = w - (w @ qi.double()) * qi.double()
        b = float(w.norm())
        if j + 1 == a.steps:
            break
        beta.append(b)
        Q.append((w / b).float())
    T = torch.diag(torch.tensor(alpha, dtype=torch.float64))
    for i in range(len(alpha) - 1):
        T[i, i + 1] = T[i + 1, i] = beta[i]
    lam = float(torch.linalg.eigvalsh(T)[-1])
    sec = time.perf_counter() - t0
    print(json.dumps({"bench": "curvature", "impl": "torch", "model": os.path.basename(a.model).split(".")[0],
                      "spec": spec, "params": P, "n": n, "steps": a.steps, "chunk": a.chunk, "threads": a.threads,
                      "torch": torch.__version__, "seconds": round(sec, 3), "s_per_hvp": round(sec / a.steps, 4),
                      "lambda_max": lam}))


if __name__ == "__main__":
    main()
