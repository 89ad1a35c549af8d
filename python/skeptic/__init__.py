"""skeptic: how far to trust a neural network, from Python.

A thin layer over libskeptic (ctypes): numpy float32 arrays in and out, the
library's own code for everything. Train or load a model, attack it, make it
Bayesian, measure its uncertainty, bound it:

    import skeptic
    x, y = skeptic.load_data("moons", "train")
    m = skeptic.Model.from_spec("mlp:2-32-32-2:relu", seed=1)
    m.train(x, y, epochs=20, lr=1e-2)
    xt, yt = skeptic.load_data("moons", "test")
    r = skeptic.attack(m, xt, yt, "pgd", eps=0.1, steps=20, clip=(-2, 3))
    print(r.clean_acc, r.robust_acc)

Errors raise skeptic.Error subclasses carrying the library's message.
docs/python.md is the guide.
"""
from . import metrics
from ._errors import (Error, FileError, FormatError, InvalidArgument, NonFiniteError, OutOfMemory, StateError,
                      last_error)
from ._lib import path as library_path
from .attack import ATTACKS, AttackResult, attack, attack_curve
from .bayes import Posterior
from .certify import CertifyResult, bounds as certify_bounds, certify, lipschitz_bound, margins as certify_margins
from .model import Classifier, Model, get_threads, load_data, set_threads

__version__ = "0.1.0"

__all__ = ["ATTACKS", "AttackResult", "CertifyResult", "Classifier", "Error", "FileError", "FormatError",
           "InvalidArgument", "Model", "NonFiniteError", "OutOfMemory", "Posterior", "StateError", "attack",
           "attack_curve", "certify", "certify_bounds", "certify_margins", "get_threads", "last_error",
           "library_path", "lipschitz_bound", "load_data", "metrics", "set_threads"]
