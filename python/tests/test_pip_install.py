"""`pip install --no-build-isolation ./python` offline, into a fresh virtual
environment that sees Debian's numpy, then the installed package at work."""
import os
import shutil
import subprocess
import sys

from conftest import SOURCE

SANITIZED = os.environ.get("SKEPTIC_SANITIZED") == "1"


def run(cmd, env, cwd=None):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    assert p.returncode == 0, f"{' '.join(map(str, cmd))} exited with {p.returncode}:\n{p.stdout}\n{p.stderr}"
    return p.stdout


def test_pip_install_offline(tmp_path, moons_model):
    lib = os.path.realpath(os.environ["SKEPTIC_LIBRARY"])
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SKEPTIC_LIBRARY", "LD_PRELOAD")}
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_CACHE_DIR="1")
    # The package tree is copied: a build writes build/ and *.egg-info/ beside setup.py.
    src = tmp_path / "python"
    shutil.copytree(os.path.join(SOURCE, "python"), src, ignore=shutil.ignore_patterns("tests", "__pycache__",
                                                                                         "build", "*.egg-info"))
    venv = tmp_path / "venv"
    # --without-pip: Debian's own pip (python3-pip) runs inside it from the system site-packages
    run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)], env)
    py = str(venv / "bin" / "python")
    if not SANITIZED:
        env_install = dict(env, SKEPTIC_LIBRARY=lib)  # bundle this build's library into the package
    else:
        env_install = env  # a sanitizer build is refused for bundling: the package will use SKEPTIC_LIBRARY
    run([py, "-m", "pip", "install", "--no-build-isolation", "--no-deps", str(src)], env_install)
    check = ("import sys, skeptic, numpy as np; m = skeptic.Model.load(sys.argv[1]); "
             "x, y = skeptic.load_data('moons', 'test'); "
             "print(skeptic.__file__); print(skeptic.library_path); print(m.evaluate(x, y)[0])")
    env_run = dict(env)
    if SANITIZED:
        env_run.update(SKEPTIC_LIBRARY=lib, LD_PRELOAD=os.environ.get("LD_PRELOAD", ""))
    out = run([py, "-c", check, str(moons_model)], env_run, cwd=str(tmp_path)).splitlines()
    assert out[0].startswith(str(venv)), out  # the installed copy, not the source tree
    if not SANITIZED:
        assert out[1] == os.path.join(os.path.dirname(out[0]), "libskeptic.so")
    import skeptic
    x, y = skeptic.load_data("moons", "test")
    assert float(out[2]) == skeptic.Model.load(moons_model).evaluate(x, y)[0]


def test_bundling_a_sanitized_library_is_refused(tmp_path):
    # What setup.py looks for in a library built with -fsanitize=address.
    fake = tmp_path / "libskeptic.so"
    fake.write_bytes(b"\x7fELF" + bytes(60) + b"libasan.so.8\x00__asan_init\x00")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LD_PRELOAD")}
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", SKEPTIC_LIBRARY=str(fake))
    src = tmp_path / "python"
    shutil.copytree(os.path.join(SOURCE, "python"), src, ignore=shutil.ignore_patterns("tests", "__pycache__",
                                                                                         "build", "*.egg-info"))
    p = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-w",
                        str(tmp_path / "w"), str(src)], capture_output=True, text=True, env=env)
    assert p.returncode != 0 and "built with AddressSanitizer" in p.stdout + p.stderr
