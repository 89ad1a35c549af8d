"""Certification from Python: the command line's figures, and bounds that
hold on sampled points."""
import numpy as np
import pytest

import skeptic
from conftest import BOX, cli


@pytest.mark.parametrize("method", ["ibp", "crown"])
def test_certify_matches_command_line(moons_model, moons_test, method):
    x, y = moons_test
    m = skeptic.Model.load(moons_model)
    c = skeptic.certify(m, x, y, 0.05, method, clip=BOX)
    ref = cli("certify", "--model", moons_model, "--data", "moons", "--eps", 0.05, "--method", method,
              "--clip-min", BOX[0], "--clip-max", BOX[1], "--threads", 1, "--json", json_out=True)
    assert c.n_certified == ref["n_certified"]
    assert c.certified_acc == pytest.approx(ref["certified_accuracy"], abs=1e-12)
    assert c.method == method and c.n == len(x)
    assert 0 < c.certified_acc <= c.clean_acc
    assert c.n_certified == int(c.certified.sum())
    # a certified point is correctly classified, and PGD cannot break it
    assert np.all(m.predict(x)[c.certified] == y[c.certified])
    r = skeptic.attack(m, x, y, "pgd", eps=0.05, steps=20, clip=BOX, restarts=2)
    assert np.all(r.robust[c.certified])


def test_bounds_hold_and_crown_is_tighter(moons_model, moons_test):
    x, _ = moons_test
    x = x[:100]
    m = skeptic.Model.load(moons_model)
    lo, hi = x - 0.1, x + 0.1
    zl_i, zh_i = skeptic.certify_bounds(m, lo, hi, "ibp")
    zl_c, zh_c = skeptic.certify_bounds(m, lo, hi, "crown")
    assert np.all(zl_c >= zl_i - 1e-5) and np.all(zh_c <= zh_i + 1e-5)
    assert np.mean(zh_c - zl_c) < np.mean(zh_i - zl_i)
    rng = np.random.default_rng(1)
    for _ in range(20):
        z = m.logits(rng.uniform(lo, hi).astype(np.float32))
        assert np.all(z >= zl_c - 1e-4) and np.all(z <= zh_c + 1e-4)
    mlo = skeptic.certify_margins(m, x, m.predict(x), 0.1, "ibp", clip=None)
    assert np.all(mlo[np.arange(100), m.predict(x)] == 0)


def test_lipschitz(moons_model, moons_test):
    x, y = moons_test
    m = skeptic.Model.load(moons_model)
    c = skeptic.certify(m, x, y, 0.01, "lipschitz")
    assert c.lipschitz_proved and c.lipschitz_global > 0
    # certified at eps exactly where the certified L-inf radius exceeds eps
    correct = m.predict(x) == y
    assert np.all(c.rinf[c.certified] > 0.01 * (1 - 1e-4))
    assert np.all(c.rinf[~c.certified & correct] <= 0.01 * (1 + 1e-4))
    assert np.allclose(c.r2, c.rinf * np.sqrt(2), rtol=1e-5)
    assert 0 < c.certified_acc < c.clean_acc
    b = skeptic.lipschitz_bound(m)
    assert b["global"] == pytest.approx(c.lipschitz_global, rel=1e-6) and len(b["norms"]) == 5
