"""PyTorch counterpart of bench_bayes: Bayes by Backprop MLP (784-400-400-10,
ReLU) with the local reparameterisation trick, Gaussian prior N(0, 0.1^2),
closed-form KL, Adam 1e-3, batch 128 -- the same algorithm as
sk_bayes_train_vi -- and Monte Carlo prediction with S weight samples
(w = mu + softplus(rho) eps, one draw per sample shared by the batch, as
sk_bayes_predict). Prints JSON lines."""
import argparse, json, math, time

import torch
import torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument("--n-train", type=int, default=10000)
ap.add_argument("--n-pred", type=int, default=2000)
ap.add_argument("--samples", type=int, default=20)
ap.add_argument("--reps", type=int, default=3)
ap.add_argument("--threads", type=int, default=2)
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(1)
dims = [784, 400, 400, 10]
rho0 = math.log(math.expm1(0.02))
params = []
for i in range(3):
    fan = dims[i]
    b = math.sqrt(6.0 / fan)
    params += [(torch.rand(dims[i + 1], dims[i]) * 2 - 1) * b, torch.zeros(dims[i + 1])]
mu = [p.clone().requires_grad_() for p in params]
rho = [torch.full_like(p, rho0).requires_grad_() for p in params]
opt = torch.optim.Adam(mu + rho, lr=1e-3)
s_prior = 0.1


def forward_lrt(x):
    h = x
    for i in range(3):
        W, b = mu[2 * i], mu[2 * i + 1]
        sW, sb = F.softplus(rho[2 * i]), F.softplus(rho[2 * i + 1])
        m = F.linear(h, W, b)
        v = F.linear(h * h, sW * sW, sb * sb)
        h = m + torch.sqrt(v + 1e-16) * torch.randn_like(m)
        if i < 2:
            h = F.relu(h)
    return h


def kl():
    t = 0.0
    for m_, r_ in zip(mu, rho):
        s = F.softplus(r_)
        t = t + (math.log(s_prior) - torch.log(s) + (s * s + m_ * m_) / (2 * s_prior ** 2) - 0.5).sum()
    return t


X = torch.randn(a.n_train, 784)
Y = torch.randint(0, 10, (a.n_train,))
train = []
for r in range(a.reps + 1):
    perm = torch.randperm(a.n_train)
    t0 = time.perf_counter()
    for i in range(0, a.n_train, 128):
        idx = perm[i:i + 128]
        opt.zero_grad()
        loss = F.cross_entropy(forward_lrt(X[idx]), Y[idx]) + kl() / a.n_train
        loss.backward()
        opt.step()
    dt = time.perf_counter() - t0
    if r > 0:  # the first epoch warms up
        train.append(a.n_train / dt)
train.sort()
print(json.dumps({"bench": "bbb_train", "impl": "pytorch", "torch": torch.__version__, "threads": a.threads,
                  "rows": a.n_train, "samples_per_s": train[len(train) // 2], "runs": train}))

Xp = torch.randn(a.n_pred, 784)
pred = []
with torch.no_grad():
    for r in range(a.reps + 1):
        t0 = time.perf_counter()
        acc = torch.zeros(a.n_pred, 10)
        for s in range(a.samples):
            w = [m_ + F.softplus(r_) * torch.randn_like(m_) for m_, r_ in zip(mu, rho)]
            for i in range(0, a.n_pred, 500):
                h = Xp[i:i + 500]
                for l in range(3):
                    h = F.linear(h, w[2 * l], w[2 * l + 1])
                    if l < 2:
                        h = F.relu(h)
                acc[i:i + 500] += F.softmax(h, dim=1)
        acc /= a.samples
        dt = time.perf_counter() - t0
        if r > 0:
            pred.append(a.n_pred / dt)
pred.sort()
print(json.dumps({"bench": "bbb_predict", "impl": "pytorch", "torch": torch.__version__, "threads": a.threads,
                  "rows": a.n_pred, "mc_samples": a.samples, "samples_per_s": pred[len(pred) // 2], "runs": pred}))
