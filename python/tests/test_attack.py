"""Attacks from Python are the library's: the same figures and adversarial
examples as the command line on the same file, rows, box and seed, for every
attack kind and the suite."""
import numpy as np
import pytest

import skeptic
from conftest import BOX, cli

BLOBS_BOX = (-10.0, 10.0)


@pytest.fixture(scope="session")
def blobs_model(workdir):
    """Four classes, so that the DLR losses and targeted attacks apply."""
    path = workdir / "blobs.safetensors"
    cli("train", "--data", "blobs:k=4", "--arch", "mlp:2-16-4:relu", "--epochs", 3, "--lr", 0.01, "--seed", 2,
        "--threads", 1, "--out", path, "--quiet")
    return path


def test_pgd_matches_command_line(moons_model, moons_test, workdir):
    x, y = moons_test
    m = skeptic.Model.load(moons_model)
    r = skeptic.attack(m, x, y, "pgd", eps=0.25, steps=20, clip=BOX, seed=7)
    adv = workdir / "adv.npy"
    ref = cli("attack", "--model", moons_model, "--data", "moons", "--attack", "pgd", "--eps", 0.25, "--steps", 20,
              "--clip-min", BOX[0], "--clip-max", BOX[1], "--seed", 7, "--threads", 1, "--save-adv", adv, "--json",
              json_out=True)
    assert r.clean_acc == ref["clean_accuracy"]
    assert r.robust_acc == ref["robust_accuracy"]
    assert 0 < r.robust_acc < r.clean_acc  # a figure that can tell a working attack from a broken one
    assert np.array_equal(r.x_adv, np.load(adv).reshape(r.x_adv.shape))
    # the result's arrays say the same as its figures
    assert r.x_adv.shape == x.shape and r.x_adv.dtype == np.float32
    assert r.robust_acc == np.mean(r.robust) and r.clean_acc == np.mean(r.clean_correct)
    assert np.array_equal(r.robust, m.predict(r.x_adv) == y)
    assert np.all(np.abs(r.x_adv - x) <= 0.25 + 1e-6)
    assert np.all((r.x_adv >= BOX[0]) & (r.x_adv <= BOX[1]))
    assert [s["name"] for s in r.stages] == ["pgd"]


KINDS = [  # attack, norm, eps, extra CLI flags and the same as keywords
    ("fgsm", "linf", 1.0, [], {}),
    ("pgd", "linf", 1.0, ["--steps", 10, "--restarts", 2], {"steps": 10, "restarts": 2}),
    ("mifgsm", "linf", 1.0, ["--steps", 10], {"steps": 10}),
    ("apgd-ce", "linf", 1.0, ["--steps", 20], {"steps": 20}),
    ("apgd-dlr", "linf", 1.0, ["--steps", 20], {"steps": 20}),
    ("apgd-t", "linf", 1.0, ["--steps", 10], {"steps": 10}),
    ("cw", "l2", 1.5, ["--steps", 20], {"steps": 20}),
    ("deepfool", "l2", 1.5, [], {}),
    ("fmn", "l2", 1.5, ["--steps", 20], {"steps": 20}),
    ("square", "linf", 1.0, ["--queries", 200], {"queries": 200}),
    ("sparse", "l0", 1, ["--queries", 200], {"queries": 200}),
    ("suite", "linf", 1.0, ["--steps", 10, "--queries", 100], {"steps": 10, "queries": 100}),
]


@pytest.mark.parametrize("kind,norm,eps,flags,kw", KINDS, ids=[k[0] for k in KINDS])
def test_every_attack_matches_command_line(blobs_model, kind, norm, eps, flags, kw):
    x, y = skeptic.load_data("blobs", "test", n=60, k=4)
    m = skeptic.Model.load(blobs_model)
    r = skeptic.attack(m, x, y, kind, norm=norm, eps=eps, clip=BLOBS_BOX, seed=3, **kw)
    ref = cli("attack", "--model", blobs_model, "--data", "blobs:n=60,k=4", "--attack", kind, "--norm", norm, "--eps", eps,
              "--clip-min", BLOBS_BOX[0], "--clip-max", BLOBS_BOX[1], "--seed", 3, "--threads", 1, *flags, "--json",
              json_out=True)
    assert r.attack == kind
    assert r.clean_acc == ref["clean_accuracy"]
    assert r.robust_acc == ref["robust_accuracy"]
    assert r.robust_acc <= r.clean_acc
    assert not np.any(r.robust & ~r.clean_correct)
    delta = (r.x_adv - x).reshape(len(x), -1)
    if norm == "linf":
        assert np.all(np.abs(delta).max(1) <= eps + 1e-5)
    elif norm == "l2":
        assert np.all(np.linalg.norm(delta, axis=1) <= eps * (1 + 1e-5))
    else:
        assert np.all((np.abs(delta) > 1e-7).sum(1) <= eps)
    if kind == "suite":
        assert [s["name"] for s in r.stages] == ["apgd-ce", "apgd-t", "fmn", "square"]
        assert r.robust_acc == r.stages[-1]["robust_acc"]


def test_attack_options_are_checked(moons_model, moons_test):
    x, y = moons_test
    m = skeptic.Model.load(moons_model)
    with pytest.raises(skeptic.InvalidArgument, match="attack 'pgdd'"):
        skeptic.attack(m, x, y, "pgdd")
    with pytest.raises(skeptic.InvalidArgument, match="stepz"):
        skeptic.attack(m, x, y, "pgd", stepz=3)
    with pytest.raises(skeptic.InvalidArgument, match="shape"):
        skeptic.attack(m, x, y[:-1], "pgd")


def test_attack_curve_never_rises(moons_model, moons_test):
    x, y = moons_test
    m = skeptic.Model.load(moons_model)
    eps = [0.0, 0.1, 0.25, 0.5]
    acc = skeptic.attack_curve(m, x[:200], y[:200], eps, "pgd", steps=10, clip=BOX)
    assert acc[0] == pytest.approx(m.evaluate(x[:200], y[:200])[0])
    assert np.all(np.diff(acc) <= 0) and acc[-1] < acc[0]
