"""Certified robustness (skeptic/certify.h): IBP, CROWN and a Lipschitz bound."""
import ctypes as C

import numpy as np

from . import _structs as S
from ._errors import as_float_rows, as_labels, check, fptr, invalid, iptr
from ._lib import lib

METHODS = ("ibp", "crown", "lipschitz")


def _method(name):
    m = lib.sk_certify_method_parse(str(name).encode())
    if m < 0:
        raise invalid(f"method '{name}': expected ibp, crown or lipschitz")
    return m


def _domain(model, clip, box, keep):
    if box is not None:
        lo, _ = as_float_rows(box[0], model.in_dim, "box[0]")
        hi, _ = as_float_rows(box[1], model.in_dim, "box[1]")
        keep += [lo, hi]
        return S.CertifyDomain(lo=0.0, hi=0.0, blo=fptr(lo), bhi=fptr(hi))
    if clip is None:
        return None
    return S.CertifyDomain(lo=float(clip[0]), hi=float(clip[1]))


class CertifyResult:
    """certified [n] bool, and the report: method, eps, n, n_correct,
    n_certified, clean_acc, certified_acc, mean_margin_lo, seconds (lipschitz:
    lipschitz_global, lipschitz_proved; r2 and rinf, the certified radii)."""

    def __init__(self, rep, cert, r2=None, rinf=None):
        self.method = METHODS[rep.method]
        for k in ("eps", "n", "n_correct", "n_certified", "clean_acc", "certified_acc", "mean_margin_lo", "seconds",
                  "lipschitz_global"):
            setattr(self, k, getattr(rep, k))
        self.eps = float(self.eps)
        self.lipschitz_proved = bool(rep.lipschitz_proved)
        self.certified = cert.astype(bool)
        self.r2, self.rinf = r2, rinf

    def __repr__(self):
        return f"CertifyResult({self.method}, eps {self.eps:g}: certified {self.certified_acc:.4f})"


def certify(model, x, y, eps, method="ibp", *, clip=(0.0, 1.0), box=None):
    """Certified accuracy of model on (x, y) within the L-infinity ball of
    radius eps intersected with the input box: clip=(lo, hi) for all features
    (None: no box) or box=(lo[dim], hi[dim]) per feature. method ibp, crown or
    lipschitz (which ignores the box and also returns certified radii)."""
    m = _method(method)
    a, n = as_float_rows(x, model.in_dim)
    yy = as_labels(y, n, model.n_classes)
    cert = np.zeros(n, np.uint8)
    buf = S.CertifyReport()
    keep = []
    cp = cert.ctypes.data_as(C.POINTER(C.c_ubyte))
    if m == 2:
        r2, rinf = np.zeros(n, np.float32), np.zeros(n, np.float32)
        check(lib.sk_certify_lipschitz(model._c(), fptr(a), iptr(yy), n, float(eps), cp, fptr(r2), fptr(rinf),
                                       C.byref(buf)))
        return CertifyResult(buf, cert, r2, rinf)
    dom = _domain(model, clip, box, keep)
    check(lib.sk_certify_box(model._c(), m, fptr(a), iptr(yy), n, float(eps), C.byref(dom) if dom else None, cp,
                             C.byref(buf)))
    return CertifyResult(buf, cert)


def bounds(model, lo, hi, method="ibp"):
    """Logit bounds (zlo, zhi) [N, K] over the boxes [lo, hi] (N rows each); ibp
    or crown (CROWN: dense/ReLU models, the elementwise best with IBP)."""
    m = _method(method)
    a, n = as_float_rows(lo, model.in_dim, "lo")
    b, n2 = as_float_rows(hi, model.in_dim, "hi")
    if n != n2:
        raise invalid(f"lo has {n} rows, hi {n2}")
    zlo = np.empty((n, model.n_classes), np.float32)
    zhi = np.empty((n, model.n_classes), np.float32)
    check(lib.sk_certify_bounds(model._c(), m, fptr(a), fptr(b), n, fptr(zlo), fptr(zhi)))
    return zlo, zhi


def margins(model, x, y, eps, method="ibp", *, clip=(0.0, 1.0), box=None):
    """Lower bounds [N, K] of the margins z_y - z_j over each row's threat set
    (0 in column y); a row is certified when every other entry is positive."""
    m = _method(method)
    a, n = as_float_rows(x, model.in_dim)
    yy = as_labels(y, n, model.n_classes)
    out = np.empty((n, model.n_classes), np.float32)
    keep = []
    dom = _domain(model, clip, box, keep)
    check(lib.sk_certify_margins_box(model._c(), m, fptr(a), iptr(yy), n, float(eps), C.byref(dom) if dom else None,
                                     fptr(out)))
    return out


def lipschitz_bound(model, iters=100, seed=1):
    """Upper bounds of the layers' spectral norms: dict(norms [n_layers], prefix,
    global, proved)."""
    nl = model._c().contents.n_layers
    norms = np.zeros(nl, np.float64)
    prefix, glob, proved = C.c_double(), C.c_double(), C.c_bool()
    check(lib.sk_certify_lipschitz_bound(model._c(), int(iters), seed, norms.ctypes.data_as(C.POINTER(C.c_double)),
                                         C.byref(prefix), C.byref(glob), C.byref(proved)))
    return {"norms": norms, "prefix": prefix.value, "global": glob.value, "proved": proved.value}
