"""Bayesian posteriors (skeptic/bayes.h): load, save, predictive, classifier."""
import ctypes as C

import numpy as np

from ._errors import Error, as_float_rows, as_labels, call_ptr, check, fptr, invalid, iptr
from ._lib import lib
from .model import Classifier, Model, _b

METHODS = ("deterministic", "vi", "mc-dropout", "ensemble", "sgld", "laplace")


class Posterior:
    """A posterior of any method: deterministic, vi, mc-dropout, ensemble, sgld
    or laplace (struct sk_posterior). Predictions average S samples; S = 0
    means every member of an ensemble or SGLD chain."""

    def __init__(self, ptr):
        self._p = ptr

    @classmethod
    def load(cls, path, method=None):
        """Any file written by a posterior's save (or `skeptic train --method`),
        or a plain model file (method deterministic; method="mc-dropout" for a
        model with dropout to predict with its dropout on)."""
        p = cls(call_ptr(lib.sk_bayes_load, _b(path), what=f"posterior {path}"))
        if method is not None:
            p.method = method
        return p

    @classmethod
    def from_model(cls, model, method="deterministic"):
        """A posterior around a copy of model: deterministic or mc-dropout (the
        other methods need training: `skeptic train --method`)."""
        m = _method(method)
        if m not in (0, 2):
            raise invalid(f"method {method}: a posterior made from a model is deterministic or mc-dropout")
        clone = call_ptr(lib.sk_model_clone, model._c(), what="clone")
        try:
            return cls(call_ptr(lib.sk_bayes_new, clone, m, what="posterior"))
        except Error:
            lib.sk_model_free(clone)  # sk_bayes_new takes the model only when it succeeds
            raise

    def save(self, path):
        check(lib.sk_bayes_save(self._c(), _b(path)))

    def close(self):
        if self._p:
            lib.sk_bayes_free(self._p)
            self._p = None

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _c(self):
        if not self._p:
            raise invalid("the posterior is closed")
        return self._p

    @property
    def method(self):
        return lib.sk_bayes_method_name(self._c().contents.method).decode()

    @method.setter
    def method(self, name):
        m = _method(name)
        if m == 2 and not lib.sk_model_has_dropout(self._c().contents.model):
            raise invalid("method mc-dropout: the model's spec has no dropout layer")
        if m not in (0, 2) or self._c().contents.method not in (0, 2):
            raise invalid(f"method {name}: only deterministic and mc-dropout can be switched")
        self._c().contents.method = m

    @property
    def n_members(self):
        return self._c().contents.n_members

    @property
    def n_classes(self):
        return self._c().contents.model.contents.n_classes

    @property
    def in_dim(self):
        return self._c().contents.model.contents.in_dim

    def n_samples(self, samples):
        """The samples a call with `samples` uses (0: all members; 1 when deterministic)."""
        return lib.sk_bayes_n_samples(self._c(), int(samples))

    def __repr__(self):
        return f"skeptic.Posterior({self.method}, {self.n_members} members)" if self._p else \
            "skeptic.Posterior(closed)"

    def sample_probs(self, x, samples=0, seed=0):
        """Per-sample probabilities [S, N, K] (S = n_samples(samples))."""
        a, n = as_float_rows(x, self.in_dim)
        S = self.n_samples(samples)
        out = np.empty((S, n, self.n_classes), np.float32)
        if n:
            check(lib.sk_bayes_sample_probs(self._c(), fptr(a), n, int(samples), seed, fptr(out)))
        return out

    def predict(self, x, samples=0, seed=0):
        """The predictive: (pbar [N, K], mutual information [N]). Laplace with
        probit gives mi = 0."""
        a, n = as_float_rows(x, self.in_dim)
        pbar = np.empty((n, self.n_classes), np.float32)
        mi = np.empty(n, np.float32)
        if n:
            check(lib.sk_bayes_predict(self._c(), fptr(a), n, int(samples), seed, fptr(pbar), fptr(mi)))
        return pbar, mi

    def fit_temperature(self, x, y, samples=0, seed=0):
        """Temperature scaling: the T minimising the NLL of (x, y); kept by the posterior."""
        a, n = as_float_rows(x, self.in_dim)
        yy = as_labels(y, n, self.n_classes)
        t = C.c_float()
        check(lib.sk_bayes_fit_temperature(self._c(), fptr(a), iptr(yy), n, int(samples), seed, C.byref(t)))
        return t.value

    def classifier(self, samples=0, seed=0):
        """A classifier averaging `samples` samples per call (EOT for attacks)."""
        return Classifier(call_ptr(lib.sk_bayes_classifier, self._c(), int(samples), seed, what="classifier"),
                          self)

    @property
    def model(self):
        """A copy of the posterior's network (mean, MAP or member 0 weights)."""
        return Model(call_ptr(lib.sk_model_clone, self._c().contents.model, what="clone"))


def _method(name):
    m = lib.sk_bayes_method_parse(_b(name))
    if m < 0:
        raise invalid(f"method '{name}': expected one of {', '.join(METHODS)}")
    return m
