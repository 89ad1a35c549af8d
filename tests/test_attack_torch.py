"""Attack strength against a PyTorch reference on Fashion-MNIST.

A small MLP is trained with `skeptic train` on 10,000 Fashion-MNIST rows and
loaded into the equivalent torch.nn.Sequential (bench/bench_attack_torch.py
reads the safetensors file). On the first 300 test points:

  * skeptic's input gradients of the cross-entropy (`skeptic attack
    --save-grad`) agree with torch autograd to 1e-4 relative
    (max|a-b| / max|b|, per point and overall);
  * `skeptic attack --attack pgd` and a plain PyTorch PGD with the same eps
    (0.1), steps (20) and step size (0.0125), no random start on either side:
    skeptic's robust accuracy is at most 1 point above PyTorch's;
  * skeptic's adversarial examples, judged by the torch model, are within
    the eps ball and the box, and torch agrees with skeptic's robust accuracy;
  * the comparators can fail: a gradient moved by 2e-4 of its scale and a
    robust accuracy 2 points too high are rejected.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch

SRC = os.environ.get("SKEPTIC_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("SKEPTIC_BUILD_DIR", os.path.join(SRC, "build"))
sys.path.insert(0, os.path.join(SRC, "bench"))
import bench_attack_torch as bt  # noqa: E402

SKEPTIC = os.path.join(BUILD, "skeptic")
N, EPS, STEPS, ALPHA = 300, 0.1, 20, 0.0125
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def rel_err(a, b):
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    s = np.max(np.abs(b))
    return np.max(np.abs(a - b)) / s if s > 0 else (0.0 if np.max(np.abs(a)) == 0 else np.inf)


def run(args):
    r = subprocess.run([SKEPTIC] + args, capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout, r.stderr)
        raise SystemExit(f"skeptic {' '.join(args)} failed ({r.returncode})")
    return r


def main():
    torch.set_num_threads(2)
    if not os.path.exists(os.path.join(bt.os.environ.get("SKEPTIC_FASHION_MNIST", "/usr/share/datasets/fashion-mnist"),
                                       "t10k-images-idx3-ubyte.gz")):
        print("SKIPPED: Fashion-MNIST is not installed")
        sys.exit(77)
    d = tempfile.mkdtemp(prefix="skeptic-attack-torch-")
    model = os.path.join(d, "mlp.safetensors")
    run(["train", "--data", "fashion-mnist", "--arch", "mlp:784-256-10:relu", "--epochs", "2", "--n", "10000",
         "--out", model, "--quiet", "--threads", "2"])
    adv, grad = os.path.join(d, "adv.npy"), os.path.join(d, "grad.npy")
    r = run(["attack", "--model", model, "--data", "fashion-mnist", "--n", str(N), "--attack", "pgd", "--eps", str(EPS),
             "--steps", str(STEPS), "--step-size", str(ALPHA), "--save-adv", adv, "--save-grad", grad, "--json",
             "--threads", "2"])
    out = json.loads(r.stdout)
    net, shape, spec = bt.load_model(model)
    xn, yn = bt.load_fashion_test(N)
    x, y = torch.from_numpy(xn), torch.from_numpy(yn)

    # gradients
    g_sk = np.load(grad).reshape(N, -1)
    g_t = bt.input_grad(net, x, y, shape).numpy()
    e_all = rel_err(g_sk, g_t)
    check(e_all <= 1e-4, f"input gradients agree: max|a-b|/max|b| = {e_all:.2e} (<= 1e-4)")
    # row by row, for rows whose gradient is not vanishingly small: a point classified
    # with p_y = 1 - 1e-7 has a gradient made of float32 rounding of 1 - p_y on both sides
    scale = np.max(np.abs(g_t))
    rows = [i for i in range(N) if np.max(np.abs(g_t[i])) >= 1e-3 * scale]
    e_row = max(rel_err(g_sk[i], g_t[i]) for i in rows)
    check(len(rows) >= N // 2 and e_row <= 1e-4,
          f"input gradients agree row by row on {len(rows)} rows with |grad| >= 1e-3 of the largest: worst {e_row:.2e}")

    # clean accuracy
    with torch.no_grad():
        clean_t = (net(x).argmax(1) == y).float().mean().item()
    check(abs(clean_t - out["clean_accuracy"]) < 1e-6, f"clean accuracy skeptic {out['clean_accuracy']:.4f} = torch {clean_t:.4f}")

    # PGD strength
    xa_t = bt.pgd(net, x, y, EPS, STEPS, ALPHA, shape)
    with torch.no_grad():
        rob_t = (net(xa_t).argmax(1) == y).float().mean().item()
    rob_s = out["robust_accuracy"]
    print(f"     robust accuracy at eps {EPS}, PGD-{STEPS}: skeptic {rob_s:.4f}, PyTorch {rob_t:.4f}")
    check(rob_s <= rob_t + 0.01, f"skeptic PGD robust accuracy {rob_s:.4f} <= PyTorch's {rob_t:.4f} + 0.01")

    # skeptic's examples, judged by torch
    xa_s = torch.from_numpy(np.load(adv).reshape(N, -1))
    linf = (xa_s - x).abs().max().item()
    check(linf <= EPS + 1e-6, f"skeptic examples within the eps ball (max |d| = {linf:.7f})")
    check(xa_s.min().item() >= 0 and xa_s.max().item() <= 1, "skeptic examples within [0,1]")
    with torch.no_grad():
        rob_judged = (net(xa_s).argmax(1) == y).float().mean().item()
    check(abs(rob_judged - rob_s) <= 1.0 / N + 1e-9,
          f"torch judges skeptic's examples as skeptic does ({rob_judged:.4f} vs {rob_s:.4f}, one point of float noise allowed)")

    # a standardised model: eps, the box and the examples in pixels, the standardisation inside
    # the network on both sides (the torch model is built from the same file)
    smodel = os.path.join(d, "std.safetensors")
    sadv = os.path.join(d, "std-adv.npy")
    run(["train", "--data", "fashion-mnist", "--arch", "mlp:784-256-10:relu", "--epochs", "2", "--n", "10000",
         "--normalize", "standardize", "--out", smodel, "--quiet", "--threads", "2"])
    r = run(["attack", "--model", smodel, "--data", "fashion-mnist", "--n", str(N), "--attack", "pgd", "--eps", str(EPS),
             "--steps", str(STEPS), "--step-size", str(ALPHA), "--save-adv", sadv, "--json", "--threads", "2"])
    sout = json.loads(r.stdout)
    snet, _, _ = bt.load_model(smodel)
    with torch.no_grad():
        sclean_t = (snet(x).argmax(1) == y).float().mean().item()
    check(abs(sclean_t - sout["clean_accuracy"]) < 1e-6,
          f"standardised model: clean accuracy skeptic {sout['clean_accuracy']:.4f} = torch {sclean_t:.4f}")
    xs_t = bt.pgd(snet, x, y, EPS, STEPS, ALPHA, shape)
    with torch.no_grad():
        srob_t = (snet(xs_t).argmax(1) == y).float().mean().item()
    srob_s = sout["robust_accuracy"]
    print(f"     standardised model, PGD-{STEPS} at eps {EPS} in pixels: skeptic {srob_s:.4f}, PyTorch {srob_t:.4f}")
    check(srob_s <= srob_t + 0.01, f"standardised model: skeptic PGD {srob_s:.4f} <= PyTorch's {srob_t:.4f} + 0.01")
    xsa = np.load(sadv).reshape(N, -1)
    check(np.abs(xsa - xn).max() <= EPS + 1e-6 and xsa.min() >= 0 and xsa.max() <= 1,
          "standardised model: examples within eps of the images in pixels, inside [0,1]")

    # the comparators can fail
    g_bad = g_t.copy()
    g_bad.flat[int(np.argmax(np.abs(g_bad)))] += 2e-4 * np.max(np.abs(g_t))
    check(rel_err(g_bad, g_t) > 1e-4, "self-check: a gradient moved by 2e-4 of its scale is rejected")
    check(not (rob_t + 0.02 <= rob_t + 0.01), "self-check: a robust accuracy 2 points above PyTorch's is rejected")

    if failures:
        print(f"{len(failures)} check(s) failed; files kept in {d}")
        sys.exit(1)
    shutil.rmtree(d)
    print("test_attack_torch: all checks passed")


if __name__ == "__main__":
    main()
