"""Metrics of predictions and uncertainty on plain arrays (skeptic/metrics.h)."""
import ctypes as C

import numpy as np

from . import _structs as S
from ._errors import as_labels, check, fptr, invalid, iptr
from ._lib import lib


def _probs(p, what="probs"):
    a = np.ascontiguousarray(p, dtype=np.float32)
    if a.ndim != 2:
        raise invalid(f"{what}: shape {a.shape}, expected [N, K]")
    return a


def _dp(a):
    return a.ctypes.data_as(C.POINTER(C.c_double))


def accuracy(probs, y):
    p = _probs(probs)
    return lib.sk_metric_accuracy(fptr(p), iptr(as_labels(y, p.shape[0], p.shape[1])), *p.shape)


def nll(probs, y):
    p = _probs(probs)
    return lib.sk_metric_nll(fptr(p), iptr(as_labels(y, p.shape[0], p.shape[1])), *p.shape)


def brier(probs, y):
    p = _probs(probs)
    return lib.sk_metric_brier(fptr(p), iptr(as_labels(y, p.shape[0], p.shape[1])), *p.shape)


def calibration(probs, y, bins=15):
    """The reliability table: dict(ece, mce, count [bins], conf [bins], acc [bins])."""
    p = _probs(probs)
    yy = as_labels(y, p.shape[0], p.shape[1])
    r = S.Reliability()
    check(lib.sk_metric_calibration(fptr(p), iptr(yy), p.shape[0], p.shape[1], int(bins), C.byref(r)))
    b = r.n_bins
    return {"ece": r.ece, "mce": r.mce, "count": np.array(r.count[:b]), "conf": np.array(r.conf[:b]),
            "acc": np.array(r.acc[:b])}


def summary(probs, y):
    """dict(n, accuracy, nll, brier, ece, mce) of one prediction."""
    p = _probs(probs)
    yy = as_labels(y, p.shape[0], p.shape[1])
    s = S.MetricSummary()
    check(lib.sk_metric_summary(fptr(p), iptr(yy), p.shape[0], p.shape[1], C.byref(s)))
    return {k: getattr(s, k) for k, _ in S.MetricSummary._fields_}


def predictive(sample_probs):
    """From per-sample probabilities [S, N, K]: dict(pbar [N, K], total_entropy,
    expected_entropy, mi [N]) (natural logarithms; mi = total - expected >= 0)."""
    a = np.ascontiguousarray(sample_probs, dtype=np.float32)
    if a.ndim != 3:
        raise invalid(f"sample_probs: shape {a.shape}, expected [S, N, K]")
    S_, N, K = a.shape
    pbar = np.empty((N, K), np.float32)
    tot, exp_, mi = (np.empty(N, np.float32) for _ in range(3))
    lib.sk_predictive(fptr(a), S_, N, K, fptr(pbar), fptr(tot), fptr(exp_), fptr(mi))
    return {"pbar": pbar, "total_entropy": tot, "expected_entropy": exp_, "mi": mi}


def entropy(probs):
    p = _probs(probs)
    h = np.empty(p.shape[0], np.float32)
    lib.sk_entropy_rows(fptr(p), p.shape[0], p.shape[1], fptr(h))
    return h


def _score_kind(kind):
    k = lib.sk_unc_score_parse(str(kind).encode())
    if k < 0:
        raise invalid(f"score '{kind}': expected maxprob, entropy or mi")
    return k


def uncertainty(pbar, mi=None, kind="entropy"):
    """Uncertainty score per row (bigger = less sure): maxprob (1 - max p),
    entropy, or mi (needs mi)."""
    p = _probs(pbar, "pbar")
    m = None if mi is None else np.ascontiguousarray(mi, dtype=np.float32)
    out = np.empty(p.shape[0], np.float32)
    lib.sk_unc_score(_score_kind(kind), fptr(p), None if m is None else fptr(m), p.shape[0], p.shape[1], fptr(out))
    return out


def detection(pos, neg):
    """How well a score (bigger = positive) tells positives from negatives:
    dict(auroc, aupr, fpr95)."""
    a = np.ascontiguousarray(pos, dtype=np.float32).reshape(-1)
    b = np.ascontiguousarray(neg, dtype=np.float32).reshape(-1)
    d = S.Detection()
    check(lib.sk_metric_detection(fptr(a), a.size, fptr(b), b.size, C.byref(d)))
    return {"auroc": d.auroc, "aupr": d.aupr, "fpr95": d.fpr95}


def misclassification(pbar, y, mi=None, kind="entropy"):
    """Detection of the misclassified rows of pbar by an uncertainty score."""
    p = _probs(pbar, "pbar")
    yy = as_labels(y, p.shape[0], p.shape[1])
    m = None if mi is None else np.ascontiguousarray(mi, dtype=np.float32)
    d = S.Detection()
    check(lib.sk_metric_misclassification(fptr(p), None if m is None else fptr(m), iptr(yy), p.shape[0], p.shape[1],
                                          _score_kind(kind), C.byref(d)))
    return {"auroc": d.auroc, "aupr": d.aupr, "fpr95": d.fpr95}


def coverage(uncertainty_score, pbar, y, fractions=(0.5, 0.8, 0.9, 1.0)):
    """Accuracy on the fraction c of rows with the smallest uncertainty, per c."""
    p = _probs(pbar, "pbar")
    yy = as_labels(y, p.shape[0], p.shape[1])
    u = np.ascontiguousarray(uncertainty_score, dtype=np.float32).reshape(-1)
    c = np.ascontiguousarray(fractions, dtype=np.float32).reshape(-1)
    acc = np.empty(c.size, np.float64)
    check(lib.sk_metric_coverage(fptr(u), fptr(p), iptr(yy), p.shape[0], p.shape[1], fptr(c), c.size, _dp(acc)))
    return acc
