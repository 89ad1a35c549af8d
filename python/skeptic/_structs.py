"""ctypes mirrors of the C structs the package reads or fills.

Only the fields the package uses are mirrored, in the order and with the types
of include/skeptic/*.h; a mirror may stop before the end of its struct. Structs
the library fills in (configs from its *_defaults functions, reports) live in
buffers of PAD extra bytes, so fields appended to them later keep the library's
defaults and never overrun a buffer. python/tests/test_abi.py compiles a C
program that prints offsetof() of every mirrored field and sizeof() of every
struct, and checks them against these classes: a change to a header that moves
a field fails there, naming the field.
"""
import ctypes as C

PAD = 1024

c_bool = C.c_bool
c_int = C.c_int
c_long = C.c_long
c_float = C.c_float
c_double = C.c_double
c_size_t = C.c_size_t
c_uint64 = C.c_uint64
c_char_p = C.c_char_p
c_void_p = C.c_void_p
P_float = C.POINTER(C.c_float)
P_int = C.POINTER(C.c_int)
P_bool = C.POINTER(C.c_bool)


class Dataset(C.Structure):  # struct sk_dataset (data.h)
    _fields_ = [("n", c_int), ("c", c_int), ("h", c_int), ("w", c_int), ("dim", c_int), ("n_classes", c_int),
                ("x", P_float), ("y", P_int), ("name", C.c_char * 64)]


class DataOptions(C.Structure):  # struct sk_data_options (data.h)
    _fields_ = [("seed", c_uint64), ("n", c_int), ("noise", c_float), ("k", c_int), ("dim", c_int),
                ("label_column", c_char_p), ("header", c_int), ("labels_path", c_char_p),
                ("test_fraction", c_float)]


class Model(C.Structure):  # struct sk_model (model.h), leading fields
    _fields_ = [("spec", c_char_p), ("n_layers", c_int), ("layers", c_void_p), ("in_c", c_int), ("in_h", c_int),
                ("in_w", c_int), ("in_dim", c_int), ("spatial", c_bool), ("n_classes", c_int),
                ("n_params", c_size_t), ("params", P_float), ("grads", P_float), ("n_buffers", c_size_t),
                ("buffers", P_float)]


class Posterior(C.Structure):  # struct sk_posterior (bayes.h), leading fields
    _fields_ = [("method", c_int), ("model", C.POINTER(Model)), ("n_members", c_int)]


class OptimConfig(C.Structure):  # struct sk_optim_config (optim.h), whole: sk_train_config holds one
    _fields_ = [("kind", c_int), ("lr", c_float), ("momentum", c_float), ("beta1", c_float), ("beta2", c_float),
                ("eps", c_float), ("alpha", c_float), ("weight_decay", c_float), ("l1", c_float),
                ("clip_norm", c_float), ("sched", c_int), ("total_steps", c_long), ("warmup_steps", c_long),
                ("step_size", c_long), ("gamma", c_float), ("min_lr", c_float), ("grad_noise", c_float),
                ("noise_seed", c_uint64), ("sam_rho", c_float), ("sam_adaptive", c_bool), ("sam_eta", c_float)]


class EpochMetrics(C.Structure):  # struct sk_epoch_metrics (train.h)
    _fields_ = [("epoch", c_int), ("train_loss", c_double), ("train_acc", c_double), ("val_loss", c_double),
                ("val_acc", c_double), ("lr", c_float), ("seconds", c_double), ("samples_per_s", c_double),
                ("improved", c_bool)]


EPOCH_FN = C.CFUNCTYPE(c_int, c_void_p, C.POINTER(EpochMetrics))


class TrainConfig(C.Structure):  # struct sk_train_config (train.h), leading fields
    _fields_ = [("epochs", c_int), ("batch", c_int), ("val_split", c_float), ("patience", c_int),
                ("seed", c_uint64), ("label_smoothing", c_float), ("opt", OptimConfig), ("on_epoch", EPOCH_FN)]


class AttackConfig(C.Structure):  # struct sk_attack_config (attack.h), leading fields
    _fields_ = [("kind", c_int), ("norm", c_int), ("eps", c_float), ("steps", c_int), ("restarts", c_int),
                ("step_size", c_float), ("random_start", c_bool), ("loss", c_int), ("target", c_int),
                ("targets", P_int), ("n_target_classes", c_int), ("momentum", c_float), ("queries", c_int),
                ("p_init", c_float), ("cw_search_steps", c_int), ("cw_c_init", c_float),
                ("cw_confidence", c_float), ("overshoot", c_float), ("batch", c_int), ("img_c", c_int),
                ("img_h", c_int), ("img_w", c_int), ("clip_min", c_float), ("clip_max", c_float),
                ("box_lo", P_float), ("box_hi", P_float), ("seed", c_uint64), ("audit", c_bool),
                ("keep_going", c_bool), ("verdict_samples", c_int)]


MAX_STAGES = 8
MAX_WARNINGS = 8


class AttackStage(C.Structure):  # struct sk_attack_stage (attack.h)
    _fields_ = [("name", C.c_char * 32), ("n_attacked", c_int), ("n_broken", c_int), ("robust_acc", c_double),
                ("grad_evals", c_long), ("queries", c_long), ("seconds", c_double)]


class AttackResult(C.Structure):  # struct sk_attack_result (attack.h)
    _fields_ = [("n", c_int), ("dim", c_int), ("n_classes", c_int), ("attack", C.c_char * 32), ("norm", c_int),
                ("eps", c_float), ("targeted", c_bool), ("x_adv", P_float), ("pred_clean", P_int),
                ("pred_adv", P_int), ("target", P_int), ("clean_correct", P_bool), ("robust", P_bool),
                ("success", P_bool), ("norm_delta", P_float), ("min_norm", P_float), ("clean_acc", c_double),
                ("robust_acc", c_double), ("success_rate", c_double), ("mean_norm", c_double),
                ("median_norm", c_double), ("grad_evals", c_long), ("queries", c_long), ("seconds", c_double),
                ("stochastic", c_bool), ("no_eot", c_bool), ("eot_samples", c_int), ("verdict_samples", c_int),
                ("robust_acc_se", c_double), ("n_stages", c_int), ("stages", AttackStage * MAX_STAGES),
                ("n_warnings", c_int), ("warnings", (C.c_char * 256) * MAX_WARNINGS), ("warn_no_eot", c_bool),
                ("warn_bad_grad", c_bool), ("warn_masking", c_bool), ("warn_probabilities", c_bool),
                ("warn_train_mode", c_bool), ("frac_zero_grad", c_double)]


class CertifyDomain(C.Structure):  # struct sk_certify_domain (certify.h)
    _fields_ = [("lo", c_float), ("hi", c_float), ("blo", P_float), ("bhi", P_float)]


class CertifyReport(C.Structure):  # struct sk_certify_report (certify.h)
    _fields_ = [("method", c_int), ("eps", c_float), ("n", c_int), ("n_correct", c_int), ("n_certified", c_int),
                ("clean_acc", c_double), ("certified_acc", c_double), ("mean_margin_lo", c_double),
                ("seconds", c_double), ("lipschitz_global", c_double), ("lipschitz_proved", c_bool)]


MAX_BINS = 100


class Reliability(C.Structure):  # struct sk_reliability (metrics.h)
    _fields_ = [("n_bins", c_int), ("count", c_long * MAX_BINS), ("conf", c_double * MAX_BINS),
                ("acc", c_double * MAX_BINS), ("ece", c_double), ("mce", c_double)]


class MetricSummary(C.Structure):  # struct sk_metric_summary (metrics.h)
    _fields_ = [("n", c_int), ("accuracy", c_double), ("nll", c_double), ("brier", c_double), ("ece", c_double),
                ("mce", c_double)]


class Detection(C.Structure):  # struct sk_detection (metrics.h)
    _fields_ = [("auroc", c_double), ("aupr", c_double), ("fpr95", c_double)]


# Structs test_abi.py checks: mirror -> (C struct name, header, whether the mirror
# must be the whole struct: true where the package allocates it, embeds it or
# steps through an array of it; the others are read through the library's
# pointers, or live in padded buffers, and need only their fields in place).
MIRRORS = {
    Dataset: ("sk_dataset", "data.h", True),
    DataOptions: ("sk_data_options", "data.h", True),
    Model: ("sk_model", "model.h", False),
    Posterior: ("sk_posterior", "bayes.h", False),
    OptimConfig: ("sk_optim_config", "optim.h", True),
    EpochMetrics: ("sk_epoch_metrics", "train.h", False),
    TrainConfig: ("sk_train_config", "train.h", False),
    AttackConfig: ("sk_attack_config", "attack.h", False),
    AttackStage: ("sk_attack_stage", "attack.h", True),
    AttackResult: ("sk_attack_result", "attack.h", False),
    CertifyDomain: ("sk_certify_domain", "certify.h", True),
    CertifyReport: ("sk_certify_report", "certify.h", True),
    Reliability: ("sk_reliability", "metrics.h", True),
    MetricSummary: ("sk_metric_summary", "metrics.h", True),
    Detection: ("sk_detection", "metrics.h", True),
}
