"""Models: load, save, build from a spec, train, predict; data sets by name."""
import ctypes as C
import json
import os

import numpy as np

from . import _structs as S
from ._errors import as_float_rows, as_labels, call_ptr, check, fptr, invalid, iptr
from ._lib import lib

_INITS = {"he_uniform": 0, "he_normal": 1, "glorot_uniform": 2, "glorot_normal": 3, "torch": 4}
_MODES = {"eval": 0, "mc": 2}


def _b(s):
    return None if s is None else os.fsencode(s) if isinstance(s, os.PathLike) else str(s).encode()


def set_threads(n):
    """OpenMP threads of every library call (n <= 0: all cores). Results are
    bitwise reproducible for a fixed thread count."""
    lib.sk_set_threads(int(n))


def get_threads():
    return lib.sk_get_threads()


def load_data(name, split="test", *, seed=0, n=0, noise=0.0, k=0, dim=0, label_column=None, header=0,
              labels_path=None, test_fraction=0.0):
    """A data set as the command line opens it (sk_data_open): fashion-mnist,
    mnist, moons / spirals / blobs (options as keywords), an IDX directory, a CSV
    or .npy file. Returns (x, y): x float32 [n, C, H, W] for images, [n, D] for
    tables; y int32 [n]."""
    opt = S.DataOptions(seed=seed, n=n, noise=noise, k=k, dim=dim, label_column=_b(label_column), header=header,
                        labels_path=_b(labels_path), test_fraction=test_fraction)
    d = call_ptr(lib.sk_data_open, _b(name), _b(split), C.byref(opt), what=f"data {name}")
    try:
        ds = d.contents
        shape = (ds.n, ds.c, ds.h, ds.w) if ds.h * ds.w > 1 else (ds.n, ds.dim)
        x = np.ctypeslib.as_array(ds.x, shape=(ds.n * ds.dim,)).copy().reshape(shape) if ds.n else \
            np.zeros(shape, np.float32)
        y = np.ctypeslib.as_array(ds.y, shape=(ds.n,)).copy() if ds.n else np.zeros(0, np.int32)
        return x, y
    finally:
        lib.sk_dataset_free(d)


class Model:
    """A network (sk_model): its spec, weights and the record of its file
    (preprocessing, input range, class selection). Inputs are always raw data,
    float32, rows of in_dim values ([N, in_dim] or [N, C, H, W])."""

    def __init__(self, ptr):
        self._p = ptr
        self.metadata = {}

    # ---- construction ----
    @classmethod
    def from_spec(cls, spec, init="he_uniform", seed=1):
        """A new model of `spec` (model.h's grammar, e.g. "mlp:2-16-2:relu"),
        initialised by `init` (he_uniform, he_normal, glorot_uniform,
        glorot_normal, torch) from `seed`."""
        if init not in _INITS:
            raise invalid(f"init '{init}': expected one of {', '.join(_INITS)}")
        m = cls(call_ptr(lib.sk_model_from_spec, _b(spec), what=f"spec '{spec}'"))
        check(lib.sk_model_init(m._p, _INITS[init], seed))
        return m

    @classmethod
    def load(cls, path, spec=None):
        """A model file: safetensors (skeptic's or PyTorch's; spec None: from
        the file's metadata, required for files without one) or ONNX (opsets
        9-17, told apart by content; a spec given must equal the imported
        model's). The file's metadata is kept as the dict .metadata (ONNX:
        "format", "onnx.opset", ..., and "skeptic.import_notes" when the import
        changed anything, e.g. removed a final softmax)."""
        out = C.c_void_p()
        m = cls(call_ptr(lib.sk_model_load, _b(path), _b(spec), C.byref(out), what=f"model {path}"))
        try:
            m.metadata = json.loads(C.string_at(out.value).decode()) if out.value else {}
        finally:
            lib.sk_free(out)
        return m

    def save(self, path, metadata=None, format=None):
        """Write the model file atomically: safetensors, or ONNX (opset 13) when
        format="onnx" or the path ends in .onnx. metadata: extra {str: str}
        entries of safetensors' __metadata__ (the model's own record wins over
        them); ONNX files carry the record in metadata_props and take no extras."""
        fmt = format or ("onnx" if str(path).lower().endswith(".onnx") else "safetensors")
        if fmt == "onnx":
            if metadata:
                raise invalid("metadata: ONNX files carry the model's own record only")
            check(lib.sk_model_save_onnx(self._c(), _b(path)))
        elif fmt == "safetensors":
            meta = None if metadata is None else json.dumps({str(k): str(v) for k, v in metadata.items()}).encode()
            check(lib.sk_model_save(self._c(), _b(path), meta))
        else:
            raise invalid(f"format '{format}': expected safetensors or onnx")

    def clone(self):
        return Model(call_ptr(lib.sk_model_clone, self._p, what="clone"))

    def close(self):
        if self._p:
            lib.sk_model_free(self._p)
            self._p = None

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _c(self):
        if not self._p:
            raise invalid("the model is closed")
        return self._p

    # ---- what it is ----
    @property
    def spec(self):
        return self._c().contents.spec.decode()

    @property
    def n_classes(self):
        return self._c().contents.n_classes

    @property
    def in_dim(self):
        return self._c().contents.in_dim

    @property
    def input_shape(self):
        """(C, H, W) of one input row; (D, 1, 1) for tables."""
        m = self._c().contents
        return (m.in_c, m.in_h, m.in_w)

    @property
    def n_params(self):
        return self._c().contents.n_params

    @property
    def params(self):
        """A copy of the flat parameter buffer (the nn.Sequential tensors in order)."""
        m = self._c().contents
        return np.ctypeslib.as_array(m.params, shape=(m.n_params,)).copy()

    @property
    def has_dropout(self):
        return bool(lib.sk_model_has_dropout(self._c()))

    def weights_hash(self):
        """FNV-1a 64 of the parameters and buffers: equal hashes, bitwise equal weights."""
        return lib.sk_model_weights_hash(self._c())

    def __repr__(self):
        return f"skeptic.Model('{self.spec}', {self.n_params} parameters)" if self._p else "skeptic.Model(closed)"

    # ---- prediction ----
    def _rows(self, x):
        return as_float_rows(x, self.in_dim)

    def logits(self, x):
        """Class scores [N, K] (eval mode), float32."""
        a, n = self._rows(x)
        out = np.empty((n, self.n_classes), np.float32)
        if n:
            check(lib.sk_model_logits(self._c(), fptr(a), n, fptr(out)))
        return out

    def log_probs(self, x):
        a, n = self._rows(x)
        out = np.empty((n, self.n_classes), np.float32)
        if n:
            check(lib.sk_model_log_probs(self._c(), fptr(a), n, fptr(out)))
        return out

    def predict_proba(self, x):
        return np.exp(self.log_probs(x))

    def predict(self, x):
        """Predicted classes (argmax of the scores; ties: the lowest index), int32 [N]."""
        return np.argmax(self.logits(x), axis=1).astype(np.int32)

    def evaluate(self, x, y):
        """(accuracy, mean cross-entropy) on (x, y)."""
        a, n = self._rows(x)
        yy = as_labels(y, n, self.n_classes)
        acc, loss = C.c_double(), C.c_double()
        check(lib.sk_model_evaluate(self._c(), fptr(a), iptr(yy), n, C.byref(acc), C.byref(loss)))
        return acc.value, loss.value

    def classifier(self, mode="eval", samples=1, seed=0):
        """The model as a classifier for attacks: mode "eval" (deterministic) or
        "mc" (dropout on, `samples` masks averaged per call: an EOT attack)."""
        if mode not in _MODES:
            raise invalid(f"mode '{mode}': expected eval or mc")
        return Classifier(call_ptr(lib.sk_classifier_from_model, self._c(), _MODES[mode], int(samples), seed,
                                   what="classifier"), self)

    # ---- training ----
    def train(self, x, y, *, epochs=10, batch=128, optimizer="adam", lr=None, schedule="constant", seed=1,
              val_split=0.0, patience=0, label_smoothing=0.0, weight_decay=0.0, momentum=None, clip_norm=0.0,
              preprocess=None, classes=None, on_epoch=None):
        """Train in place with the library's loop (sk_train): the sk_train_config
        fields as keywords; optimizer sgd, momentum, nesterov, adam, adamw, rmsprop;
        schedule constant, step, cosine, onecycle. preprocess ("minmax" or
        "standardize") fits the input transform on x and makes it part of the
        model (data stay raw), recording the training range as the command line
        does; classes records a class selection string ("6,0") in the model.
        on_epoch(metrics: dict) is called after every epoch; returning True
        stops training. Returns the list of per-epoch metrics."""
        a, n = self._rows(x)
        yy = as_labels(y, n, self.n_classes)
        kind = lib.sk_optim_kind_parse(_b(optimizer))
        if kind < 0:
            raise invalid(f"optimizer '{optimizer}': expected sgd, momentum, nesterov, adam, adamw or rmsprop")
        sched = lib.sk_sched_kind_parse(_b(schedule))
        if sched < 0:
            raise invalid(f"schedule '{schedule}': expected constant, step, cosine or onecycle")
        if preprocess is not None or classes is not None:
            self._record(a, yy, n, preprocess or "none", classes)

        buf = lib.sk_train_defaults()
        cfg = buf.s
        cfg.opt = lib.sk_optim_defaults(kind).s
        cfg.epochs, cfg.batch, cfg.seed = int(epochs), int(batch), int(seed)
        cfg.val_split, cfg.patience, cfg.label_smoothing = float(val_split), int(patience), float(label_smoothing)
        if lr is not None:
            cfg.opt.lr = float(lr)
        if momentum is not None:
            cfg.opt.momentum = float(momentum)
        cfg.opt.weight_decay, cfg.opt.clip_norm, cfg.opt.sched = float(weight_decay), float(clip_norm), sched

        history, failure = [], []

        def epoch_cb(ctx, em):
            try:
                e = em.contents
                d = {k: getattr(e, k) for k, _ in S.EpochMetrics._fields_}
                d["lr"] = float(d["lr"])
                history.append(d)
                return 1 if on_epoch is not None and on_epoch(d) else 0
            except BaseException as exc:  # an exception cannot cross C: stop, re-raise after
                failure.append(exc)
                return 1

        cb = S.EPOCH_FN(epoch_cb)
        cfg.on_epoch = cb
        check(lib.sk_train(self._c(), C.byref(buf), fptr(a), iptr(yy), n))
        if failure:
            raise failure[0]
        return history

    def _record(self, a, yy, n, preprocess, classes):
        prep = lib.sk_prep_kind_parse(_b(preprocess))
        if prep < 0:
            raise invalid(f"preprocess '{preprocess}': expected none, minmax or standardize")
        c, h, w = self.input_shape
        ds = S.Dataset(n=n, c=c, h=h, w=w, dim=self.in_dim, n_classes=self.n_classes, x=fptr(a), y=iptr(yy))
        check(lib.sk_model_record_data(self._c(), None, _b(classes), 0, 0.0, C.byref(ds), prep))


class Classifier:
    """The classifier seam (struct sk_classifier) over a model or a posterior,
    which it keeps alive."""

    def __init__(self, ptr, owner):
        self._p = ptr
        self._owner = owner

    def predict(self, x):
        a, n = as_float_rows(x, self._owner_in_dim())
        out = np.empty(n, np.int32)
        if n:
            check(lib.sk_classifier_predict(self._p, fptr(a), n, iptr(out)))
        return out

    def _owner_in_dim(self):
        return self._owner.in_dim

    def close(self):
        if self._p:
            lib.sk_classifier_free(self._p)
            self._p = None

    def __del__(self):
        self.close()
