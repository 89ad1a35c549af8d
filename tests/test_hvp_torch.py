"""PyTorch parity of exact Hessian-vector products: skeptic's sk_model_hvp
(parameters) and sk_model_hvp_input (input rows) against torch's
double-backward HVP, in float64 on the torch side, to
max|a - b| <= 1e-4 * max|b| per vector.

The C helper build/parity_dump (mode hvp) writes the model to a safetensors
file, reads it back, and computes its HVPs along random directions for the
eval-mode mean cross-entropy; this script loads the same safetensors file into
the equivalent torch.nn.Sequential (layer i of the spec is element i) and
computes H v = d/dtheta <grad L, v> with torch.autograd.grad twice.
Models covered:

  mlp    mlp:784-512-512-10:relu (669k parameters)
  cnn    conv-relu-maxpool twice (the fused op), dense layers
  smooth conv + batchnorm2d + gelu + avgpool + tanh + dense + batchnorm1d +
         gelu + tanh (batch norm in eval mode, on randomised running statistics)

It also shows that it can fail: the comparator rejects an HVP with one
element moved by 2e-4 * max, and the HVP of another direction.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_torch_parity import HELPER, build_torch, load, rel_err  # noqa: E402

TOL = 1e-4
failures = []
checks = 0


def check(case, what, a, b):
    global checks
    checks += 1
    e = rel_err(a, b)
    ok = e <= TOL
    print(f"  {'ok  ' if ok else 'FAIL'} {case:<7} {what:<18} max|a-b|/max|b| = {e:.2e}")
    if not ok:
        failures.append(f"{case}: {what} rel err {e:.3e} > {TOL}")
    return e


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    header.pop("__metadata__", None)
    out = {}
    for name, e in header.items():
        if e["dtype"] != "F32":
            raise SystemExit(f"{path}: tensor {name} is {e['dtype']}, expected F32")
        b, en = e["data_offsets"]
        out[name] = np.frombuffer(data[b:en], dtype=np.float32).reshape(e["shape"]).copy()
    return out


def dump(spec, n, seed, out):
    r = subprocess.run([HELPER, spec, "eval", "0", str(n), str(seed), out, "hvp"], capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout, r.stderr)
        raise SystemExit(f"parity_dump hvp failed on {spec}")


def torch_hvp(m, st, v, vx):
    """H v over the parameters and H vx over the input, float64."""
    net = build_torch(m)
    sd = net.state_dict()
    mapped = {k: torch.from_numpy(a) for k, a in st.items()}
    missing = [k for k in sd if k not in mapped and not k.endswith("num_batches_tracked")]
    if missing:
        raise SystemExit(f"safetensors file lacks {missing}")
    net.load_state_dict(mapped, strict=False)
    net = net.double().eval()
    x = torch.from_numpy(m["x"].astype(np.float64))
    x = x.reshape(m["N"], m["C"], m["H"], m["W"]) if m["spatial"] else x.reshape(m["N"], m["D"])
    y = torch.from_numpy(m["y"].astype(np.int64))
    named = dict(net.named_parameters())
    # skeptic's flat layout: parameter tensors in tensors.txt order at their offsets
    layout = [(name, off, shape) for name, is_buf, off, shape in m["tensors"] if not is_buf]
    params = [named[name] for name, _, _ in layout]
    vs = [torch.from_numpy(v[off:off + int(np.prod(shape))].astype(np.float64)).reshape(shape)
          for _, off, shape in layout]
    loss = F.cross_entropy(net(x), y)
    g = torch.autograd.grad(loss, params, create_graph=True)
    hv_t = torch.autograd.grad(sum((gi * vi).sum() for gi, vi in zip(g, vs)), params)
    hv = np.zeros_like(v, dtype=np.float64)
    for (name, off, shape), h in zip(layout, hv_t):
        hv[off:off + int(np.prod(shape))] = h.detach().numpy().ravel()
    xr = x.clone().requires_grad_(True)
    gx = torch.autograd.grad(F.cross_entropy(net(xr), y), xr, create_graph=True)[0]
    vxt = torch.from_numpy(vx.astype(np.float64)).reshape(xr.shape)
    hvx = torch.autograd.grad((gx * vxt).sum(), xr)[0].detach().numpy().ravel()
    return hv, hvx


def compare(case, spec, n, seed):
    print(f"{case}: {spec} (eval, batch {n})")
    with tempfile.TemporaryDirectory() as d:
        dump(spec, n, seed, d)
        m = load(d)
        st = read_safetensors(os.path.join(d, "model.safetensors"))
        rd = lambda name: np.fromfile(os.path.join(d, name), dtype=np.float32)
        v, hv, vx, hvx = rd("v.bin"), rd("hv.bin"), rd("vx.bin"), rd("hvx.bin")
    t_hv, t_hvx = torch_hvp(m, st, v, vx)
    check(case, "H v (params)", hv, t_hv)
    check(case, "H v (input)", hvx, t_hvx)
    return hv, t_hv


def main():
    global checks
    if not os.access(HELPER, os.X_OK):
        print(f"FAIL: helper {HELPER} not built (cmake --build)")
        return 1
    torch.manual_seed(0)
    torch.set_num_threads(1)
    mlp = "mlp:784-512-512-10:relu"
    cnn = "cnn:1x16x16-conv8k3p1-relu-maxpool2-conv16k3p1-relu-maxpool2-flatten-dense32-relu-dense10"
    smooth = "seq:3x8x8-conv6k3p1-bn-gelu-avgpool2-conv8k3s2p1-tanh-flatten-dense16-bn-gelu-dense12-tanh-dense5"

    hv, t_hv = compare("mlp", mlp, 32, 31)
    compare("cnn", cnn, 8, 32)
    compare("smooth", smooth, 12, 33)

    # The test can fail: a small corruption and another direction's HVP are rejected.
    bad = hv.copy()
    i = int(np.argmax(np.abs(t_hv)))
    bad[i] += 2e-4 * np.max(np.abs(t_hv))
    checks += 1
    if rel_err(bad, t_hv) <= TOL:
        failures.append("self-check: an HVP corrupted by 2e-4*max passed the comparison")
    checks += 1
    other = np.roll(hv, 1)
    if rel_err(other, t_hv) <= TOL:
        failures.append("self-check: a shifted HVP passed the comparison")
    print(f"self-checks: corrupted HVP rejected ({rel_err(bad, t_hv):.2e}), shifted HVP rejected "
          f"({rel_err(other, t_hv):.2e})")

    print(f"{checks - len(failures)} passed, {len(failures)} failed")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
