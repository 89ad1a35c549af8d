"""PyTorch side of bench/run.sh: the workloads of bench_train in torch.

    python3 bench/torch_bench.py [--threads 2] [--reps 3] [--n 60000] [--only mlp|cnn|sgemm]

One epoch of Fashion-MNIST-sized training (N rows of 784 floats, synthetic, batch
128, SGD momentum 0.9, lr 0.01, shuffled each epoch) for the same MLP and CNN,
and torch.mm GFLOP/s at the same shapes. Prints JSON lines like bench_train.
Give it its best settings from the environment (bench/run.sh does):
OMP_WAIT_POLICY=PASSIVE and GLIBC_TUNABLES=glibc.malloc.mmap_threshold=2147483647.
"""
import argparse
import json
import os
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def mlp():
    return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))


def cnn():
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))


def epoch(make, x, y, spatial, seed):
    torch.manual_seed(seed)
    net = make()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    n = x.shape[0]
    t0 = time.perf_counter()
    perm = torch.randperm(n)
    total = 0.0
    for lo in range(0, n, 128):
        idx = perm[lo:lo + 128]
        xb, yb = x[idx], y[idx]
        if spatial:
            xb = xb.view(-1, 1, 28, 28)
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(xb), yb)
        loss.backward()
        opt.step()
        total += float(loss) * xb.shape[0]
    dt = time.perf_counter() - t0
    return n / dt, total / n


def bench_mm(label, M, N, K, ta, tb, reps, threads):
    a = torch.rand(K, M) - 0.5 if ta else torch.rand(M, K) - 0.5
    b = torch.rand(N, K) - 0.5 if tb else torch.rand(K, N) - 0.5
    A = a.t() if ta else a
    B = b.t() if tb else b
    c = torch.empty(M, N)
    torch.mm(A, B, out=c)
    t0 = time.perf_counter()
    torch.mm(A, B, out=c)
    one = time.perf_counter() - t0
    calls = max(3, int(0.2 / max(one, 1e-6)))
    gf = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(calls):
            torch.mm(A, B, out=c)
        gf.append(2.0 * M * N * K * calls / (time.perf_counter() - t0) / 1e9)
    print(json.dumps({"bench": "sgemm", "impl": "torch", "shape": label, "M": M, "N": N, "K": K,
                      "trans_a": int(ta), "trans_b": int(tb), "threads": threads,
                      "gflops": round(statistics.median(gf), 1), "runs": [round(v, 1) for v in gf]}),
          flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--n", type=int, default=60000)
    ap.add_argument("--only", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(42)
    x = torch.randn(a.n, 784, generator=g)
    y = torch.randint(0, 10, (a.n,), generator=g)
    env = {k: os.environ.get(k, "") for k in ("OMP_WAIT_POLICY", "GLIBC_TUNABLES", "OPENBLAS_CORETYPE")}
    for name, make, spatial in (("mlp", mlp, False), ("cnn", cnn, True)):
        if a.only and a.only != name:
            continue
        runs, loss = [], 0.0
        for r in range(a.reps):
            sps, loss = epoch(make, x, y, spatial, r + 1)
            runs.append(sps)
        print(json.dumps({"bench": "train_epoch", "impl": "torch", "model": name, "samples": a.n, "batch": 128,
                          "threads": a.threads, "torch": torch.__version__, "env": env,
                          "samples_per_s": round(statistics.median(runs), 1),
                          "runs": [round(v, 1) for v in runs], "train_loss": round(loss, 4)}), flush=True)
    if not a.only or a.only == "sgemm":
        bench_mm("512x512x512", 512, 512, 512, False, False, a.reps, a.threads)
        bench_mm("mlp_fwd_128x512x784", 128, 512, 784, False, True, a.reps, a.threads)
        bench_mm("mlp_dx_128x784x512", 128, 784, 512, False, False, a.reps, a.threads)
        bench_mm("mlp_dw_512x784x128", 512, 784, 128, True, False, a.reps, a.threads)
        bench_mm("mlp_fwd_128x512x512", 128, 512, 512, False, True, a.reps, a.threads)


if __name__ == "__main__":
    main()
