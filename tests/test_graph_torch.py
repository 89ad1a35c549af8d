"""Graph models (residual adds, projection shortcuts, batch norm) against PyTorch.

1. A ResNet-8-style network defined in torch (three stages of one basic block,
   16/32/64 channels, 1x1 projection shortcuts, global average pooling) with
   random batch-norm statistics, written as safetensors under skeptic's
   layer-index names with its graph spec: skeptic's logits within 1e-5
   (relative to the largest) and input gradients of the summed cross-entropy
   within 1e-4 of torch's, float32.
2. A graph spec trained briefly by skeptic, read back in torch from its
   safetensors into the same torch module: the same predictions, logits within
   1e-5. Its ONNX export passes onnx.checker (full check), reads back into
   skeptic bit for bit, and a small torch evaluator of the exported graph
   (Conv, BatchNormalization, Relu, Add, Concat, GlobalAveragePool, Flatten,
   Dropout, Gemm, by the node list) gives the same predictions; so does a
   second trained graph with a channel concatenation.
3. Another such ResNet-8 (batch-norm statistics of a batch of images, moved
   at random; a random classifier on the centred features) exported by torch.onnx.export at opset 13, twice:
   as torch exports for inference (batch norm folded into the convolutions)
   and with TrainingMode.PRESERVE (BatchNormalization nodes kept), read by
   skeptic as graphs (three residual adds, the mean over H and W as gap):
   logits within 1e-5, input gradients within 1e-4. skeptic's own export of
   what it read passes onnx.checker and reads back bit for bit. On 32 images
   labelled with torch's predictions, `skeptic attack --attack pgd` (20 steps,
   no random start) on the file and a PGD written here in torch with
   skeptic's step rule (x + a sign(g), then clipped to the box, then to the
   eps-ball, in float32) give the same robust accuracy and the same robust
   points, and for nearly every broken point the same first adversarial
   iterate; a PGD with a step 1.5 times larger does not reproduce those
   iterates (the comparison can fail).

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


def random_resnet(g, widths, K):
    """A ResNet in eval mode with random batch-norm statistics and affine parameters."""
    m = ResNet(1, widths, K)
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            c = mod.num_features
            mod.weight.data = 0.5 + torch.rand(c, generator=g)
            mod.bias.data = 0.3 * torch.randn(c, generator=g)
            mod.running_mean = 0.2 * torch.randn(c, generator=g)
            mod.running_var = 0.5 + torch.rand(c, generator=g)
    return m.eval()


def part1(tmp):
    g = torch.Generator().manual_seed(8)
    torch.manual_seed(8)
    widths, K = [16, 32, 64], 10
    m = random_resnet(g, widths, K)
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
    z2, dx2 = dump(ox, xs.reshape(32, -1), y[:32], os.path.join(tmp, "p2b"), K)
    _, dx = dump(st, xs.reshape(32, -1), y[:32], os.path.join(tmp, "p2c"), K)
    check("the ONNX export read back by skeptic: logits and input gradients bit for bit",
          np.array_equal(z.view(np.uint32), z2.view(np.uint32)) and np.array_equal(dx.view(np.uint32), dx2.view(np.uint32)))

    # a channel concatenation (DenseNet-style) beside the residual adds
    spec = "seq:1x12x12-conv4k3p1-bn-relu=a-conv4k3p1-relu-cat@a-conv6k3s2p1-bn-relu=b-conv6k3p1-add@b-gap-dense4"
    st, ox = os.path.join(tmp, "cat.safetensors"), os.path.join(tmp, "cat.onnx")
    r = subprocess.run([SKEPTIC, "train", "--data", os.path.join(tmp, "img.npy"), "--arch", spec, "--epochs", "2",
                        "--batch", "16", "--out", st], capture_output=True, text=True,
                       env=dict(os.environ, SKEPTIC_NO_PROGRESS="1"))
    check(f"skeptic trains {spec}", r.returncode == 0, r.stderr.strip()[-300:])
    if r.returncode:
        return
    r = subprocess.run([SKEPTIC, "export", "--model", st, "--format", "onnx", "--out", ox], capture_output=True,
                       text=True)
    check("skeptic export of a graph with cat", r.returncode == 0, r.stderr.strip())
    if r.returncode:
        return
    ops = {n.op_type for n in onnx.load(ox).graph.node}
    check("the export has Concat and Add nodes", {"Concat", "Add"} <= ops, str(sorted(ops)))
    z, _ = dump(st, xs.reshape(32, -1), y[:32], os.path.join(tmp, "p2d"), K)
    with torch.no_grad():
        zo = onnx_eval(ox, torch.from_numpy(xs)).numpy()
    check("a graph with cat, its ONNX export evaluated in torch: same predictions",
          np.array_equal(zo.argmax(1), z.argmax(1)), f"rel {rel_err(zo, z):.2e}")
    z2, _ = dump(ox, xs.reshape(32, -1), y[:32], os.path.join(tmp, "p2e"), K)
    check("a graph with cat, its ONNX export read back by skeptic: logits bit for bit",
          np.array_equal(z.view(np.uint32), z2.view(np.uint32)))


def images(n, g):
    """Images with a brighter square of random place and brightness on a noisy background, in [0, 1]."""
    x = 0.3 * torch.rand(n, 1, 28, 28, generator=g)
    for i in range(n):
        oy, ox, b = (int(v) for v in torch.randint(0, 18, (3,), generator=g))
        x[i, 0, oy:oy + 10, ox:ox + 10] += 0.2 + 0.5 * b / 18
    return x.clamp(0, 1)


def pgd_skeptic_rule(m, x0, y, eps, steps, alpha):
    """PGD as `skeptic attack --attack pgd` runs it: from x0 (no random start),
    x <- x + alpha sign(grad of the summed cross-entropy), clipped to the box
    [0, 1], then to the eps-ball around x0 (and stepped back by ulps while
    float32 rounding leaves |x - x0| > eps), all in float32; a point is broken
    by the first iterate (1..steps) that is misclassified. Returns the robust
    points and each broken point's first adversarial iterate."""
    e32, a32 = torch.tensor(eps, dtype=torch.float32), torch.tensor(alpha, dtype=torch.float32)
    lo, hi = x0 - e32, x0 + e32
    x, first = x0.clone(), x0.clone()
    broken = torch.zeros(len(y), dtype=torch.bool)
    for s in range(steps + 1):
        x.requires_grad_(True)
        z = m(x)
        if s > 0:
            adv = (z.argmax(1) != y) & ~broken
            first[adv] = x.detach()[adv]
            broken |= adv
        if s == steps:
            break
        (gr,) = torch.autograd.grad(F.cross_entropy(z, y, reduction="sum"), x)
        with torch.no_grad():
            v = torch.min(torch.max((x + a32 * torch.sign(gr)).clamp(0.0, 1.0), lo), hi)
            bad = (v - x0).abs() > e32
            while bad.any():
                v = torch.where(bad, torch.nextafter(v, x0), v)
                bad = (v - x0).abs() > e32
        x = v
    return ~broken, first


def part3(tmp):
    g = torch.Generator().manual_seed(9)
    torch.manual_seed(9)
    K = 10
    m = random_resnet(g, [16, 32, 64], K)
    # a random network whose batch norms do not normalise gives nearly the same features for every
    # image, and class scores that differ by float32 rounding: take the statistics of a batch of
    # images, perturbed at random, and a classifier on the centred features
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.reset_running_stats()
                mod.momentum = None
        m.train()
        m(images(128, g))
        m.eval()
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                c = mod.num_features
                mod.running_mean += 0.1 * mod.running_var.sqrt() * torch.randn(c, generator=g)
                mod.running_var *= 0.7 + 0.6 * torch.rand(c, generator=g)
        h = images(128, g)
        h = F.relu(m.bn(m.stem(h)))
        for b in m.blocks:
            h = b(h)
        f = h.mean(dim=(2, 3))
        w = torch.randn(K, f.shape[1], generator=g) * 3 / f.shape[1] ** 0.5 / f.std(0).mean()
        m.fc.weight.data = w
        m.fc.bias.data = -(w @ f.mean(0))
    N = 32
    x = images(N, g)
    with torch.no_grad():
        y = m(x).argmax(1)
    check("the classifier's predictions spread over the classes", len(set(y.tolist())) >= 5, str(np.bincount(y.numpy())))
    xt = x.clone().requires_grad_(True)
    logits = m(xt)
    F.cross_entropy(logits, y, reduction="sum").backward()
    zt, dxt = logits.detach().numpy(), xt.grad.numpy()

    files = {}
    for kind, kw in (("folded", {}), ("bn", {"training": torch.onnx.TrainingMode.PRESERVE, "do_constant_folding": False})):
        path = os.path.join(tmp, f"resnet8-{kind}.onnx")
        torch.onnx.export(m, x[:1], path, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "N"}, "y": {0: "N"}}, opset_version=13, **kw)
        files[kind] = path
        ops = [n.op_type for n in onnx.load(path).graph.node]
        out = os.path.join(tmp, "p3" + kind)
        z, dx = dump(path, x.numpy(), y.numpy(), out, K)
        spec = open(os.path.join(out, "spec.txt")).read()
        print(f"     torch.onnx.export ({kind}: {ops.count('Add')} Add, {ops.count('BatchNormalization')} "
              f"BatchNormalization) read as {spec}")
        check(f"{kind}: the file has the residual Adds{' and BatchNormalization' if kind == 'bn' else ''}",
              ops.count("Add") == 3 and (kind != "bn" or ops.count("BatchNormalization") == 9), str(sorted(set(ops))))
        check(f"{kind}: read as a graph with three adds" + (" and nine bn layers" if kind == "bn" else ""),
              spec.count("-add@") == 3 and spec.count("-bn") == (9 if kind == "bn" else 0) and "-gap" in spec, spec)
        e = rel_err(z, zt)
        check(f"{kind}: logits (torch.onnx.export -> skeptic)", e <= 1e-5, f"rel {e:.2e}")
        e = rel_err(dx, dxt)
        check(f"{kind}: input gradients", e <= 1e-4, f"rel {e:.2e}")
        again = os.path.join(tmp, f"resnet8-{kind}-skeptic.onnx")
        r = subprocess.run([SKEPTIC, "export", "--model", path, "--format", "onnx", "--out", again], capture_output=True,
                           text=True)
        check(f"{kind}: skeptic export of what it read", r.returncode == 0, r.stderr.strip())
        if r.returncode:
            continue
        try:
            onnx.checker.check_model(onnx.load(again), full_check=True)
            check(f"{kind}: onnx.checker accepts skeptic's export", True)
        except Exception as ex:  # noqa: BLE001 -- the checker's exception types vary by version
            check(f"{kind}: onnx.checker accepts skeptic's export", False, str(ex))
        z2, dx2 = dump(again, x.numpy(), y.numpy(), out + "2", K)
        spec2 = open(os.path.join(out + "2", "spec.txt")).read()
        check(f"{kind}: re-import: the same layers, logits and input gradients bit for bit",
              spec2 == spec and np.array_equal(z.view(np.uint32), z2.view(np.uint32)) and
              np.array_equal(dx.view(np.uint32), dx2.view(np.uint32)), spec2)

    # PGD-20 on the file with batch norm, skeptic against torch, from the same start
    eps, alpha = 2.0 ** -10, 2.0 ** -13  # exact in float32 and in decimal
    np.save(os.path.join(tmp, "pts.npy"), x.numpy())
    np.save(os.path.join(tmp, "pts_labels.npy"), y.numpy().astype(np.int64))
    adv_path = os.path.join(tmp, "adv.npy")
    r = subprocess.run([SKEPTIC, "attack", "--model", files["bn"], "--data", os.path.join(tmp, "pts.npy"), "--split",
                        "all", "--n", str(N), "--attack", "pgd", "--eps", repr(eps), "--steps", "20", "--step-size",
                        repr(alpha), "--save-adv", adv_path, "--json"], capture_output=True, text=True)
    check("skeptic attack --attack pgd on the torch export", r.returncode == 0, r.stderr.strip()[-300:])
    if r.returncode:
        return
    out = json.loads(r.stdout)
    rob_t, first = pgd_skeptic_rule(m, x, y, eps, 20, alpha)
    acc_t = rob_t.float().mean().item()
    print(f"     PGD-20 at eps 2^-10 on {N} points: robust accuracy skeptic {out['robust_accuracy']:.4f}, "
          f"torch {acc_t:.4f}")
    check("skeptic's clean accuracy on torch's predictions is 1", out["clean_accuracy"] == 1.0, str(out["clean_accuracy"]))
    check("PGD-20 robust accuracy: skeptic = torch", abs(out["robust_accuracy"] - acc_t) < 1e-9 and 0 < acc_t < 1,
          f"{out['robust_accuracy']} vs {acc_t}")
    adv = torch.from_numpy(np.load(adv_path).reshape(x.shape))
    with torch.no_grad():
        rob_s = m(adv).argmax(1) == y
    check("the same points stand (skeptic's examples judged by torch)", bool((rob_s == rob_t).all()),
          f"{int((rob_s != rob_t).sum())} differ")
    broken = ~rob_t & ~rob_s
    same = (adv[broken] == first[broken]).reshape(int(broken.sum()), -1).all(1)
    print(f"     first adversarial iterates identical for {int(same.sum())} of {int(broken.sum())} broken points")
    check("the same first adversarial iterates for at least 80% of the broken points",
          int(broken.sum()) > 0 and same.float().mean().item() >= 0.8)
    _, other = pgd_skeptic_rule(m, x, y, eps, 20, 1.5 * alpha)
    same_other = (adv[broken] == other[broken]).reshape(int(broken.sum()), -1).all(1)
    check("self-check: a PGD with a 1.5x step does not reproduce skeptic's iterates",
          same_other.float().mean().item() < 0.8, f"{int(same_other.sum())} of {int(broken.sum())}")


def main():
    # small batches: one thread is as fast, and does not fight the build for the cores
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        part1(tmp)
        part2(tmp)
        part3(tmp)
    if failures:
        print(f"{len(failures)} failed")
        sys.exit(1)
    print("all passed")


if __name__ == "__main__":
    main()
