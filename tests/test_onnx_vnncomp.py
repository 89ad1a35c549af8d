"""The VNN-COMP 2022 mnist_fc benchmark read by skeptic: for all 90 instances
(3 networks x 30 properties, instances.csv) the logits at the centre of the
property's input box agree with the benchmark folder's reference reader
(onnx_peek.py, a numpy forward pass over the protobuf decoded by hand):
max|skeptic - reference| <= 1e-5 * max(1, max|reference|) per instance.

The files are read from ../shared/benchmarks/vnncomp-mnistfc beside the
source tree (or $SKEPTIC_BENCHMARKS/vnncomp-mnistfc); they are public data of
the competition and are not part of the repository. When the folder is
missing the test fails and says where it looked.
"""
import csv
import importlib.util
import os
import subprocess
import sys
import tempfile

import numpy as np

BUILD = os.environ.get("SKEPTIC_BUILD_DIR", "build")
SRC = os.environ.get("SKEPTIC_SOURCE_DIR", ".")
BENCH = os.path.join(os.environ["SKEPTIC_BENCHMARKS"], "vnncomp-mnistfc") if "SKEPTIC_BENCHMARKS" in os.environ \
    else os.path.join(SRC, "..", "shared", "benchmarks", "vnncomp-mnistfc")
if "SKEPTIC_BENCHMARKS" not in os.environ and not os.path.isdir(BENCH):
    BENCH = "/work/shared/benchmarks/vnncomp-mnistfc"  # a clone outside the workspace


def main():
    if not os.path.isfile(os.path.join(BENCH, "instances.csv")):
        sys.exit(f"FAIL: the VNN-COMP mnist_fc files are missing: {os.path.abspath(BENCH)} "
                 "(set SKEPTIC_BENCHMARKS to the folder that holds vnncomp-mnistfc)")
    spec = importlib.util.spec_from_file_location("onnx_peek", os.path.join(BENCH, "onnx_peek.py"))
    peek = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peek)
    rows = list(csv.reader(open(os.path.join(BENCH, "instances.csv"))))
    by_net = {}
    for net, prop, _ in rows:
        by_net.setdefault(net, []).append(prop)
    checks, failures = 0, []
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for net, props in sorted(by_net.items()):
            _, nodes, inits, inputs, outputs = peek.load(os.path.join(BENCH, net))
            in_name, _, in_shape = inputs[0]
            shape = [d if isinstance(d, int) and d > 0 else 1 for d in in_shape]
            xs, refs = [], []
            for prop in props:
                lo, hi = peek.read_box(os.path.join(BENCH, prop))
                x = ((lo + hi) / 2).astype(np.float32)
                xs.append(x)
                refs.append(peek.run(nodes, inits, in_name, x.reshape(shape))[outputs[0][0]].ravel())
            x = np.stack(xs)
            x.tofile(os.path.join(tmp, "x.bin"))
            np.zeros(len(props), dtype=np.int32).tofile(os.path.join(tmp, "y.bin"))
            r = subprocess.run([os.path.join(BUILD, "onnx_dump"), os.path.join(BENCH, net), os.path.join(tmp, "x.bin"),
                                str(len(props)), os.path.join(tmp, "y.bin"), tmp], capture_output=True, text=True)
            if r.returncode:
                sys.exit(f"FAIL: {net}: {r.stderr}")
            z = np.fromfile(os.path.join(tmp, "logits.bin"), dtype=np.float32).reshape(len(props), -1)
            for k, prop in enumerate(props):
                ref = refs[k].astype(np.float64)
                d = float(np.max(np.abs(z[k] - ref)))
                tol = 1e-5 * max(1.0, float(np.max(np.abs(ref))))
                worst = max(worst, d / tol)
                checks += 1
                if not d <= tol:
                    failures.append(f"{net} {prop}: max diff {d:.3g} > {tol:.3g}")
            print(f"{net}: {len(props)} instances, read as {open(os.path.join(tmp, 'spec.txt')).read()}")
    for f in failures:
        print("FAIL", f)
    print(f"largest difference: {worst:.3f} of the tolerance")
    print(f"{checks - len(failures)} passed, {len(failures)} failed")
    if checks != 90:
        sys.exit(f"FAIL: {checks} instances, expected 90")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
