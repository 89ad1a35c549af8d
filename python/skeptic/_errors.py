"""Exceptions: every failing library call raises a subclass of skeptic.Error
carrying the library's message (sk_last_error) and its status code."""
import ctypes as C

import numpy as np

from ._lib import lib

SK_EINVAL, SK_ENOMEM, SK_EIO, SK_EFORMAT, SK_ENONFINITE, SK_ESTATE = -1, -2, -3, -4, -5, -6


class Error(Exception):
    """A failure reported by libskeptic; str() is the library's message, .status
    the library's status code (SK_E*, negative) or None when the call gave none."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.message = message
        self.status = status


class InvalidArgument(Error, ValueError):
    """SK_EINVAL: a bad argument, a malformed spec, a shape that does not fit."""


class OutOfMemory(Error, MemoryError):
    """SK_ENOMEM: an allocation failed."""


class FileError(Error):
    """SK_EIO: a file could not be read or written."""


class FormatError(Error, ValueError):
    """SK_EFORMAT: a file's content is malformed."""


class NonFiniteError(Error, ArithmeticError):
    """SK_ENONFINITE: a NaN or Inf appeared where it must not."""


class StateError(Error, RuntimeError):
    """SK_ESTATE: a call out of order."""


for _cls in (Error, InvalidArgument, OutOfMemory, FileError, FormatError, NonFiniteError, StateError):
    _cls.__module__ = "skeptic"

_BY_STATUS = {SK_EINVAL: InvalidArgument, SK_ENOMEM: OutOfMemory, SK_EIO: FileError, SK_EFORMAT: FormatError,
              SK_ENONFINITE: NonFiniteError, SK_ESTATE: StateError}


def last_error():
    """The library's last message on this thread ("" if none)."""
    return lib.sk_last_error().decode("utf-8", "replace")


def raise_status(status, what=None):
    msg = last_error() or (what or "libskeptic") + " failed with " + lib.sk_status_name(status).decode()
    raise _BY_STATUS.get(status, Error)(msg, status)


def check(status, what=None):
    """Raise the exception of a negative status; return the status otherwise."""
    if status < 0:
        raise_status(status, what)
    return status


def call_ptr(fn, *args, what):
    """Call a library function that returns a pointer, NULL on failure. The
    library gives no status with a NULL, so the exception is Error itself
    (OutOfMemory when the message says so), with the library's message."""
    lib.sk_error_clear()
    p = fn(*args)
    if not p:
        msg = last_error() or f"{what}: out of memory"
        cls = OutOfMemory if "out of memory" in msg else Error
        raise cls(msg, SK_ENOMEM if cls is OutOfMemory else None)
    return p


def invalid(message):
    """A mistake caught on the Python side (shapes, names), raised like the library's."""
    return InvalidArgument(message, SK_EINVAL)


def as_float_rows(x, dim, what="x"):
    """x as a C-contiguous float32 array of rows of dim values (copied only when
    it is not one already), and the row count."""
    a = np.ascontiguousarray(x, dtype=np.float32)
    if a.ndim == 0 or a.size % dim != 0 or (a.ndim >= 2 and a[0].size != dim) or (a.ndim == 1 and a.size != dim):
        raise invalid(f"{what}: shape {a.shape} does not hold rows of {dim} values")
    if a.ndim == 1:
        a = a.reshape(1, dim)
    return a, a.shape[0]


def as_labels(y, n, n_classes=None, what="y"):
    a = np.ascontiguousarray(y, dtype=np.int32)
    if a.shape != (n,):
        raise invalid(f"{what}: shape {np.shape(y)}, expected ({n},)")
    if n_classes is not None and n and (a.min() < 0 or a.max() >= n_classes):
        raise invalid(f"{what}: labels must lie in [0, {n_classes}), found [{a.min()}, {a.max()}]")
    return a


def fptr(a):
    return a.ctypes.data_as(C.POINTER(C.c_float))


def iptr(a):
    return a.ctypes.data_as(C.POINTER(C.c_int))
