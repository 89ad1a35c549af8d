"""Loading, prediction, saving and training against the command line and an
independent numpy forward pass."""
import json
import struct

import numpy as np
import pytest

import skeptic
from conftest import BOX, MLP, cli


def read_safetensors(path):
    """The tensors of a safetensors file, read with numpy alone."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        assert t["dtype"] == "F32", name
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype="<f4").reshape(t["shape"])
    return out


def numpy_logits(path, x):
    t = read_safetensors(path)
    h = x.astype(np.float64)
    layers = sorted({int(k.split(".")[0]) for k in t})
    for i, li in enumerate(layers):
        h = h @ t[f"{li}.weight"].T.astype(np.float64) + t[f"{li}.bias"]
        if i < len(layers) - 1:
            h = np.maximum(h, 0)
    return h


def test_load_predict_parity(moons_model, moons_test):
    x, y = moons_test
    m = skeptic.Model.load(moons_model)
    assert m.spec == MLP and m.n_classes == 2 and m.in_dim == 2 and m.input_shape == (2, 1, 1)
    assert m.metadata["skeptic.spec"] == MLP
    z = m.logits(x)
    assert z.dtype == np.float32 and z.shape == (len(x), 2)
    ref = numpy_logits(moons_model, x)
    assert np.max(np.abs(z - ref) / (1 + np.abs(ref))) < 1e-5
    # log-probabilities, probabilities and classes agree with the logits
    lp = m.log_probs(x)
    assert np.allclose(lp, z - np.log(np.exp(z).sum(1, keepdims=True)), atol=1e-5)
    assert np.allclose(m.predict_proba(x).sum(1), 1, atol=1e-6)
    assert np.array_equal(m.predict(x), np.argmax(ref, 1))
    # the command line's figures on the same file and rows
    ev = cli("eval", "--model", moons_model, "--data", "moons", "--threads", 1, "--json", json_out=True)
    acc, loss = m.evaluate(x, y)
    assert ev["n"] == len(x)
    assert acc == ev["accuracy"] == np.mean(m.predict(x) == y)
    assert loss == pytest.approx(ev["loss"], rel=1e-6)
    assert loss == pytest.approx(-np.mean(lp[np.arange(len(y)), y]), rel=1e-5)
    # images or rows: the same numbers; a row that does not fit is an error
    assert np.array_equal(m.logits(x[:1].reshape(1, 2, 1, 1)), z[:1])
    assert np.array_equal(m.logits(x[0]), z[:1])
    with pytest.raises(skeptic.InvalidArgument, match="rows of 2 values"):
        m.logits(np.zeros((4, 3), np.float32))


def test_strided_and_float64_input(moons_model, moons_test):
    x, _ = moons_test
    m = skeptic.Model.load(moons_model)
    ref = m.logits(x[:50])
    wide = np.zeros((50, 4), np.float64)
    wide[:, ::2] = x[:50]
    assert np.array_equal(m.logits(wide[:, ::2]), ref)  # copied to float32 rows, same numbers


def test_save_roundtrip(moons_model, workdir, moons_test):
    x, _ = moons_test
    m = skeptic.Model.load(moons_model)
    out = workdir / "copy.safetensors"
    m.save(out, metadata={"note": "from python"})
    m2 = skeptic.Model.load(out)
    assert m2.weights_hash() == m.weights_hash()
    assert m2.metadata["note"] == "from python"
    assert np.array_equal(m2.logits(x), m.logits(x))
    assert f"{m.weights_hash():016x}" in cli("info", out)


def test_train_matches_command_line(workdir, moons_test):
    """Training from Python is the library's loop: with the command line's
    settings it gives the command line's weights, bit for bit."""
    x, y = skeptic.load_data("moons", "train")
    m = skeptic.Model.from_spec(MLP, init="he_uniform", seed=5)
    hist = m.train(x, y, epochs=3, batch=128, optimizer="adam", lr=0.01, seed=5)
    assert [h["epoch"] for h in hist] == [0, 1, 2]
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    ref = workdir / "train5.safetensors"
    cli("train", "--data", "moons", "--arch", MLP, "--epochs", 3, "--lr", 0.01, "--seed", 5, "--threads", 1,
        "--out", ref, "--quiet")
    assert m.weights_hash() == skeptic.Model.load(ref).weights_hash()
    xt, yt = moons_test
    assert m.evaluate(xt, yt)[0] > 0.8
    # the same seed again: the same bits; another seed: other weights
    m2 = skeptic.Model.from_spec(MLP, seed=5)
    m2.train(x, y, epochs=3, lr=0.01, seed=5)
    assert m2.weights_hash() == m.weights_hash()
    m3 = skeptic.Model.from_spec(MLP, seed=6)
    m3.train(x, y, epochs=3, lr=0.01, seed=6)
    assert m3.weights_hash() != m.weights_hash()


def test_train_preprocess_and_stop(workdir):
    x, y = skeptic.load_data("moons", "train")
    m = skeptic.Model.from_spec(MLP, seed=2)
    seen = []
    hist = m.train(x, y, epochs=10, lr=0.01, preprocess="standardize", on_epoch=lambda e: seen.append(e) or
                   e["epoch"] == 1)
    assert len(hist) == len(seen) == 2  # stopped after the second epoch
    path = workdir / "std.safetensors"
    m.save(path)
    prep = json.loads(skeptic.Model.load(path).metadata["skeptic.preprocess"])
    assert prep["kind"] == "standardize"
    assert np.allclose(prep["shift"], x.mean(0), atol=1e-5)


def test_onnx_roundtrip(moons_model, workdir, moons_test):
    """ONNX out and back in, bit for bit; the file passes onnx.checker
    (Debian's python3-onnx)."""
    import onnx

    x, _ = moons_test
    m = skeptic.Model.load(moons_model)
    path = workdir / "moons.onnx"
    m.save(path)
    back = skeptic.Model.load(path)
    assert back.metadata["format"] == "onnx"
    assert back.n_params == m.n_params and back.weights_hash() == m.weights_hash()
    assert np.array_equal(back.logits(x), m.logits(x))
    with pytest.raises(skeptic.InvalidArgument, match="metadata"):
        m.save(workdir / "x.onnx", metadata={"a": "b"})
    onnx.checker.check_model(onnx.load(str(path)))
