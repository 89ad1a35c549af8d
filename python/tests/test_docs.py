"""docs/python.md's worked example runs as written and prints what the page
shows: each ```python block after a `<!-- python example -->` marker is run in
order in one namespace (in a scratch folder), and its output must equal the
```text block that follows it. The page's figures were printed with OpenBLAS's
Haswell kernels (AVX2), so the example runs in a python of its own with
OPENBLAS_CORETYPE=Haswell, which OpenBLAS reads when it is loaded."""
import json
import os
import re
import subprocess
import sys

from conftest import SOURCE

MARK = "<!-- python example -->"

RUNNER = r"""
import contextlib, io, json, sys
blocks = json.load(sys.stdin)
ns = {"__name__": "docs_example"}
outs = []
for i, code in enumerate(blocks):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(code, f"docs/python.md example {i + 1}", "exec"), ns)
    outs.append(buf.getvalue().rstrip("\n"))
print(json.dumps(outs))
"""


def blocks():
    text = open(os.path.join(SOURCE, "docs", "python.md"), encoding="utf-8").read()
    out = []
    for part in text.split(MARK)[1:]:
        m = re.match(r"\s*```python\n(.*?)\n```\s*```text\n(.*?)\n```", part, re.S)
        assert m, "docs/python.md: a python example marker must be followed by a ```python and a ```text block"
        out.append((m.group(1), m.group(2)))
    return out


def test_worked_example(tmp_path):
    found = blocks()
    assert len(found) >= 5
    env = dict(os.environ, OPENBLAS_CORETYPE="Haswell", PYTHONPATH=os.path.join(SOURCE, "python"))
    p = subprocess.run([sys.executable, "-c", RUNNER], input=json.dumps([c for c, _ in found]), capture_output=True,
                       text=True, cwd=str(tmp_path), env=env)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout.splitlines()[-1])
    for i, ((_, expected), printed) in enumerate(zip(found, got)):
        assert printed == expected, f"docs/python.md example {i + 1} prints:\n{printed}\n\nthe page says:\n{expected}"
