"""Build of the skeptic Python package (configuration in pyproject.toml).

The package is pure Python over libskeptic.so. Where that library comes from:

* SKEPTIC_LIBRARY=/path/to/libskeptic.so at install time: a copy goes into the
  package (skeptic/libskeptic.so) and the package uses it; the wheel is then
  tagged for this platform. A library built with the sanitizers is refused
  (it cannot be loaded into an ordinary python).
* otherwise nothing is copied, and the package uses the installed library
  (`cmake --install`, then `ldconfig`), or SKEPTIC_LIBRARY at run time.
"""
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

LIB = os.environ.get("SKEPTIC_LIBRARY")


def _check_library(path):
    if not os.path.isfile(path):
        raise SystemExit(f"SKEPTIC_LIBRARY={path}: no such file")
    with open(path, "rb") as f:
        head = f.read(4)
        f.seek(0)
        data = f.read()
    if head != b"\x7fELF":
        raise SystemExit(f"SKEPTIC_LIBRARY={path} is not a shared library")
    if b"libasan.so" in data or b"__asan_init" in data:
        raise SystemExit(f"SKEPTIC_LIBRARY={path} was built with AddressSanitizer; build an ordinary "
                         "libskeptic (cmake -B build && cmake --build build) for the package")


class BuildWithLibrary(build_py):
    def run(self):
        super().run()
        if LIB:
            _check_library(LIB)
            dest = os.path.join(self.build_lib, "skeptic", "libskeptic.so")
            shutil.copyfile(os.path.realpath(LIB), dest)


class MaybeBinary(Distribution):
    def has_ext_modules(self):
        return bool(LIB)


setup(cmdclass={"build_py": BuildWithLibrary}, distclass=MaybeBinary)
