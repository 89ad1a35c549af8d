"""EOT attack strength on an MC-dropout model against a PyTorch reference.

A small MLP with dropout is trained with `skeptic train` on 10,000
Fashion-MNIST rows; the torch.nn.Sequential of the same safetensors file
(bench/bench_attack_torch.py builds it) runs with dropout on (train mode) as
the MC-dropout predictive. On the first 200 test points, L-inf eps 0.03:

  * `skeptic attack --attack pgd --mc --eot 10 --steps 10` and a PyTorch EOT
    PGD with the same eps, steps, step size (2.5 eps / steps) and 10 dropout
    samples per step (gradient of -log of the averaged softmax), no random
    start, run for all steps (no early stop), last iterate;
  * both sets of examples are judged by the same torch predictive of 200
    dropout samples (robust: correct at the clean point and at x_adv);
    skeptic's robust accuracy is at most the PyTorch one + 1 point;
  * skeptic's own figure (its 200-sample verdict) agrees with the torch
    judge on skeptic's examples within 3 standard errors + 1 point;
  * the JSON names the verdict (verdict_samples 200, robust_accuracy_se);
  * the comparator can fail: a PyTorch EOT PGD that locks a point at its
    first noisy success (one 10-sample call), the bug this test guards
    against, comes out above the full PGD by more than the tolerance.
Only MC dropout is covered here (VI and Laplace predictives are not).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

SRC = os.environ.get("SKEPTIC_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("SKEPTIC_BUILD_DIR", os.path.join(SRC, "build"))
sys.path.insert(0, os.path.join(SRC, "bench"))
import bench_attack_torch as bt  # noqa: E402

SKEPTIC = os.path.join(BUILD, "skeptic")
N, EPS, STEPS, EOT, JUDGE = 200, 0.03, 10, 10, 200
ALPHA = 2.5 * EPS / STEPS
SPEC = "mlp:784-256-256-10:relu:dropout0.3"
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def run(args):
    r = subprocess.run([SKEPTIC] + args, capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout, r.stderr)
        raise SystemExit(f"skeptic {' '.join(args)} failed ({r.returncode})")
    return r


def eot_logp(net, x, k):
    """log of the softmax averaged over k dropout samples (net in train mode)"""
    lp = F.log_softmax(net(x.repeat(k, 1)), dim=1).reshape(k, x.shape[0], -1)
    return torch.logsumexp(lp, 0) - np.log(k)


def eot_pgd(net, x, y, lock=False):
    """EOT PGD, no random start, all steps; lock: keep a point's first iterate that one
    EOT call misclassifies (the early stop this test guards against)"""
    xa = x.clone()
    kept = x.clone()
    done = torch.zeros(len(x), dtype=torch.bool)
    for s in range(STEPS + 1):
        xa.requires_grad_(True)
        lp = eot_logp(net, xa, EOT)
        if lock:
            hit = (lp.argmax(1) != y) & ~done
            kept[hit] = xa.detach()[hit]
            done |= hit
        if s == STEPS:
            break
        (g,) = torch.autograd.grad(F.nll_loss(lp, y, reduction="sum"), xa)
        with torch.no_grad():
            xa = xa + ALPHA * g.sign()
            xa = torch.min(torch.max(xa, x - EPS), x + EPS).clamp(0.0, 1.0)
    xa = xa.detach()
    if lock:
        xa[done] = kept[done]
    return xa


def judge(net, x, y):
    """correct under the 200-sample predictive, and the per-point chance q of a correct
    fresh verdict (normal approximation over the samples, as skeptic's error)"""
    with torch.no_grad():
        p = torch.cat([F.softmax(net(x.repeat(EOT, 1)), 1).reshape(EOT, len(x), -1) for _ in range(JUDGE // EOT)])
    pb = p.mean(0)
    other = pb.clone()
    other[torch.arange(len(x)), y] = -1
    ks = other.argmax(1)
    idx = torch.arange(len(x))
    m = (p[:, idx, y] - p[:, idx, ks]).double().numpy()
    d, se = m.mean(0), m.std(0, ddof=1) / np.sqrt(JUDGE)
    from math import erf
    q = np.array([0.5 * (1 + erf(di / si / np.sqrt(2))) if si > 0 else float(di > 0) for di, si in zip(d, se)])
    return (pb.argmax(1) == y).numpy(), q


def robust(ok_clean, ok_adv, q):
    r = ok_clean & ok_adv
    qq = np.where(ok_clean, q, 0.0)
    return r.mean(), np.sqrt(np.sum(qq * (1 - qq))) / len(r)


def main():
    torch.set_num_threads(2)
    torch.manual_seed(0)
    if not os.path.exists(os.path.join(os.environ.get("SKEPTIC_FASHION_MNIST", "/usr/share/datasets/fashion-mnist"),
                                       "t10k-images-idx3-ubyte.gz")):
        print("SKIPPED: Fashion-MNIST is not installed")
        sys.exit(77)
    d = tempfile.mkdtemp(prefix="skeptic-attack-eot-torch-")
    model = os.path.join(d, "mc.safetensors")
    run(["train", "--data", "fashion-mnist", "--arch", SPEC, "--epochs", "2", "--n", "10000", "--out", model, "--quiet",
         "--threads", "2"])
    adv = os.path.join(d, "adv.npy")
    r = run(["attack", "--model", model, "--data", "fashion-mnist", "--n", str(N), "--attack", "pgd", "--eps", str(EPS),
             "--steps", str(STEPS), "--mc", "--eot", str(EOT), "--verdict-samples", str(JUDGE), "--save-adv", adv,
             "--json", "--threads", "2", "--seed", "1"])
    out = json.loads(r.stdout)
    check(out["stochastic"] and out["verdict_samples"] == JUDGE and 0 < out["robust_accuracy_se"] < 0.02,
          f"JSON names the verdict: {out['verdict_samples']} samples, s.e. {out['robust_accuracy_se']:.4f}")

    net, shape, spec = bt.load_model(model)
    check(spec == SPEC, f"torch model built from the file's spec {spec}")
    net.train()  # dropout on: the MC-dropout predictive
    xn, yn = bt.load_fashion_test(N)
    x, y = torch.from_numpy(xn), torch.from_numpy(yn)
    ok_clean, _ = judge(net, x, y)

    xa_s = torch.from_numpy(np.load(adv).reshape(N, -1))
    linf = (xa_s - x).abs().max().item()
    check(linf <= EPS + 1e-6 and xa_s.min().item() >= 0 and xa_s.max().item() <= 1,
          f"skeptic examples within the eps ball and the box (max |d| = {linf:.7f})")
    ok_s, q_s = judge(net, xa_s, y)
    rob_s, se_s = robust(ok_clean, ok_s, q_s)
    xa_t = eot_pgd(net, x, y)
    ok_t, q_t = judge(net, xa_t, y)
    rob_t, se_t = robust(ok_clean, ok_t, q_t)
    xa_l = eot_pgd(net, x, y, lock=True)
    ok_l, q_l = judge(net, xa_l, y)
    rob_l, _ = robust(ok_clean, ok_l, q_l)
    print(f"     robust accuracy, PGD-{STEPS} EOT-{EOT} eps {EPS}, judged by a {JUDGE}-sample torch predictive: "
          f"skeptic {rob_s:.4f} (+-{se_s:.4f}; its own verdict {out['robust_accuracy']:.4f} "
          f"+-{out['robust_accuracy_se']:.4f}), PyTorch all steps {rob_t:.4f} (+-{se_t:.4f}), "
          f"PyTorch locked at a noisy success {rob_l:.4f}")
    tol = 0.01
    check(rob_s <= rob_t + tol, f"skeptic EOT PGD {rob_s:.4f} <= PyTorch EOT PGD {rob_t:.4f} + {tol}")
    agree = 3 * np.hypot(se_s, out["robust_accuracy_se"]) + 0.01
    check(abs(out["robust_accuracy"] - rob_s) <= agree,
          f"skeptic's verdict {out['robust_accuracy']:.4f} agrees with the torch judge {rob_s:.4f} (within {agree:.4f})")
    check(rob_l > rob_t + tol, f"self-check: locking at a noisy success ({rob_l:.4f}) is rejected against {rob_t:.4f}")

    if failures:
        print(f"{len(failures)} check(s) failed; files kept in {d}")
        sys.exit(1)
    shutil.rmtree(d)
    print("test_attack_eot_torch: all checks passed")


if __name__ == "__main__":
    main()
