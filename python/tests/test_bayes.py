"""Posteriors and their predictive: the library's numbers, checked against the
command line and against numpy on the per-sample probabilities."""
import numpy as np
import pytest

import skeptic
from conftest import BOX, MLP, cli


@pytest.fixture(scope="session")
def ensemble(workdir):
    path = workdir / "ensemble.safetensors"
    cli("train", "--data", "moons", "--arch", MLP, "--method", "ensemble", "--members", 3, "--epochs", 2, "--lr", 0.01,
        "--seed", 1, "--threads", 1, "--out", path)
    return path


def entropy(p):
    return -np.sum(np.where(p > 0, p * np.log(np.maximum(p, 1e-30)), 0.0), axis=-1)


def test_ensemble_predictive(ensemble, moons_test):
    x, y = moons_test
    p = skeptic.Posterior.load(ensemble)
    assert p.method == "ensemble" and p.n_members == 3 and p.n_samples(0) == 3
    sp = p.sample_probs(x, 0)
    assert sp.shape == (3, len(x), 2)
    assert np.allclose(sp.sum(-1), 1, atol=1e-5)
    # the members differ (independent seeds), so the epistemic part is not zero
    assert np.abs(sp[0] - sp[1]).max() > 1e-3
    pbar, mi = p.predict(x, 0)
    assert np.allclose(pbar, sp.mean(0), atol=1e-6)
    ref_mi = entropy(sp.mean(0).astype(np.float64)) - entropy(sp.astype(np.float64)).mean(0)
    assert np.allclose(mi, ref_mi, atol=1e-5) and np.all(mi >= 0) and mi.max() > 1e-4
    pr = skeptic.metrics.predictive(sp)
    assert np.allclose(pr["pbar"], pbar, atol=1e-6) and np.allclose(pr["mi"], mi, atol=1e-6)
    assert np.allclose(pr["total_entropy"], entropy(pbar.astype(np.float64)), atol=1e-5)
    # the command line's uncertainty figures on the same file and rows
    ev = cli("eval", "--model", ensemble, "--data", "moons", "--threads", 1, "--json", json_out=True)
    s = skeptic.metrics.summary(pbar, y)
    assert s["accuracy"] == ev["accuracy"] == skeptic.metrics.accuracy(pbar, y)
    assert s["nll"] == pytest.approx(ev["nll"], rel=1e-6)
    assert s["ece"] == pytest.approx(ev["ece"], rel=1e-6, abs=1e-9)
    assert np.mean(mi) == pytest.approx(ev["mean_mi"], rel=1e-5)
    # and its attack through the predictive (every member per call)
    r = skeptic.attack(p, x[:200], y[:200], "pgd", eps=0.25, steps=10, clip=BOX, seed=1)
    ref = cli("attack", "--model", ensemble, "--data", "moons", "--n", 200, "--attack", "pgd", "--eps", 0.25,
              "--steps", 10, "--clip-min", BOX[0], "--clip-max", BOX[1], "--seed", 1, "--threads", 1, "--json",
              json_out=True)
    assert r.robust_acc == ref["robust_accuracy"] and r.clean_acc == ref["clean_accuracy"]


def test_mc_dropout_posterior(dropout_model, moons_test, workdir):
    x, y = moons_test
    p = skeptic.Posterior.load(dropout_model, method="mc-dropout")
    assert p.method == "mc-dropout"
    a, mi_a = p.predict(x, 20, seed=1)
    b, _ = p.predict(x, 20, seed=1)
    c, _ = p.predict(x, 20, seed=2)
    assert np.array_equal(a, b)  # seeded
    assert not np.array_equal(a, c)  # and random
    assert np.all(mi_a >= 0) and mi_a.max() > 0
    sp = p.sample_probs(x, 20, seed=1)
    assert sp.shape == (20, len(x), 2)
    assert np.allclose(sp.mean(0), a, atol=1e-6)
    # deterministic: one sample, the network's own softmax
    m = skeptic.Model.load(dropout_model)
    d = skeptic.Posterior.from_model(m, "deterministic")
    assert d.n_samples(20) == 1
    assert np.allclose(d.predict(x)[0], m.predict_proba(x), atol=1e-6)
    # saved and read back
    path = workdir / "mc.safetensors"
    p.save(path)
    assert skeptic.Posterior.load(path).method == "mc-dropout"
    with pytest.raises(skeptic.Error, match="needs dropout"):
        skeptic.Posterior.from_model(skeptic.Model.load(dropout_model.parent / "moons.safetensors"), "mc-dropout")
    # uncertainty separates the misclassified rows better than chance
    det = skeptic.metrics.misclassification(a, y, mi_a, kind="entropy")
    assert 0.5 < det["auroc"] <= 1


def test_metrics_against_numpy():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(500, 4)) * 2
    p = (np.exp(z) / np.exp(z).sum(1, keepdims=True)).astype(np.float32)
    y = rng.integers(0, 4, 500).astype(np.int32)
    conf, pred = p.max(1), p.argmax(1)
    bins = np.clip(np.ceil(conf * 15).astype(int) - 1, 0, 14)
    ece = sum(abs((pred[bins == b] == y[bins == b]).mean() - conf[bins == b].mean()) * np.mean(bins == b)
              for b in range(15) if np.any(bins == b))
    cal = skeptic.metrics.calibration(p, y)
    assert cal["ece"] == pytest.approx(ece, rel=1e-5)
    assert cal["count"].sum() == 500
    assert skeptic.metrics.nll(p, y) == pytest.approx(-np.mean(np.log(p[np.arange(500), y])), rel=1e-6)
    assert skeptic.metrics.brier(p, y) == pytest.approx(np.mean(((p - np.eye(4)[y]) ** 2).sum(1)), rel=1e-5)
    pos, neg = rng.normal(1, 1, 300), rng.normal(0, 1, 200)
    mw = (np.mean(pos[:, None] > neg[None, :]) + 0.5 * np.mean(pos[:, None] == neg[None, :]))
    assert skeptic.metrics.detection(pos, neg)["auroc"] == pytest.approx(mw, rel=1e-6)
    assert np.allclose(skeptic.metrics.entropy(p), entropy(p.astype(np.float64)), atol=1e-5)
    assert np.allclose(skeptic.metrics.uncertainty(p, kind="maxprob"), 1 - conf, atol=1e-6)
