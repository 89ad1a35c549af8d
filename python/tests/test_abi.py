"""The ctypes mirrors (skeptic/_structs.py) against the C headers: a C program
prints offsetof, the size of every mirrored field and sizeof of each struct."""
import ctypes as C
import os
import subprocess

import pytest

from skeptic import _structs as S
from conftest import SOURCE


def c_layout(tmp_path):
    lines = ["#include <stdio.h>", "#include <stddef.h>", "#include <skeptic/skeptic.h>", "int main(void) {"]
    for mirror, (name, _, _) in S.MIRRORS.items():
        lines.append(f'    printf("{name} %zu\\n", sizeof(struct {name}));')
        for field, _ in mirror._fields_:
            lines.append(f'    printf("{name}.{field} %zu %zu\\n", offsetof(struct {name}, {field}), '
                         f'sizeof(((struct {name} *)0)->{field}));')
    lines += ["    return 0;", "}"]
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines) + "\n")
    exe = tmp_path / "layout"
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    subprocess.run(["cc", "-std=c11", "-I", os.path.join(SOURCE, "include"), str(src), "-o", str(exe)], check=True,
                   env=env)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True, env=env).stdout
    return {k: tuple(map(int, v.split())) for k, v in (line.split(" ", 1) for line in out.splitlines())}


def test_struct_layouts(tmp_path):
    c = c_layout(tmp_path)
    wrong = []
    for mirror, (name, header, whole) in S.MIRRORS.items():
        for field, _ in mirror._fields_:
            desc = getattr(mirror, field)
            if (desc.offset, desc.size) != c[f"{name}.{field}"]:
                wrong.append(f"{header}: struct {name}.{field} at {c[f'{name}.{field}']} (offset, size), "
                             f"the mirror at {(desc.offset, desc.size)}")
        size = c[name][0]
        if whole and C.sizeof(mirror) != size:
            wrong.append(f"{header}: sizeof(struct {name}) {size}, the mirror {C.sizeof(mirror)} (a field was added)")
        if not whole and size > C.sizeof(mirror) + S.PAD:
            wrong.append(f"{header}: sizeof(struct {name}) {size} outgrew the mirror's padding")
    assert not wrong, "python/skeptic/_structs.py is out of date:\n" + "\n".join(wrong)
