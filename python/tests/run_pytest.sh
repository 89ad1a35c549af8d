#!/bin/sh
# ctest's python_package: pytest over python/tests with Debian's python3.
# Exits 77 (ctest: skipped, never "passed") when python3-pytest or
# python3-numpy is missing; scripts/install-deps installs both (not with
# SKEPTIC_NO_TORCH=1, which leaves out the Python packages).
PY=/usr/bin/python3
if ! "$PY" -c "import pytest, numpy" 2>/dev/null; then
  echo "SKIPPED: python3-pytest or python3-numpy is not installed (scripts/install-deps installs them)"
  exit 77
fi
exec "$PY" -m pytest -q -p no:cacheprovider "$(dirname "$0")"
