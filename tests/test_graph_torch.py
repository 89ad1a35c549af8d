"""Graph models (residual adds, projection shortcuts, batch norm) against PyTorch.

1. A ResNet-8-style network defined in torch (three stages of one basic block,
   16/32/64 channels, 1x1 projection shortcuts, global average pooling) with
   random batch-norm statistics, written as safetensors under skeptic's
   layer-index names with its graph spec: skeptic's logits within 1e-5
   (relative to the largest) and input gradients of the summed cross-entropy
   within 1e-4 of torch's, float32.
2. A graph spec trained briefly by skeptic, read back in torch from its
   safetensors into the same torch module: the same predictions, logits within
   1e-5.
3. skeptic's ONNX export of that model passes onnx.checker (full check) and a
   small torch evaluator of the exported graph (Conv, BatchNormalization, Relu,
   Add, Concat, GlobalAveragePool, Flatten, Dropout, Gemm, by the node list)
   gives the same predictions.

The helper build/onnx_dump loads a model file and writes logits and input
gradients. The comparator is shown to fail on a logit moved by 2e-5.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

try:
    import onnx
    from onnx import numpy_helper
except ImportError:
    sys.exit("FAIL: python3-onnx is not installed (scripts/install-deps installs it)")

BUILD = os.environ.get("SKEPTIC_BUILD_DIR", "build")
HELPER = os.path.join(BUILD, "onnx_dump")
SKEPTIC = os.path.join(BUILD, "skeptic")
failures = []


def rel_err(a, b):
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30)) if a.shape == b.shape else float("inf")


def check(what, ok, detail=""):
    print(f"{'ok  ' if ok else 'FAIL'} {what} {detail}")
    if not ok:
        failures.append(f"{what} {detail}")


def block(c_in, c_out, stride, first, label_in, label_mid):
    """The spec of a basic block reading the output labelled label_in."""
    s = f"-conv{c_out}k3s{stride}p1-bn-relu-conv{c_out}k3p1-bn"
    if c_in == c_out and stride == 1:
        return s + f"-add@{label_in}-relu"
    return s + f"={label_mid}-conv{c_out}k1s{stride}@{label_in}-bn-add@{label_mid}-relu"


def resnet_spec(C, H, widths, K, dropout=None):
    spec = f"seq:{C}x{H}x{H}-conv{widths[0]}k3p1-bn-relu=s0"
    c = widths[0]
    for i, w in enumerate(widths):
        spec += block(c, w, 1 if i == 0 else 2, i == 0, f"s{i}", f"m{i}") + f"=s{i + 1}"
        c = w
    # the last label is read by nothing: drop it
    spec = spec[: spec.rindex("=")] + "-gap"
    if dropout:
        spec += f"-dropout{dropout}"
    return spec + f"-dense{K}"


class Block(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.c1 = nn.Conv2d(c_in, c_out, 3, stride, 1)
        self.b1 = nn.BatchNorm2d(c_out)
        self.c2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.b2 = nn.BatchNorm2d(c_out)
        self.proj = None
        if c_in != c_out or stride != 1:
            self.proj = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride), nn.BatchNorm2d(c_out))

    def forward(self, x):
        h = self.b2(self.c2(F.relu(self.b1(self.c1(x)))))
        return F.relu((self.proj(x) if self.proj is not None else x) + h)


class ResNet(nn.Module):
    def __init__(self, C, widths, K, dropout=0.0):
        super().__init__()
        self.stem = nn.Conv2d(C, widths[0], 3, 1, 1)
        self.bn = nn.BatchNorm2d(widths[0])
        blocks, c = [], widths[0]
        for i, w in enumerate(widths):
            blocks.append(Block(c, w, 1 if i == 0 else 2))
            c = w
        self.blocks = nn.ModuleList(blocks)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(c, K)

    def forward(self, x):
        h = F.relu(self.bn(self.stem(x)))
        for b in self.blocks:
            h = b(h)
        return self.fc(self.drop(h.mean(dim=(2, 3))))

    def skeptic_layers(self):
        """(module, index) in skeptic's layer order for the spec of resnet_spec."""
        out, i = [(self.stem, 0), (self.bn, 1)], 3
        for b in self.blocks:
            out += [(b.c1, i), (b.b1, i + 1), (b.c2, i + 3), (b.b2, i + 4)]
            if b.proj is None:
                i += 7  # conv bn relu conv bn add relu
            else:
                out += [(b.proj[0], i + 5), (b.proj[1], i + 6)]
                i += 9  # ... conv bn (shortcut) add relu
        i += 1 if self.drop.p == 0 else 2  # gap [dropout]
        out.append((self.fc, i))
        return out


def tensors_of(model):
    t = {}
    for mod, i in model.skeptic_layers():
        t[f"{i}.weight"] = mod.weight.detach()
        t[f"{i}.bias"] = mod.bias.detach()
        if isinstance(mod, nn.BatchNorm2d):
            t[f"{i}.running_mean"] = mod.running_mean.detach()
            t[f"{i}.running_var"] = mod.running_var.detach()
    return t


def write_safetensors(path, tensors, meta):
    header, off, blobs = {"__metadata__": meta}, 0, []
    for name in sorted(tensors):
        a = tensors[name].contiguous().numpy().astype(np.float32)
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        off += a.nbytes
        blobs.append(a.tobytes())
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, d in header.items():
        if name == "__metadata__":
            continue
        a, b = d["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[a:b], dtype=np.float32).reshape(d["shape"]).copy())
    return out, header.get("__metadata__", {})


def load_into(model, tensors):
    for mod, i in model.skeptic_layers():
        mod.weight.data = tensors[f"{i}.weight"].clone()
        mod.bias.data = tensors[f"{i}.bias"].clone()
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean = tensors[f"{i}.running_mean"].clone()
            mod.running_var = tensors[f"{i}.running_var"].clone()


def dump(path, x, y, out, K):
    os.makedirs(out, exist_ok=True)
    x.astype(np.float32).tofile(os.path.join(out, "x.bin"))
    y.astype(np.int32).tofile(os.path.join(out, "y.bin"))
    r = subprocess.run([HELPER, path, os.path.join(out, "x.bin"), str(len(y)), os.path.join(out, "y.bin"), out],
                       capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"FAIL: onnx_dump {path}: {r.stderr}")
    z = np.fromfile(os.path.join(out, "logits.bin"), dtype=np.float32).reshape(len(y), K)
    dx = np.fromfile(os.path.join(out, "dx.bin"), dtype=np.float32).reshape(x.shape)
    return z, dx


def onnx_eval(path, x):
    """Evaluate skeptic's exported ONNX graph node by node in torch."""
    g = onnx.load(path).graph
    env = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in g.initializer}
    env[g.input[0].name] = x
    for n in g.node:
        a = {at.name: onnx.helper.get_attribute_value(at) for at in n.attribute}
        i = [env[k] for k in n.input]
        if n.op_type == "Conv":
            y = F.conv2d(i[0], i[1], i[2], stride=a["strides"][0], padding=a["pads"][0])
        elif n.op_type == "BatchNormalization":
            y = F.batch_norm(i[0], i[3], i[4], i[1], i[2], False, 0.0, a["epsilon"])
        elif n.op_type == "Relu":
            y = F.relu(i[0])
        elif n.op_type == "Add":
            y = i[0] + i[1]
        elif n.op_type == "Concat":
            y = torch.cat(i, dim=a["axis"])
        elif n.op_type == "GlobalAveragePool":
            y = i[0].mean(dim=(2, 3), keepdim=True)
        elif n.op_type == "Flatten":
            y = i[0].flatten(1)
        elif n.op_type == "Dropout":
            y = i[0]
        elif n.op_type == "Gemm":
            y = i[0] @ i[1].T + i[2]
        elif n.op_type == "Sub":
            y = i[0] - i[1]
        elif n.op_type == "Mul":
            y = i[0] * i[1]
        else:
            raise SystemExit(f"FAIL: the evaluator has no {n.op_type}")
        env[n.output[0]] = y
    return env[g.output[0].name]


def part1(tmp):
    g = torch.Generator().manual_seed(8)
    torch.manual_seed(8)
    widths, K = [16, 32, 64], 10
    m = ResNet(1, widths, K)
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            c = mod.num_features
            mod.weight.data = 0.5 + torch.rand(c, generator=g)
            mod.bias.data = 0.3 * torch.randn(c, generator=g)
            mod.running_mean = 0.2 * torch.randn(c, generator=g)
            mod.running_var = 0.5 + torch.rand(c, generator=g)
    m.eval()
    spec = resnet_spec(1, 28, widths, K)
    path = os.path.join(tmp, "torch-resnet8.safetensors")
    write_safetensors(path, tensors_of(m), {"skeptic.spec": spec})
    N = 24
    x = torch.rand(N, 1, 28, 28, generator=g)
    y = torch.randint(0, K, (N,), generator=g)
    xt = x.clone().requires_grad_(True)
    logits = m(xt)
    F.cross_entropy(logits, y, reduction="sum").backward()
    z, dx = dump(path, x.numpy(), y.numpy(), os.path.join(tmp, "p1"), K)
    e = rel_err(z, logits.detach().numpy())
    check("resnet-8 (torch) logits in skeptic", e <= 1e-5, f"rel {e:.2e}")
    e = rel_err(dx, xt.grad.numpy())
    check("resnet-8 (torch) input gradients in skeptic", e <= 1e-4, f"rel {e:.2e}")
    zb = logits.detach().numpy().copy()
    zb[0, 0] += 2e-5 * np.max(np.abs(zb))
    check("the comparator sees a logit moved by 2e-5", rel_err(zb, logits.detach().numpy()) > 1e-5)


def part2(tmp):
    rng = np.random.default_rng(6)
    x = rng.random((64, 1, 12, 12), dtype=np.float32)
    y = rng.integers(0, 4, 64)
    y[:4] = np.arange(4)
    np.save(os.path.join(tmp, "img.npy"), x)
    np.save(os.path.join(tmp, "img_labels.npy"), y.astype(np.int64))
    widths, K = [4, 8], 4
    spec = resnet_spec(1, 12, widths, K, dropout=0.1)
    st = os.path.join(tmp, "trained.safetensors")
    r = subprocess.run([SKEPTIC, "train", "--data", os.path.join(tmp, "img.npy"), "--arch", spec, "--epochs", "2",
                        "--batch", "16", "--out", st], capture_output=True, text=True,
                       env=dict(os.environ, SKEPTIC_NO_PROGRESS="1"))
    check(f"skeptic trains {spec}", r.returncode == 0, r.stderr.strip()[-300:])
    if r.returncode:
        return
    t, meta = read_safetensors(st)
    check("the file records the graph spec", meta.get("skeptic.spec") == spec, meta.get("skeptic.spec", ""))
    m = ResNet(1, widths, K, dropout=0.1)
    load_into(m, t)
    m.eval()
    xs = x[:32]
    z, _ = dump(st, xs.reshape(32, -1), y[:32], os.path.join(tmp, "p2"), K)
    with torch.no_grad():
        zt = m(torch.from_numpy(xs)).numpy()
    check("skeptic-trained graph read in torch: same predictions", np.array_equal(z.argmax(1), zt.argmax(1)))
    e = rel_err(zt, z)
    check("skeptic-trained graph read in torch: logits", e <= 1e-5, f"rel {e:.2e}")

    ox = os.path.join(tmp, "trained.onnx")
    r = subprocess.run([SKEPTIC, "export", "--model", st, "--format", "onnx", "--out", ox], capture_output=True,
                       text=True)
    check("skeptic export of a graph model", r.returncode == 0, r.stderr.strip())
    if r.returncode:
        return
    try:
        onnx.checker.check_model(onnx.load(ox), full_check=True)
        check("onnx.checker accepts the graph export", True)
    except Exception as ex:  # noqa: BLE001 -- the checker's exception types vary by version
        check("onnx.checker accepts the graph export", False, str(ex))
    ops = {n.op_type for n in onnx.load(ox).graph.node}
    check("the export has Add nodes for the residual connections", "Add" in ops, str(sorted(ops)))
    with torch.no_grad():
        zo = onnx_eval(ox, torch.from_numpy(xs)).numpy()
    check("the exported ONNX graph evaluated in torch: same predictions", np.array_equal(zo.argmax(1), z.argmax(1)))
    e = rel_err(zo, z)
    check("the exported ONNX graph evaluated in torch: logits", e <= 1e-5, f"rel {e:.2e}")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        part1(tmp)
        part2(tmp)
    if failures:
        print(f"{len(failures)} failed")
        sys.exit(1)
    print("all passed")


if __name__ == "__main__":
    main()
