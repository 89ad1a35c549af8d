#!/bin/sh
# Run a Python parity test with Debian's python3 (which has python3-torch).
# Exit 77 (ctest: skipped, never "passed") when torch is not installed.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
if ! "$PY" -c "import torch, numpy" 2>/dev/null; then
  echo "SKIPPED: python3-torch is not installed (scripts/install-deps installs it)"
  exit 77
fi
# torch under ASan-instrumented binaries is fine: the binaries run as subprocesses.
exec "$PY" "$@"
