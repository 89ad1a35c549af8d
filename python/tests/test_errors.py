"""A failing library call becomes a skeptic.Error carrying the library's message."""
import numpy as np
import pytest

import skeptic
from conftest import MLP


def test_missing_file(workdir):
    path = workdir / "no-such-model.safetensors"
    with pytest.raises(skeptic.Error) as e:
        skeptic.Model.load(path)
    assert "no-such-model.safetensors" in str(e.value)
    assert str(e.value) == e.value.message == skeptic.last_error()
    with pytest.raises(skeptic.Error, match="no-such-model"):
        skeptic.Posterior.load(path)


def test_malformed_file(workdir):
    path = workdir / "garbage.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(skeptic.Error, match="garbage.safetensors"):
        skeptic.Model.load(path)


def test_bad_spec_names_the_column():
    with pytest.raises(skeptic.Error, match=r"spec 'mlp:784-x'.*column"):
        skeptic.Model.from_spec("mlp:784-x")


def test_status_becomes_subclass(workdir):
    m = skeptic.Model.from_spec(MLP)
    # saving into a directory that does not exist: SK_EIO with the path
    with pytest.raises(skeptic.FileError) as e:
        m.save(workdir / "no-such-dir" / "m.safetensors")
    assert e.value.status == -3 and "no-such-dir" in str(e.value)
    # a calibration with an impossible bin count: SK_EINVAL, a ValueError too
    p = np.full((4, 2), 0.5, np.float32)
    with pytest.raises(skeptic.InvalidArgument) as e:
        skeptic.metrics.calibration(p, np.zeros(4, np.int32), bins=1000)
    assert isinstance(e.value, ValueError) and e.value.status == -1 and str(e.value)
    # IBP refuses GELU by name
    g = skeptic.Model.from_spec("mlp:2-8-2:gelu")
    x = np.zeros((3, 2), np.float32)
    with pytest.raises(skeptic.InvalidArgument, match="(?i)gelu"):
        skeptic.certify(g, x, np.zeros(3, np.int32), 0.1, "ibp")


def test_python_side_checks():
    m = skeptic.Model.from_spec(MLP)
    x, y = skeptic.load_data("moons", "train")
    with pytest.raises(skeptic.InvalidArgument, match=r"labels must lie in \[0, 2\)"):
        m.train(x, y + 5, epochs=1)
    with pytest.raises(skeptic.InvalidArgument, match="optimizer 'adamx'"):
        m.train(x, y, epochs=1, optimizer="adamx")
    # an exception in a callback stops training and reaches the caller
    def boom(metrics):
        raise RuntimeError("stop here")
    with pytest.raises(RuntimeError, match="stop here"):
        m.train(x, y, epochs=3, on_epoch=boom)
    with pytest.raises(skeptic.Error, match="moonz"):
        skeptic.load_data("moonz")
