"""EOT attack strength on VI and Laplace posteriors against a PyTorch reference.

Three posteriors of an MLP (784-128-32-10) are trained with `skeptic train
--method`: vi (Bayes by Backprop) and laplace with the Kronecker-factored
last-layer Hessian (with a fitted temperature, so the temperature path is
covered) on 10,000 Fashion-MNIST rows, laplace with the full Hessian on 5,000.
PyTorch rebuilds each predictive from the same safetensors file, drawing
weights from the distribution the C code draws from (not the same random
numbers; one draw per sample, shared by the rows of a call, as skeptic's
classifier draws them):

  vi       w = mu + softplus(rho) e, e ~ N(0, I), every parameter (mu under the
           plain names, rho under "rho.<name>");
  laplace  the MAP network with its last dense layer [W | b] (K x (D+1), entry
           (k, d) at k (D+1) + d) moved by
             kfac: Delta = G_vec^T (Z / sqrt(G_val_i A_val_j + delta)) A_vec,
                   Z ~ N(0, I) (K x (D+1)), rows of *_vec are eigenvectors;
             full: vec(Delta) = cov_sqrt z, z ~ N(0, I);
           delta = skeptic.laplace.prior_precision from __metadata__;
  each sample's logits are divided by skeptic.temperature before the softmax,
  and the predictive averages the probabilities.

Checks, per posterior, on the first 200 test points, L-inf eps 0.03:
  * the torch predictive is skeptic's: on the first 100 points, per point and
    class, a 1000-sample torch predictive and `skeptic eval --samples 1000
    --predictions` differ by a z-score (Monte-Carlo standard error of both)
    whose mean square is < 1.5 and whose largest |z| is < 5.5 (measured about
    1 and 3.4-4); the mean network alone (no weight noise) is rejected by the
    same statistic (mean z^2 > 3; measured 26-99), so it tells predictives
    apart; full: cov_sqrt cov_sqrt^T = cov;
  * `skeptic attack --attack pgd --eot 10 --steps 10` and a PyTorch EOT PGD
    with the same eps, steps, step size (2.5 eps / steps), 10 weight samples
    per step (gradient of -log of the averaged softmax), no random start, all
    steps, last iterate; both sets of examples judged by one 200-sample torch
    predictive (robust: correct at the clean point and at x_adv). skeptic's
    robust accuracy is at most PyTorch's + tol, tol = max(0.01, 2 sqrt(se_s^2
    + se_t^2)), se the judge's Monte-Carlo error of each figure (per point
    Phi(margin / its s.e.), as attack.h defines robust_acc_se);
  * skeptic's own figures (its 200-sample verdict: clean and robust accuracy)
    agree with the torch judge within 3 standard errors + 1 point;
  * vi only: a PyTorch EOT PGD that locks a point at its first noisy success
    (one 10-sample call) comes out above the full PGD by more than tol (on
    the Laplace posteriors, whose noise is smaller, it is only 1-3 points
    above: no clear margin), and `--attack suite` (steps 5, queries 50, 10
    samples per call) is, judged by the torch predictive, at most the skeptic
    PGD figure + tol.
"""
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

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
SPEC = "mlp:784-128-32-10:relu"
SUITE_STEPS, SUITE_QUERIES = 5, 50
DIST_N, DIST_SK, DIST_T = 100, 1000, 1000  # points and samples (skeptic eval, torch) of the distribution check
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def run(args):
    t0 = time.time()
    r = subprocess.run([SKEPTIC] + args, capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout, r.stderr)
        raise SystemExit(f"skeptic {' '.join(args)} failed ({r.returncode})")
    print(f"     ({time.time() - t0:.1f} s) skeptic {' '.join(args)}", flush=True)
    return r


class Predictive:
    """The posterior predictive of a skeptic VI or Laplace file (an MLP spec)."""

    def __init__(self, path):
        t, meta = bt.read_safetensors(path)
        self.spec = meta["skeptic.spec"]
        self.method = meta["skeptic.method"]
        self.T = float(meta.get("skeptic.temperature", "1"))
        net, _ = bt.build(self.spec)
        self.layers = []  # ("dense", name) or ("act", module)
        for i, mod in enumerate(net):
            self.layers.append(("dense", str(i)) if isinstance(mod, torch.nn.Linear) else ("act", mod))
        g = {k: torch.from_numpy(v) for k, v in t.items()}
        self.mu = {n: (g[n + ".weight"], g[n + ".bias"]) for kind, n in self.layers if kind == "dense"}
        self.noise = True
        if self.method == "vi":
            self.sigma = {n: (F.softplus(g["rho." + n + ".weight"]), F.softplus(g["rho." + n + ".bias"]))
                          for n in self.mu}
        elif self.method == "laplace":
            self.last = [n for kind, n in self.layers if kind == "dense"][-1]
            self.delta = float(meta["skeptic.laplace.prior_precision"])
            self.kfac = meta.get("skeptic.laplace.hessian", "kfac") != "full"
            if self.kfac:
                self.avec, self.aval = g["laplace.A_vec"].double(), g["laplace.A_val"].double()
                self.gvec, self.gval = g["laplace.G_vec"].double(), g["laplace.G_val"].double()
                self.scale = 1.0 / torch.sqrt(self.gval[:, None] * self.aval[None, :] + self.delta)
            else:
                self.cov_sqrt = g["laplace.cov_sqrt"].double()
                self.cov = g["laplace.cov"].double()
        else:
            raise SystemExit(f"{path}: method {self.method} is not vi or laplace")

    def _laplace_delta(self, S):
        """S draws of the last layer's [W | b] perturbation, [S, K, D+1]"""
        W = self.mu[self.last][0]
        K, D1 = W.shape[0], W.shape[1] + 1
        if self.kfac:
            Z = torch.randn(S, K, D1, dtype=torch.float64) * self.scale
            return (self.gvec.T @ Z @ self.avec).float()
        z = torch.randn(S, K * D1, dtype=torch.float64)
        return (z @ self.cov_sqrt.T).reshape(S, K, D1).float()

    def logp(self, x, S):
        """per-sample tempered log-probabilities [S, N, K]: one weight draw per sample, shared by the rows
        (as skeptic's classifier draws them)"""
        h = x.unsqueeze(0)
        dense = [n for kind, n in self.layers if kind == "dense"]
        dl = self._laplace_delta(S) if self.method == "laplace" and self.noise else None
        for kind, n in self.layers:
            if kind == "act":
                h = n(h)
                continue
            W, b = self.mu[n]
            if self.method == "vi" and self.noise:
                sw, sb = self.sigma[n]
                W = torch.randn((S,) + W.shape).mul_(sw).add_(W)
                b = torch.randn((S,) + b.shape).mul_(sb).add_(b)
            elif n == dense[-1] and dl is not None:
                W = W + dl[:, :, :-1]
                b = b + dl[:, :, -1]
            if W.dim() == 2:
                h = h @ W.T + b
            elif h.shape[0] == 1:  # one product for all S draws: [N, D] x [D, S K]
                K = W.shape[1]
                h = (h[0] @ W.reshape(S * K, -1).T).reshape(-1, S, K).transpose(0, 1) + b[:, None, :]
            else:
                h = torch.baddbmm(b[:, None, :], h, W.transpose(1, 2))
        h = h.expand(S, -1, -1)
        return F.log_softmax(h / self.T, dim=-1)

    def eot_logp(self, x, k):
        """log of the softmax averaged over k samples"""
        return torch.logsumexp(self.logp(x, k), 0) - math.log(k)

    def probs(self, x, S, chunk=EOT):
        with torch.no_grad():
            return torch.cat([self.logp(x, min(chunk, S - i)).exp() for i in range(0, S, chunk)])


def eot_pgd(pred, x, y, lock=False):
    """EOT PGD, no random start, all steps; lock: keep a point's first iterate that one
    EOT call misclassifies (the early stop the verdict replaced)"""
    xa = x.clone()
    kept = x.clone()
    done = torch.zeros(len(x), dtype=torch.bool)
    for s in range(STEPS + 1):
        xa.requires_grad_(True)
        lp = pred.eot_logp(xa, EOT)
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


def judge(pred, x, y):
    """correct under the JUDGE-sample predictive, and the per-point chance q of a correct
    fresh verdict (normal approximation over the samples, as skeptic's error)"""
    p = pred.probs(x, JUDGE)
    pb = p.mean(0)
    other = pb.clone()
    idx = torch.arange(len(x))
    other[idx, y] = -1
    ks = other.argmax(1)
    m = (p[:, idx, y] - p[:, idx, ks]).double().numpy()
    d, se = m.mean(0), m.std(0, ddof=1) / np.sqrt(JUDGE)
    q = np.array([0.5 * (1 + math.erf(di / si / math.sqrt(2))) if si > 0 else float(di > 0) for di, si in zip(d, se)])
    return (pb.argmax(1) == y).numpy(), q


def robust(ok_clean, ok_adv, q):
    r = ok_clean & ok_adv
    qq = np.where(ok_clean, q, 0.0)
    return r.mean(), np.sqrt(np.sum(qq * (1 - qq))) / len(r)


def z_stats(pred, x, lp_sk):
    """mean square and largest |z| of (torch pbar - skeptic pbar) / its Monte-Carlo s.e., over
    the points and classes where the predictive is not degenerate; the same with the mean
    network's probabilities in place of the torch predictive (only skeptic's error then)"""
    p = pred.probs(x, DIST_T, chunk=100).double()
    pt, var = p.mean(0), p.var(0)
    pred.noise = False
    p0 = pred.probs(x, 1).double()[0]
    pred.noise = True
    ps = torch.from_numpy(lp_sk).double().exp()
    keep = var > 1e-10
    z = ((pt - ps) / torch.sqrt(var / DIST_T + var / DIST_SK))[keep]
    z0 = ((p0 - ps) / torch.sqrt(var / DIST_SK))[keep]
    return (z * z).mean().item(), z.abs().max().item(), int(keep.sum()), (z0 * z0).mean().item(), z0.abs().max().item()


def attack(d, name, model, extra, tag):
    adv = os.path.join(d, f"{name}_{tag}.npy")
    r = run(["attack", "--model", model, "--data", "fashion-mnist", "--n", str(N), "--eps", str(EPS), "--eot", str(EOT),
             "--verdict-samples", str(JUDGE), "--save-adv", adv, "--json", "--threads", "2", "--seed", "1"] + extra)
    return json.loads(r.stdout), torch.from_numpy(np.load(adv).reshape(N, -1))


def check_predictive(d, name, model, pred, x):
    """the torch predictive against `skeptic eval --predictions` on the first DIST_N points"""
    lp_file = os.path.join(d, name + "_pred.npy")
    run(["eval", "--model", model, "--data", "fashion-mnist", "--n", str(DIST_N), "--samples", str(DIST_SK),
         "--predictions", lp_file, "--threads", "2", "--mc-seed", "3"])
    ms, zmax, cnt, ms0, zmax0 = z_stats(pred, x[:DIST_N], np.load(lp_file))
    check(ms < 1.5 and zmax < 5.5, f"{name}: torch predictive = skeptic's ({cnt} probabilities: mean z^2 {ms:.3f}, "
          f"max |z| {zmax:.2f}; T {pred.T:.4g})")
    check(ms0 > 3.0, f"self-check: {name}'s mean network alone is rejected (mean z^2 {ms0:.1f}, max |z| {zmax0:.1f})")
    if pred.method == "laplace" and not pred.kfac:
        err = (pred.cov_sqrt @ pred.cov_sqrt.T - pred.cov).abs().max().item()
        check(err < 1e-5 * max(1.0, pred.cov.abs().max().item()),
              f"{name}: cov_sqrt cov_sqrt^T = cov (max err {err:.2e})")


def compare_pgd(d, name, model, pred, x, y):
    """skeptic's EOT PGD against PyTorch's, one judge; returns what the VI checks reuse"""
    out, xa_s = attack(d, name, model, ["--attack", "pgd", "--steps", str(STEPS)], "pgd")
    check(out["stochastic"] and out["eot_samples"] == EOT and out["verdict_samples"] == JUDGE,
          f"{name}: attacked as a stochastic predictive, EOT {out['eot_samples']}, verdict {out['verdict_samples']}")
    linf = (xa_s - x).abs().max().item()
    check(linf <= EPS + 1e-6 and xa_s.min().item() >= 0 and xa_s.max().item() <= 1,
          f"{name}: skeptic examples within the eps ball and the box (max |d| = {linf:.7f})")

    ok_clean, q_clean = judge(pred, x, y)
    clean_t = ok_clean.mean()
    agree = 3 * np.sqrt(np.sum(q_clean * (1 - q_clean))) / N + 0.01
    check(abs(out["clean_accuracy"] - clean_t) <= agree,
          f"{name}: clean accuracy, skeptic's verdict {out['clean_accuracy']:.4f} vs the torch judge {clean_t:.4f} "
          f"(within {agree:.4f})")
    ok_s, q_s = judge(pred, xa_s, y)
    rob_s, se_s = robust(ok_clean, ok_s, q_s)
    torch.manual_seed(11)
    xa_t = eot_pgd(pred, x, y)
    ok_t, q_t = judge(pred, xa_t, y)
    rob_t, se_t = robust(ok_clean, ok_t, q_t)
    tol = max(0.01, 2 * math.hypot(se_s, se_t))
    print(f"     {name}: robust accuracy, PGD-{STEPS} EOT-{EOT} eps {EPS}, judged by a {JUDGE}-sample torch "
          f"predictive: skeptic {rob_s:.4f} (+-{se_s:.4f}; its own verdict {out['robust_accuracy']:.4f} "
          f"+-{out['robust_accuracy_se']:.4f}), PyTorch all steps {rob_t:.4f} (+-{se_t:.4f}); clean {clean_t:.4f}")
    check(rob_s <= rob_t + tol, f"{name}: skeptic EOT PGD {rob_s:.4f} <= PyTorch EOT PGD {rob_t:.4f} + {tol:.4f}")
    agree = 3 * math.hypot(se_s, out["robust_accuracy_se"]) + 0.01
    check(abs(out["robust_accuracy"] - rob_s) <= agree,
          f"{name}: skeptic's verdict {out['robust_accuracy']:.4f} agrees with the torch judge {rob_s:.4f} "
          f"(within {agree:.4f})")
    return ok_clean, rob_s, se_s, rob_t, tol


def lock_and_suite(d, name, model, pred, x, y, ok_clean, rob_s, se_s, rob_t, tol):
    """the comparison can fail (an early-stopping PGD is rejected); the suite is no weaker than PGD"""
    xa_l = eot_pgd(pred, x, y, lock=True)
    ok_l, q_l = judge(pred, xa_l, y)
    rob_l, _ = robust(ok_clean, ok_l, q_l)
    check(rob_l > rob_t + tol,
          f"self-check: {name}: locking at a noisy success ({rob_l:.4f}) is rejected against {rob_t:.4f} + {tol:.4f}")
    out_u, xa_u = attack(d, name, model,
                         ["--attack", "suite", "--steps", str(SUITE_STEPS), "--queries", str(SUITE_QUERIES)], "suite")
    ok_u, q_u = judge(pred, xa_u, y)
    rob_u, se_u = robust(ok_clean, ok_u, q_u)
    tol_u = max(0.01, 2 * math.hypot(se_u, se_s))
    print(f"     {name}: suite (steps {SUITE_STEPS}, queries {SUITE_QUERIES}, EOT {EOT}): torch judge {rob_u:.4f} "
          f"(+-{se_u:.4f}), its own verdict {out_u['robust_accuracy']:.4f}, stages " +
          ", ".join(f"{s['attack']} {s['robust_accuracy']:.4f}" for s in out_u["stages"]))
    check(rob_u <= rob_s + tol_u, f"{name}: suite {rob_u:.4f} <= skeptic PGD {rob_s:.4f} + {tol_u:.4f}")


def posterior(d, name, train_args, x, y, vi_checks):
    print(f"---- {name}", flush=True)
    model = os.path.join(d, name + ".safetensors")
    run(["train", "--data", "fashion-mnist", "--arch", SPEC, "--epochs", "2", "--out", model,
         "--threads", "2", "--seed", "1"] + train_args)
    pred = Predictive(model)
    check_predictive(d, name, model, pred, x)
    res = compare_pgd(d, name, model, pred, x, y)
    if vi_checks:
        lock_and_suite(d, name, model, pred, x, y, *res)


def main():
    t0 = time.time()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    if not os.path.exists(os.path.join(os.environ.get("SKEPTIC_FASHION_MNIST", "/usr/share/datasets/fashion-mnist"),
                                       "t10k-images-idx3-ubyte.gz")):
        print("SKIPPED: Fashion-MNIST is not installed")
        sys.exit(77)
    d = tempfile.mkdtemp(prefix="skeptic-attack-eot-bayes-torch-")
    xn, yn = bt.load_fashion_test(N)
    x, y = torch.from_numpy(xn), torch.from_numpy(yn)
    posterior(d, "vi", ["--method", "vi", "--n", "10000"], x, y, True)
    posterior(d, "laplace-kfac",
              ["--method", "laplace", "--hessian", "kfac", "--n", "10000", "--val-split", "0.1", "--temperature"], x, y,
              False)
    # the full Hessian costs K^2 (D+1)^2 per training row: half the rows
    posterior(d, "laplace-full", ["--method", "laplace", "--hessian", "full", "--n", "5000"], x, y, False)
    print(f"     {time.time() - t0:.1f} s in all")
    if failures:
        print(f"{len(failures)} check(s) failed; files kept in {d}")
        sys.exit(1)
    shutil.rmtree(d)
    print("test_attack_eot_bayes_torch: all checks passed")


if __name__ == "__main__":
    main()
