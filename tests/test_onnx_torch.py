"""ONNX parity with PyTorch: networks exported by torch.onnx.export, read by
skeptic, give the same logits (max|a - b| <= 1e-5 * max|b|) and the same input
gradients of the summed cross-entropy (1e-4), both in float32; skeptic's own
export of what it read passes onnx.checker (full check, with shape inference)
and reads back to the same logits and gradients bit for bit; so does every
layer kind of skeptic's own (three models trained briefly by skeptic).

Models (eval mode, random batch-norm statistics):

  mlp   (x - mu) / sd per feature, Linear, ReLU, BatchNorm1d, Linear, GELU (Erf
        pattern), Dropout, Linear, LogSoftmax (removed by the reader: said in its
        notes, and the logits compared are torch's before it)
  cnn   (x - mu) / sd per channel, Conv 3x3 pad 1, ReLU, MaxPool 2, BatchNorm2d,
        Conv 3x3 stride 2 pad 1, Tanh, AvgPool 2, Flatten, Linear, LeakyReLU,
        Linear

The helper build/onnx_dump loads a model file (sk_model_load) and writes the
logits and the input gradients of a batch. The comparator is shown to fail on
a logit moved by 2e-5 of the largest.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

try:
    import onnx
except ImportError:
    sys.exit("FAIL: python3-onnx is not installed (scripts/install-deps installs it); onnx.checker is part of this test")

BUILD = os.environ.get("SKEPTIC_BUILD_DIR", "build")
HELPER = os.path.join(BUILD, "onnx_dump")
SKEPTIC = os.path.join(BUILD, "skeptic")
failures = []
checks = 0


def rel_err(a, b):
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def check(case, what, ok, detail=""):
    global checks
    checks += 1
    print(f"{'ok  ' if ok else 'FAIL'} {case:4s} {what} {detail}")
    if not ok:
        failures.append(f"{case} {what} {detail}")


class Norm(nn.Module):
    def __init__(self, mu, sd):
        super().__init__()
        self.register_buffer("mu", mu)
        self.register_buffer("sd", sd)

    def forward(self, x):
        return (x - self.mu) / self.sd


def randomize_bn(model, g):
    for mod in model.modules():
        if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            c = mod.num_features
            mod.weight.data = 0.5 + torch.rand(c, generator=g)
            mod.bias.data = 0.3 * torch.randn(c, generator=g)
            mod.running_mean = 0.2 * torch.randn(c, generator=g)
            mod.running_var = 0.5 + torch.rand(c, generator=g)


def build(case, g):
    if case == "mlp":
        D = 20
        m = nn.Sequential(Norm(torch.rand(1, D, generator=g), 0.5 + torch.rand(1, D, generator=g)),
                          nn.Linear(D, 16), nn.ReLU(), nn.BatchNorm1d(16), nn.Linear(16, 12), nn.GELU(),
                          nn.Dropout(0.3), nn.Linear(12, 5), nn.LogSoftmax(dim=1))
        shape = (D,)
    else:
        C = 2
        m = nn.Sequential(Norm(torch.tensor([0.4, 0.6]).view(1, C, 1, 1), torch.tensor([0.25, 0.5]).view(1, C, 1, 1)),
                          nn.Conv2d(C, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.BatchNorm2d(4),
                          nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.Tanh(), nn.AvgPool2d(2), nn.Flatten(),
                          nn.Linear(6 * 2 * 2, 8), nn.LeakyReLU(0.1), nn.Linear(8, 5))
        shape = (C, 16, 16)
    randomize_bn(m, g)
    m.eval()
    return m, shape


def dump(model_path, x, y, out):
    os.makedirs(out, exist_ok=True)
    x.astype(np.float32).tofile(os.path.join(out, "x.bin"))
    y.astype(np.int32).tofile(os.path.join(out, "y.bin"))
    r = subprocess.run([HELPER, model_path, os.path.join(out, "x.bin"), str(len(y)), os.path.join(out, "y.bin"), out],
                       capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"FAIL: onnx_dump {model_path}: {r.stderr}")
    K = 5
    z = np.fromfile(os.path.join(out, "logits.bin"), dtype=np.float32).reshape(len(y), K)
    dx = np.fromfile(os.path.join(out, "dx.bin"), dtype=np.float32).reshape(x.shape)
    notes = open(os.path.join(out, "notes.txt")).read()
    spec = open(os.path.join(out, "spec.txt")).read()
    return z, dx, notes, spec


def run_case(case, tmp):
    g = torch.Generator().manual_seed(3 if case == "mlp" else 4)
    m, shape = build(case, g)
    N = 16
    x = torch.randn((N,) + shape, generator=g)
    if case == "cnn":
        x = torch.rand((N,) + shape, generator=g)
    y = torch.randint(0, 5, (N,), generator=g)
    path = os.path.join(tmp, f"{case}.onnx")
    torch.onnx.export(m, x[:1], path, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "N"}, "y": {0: "N"}}, opset_version=13)
    # torch's logits: before the LogSoftmax when there is one
    body = m[:-1] if isinstance(m[-1], nn.LogSoftmax) else m
    xt = x.clone().requires_grad_(True)
    logits = body(xt)
    F.cross_entropy(logits, y, reduction="sum").backward()
    zt, dxt = logits.detach().numpy(), xt.grad.numpy()

    z, dx, notes, spec = dump(path, x.numpy(), y.numpy(), os.path.join(tmp, case))
    print(f"     {case} read as {spec}")
    e = rel_err(z, zt)
    check(case, "logits (torch export -> skeptic)", e <= 1e-5, f"rel {e:.2e}")
    e = rel_err(dx, dxt)
    check(case, "input gradients", e <= 1e-4, f"rel {e:.2e}")
    if case == "mlp":
        check(case, "the LogSoftmax removal is in the notes", "LogSoftmax" in notes, repr(notes))
        check(case, "read as the expected layers", spec == "seq:20-dense16-relu-bn-dense12-gelu-dense5", spec)
    else:
        check(case, "read as the expected layers",
              spec == "seq:2x16x16-conv4k3s1p1-relu-maxpool2s2-bn-conv6k3s2p1-tanh-avgpool2s2-flatten-dense8-lrelu0.1-dense5",
              spec)

    # skeptic's own export of it: onnx.checker, then the same numbers bit for bit
    again = os.path.join(tmp, f"{case}-skeptic.onnx")
    r = subprocess.run([SKEPTIC, "export", "--model", path, "--format", "onnx", "--out", again], capture_output=True,
                       text=True)
    check(case, "skeptic export", r.returncode == 0, r.stderr.strip())
    try:
        onnx.checker.check_model(onnx.load(again), full_check=True)
        check(case, "onnx.checker accepts skeptic's export", True)
    except Exception as ex:  # noqa: BLE001 -- the checker's own exception types vary by version
        check(case, "onnx.checker accepts skeptic's export", False, str(ex))
    z2, dx2, _, spec2 = dump(again, x.numpy(), y.numpy(), os.path.join(tmp, case + "2"))
    check(case, "re-import: logits bit-identical", np.array_equal(z.view(np.uint32), z2.view(np.uint32)))
    check(case, "re-import: input gradients bit-identical", np.array_equal(dx.view(np.uint32), dx2.view(np.uint32)))
    check(case, "re-import: same layers", spec2 == spec, spec2)
    return zt


# every layer kind of skeptic, trained briefly by skeptic itself (with an input transform)
SPECS = ["cnn:2x8x8-conv3k3s1p1-bn-relu-maxpool2-conv4k3s2p1-tanh-avgpool2s1-flatten-dense6-sigmoid-dense5",
         "cnn:2x8x8-conv4k3p1-gelu-gap-softplus-bn-dense6-lrelu0.2-dropout0.1-dense5",
         "seq:128-dense16-gelu-dropout0.3-dense8-tanh-dense5"]


def skeptic_models(tmp):
    g = np.random.default_rng(5)
    x = g.random((40, 2, 8, 8), dtype=np.float32)
    y = g.integers(0, 5, 40)
    y[:5] = np.arange(5)
    np.save(os.path.join(tmp, "img.npy"), x)
    np.save(os.path.join(tmp, "img_labels.npy"), y.astype(np.int64))
    for k, spec in enumerate(SPECS):
        st, ox = os.path.join(tmp, f"s{k}.safetensors"), os.path.join(tmp, f"s{k}.onnx")
        r = subprocess.run([SKEPTIC, "train", "--data", os.path.join(tmp, "img.npy"), "--arch", spec, "--epochs", "1",
                            "--batch", "64", "--normalize", "standardize", "--out", st], capture_output=True, text=True,
                           env=dict(os.environ, SKEPTIC_NO_PROGRESS="1"))
        check("all", f"train {spec}", r.returncode == 0, r.stderr.strip()[-300:])
        r = subprocess.run([SKEPTIC, "export", "--model", st, "--format", "onnx", "--out", ox], capture_output=True,
                           text=True)
        check("all", "export", r.returncode == 0, r.stderr.strip())
        try:
            onnx.checker.check_model(onnx.load(ox), full_check=True)
            check("all", "onnx.checker", True)
        except Exception as ex:  # noqa: BLE001
            check("all", "onnx.checker", False, str(ex))
        xs = x[:6].reshape(6, -1)
        ys = y[:6]
        za, da, _, _ = dump(st, xs, ys, os.path.join(tmp, f"a{k}"))
        zb, db, notes, spec2 = dump(ox, xs, ys, os.path.join(tmp, f"b{k}"))
        check("all", "safetensors and ONNX: logits and input gradients bit-identical",
              np.array_equal(za.view(np.uint32), zb.view(np.uint32)) and np.array_equal(da.view(np.uint32), db.view(np.uint32)),
              f"rel {rel_err(zb, za):.2e}")
        check("all", "no import notes", notes == "", notes)


def tanh_gelu(tmp):
    """PyTorch's tanh-approximate GELU is found and replaced by the exact one, and said so."""
    g = torch.Generator().manual_seed(6)
    m = nn.Sequential(nn.Linear(6, 8), nn.GELU(approximate="tanh"), nn.Linear(8, 5)).eval()
    x = torch.randn(10, 6, generator=g)
    path = os.path.join(tmp, "tanh.onnx")
    torch.onnx.export(m, x[:1], path, input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "N"}},
                      opset_version=13)
    z, _, notes, spec = dump(path, x.numpy(), np.zeros(10, dtype=np.int32), os.path.join(tmp, "tanh"))
    exact = nn.Sequential(m[0], nn.GELU(), m[2])(x).detach().numpy()
    check("tanh", "read as dense-gelu-dense", spec == "seq:6-dense8-gelu-dense5", spec)
    check("tanh", "the replacement is in the notes", "tanh-approximate GELU" in notes, repr(notes))
    e = rel_err(z, exact)
    check("tanh", "logits equal the exact-GELU network's", e <= 1e-5, f"rel {e:.2e}")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        zt = None
        for case in ("mlp", "cnn"):
            zt = run_case(case, tmp)
        skeptic_models(tmp)
        tanh_gelu(tmp)
        # the comparator fails on a logit moved by 2e-5 of the largest
        moved = zt.copy()
        moved.flat[3] += 2e-5 * np.max(np.abs(zt))
        check("self", "the comparator rejects a moved logit", not rel_err(moved, zt) <= 1e-5)
    print(f"{checks - len(failures)} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
