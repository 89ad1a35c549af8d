"""Shared fixtures: the build's command line, and small models it trained.

Run from ctest (test `python_package`) with SKEPTIC_LIBRARY set to the build's
libskeptic.so and SKEPTIC_BUILD_DIR to the build directory; by hand:

    SKEPTIC_BUILD_DIR=build SKEPTIC_LIBRARY=build/libskeptic.so PYTHONPATH=python \\
        /usr/bin/python3 -m pytest -q python/tests
"""
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("SKEPTIC_SOURCE_DIR", os.path.dirname(os.path.dirname(HERE)))
BUILD = os.environ.get("SKEPTIC_BUILD_DIR", os.path.join(SOURCE, "build"))
sys.path.insert(0, os.path.dirname(HERE))
if "SKEPTIC_LIBRARY" not in os.environ:
    os.environ["SKEPTIC_LIBRARY"] = os.path.join(BUILD, "libskeptic.so")

import skeptic  # noqa: E402

# Bitwise comparisons with the command line need the same thread count.
skeptic.set_threads(1)

# The moons test split lies in about [-1.2, 2.2] x [-0.7, 1.2]: one box for all.
BOX = (-2.0, 3.0)
MLP = "mlp:2-16-16-2:relu"


def cli_env():
    env = dict(os.environ)
    # The command line is its own program: it must not inherit a preloaded runtime.
    env.pop("LD_PRELOAD", None)
    # Bitwise comparisons need the same OpenBLAS kernels on both sides: the
    # program would otherwise drop a preset OPENBLAS_CORETYPE that this process keeps.
    env["SKEPTIC_KEEP_CORETYPE"] = "1"
    return env


def cli(*args, json_out=False):
    """Run the build's skeptic program; its stdout (parsed when json_out)."""
    exe = os.path.join(BUILD, "skeptic")
    p = subprocess.run([exe, *map(str, args)], capture_output=True, text=True, env=cli_env())
    if p.returncode != 0:
        raise AssertionError(f"skeptic {' '.join(map(str, args))} exited with {p.returncode}:\n{p.stderr}")
    return json.loads(p.stdout) if json_out else p.stdout


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("skeptic")


@pytest.fixture(scope="session")
def moons_model(workdir):
    """An MLP trained on moons by the command line (adam, 4 epochs, seed 3)."""
    path = workdir / "moons.safetensors"
    cli("train", "--data", "moons", "--arch", MLP, "--epochs", 4, "--lr", 0.01, "--seed", 3, "--threads", 1,
        "--out", path, "--quiet")
    return path


@pytest.fixture(scope="session")
def dropout_model(workdir):
    """The same with dropout 0.2 after each hidden activation."""
    path = workdir / "moons-dropout.safetensors"
    cli("train", "--data", "moons", "--arch", MLP + ":dropout0.2", "--epochs", 4, "--lr", 0.01, "--seed", 4,
        "--threads", 1, "--out", path, "--quiet")
    return path


@pytest.fixture(scope="session")
def moons_test():
    return skeptic.load_data("moons", "test")
