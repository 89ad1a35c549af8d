"""`skeptic sweep --summarize` against SciPy and a plain re-implementation.

A rows file of a 3 x 2 x 2 grid (depth, optimizer, batch) with measures
that have ties and a missing value is summarised by skeptic; every tau must
equal scipy.stats.kendalltau (its default is tau-b) on the rows where both
values are present, and every Psi must equal Jiang et al.'s granulated
coefficient computed here from its definition: for each axis, the mean over
the groups of rows equal in every other axis of the tau within the group
(groups without a tau left out), then the mean over the axes.
"""
import itertools
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
from scipy.stats import kendalltau

SRC = os.environ.get("SKEPTIC_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("SKEPTIC_BUILD_DIR", os.path.join(SRC, "build"))
SKEPTIC = os.path.join(BUILD, "skeptic")
AXES = ["depth", "width", "optimizer", "batch", "lr", "seed", "adv", "bayes"]
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def tau(a, b):
    keep = [i for i in range(len(a)) if a[i] is not None and b[i] is not None]
    if len(keep) < 2:
        return math.nan
    x = [a[i] for i in keep]
    y = [b[i] for i in keep]
    if len(set(x)) < 2 or len(set(y)) < 2:
        return math.nan
    return float(kendalltau(x, y).statistic)


def psi(rows, m, t):
    ms = []
    for ax in AXES:
        groups = {}
        for r in rows:
            groups.setdefault(tuple(str(r[b]) for b in AXES if b != ax), []).append(r)
        taus = [tau([r[m] for r in g], [r[t] for r in g]) for g in groups.values()]
        taus = [x for x in taus if not math.isnan(x)]
        if taus:
            ms.append(sum(taus) / len(taus))
    return sum(ms) / len(ms) if ms else math.nan


def main():
    rng = np.random.default_rng(3)
    rows = []
    for i, (depth, opt, batch) in enumerate(itertools.product([1, 2, 3], ["sgd", "adam"], [32, 1024])):
        gap = round(float(rng.normal(0.05, 0.03)), 2)  # rounded: ties
        rows.append({
            "index": i, "config_hash": f"{i:016x}", "depth": depth, "width": 64, "optimizer": opt, "batch": batch,
            "lr": 0.01, "seed": 1, "adv": "none", "bayes": "none",
            "gap_err": gap, "gap_loss": round(gap * 2 + float(rng.normal(0, 0.02)), 3),
            "pgd_acc": round(float(rng.uniform(0, 0.5)), 1),
            "sharp": round(gap + float(rng.normal(0, 0.02)), 2),
            "depthy": depth * 1.0,  # varies along depth only: constant in the groups of every other axis
            "noise": None if i == 4 else float(rng.normal()),
        })
    d = tempfile.mkdtemp(prefix="skeptic-sweep-scipy-")
    path = os.path.join(d, "rows.jsonl")
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    p = subprocess.run([SKEPTIC, "sweep", "--summarize", path, "--json"], capture_output=True, text=True)
    check(p.returncode == 0, f"skeptic sweep --summarize ran ({p.stderr.strip()})")
    s = json.loads(p.stdout)
    check(s["n_rows"] == 12, "12 rows read")
    n_checked = 0
    for m in ["sharp", "depthy", "noise", "gap_loss", "pgd_acc", "gap_err"]:
        for t in ["gap_err", "gap_loss", "pgd_acc"]:
            got = s["measures"][m][t]
            want_tau = math.nan if m == t else tau([r[m] for r in rows], [r[t] for r in rows])
            want_psi = math.nan if m == t else psi(rows, m, t)
            for name, g, w in (("tau", got["tau"], want_tau), ("psi", got["psi"], want_psi)):
                g = math.nan if g is None else g
                ok = (math.isnan(g) and math.isnan(w)) or abs(g - w) < 1e-12
                check(ok, f"{name}({m}, {t}) = {g:.6f}, reference {w:.6f}")
                n_checked += 1
    # the reference is not vacuous: some values are not NaN and not +-1
    check(abs(s["measures"]["sharp"]["gap_err"]["tau"]) not in (0.0, 1.0), "tau(sharp, gap) is a real value")
    check(s["measures"]["depthy"]["gap_err"]["psi"] is not None, "Psi with an axis left out is defined")
    if failures:
        print(f"{len(failures)} of {n_checked + 3} checks failed; files kept in {d}")
        sys.exit(1)
    os.remove(path)
    os.rmdir(d)
    print("test_sweep_scipy: all checks passed")


if __name__ == "__main__":
    main()
