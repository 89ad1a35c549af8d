"""Adversarial attacks through the classifier seam (skeptic/attack.h)."""
import ctypes as C

import numpy as np

from ._errors import as_float_rows, as_labels, call_ptr, check, fptr, invalid, iptr
from ._lib import lib
from .model import Classifier, Model

ATTACKS = ("fgsm", "pgd", "mifgsm", "apgd-ce", "apgd-dlr", "apgd-t", "cw", "deepfool", "fmn", "square", "sparse",
           "suite")
_TARGETS = {None: 0, "none": 0, "random": 2, "least-likely": 3}
_LOSSES = {"default": 0, "ce": 1, "cw": 2, "dlr": 3}


class AttackResult:
    """What sk_attack_evaluate found, as numpy arrays and numbers.

    clean_acc, robust_acc, success_rate, mean_norm, median_norm, robust_acc_se,
    grad_evals, queries, seconds, verdict_samples, eot_samples, stochastic,
    no_eot; per point: x_adv [n, dim], pred_clean, pred_adv, target (-1 when
    untargeted), clean_correct, robust, success, norm_delta, min_norm; stages
    (one dict per attack of a suite) and warnings (the audits' findings)."""

    def __init__(self, r, shape):
        n, dim = r.n, r.dim

        def arr(p, dtype, count):
            return np.ctypeslib.as_array(p, shape=(count,)).astype(dtype, copy=True) if count else \
                np.zeros(0, dtype)

        self.attack = r.attack.decode()
        self.norm = ("linf", "l2", "l1", "l0")[r.norm]
        self.eps = float(r.eps)
        self.targeted = bool(r.targeted)
        self.x_adv = arr(r.x_adv, np.float32, n * dim).reshape((n,) + tuple(shape))
        self.pred_clean = arr(r.pred_clean, np.int32, n)
        self.pred_adv = arr(r.pred_adv, np.int32, n)
        self.target = arr(r.target, np.int32, n)
        self.clean_correct = arr(r.clean_correct, bool, n)
        self.robust = arr(r.robust, bool, n)
        self.success = arr(r.success, bool, n)
        self.norm_delta = arr(r.norm_delta, np.float32, n)
        self.min_norm = arr(r.min_norm, np.float32, n)
        for k in ("clean_acc", "robust_acc", "success_rate", "mean_norm", "median_norm", "grad_evals", "queries",
                  "seconds", "eot_samples", "verdict_samples", "robust_acc_se", "frac_zero_grad"):
            setattr(self, k, getattr(r, k))
        self.stochastic, self.no_eot = bool(r.stochastic), bool(r.no_eot)
        self.stages = [{"name": s.name.decode(), "n_attacked": s.n_attacked, "n_broken": s.n_broken,
                        "robust_acc": s.robust_acc, "grad_evals": s.grad_evals, "queries": s.queries,
                        "seconds": s.seconds} for s in r.stages[:r.n_stages]]
        self.warnings = [r.warnings[i].value.decode() for i in range(r.n_warnings)]

    def __repr__(self):
        return (f"AttackResult({self.attack}, {self.norm} eps {self.eps:g}: clean {self.clean_acc:.4f}, "
                f"robust {self.robust_acc:.4f})")


def _classifier(target, samples, seed):
    from .bayes import Posterior
    if isinstance(target, Classifier):
        return target
    if isinstance(target, Model):
        if samples and samples > 1:
            return target.classifier("mc", samples, seed)
        return target.classifier("eval")
    if isinstance(target, Posterior):
        return target.classifier(samples or 0, seed)
    raise invalid(f"cannot attack a {type(target).__name__}: give a Model, a Posterior or a Classifier")


def _config(attack, norm, eps, opts, dim, n, keep):
    kind = lib.sk_attack_parse(str(attack).encode())
    if kind < 0:
        raise invalid(f"attack '{attack}': expected one of {', '.join(ATTACKS)}")
    p = lib.sk_attack_norm_parse(str(norm).encode())
    if p < 0:
        raise invalid(f"norm '{norm}': expected linf, l2, l1 or l0")
    buf = lib.sk_attack_defaults(kind, p, float(eps))
    cfg = buf.s
    clip = opts.pop("clip", None)
    if clip is not None:
        cfg.clip_min, cfg.clip_max = float(clip[0]), float(clip[1])
    box = opts.pop("box", None)
    if box is not None:
        lo, _ = as_float_rows(box[0], dim, "box[0]")
        hi, _ = as_float_rows(box[1], dim, "box[1]")
        keep += [lo, hi]
        cfg.box_lo, cfg.box_hi = fptr(lo), fptr(hi)
    target = opts.pop("target", None)
    if isinstance(target, str) or target is None:
        if target not in _TARGETS:
            raise invalid(f"target '{target}': expected None, 'random', 'least-likely' or an array of labels")
        cfg.target = _TARGETS[target]
    else:
        t = as_labels(target, n, what="target")
        keep.append(t)
        cfg.target, cfg.targets = 1, iptr(t)
    names = {f for f, _ in type(cfg)._fields_}
    for k, v in opts.items():
        if v is None:
            continue
        if k == "loss" and isinstance(v, str):
            if v not in _LOSSES:
                raise invalid(f"loss '{v}': expected ce, cw or dlr")
            v = _LOSSES[v]
        if k not in names or k in ("kind", "norm", "eps", "targets", "box_lo", "box_hi"):
            raise invalid(f"attack option '{k}' is not a field of sk_attack_config")
        setattr(cfg, k, v)
    return buf


def attack(target, x, y, attack="pgd", norm="linf", eps=0.1, *, samples=None, seed=None, **opts):
    """Attack n rows of x (labels y) and judge the result (sk_attack_evaluate).

    target: a Model (samples > 1: its MC-dropout form with that many masks per
    call), a Posterior (samples per call, 0: all members) or a Classifier.
    attack: one of ATTACKS ("suite" runs APGD-CE, APGD-T, FMN and Square on the
    points left). norm: linf, l2, l1 or l0. Keywords: the fields of
    sk_attack_config (steps, restarts, step_size, random_start, loss ("ce",
    "cw", "dlr"), momentum,
    queries, p_init, cw_search_steps, cw_c_init, cw_confidence, overshoot,
    batch, img_c/img_h/img_w, audit, keep_going, verdict_samples, seed), plus
    clip=(lo, hi) for the input box (default [0, 1]), box=(lo[dim], hi[dim])
    for a per-feature box, and target=None | "random" | "least-likely" |
    labels[n]. seed also seeds a stochastic classifier's draws."""
    c = _classifier(target, samples, seed or 0)
    dim = c._owner.in_dim
    a, n = as_float_rows(x, dim)
    yy = as_labels(y, n)
    keep = []
    if seed is not None:
        opts["seed"] = int(seed)
    buf = _config(attack, norm, eps, opts, dim, n, keep)
    shape = np.shape(x)[1:] if np.ndim(x) > 1 else (dim,)
    r = call_ptr(lib.sk_attack_evaluate, c._p, C.byref(buf), fptr(a), iptr(yy), n, what=f"attack {attack}")
    try:
        return AttackResult(r.contents, shape)
    finally:
        lib.sk_attack_result_free(r)


def attack_curve(target, x, y, eps_list, attack="pgd", norm="linf", *, samples=None, seed=None, **opts):
    """Robust accuracy at each budget of eps_list (sorted ascending), as
    sk_attack_curve: a point broken at one budget counts as broken at every
    larger one, so the curve never rises. Returns a float64 array."""
    c = _classifier(target, samples, seed or 0)
    dim = c._owner.in_dim
    a, n = as_float_rows(x, dim)
    yy = as_labels(y, n)
    eps = np.ascontiguousarray(eps_list, dtype=np.float32).reshape(-1)
    if eps.size == 0:
        raise invalid("eps_list is empty")
    keep = []
    if seed is not None:
        opts["seed"] = int(seed)
    buf = _config(attack, norm, float(eps[0]), opts, dim, n, keep)
    acc = np.empty(eps.size, np.float64)
    check(lib.sk_attack_curve(c._p, C.byref(buf), fptr(eps), eps.size, fptr(a), iptr(yy), n,
                              acc.ctypes.data_as(C.POINTER(C.c_double)), None))
    return acc
