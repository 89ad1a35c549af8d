"""PyTorch parity of `skeptic curvature`: lambda_max (and lambda_2, lambda_3)
and the trace of the Hessian of the mean cross-entropy of a small trained
tanh MLP (mlp:5-16-16-3:tanh, 419 parameters), against torch in float64 on
the same safetensors file and the same rows:

  - torch's dense Hessian (torch.autograd.functional.hessian) and its
    eigenvalues (torch.linalg.eigvalsh): skeptic's dense Hessian (--dense)
    to 1e-4 relative to lambda_max, its Lanczos eigenvalues to 1e-3, and its
    Hutchinson trace within 3 of its own standard errors of the exact trace;
  - Lanczos with full reorthogonalisation on torch's double-backward
    Hessian-vector product (the way PyHessian computes lambda_max): the same
    lambda_max to 1e-3.

The data are 240 Gaussian-blob rows written as .npy (--split all, so both
sides see every row in file order); the model is trained by torch and saved
without a spec (--arch gives it), as a PyTorch user's file would be.
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

BUILD = os.environ.get("SKEPTIC_BUILD_DIR", "build")
SKEPTIC = os.path.join(BUILD, "skeptic")
SPEC = "mlp:5-16-16-3:tanh"
failures = []


def check(ok, msg):
    print(("  ok   " if ok else "  FAIL ") + msg)
    if not ok:
        failures.append(msg)


def write_safetensors(path, state):
    header, blobs, off = {}, [], 0
    for name, t in state.items():
        a = np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32))
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def data():
    rng = np.random.default_rng(3)
    n, k, d = 240, 3, 5
    y = rng.integers(0, k, n)
    centres = rng.normal(0, 1.5, (k, d))
    x = (centres[y] + rng.normal(0, 1.0, (n, d))).astype(np.float32)
    return x, y.astype(np.int64)


def net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 16), torch.nn.Tanh(),
                               torch.nn.Linear(16, 3))


def lanczos_torch(hvp, n, steps, seed):
    """Lanczos with full reorthogonalisation on a float64 operator: the top Ritz value."""
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, generator=g, dtype=torch.float64)
    Q = [q / q.norm()]
    alpha, beta = [], []
    for j in range(steps):
        w = hvp(Q[j])
        alpha.append(float(w @ Q[j]))
        for _ in range(2):
            for qi in Q:
                w = w - (w @ qi) * qi
        b = float(w.norm())
        if j + 1 == steps or b < 1e-10:
            break
        beta.append(b)
        Q.append(w / b)
    m = len(alpha)
    T = torch.diag(torch.tensor(alpha, dtype=torch.float64))
    for i in range(m - 1):
        T[i, i + 1] = T[i + 1, i] = beta[i]
    return float(torch.linalg.eigvalsh(T)[-1])


def main():
    if not os.path.exists(SKEPTIC):
        raise SystemExit(f"{SKEPTIC} not built")
    torch.set_num_threads(1)
    x, y = data()
    model = net()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(300):
        opt.zero_grad()
        F.cross_entropy(model(xt), yt).backward()
        opt.step()
    with tempfile.TemporaryDirectory() as tmp:
        mpath, xpath, ypath = (os.path.join(tmp, f) for f in ("m.safetensors", "x.npy", "y.npy"))
        write_safetensors(mpath, model.state_dict())
        np.save(xpath, x)
        np.save(ypath, y)
        args = [SKEPTIC, "curvature", "--model", mpath, "--arch", SPEC, "--data", xpath, "--labels", ypath,
                "--split", "all", "--n", "0", "--top-k", "3", "--lanczos-steps", "120", "--probes", "300", "--dense",
                "--no-sharpness", "--spread-sets", "0", "--json", "--seed", "3", "--threads", "1"]
        p = subprocess.run(args, capture_output=True, text=True, env=dict(os.environ, SKEPTIC_NO_PROGRESS="1"))
        if p.returncode != 0:
            print(p.stdout, p.stderr)
            raise SystemExit("skeptic curvature failed")
        r = json.loads(p.stdout)
        # the model as skeptic read it: reload the file's float32 weights into float64
        m64 = net().double()
        with torch.no_grad():
            for (name, t) in m64.state_dict().items():
                t.copy_(model.state_dict()[name].double())
    check(r["n_train"] == len(y) and r["params"] == 419, f"rows {r['n_train']}, parameters {r['params']}")

    params = [p_ for p_ in m64.parameters()]
    shapes = [p_.shape for p_ in params]
    sizes = [p_.numel() for p_ in params]
    x64, y64 = torch.from_numpy(x).double(), torch.from_numpy(y)

    def loss_flat(theta):
        ts, off = [], 0
        for s, n in zip(shapes, sizes):
            ts.append(theta[off:off + n].view(s))
            off += n
        h = torch.tanh(F.linear(x64, ts[0], ts[1]))
        h = torch.tanh(F.linear(h, ts[2], ts[3]))
        return F.cross_entropy(F.linear(h, ts[4], ts[5]), y64)

    theta = torch.cat([p_.detach().reshape(-1) for p_ in params])
    H = torch.autograd.functional.hessian(loss_flat, theta)
    w = torch.linalg.eigvalsh(H)
    top = [float(v) for v in reversed(w[-3:])]
    tr = float(torch.trace(H))
    lam_max = top[0]
    print(f"  torch dense: lambda 1..3 {top}, trace {tr:.6g}, lambda_min {float(w[0]):.4g}")
    print(f"  skeptic: lanczos {r['eigenvalues']}, dense {r['dense_eigenvalues']}, trace {r['trace']:.6g} +- "
          f"{r['trace_se']:.3g}, dense trace {r['dense_trace']:.6g}")

    for i in range(3):
        e = abs(r["dense_eigenvalues"][i] - top[i]) / abs(lam_max)
        check(e <= 1e-4, f"dense lambda_{i + 1}: {r['dense_eigenvalues'][i]:.8g} vs torch {top[i]:.8g} ({e:.1e})")
        e = abs(r["eigenvalues"][i] - top[i]) / abs(top[i])
        check(e <= 1e-3, f"Lanczos lambda_{i + 1}: {r['eigenvalues'][i]:.8g} vs torch {top[i]:.8g} ({e:.1e})")
    e = abs(r["dense_trace"] - tr) / float(w.abs().sum())
    check(e <= 1e-4, f"dense trace {r['dense_trace']:.8g} vs torch {tr:.8g} ({e:.1e})")
    check(abs(r["trace"] - tr) <= 3 * r["trace_se"],
          f"Hutchinson {r['trace']:.6g} +- {r['trace_se']:.3g} within 3 se of torch's {tr:.6g}")
    check(r["trace_se"] < 0.2 * abs(tr), f"the standard error {r['trace_se']:.3g} is informative")

    def hvp(v):
        th = theta.clone().requires_grad_(True)
        g = torch.autograd.grad(loss_flat(th), th, create_graph=True)[0]
        return torch.autograd.grad(g @ v, th)[0]

    lt = lanczos_torch(hvp, theta.numel(), 60, 1)
    e = abs(r["lambda_max"] - lt) / abs(lt)
    check(e <= 1e-3, f"lambda_max: skeptic {r['lambda_max']:.8g}, torch double-backward Lanczos {lt:.8g} ({e:.1e})")
    check(abs(lt - lam_max) <= 1e-6 * abs(lam_max), "torch's Lanczos agrees with its dense Hessian")

    if failures:
        print(f"test_curvature_torch: {len(failures)} failed")
        sys.exit(1)
    print("test_curvature_torch: all passed")


if __name__ == "__main__":
    main()
