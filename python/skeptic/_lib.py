"""Loading libskeptic and declaring the C functions the package calls.

The shared library is looked for, in this order:

1. the file named by the environment variable SKEPTIC_LIBRARY;
2. a copy inside the installed package (``skeptic/libskeptic.so``, put there by
   ``pip install`` when SKEPTIC_LIBRARY was set at install time, see setup.py);
3. the installed library: ``libskeptic.so.0`` through the dynamic loader
   (``cmake --install`` then ``ldconfig``, or LD_LIBRARY_PATH), then under
   ``/usr/local/lib`` and ``/usr/lib``.
"""
import ctypes as C
import os

from . import _structs as S

_SONAME = "libskeptic.so.0"


def _candidates():
    env = os.environ.get("SKEPTIC_LIBRARY")
    if env:
        # An explicit choice is the only one: falling back would hide a wrong path.
        return [env]
    here = os.path.dirname(os.path.abspath(__file__))
    out = [os.path.join(here, "libskeptic.so"), _SONAME]
    for d in ("/usr/local/lib", "/usr/local/lib64", "/usr/lib"):
        out.append(os.path.join(d, _SONAME))
    return out


def _load():
    tried = []
    for cand in _candidates():
        if os.sep in cand and not os.path.exists(cand):
            tried.append(f"{cand} (no such file)")
            continue
        try:
            return C.CDLL(cand), cand
        except OSError as e:
            tried.append(f"{cand} ({e})")
    raise ImportError("skeptic: cannot load libskeptic; tried " + "; ".join(tried) +
                      ". Set SKEPTIC_LIBRARY to the path of libskeptic.so (docs/python.md).")


lib, path = _load()

P = C.POINTER
vp = C.c_void_p
i32 = C.c_int
u64 = C.c_uint64
f32 = C.c_float
f64 = C.c_double
cp = C.c_char_p
pf = S.P_float
pi = S.P_int
pd = P(C.c_double)
pu8 = P(C.c_ubyte)
pb = P(C.c_bool)
MODEL = P(S.Model)
POST = P(S.Posterior)
DATA = P(S.Dataset)

# name: (restype, argtypes). Pointers to configs are passed as void* into
# padded buffers (see _structs.PAD).
_PROTOS = {
    "sk_last_error": (cp, []),
    "sk_status_name": (cp, [i32]),
    "sk_error_clear": (None, []),
    "sk_free": (None, [vp]),
    "sk_set_threads": (None, [i32]),
    "sk_get_threads": (i32, []),
    "sk_blas_core": (cp, []),
    # data
    "sk_data_open": (DATA, [cp, cp, vp]),
    "sk_dataset_free": (None, [DATA]),
    # models
    "sk_model_from_spec": (MODEL, [cp]),
    "sk_model_free": (None, [MODEL]),
    "sk_model_clone": (MODEL, [MODEL]),
    "sk_model_init": (i32, [MODEL, i32, u64]),
    "sk_model_load": (MODEL, [cp, cp, P(vp)]),
    "sk_model_save": (i32, [MODEL, cp, cp]),
    "sk_model_save_onnx": (i32, [MODEL, cp]),
    "sk_model_logits": (i32, [MODEL, pf, i32, pf]),
    "sk_model_log_probs": (i32, [MODEL, pf, i32, pf]),
    "sk_model_evaluate": (i32, [MODEL, pf, pi, i32, pd, pd]),
    "sk_model_weights_hash": (u64, [MODEL]),
    "sk_model_record_data": (i32, [MODEL, cp, cp, u64, f32, DATA, i32]),
    "sk_model_has_dropout": (C.c_bool, [MODEL]),
    "sk_prep_kind_parse": (i32, [cp]),
    # training
    "sk_train_defaults": (None, []),  # struct return: declared in _train_defaults
    "sk_train": (i32, [MODEL, vp, pf, pi, i32]),
    "sk_optim_defaults": (None, []),
    "sk_optim_kind_parse": (i32, [cp]),
    "sk_sched_kind_parse": (i32, [cp]),
    # classifiers
    "sk_classifier_from_model": (vp, [MODEL, i32, i32, u64]),
    "sk_classifier_free": (None, [vp]),
    "sk_classifier_predict": (i32, [vp, pf, i32, pi]),
    # attacks
    "sk_attack_parse": (i32, [cp]),
    "sk_attack_name": (cp, [i32]),
    "sk_attack_norm_parse": (i32, [cp]),
    "sk_attack_evaluate": (P(S.AttackResult), [vp, vp, pf, pi, i32]),
    "sk_attack_result_free": (None, [P(S.AttackResult)]),
    "sk_attack_curve": (i32, [vp, vp, pf, i32, pf, pi, i32, pd, vp]),
    # Bayesian posteriors
    "sk_bayes_new": (POST, [MODEL, i32]),
    "sk_bayes_free": (None, [POST]),
    "sk_bayes_load": (POST, [cp]),
    "sk_bayes_save": (i32, [POST, cp]),
    "sk_bayes_method_parse": (i32, [cp]),
    "sk_bayes_method_name": (cp, [i32]),
    "sk_bayes_predict": (i32, [POST, pf, i32, i32, u64, pf, pf]),
    "sk_bayes_sample_probs": (i32, [POST, pf, i32, i32, u64, pf]),
    "sk_bayes_n_samples": (i32, [POST, i32]),
    "sk_bayes_classifier": (vp, [POST, i32, u64]),
    "sk_bayes_fit_temperature": (i32, [POST, pf, pi, i32, i32, u64, P(f32)]),
    # metrics
    "sk_metric_accuracy": (f64, [pf, pi, i32, i32]),
    "sk_metric_nll": (f64, [pf, pi, i32, i32]),
    "sk_metric_brier": (f64, [pf, pi, i32, i32]),
    "sk_metric_calibration": (i32, [pf, pi, i32, i32, i32, P(S.Reliability)]),
    "sk_metric_summary": (i32, [pf, pi, i32, i32, P(S.MetricSummary)]),
    "sk_predictive": (None, [pf, i32, i32, i32, pf, pf, pf, pf]),
    "sk_entropy_rows": (None, [pf, i32, i32, pf]),
    "sk_unc_score_parse": (i32, [cp]),
    "sk_unc_score": (None, [i32, pf, pf, i32, i32, pf]),
    "sk_metric_detection": (i32, [pf, i32, pf, i32, P(S.Detection)]),
    "sk_metric_auroc": (f64, [pf, i32, pf, i32]),
    "sk_metric_misclassification": (i32, [pf, pf, pi, i32, i32, i32, P(S.Detection)]),
    "sk_metric_coverage": (i32, [pf, pf, pi, i32, i32, pf, i32, pd]),
    # certification
    "sk_certify_method_parse": (i32, [cp]),
    "sk_certify_box": (i32, [MODEL, i32, pf, pi, i32, f32, P(S.CertifyDomain), pu8, P(S.CertifyReport)]),
    "sk_certify_lipschitz": (i32, [MODEL, pf, pi, i32, f32, pu8, pf, pf, P(S.CertifyReport)]),
    "sk_certify_bounds": (i32, [MODEL, i32, pf, pf, i32, pf, pf]),
    "sk_certify_margins_box": (i32, [MODEL, i32, pf, pi, i32, f32, P(S.CertifyDomain), pf]),
    "sk_certify_lipschitz_bound": (i32, [MODEL, i32, u64, pd, pd, pd, pb]),
    "sk_certify_lipschitz_radius": (i32, [MODEL, pf, pi, i32, i32, pf, pf]),
}

for _name, (_res, _args) in _PROTOS.items():
    _f = getattr(lib, _name)
    _f.restype = _res
    _f.argtypes = _args


def _padded(struct_type):
    """A zeroed buffer holding struct_type with PAD spare bytes after it."""
    class Padded(C.Structure):
        _fields_ = [("s", struct_type), ("_spare", C.c_char * S.PAD)]
    return Padded


PaddedTrain = _padded(S.TrainConfig)
PaddedOptim = _padded(S.OptimConfig)
PaddedAttack = _padded(S.AttackConfig)
PaddedReport = _padded(S.CertifyReport)

# Functions returning a struct by value: the caller passes the memory for it
# (a hidden pointer on x86-64 and arm64), so a padded buffer takes a struct that
# grew at the end.
lib.sk_train_defaults.restype = PaddedTrain
lib.sk_train_defaults.argtypes = []
lib.sk_optim_defaults.restype = PaddedOptim
lib.sk_optim_defaults.argtypes = [i32]
lib.sk_attack_defaults.restype = PaddedAttack
lib.sk_attack_defaults.argtypes = [i32, i32, f32]
