"""Model files travel between skeptic and PyTorch.

1. A model trained by `skeptic train` (a CNN with batch norm, and an MLP) is
   loaded into the equivalent torch nn.Sequential straight from its
   safetensors file (parsed here with struct + json + numpy: Debian has no
   safetensors package) and gives the same log-probabilities as
   `skeptic eval --logits` and `--predictions` to 1e-4 relative (the raw
   logits and their log-softmax).
2. An nn.Sequential trained in PyTorch and written to safetensors (with
   torch's int64 num_batches_tracked buffers) is evaluated by `skeptic eval
   --arch SPEC` to the same accuracy as torch computes, with the same
   log-probabilities.

The data are a Fashion-MNIST subset when Debian's dataset-fashion-mnist is
installed, else a synthetic image set, handed over as .npy files.
Exit 77 (skipped) when torch is missing; run by tests/run_py_test.sh.
"""
import gzip
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn

BUILD = os.environ.get("SKEPTIC_BUILD_DIR", "build")
SKEPTIC = os.path.join(BUILD, "skeptic")
failures = 0
passes = 0


def check(cond, msg):
    global failures, passes
    if cond:
        passes += 1
    else:
        failures += 1
        print("FAIL:", msg)


def run(*args):
    env = dict(os.environ, SKEPTIC_NO_PROGRESS="1")
    p = subprocess.run([SKEPTIC, *args], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        print("command failed:", " ".join(args), "\n", p.stderr)
    return p


def write_npy(path, a):
    np.save(path, np.ascontiguousarray(a))


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    dt = {"F32": np.float32, "F64": np.float64, "I64": np.int64}
    tensors = {}
    for name, e in header.items():
        b, en = e["data_offsets"]
        tensors[name] = np.frombuffer(data[b:en], dtype=dt[e["dtype"]]).reshape(e["shape"]).copy()
    return tensors, meta


def write_safetensors(path, state):
    header, blobs, off = {}, [], 0
    for name, t in state.items():
        a = t.detach().cpu().numpy()
        dtype = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}[a.dtype]
        b = np.ascontiguousarray(a).tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def load_images():
    d = "/usr/share/datasets/fashion-mnist"
    if os.path.exists(os.path.join(d, "train-images-idx3-ubyte.gz")):
        with gzip.open(os.path.join(d, "train-images-idx3-ubyte.gz")) as f:
            x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)[:4000]
        with gzip.open(os.path.join(d, "train-labels-idx1-ubyte.gz")) as f:
            y = np.frombuffer(f.read(), np.uint8, offset=8)[:4000]
        return (x / 255.0).astype(np.float32), y.astype(np.int64), "fashion-mnist subset"
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 4000)
    protos = rng.random((10, 1, 28, 28)).astype(np.float32)
    x = np.clip(protos[y] + 0.3 * rng.standard_normal((4000, 1, 28, 28)), 0, 1).astype(np.float32)
    return x, y.astype(np.int64), "synthetic images"


# the torch twin of a skeptic spec (layer i = element i of nn.Sequential)
CNN_SPEC = "cnn:1x28x28-conv8k3p1-bn-relu-maxpool2-conv16k3s2p1-relu-flatten-dense32-relu-dense10"
MLP_SPEC = "mlp:784-64-32-10:tanh"


def torch_cnn():
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(16 * 7 * 7, 32), nn.ReLU(), nn.Linear(32, 10))


def torch_mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.Tanh(), nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 10))


def rel_err(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def main():
    if not os.access(SKEPTIC, os.X_OK):
        print("skeptic binary not found at", SKEPTIC)
        return 1
    torch.manual_seed(0)
    torch.set_num_threads(1)
    x, y, what = load_images()
    print("data:", what)
    tmp = tempfile.mkdtemp(prefix="skeptic-interop-")
    xtr, ytr, xte, yte = x[:3000], y[:3000], x[3000:], y[3000:]
    write_npy(os.path.join(tmp, "train_x.npy"), xtr)
    write_npy(os.path.join(tmp, "train_y.npy"), ytr)
    write_npy(os.path.join(tmp, "test_x.npy"), xte)
    write_npy(os.path.join(tmp, "test_y.npy"), yte)

    # ---- 1. skeptic -> torch
    for spec, make, flat in ((CNN_SPEC, torch_cnn, False), (MLP_SPEC, torch_mlp, True)):
        model_path = os.path.join(tmp, "sk.safetensors")
        p = run("train", "--data", os.path.join(tmp, "train_x.npy"), "--split", "all", "--arch", spec,
                "--epochs", "2", "--batch", "64", "--optimizer", "adam", "--seed", "3", "--threads", "1",
                "--out", model_path, "--quiet")
        check(p.returncode == 0, f"skeptic train {spec}")
        pred = os.path.join(tmp, "pred.npy")
        logits = os.path.join(tmp, "logits.npy")
        p = run("eval", "--model", model_path, "--data", os.path.join(tmp, "test_x.npy"), "--split", "all",
                "--predictions", pred, "--logits", logits, "--json")
        check(p.returncode == 0, "skeptic eval --predictions")
        sk_lp = np.load(pred)
        sk_acc = json.loads(p.stdout)["accuracy"]
        tensors, meta = read_safetensors(model_path)
        check(meta.get("skeptic.spec") == spec, f"spec in __metadata__: {meta.get('skeptic.spec')}")
        net = make()
        sd = net.state_dict()
        # the mlp's torch twin has a Flatten first: shift indices by one
        shift = 1 if flat else 0
        mapped = {}
        for k, v in tensors.items():
            i, rest = k.split(".", 1)
            mapped[f"{int(i) + shift}.{rest}"] = torch.from_numpy(v)
        missing = [k for k in sd if k not in mapped and not k.endswith("num_batches_tracked")]
        check(not missing, f"every torch tensor is in the skeptic file (missing {missing})")
        for k in mapped:
            check(k in sd and tuple(sd[k].shape) == tuple(mapped[k].shape), f"tensor {k} has torch's layout")
        net.load_state_dict(mapped, strict=False)
        net.eval()
        with torch.no_grad():
            t_z = net(torch.from_numpy(xte))
            t_lp = torch.log_softmax(t_z, dim=1).numpy()
        ez = rel_err(np.load(logits), t_z.numpy())
        print(f"skeptic -> torch {spec}: logit relative error {ez:.2e}")
        check(ez < 1e-4, f"same logits to 1e-4 (got {ez:.2e})")
        e = rel_err(sk_lp, t_lp)
        print(f"skeptic -> torch {spec}: log-prob relative error {e:.2e}, accuracy {sk_acc:.4f}")
        check(sk_lp.shape == t_lp.shape and e < 1e-4, f"same log-probabilities to 1e-4 (got {e:.2e})")
        t_acc = float((t_lp.argmax(1) == yte).mean())
        check(abs(t_acc - sk_acc) < 1e-12, f"same accuracy {t_acc} vs {sk_acc}")

    # ---- 2. torch -> skeptic
    net = torch_cnn()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    xt, yt = torch.from_numpy(xtr), torch.from_numpy(ytr)
    net.train()
    for epoch in range(2):
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(net(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        t_z = net(torch.from_numpy(xte))
        t_lp = torch.log_softmax(t_z, dim=1).numpy()
    t_acc = float((t_lp.argmax(1) == yte).mean())
    tp = os.path.join(tmp, "torch.safetensors")
    write_safetensors(tp, net.state_dict())
    pred = os.path.join(tmp, "pred2.npy")
    logits2 = os.path.join(tmp, "logits2.npy")
    p = run("eval", "--model", tp, "--arch", CNN_SPEC, "--data", os.path.join(tmp, "test_x.npy"), "--split", "all",
            "--predictions", pred, "--logits", logits2, "--json")
    check(p.returncode == 0, "skeptic eval of a torch-trained file")
    if p.returncode == 0:
        r = json.loads(p.stdout)
        sk_lp = np.load(pred)
        e = rel_err(sk_lp, t_lp)
        print(f"torch -> skeptic: torch accuracy {t_acc:.4f}, skeptic accuracy {r['accuracy']:.4f}, "
              f"log-prob relative error {e:.2e}")
        check(abs(r["accuracy"] - t_acc) < 1e-12, f"skeptic eval accuracy {r['accuracy']} equals torch's {t_acc}")
        check(e < 1e-4, f"log-probabilities agree to 1e-4 (got {e:.2e})")
        ez = rel_err(np.load(logits2), t_z.numpy())
        print(f"torch -> skeptic: logit relative error {ez:.2e}")
        check(ez < 1e-4, f"logits agree to 1e-4 (got {ez:.2e})")
        check(t_acc > 0.5, f"the torch model learned something ({t_acc})")
    # without --arch the file names no architecture: a clear runtime error
    p = run("eval", "--model", tp, "--data", os.path.join(tmp, "test_x.npy"), "--split", "all")
    check(p.returncode == 1 and "--arch" in p.stderr, "torch file without --arch asks for one")
    # a wrong architecture is refused naming the tensor
    p = run("eval", "--model", tp, "--arch", CNN_SPEC.replace("dense32", "dense33"), "--data",
            os.path.join(tmp, "test_x.npy"), "--split", "all")
    check(p.returncode == 1 and "7.weight" in p.stderr, "wrong --arch refused naming the tensor")

    print(f"test_torch_interop: {passes} passed, {failures} failed")
    if failures:
        print("files kept in", tmp)
        return 1
    shutil.rmtree(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
