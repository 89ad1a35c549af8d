#!/usr/bin/env python3
"""skeptic on several ranks (mpirun) against one process: the equalities
docs/mpi.md states. Usage: mpi_cases.py eval|certify|attack|train|sweep|abort|queue.

Every case runs the command alone and under `mpirun -np N` and compares what
the guarantee covers, bit for bit: per-point files (cmp), and the JSON
summaries except wall-clock seconds and (attack) the cost counters, which
are the ranks' summed work."""
import json
import os
import subprocess
import sys
import tempfile

BUILD = os.environ["SKEPTIC_BUILD_DIR"]
SKEPTIC = os.path.join(BUILD, "skeptic")
MPIRUN = os.environ.get("SKEPTIC_MPIRUN", "mpirun")
DATA = "blobs:n=400,k=4,dim=16,noise=4"


def mpirun(ranks):
    # ranks yield their core while they wait in MPI: the tests share the machine with other work
    return [MPIRUN, "--allow-run-as-root", "--oversubscribe", "--mca", "mpi_yield_when_idle", "1", "-np", str(ranks)]


def env_for(ranks):
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    if ranks and env.get("SKEPTIC_SANITIZED"):
        # OpenMPI's own allocations at MPI_Init stay unfreed in plugins it
        # unloads at MPI_Finalize: LeakSanitizer reports them against an
        # "<unknown module>" that no suppression can name. Under mpirun the
        # leak check is off; ASan's memory errors and UBSan stay on, and the
        # same code paths run leak-checked in the one-process runs.
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
    return env


def run(args, ranks=0, check=True):
    cmd = [SKEPTIC] + args
    if ranks:
        cmd = mpirun(ranks) + cmd
    p = subprocess.run(cmd, capture_output=True, text=True, env=env_for(ranks), timeout=240)
    if check and p.returncode != 0:
        sys.exit("FAIL: %s\nexit %d\nstdout:\n%s\nstderr:\n%s" % (" ".join(cmd), p.returncode, p.stdout, p.stderr))
    return p


def same_file(a, b, what):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        if fa.read() != fb.read():
            sys.exit("FAIL: %s differs between %s and %s" % (what, a, b))


def strip(o, keys):
    if isinstance(o, dict):
        return {k: strip(v, keys) for k, v in o.items() if k not in keys}
    if isinstance(o, list):
        return [strip(v, keys) for v in o]
    return o


def same_json(a, b, what, drop=("seconds",)):
    ja, jb = strip(json.loads(a), set(drop)), strip(json.loads(b), set(drop))
    if ja != jb:
        sys.exit("FAIL: %s: one process %s\n  vs ranks %s" % (what, ja, jb))
    return ja


def model(tmp, extra=()):
    path = os.path.join(tmp, "m.safetensors")
    if not os.path.exists(path):
        run(["train", "--data", DATA, "--arch", "mlp:16-32-32-4:relu", "--epochs", "3", "--batch", "32",
             "--seed", "3", "--out", path, "-q"] + list(extra))
    return path


def case_eval(tmp):
    m = model(tmp)
    outs = {}
    for ranks in (0, 2, 3):
        pred = os.path.join(tmp, "pred%d.npy" % ranks)
        p = run(["eval", "--model", m, "--data", DATA, "--json", "--predictions", pred], ranks)
        outs[ranks] = (p.stdout, pred)
    for ranks in (2, 3):
        j = same_json(outs[0][0], outs[ranks][0], "eval --json on %d ranks" % ranks)
        same_file(outs[0][1], outs[ranks][1], "eval --predictions on %d ranks" % ranks)
    print("eval: accuracy %.4f loss %.6f on %d rows: the same JSON and log-probabilities on 1, 2, 3 ranks"
          % (j["accuracy"], j["loss"], j["n"]))


def case_certify(tmp):
    m = model(tmp)
    for method, eps in (("ibp", "0.05"), ("crown", "0.05"), ("lipschitz", "0.1")):
        outs = {}
        for ranks in (0, 2, 3):
            pts = os.path.join(tmp, "pts-%s-%d.csv" % (method, ranks))
            p = run(["certify", "--model", m, "--data", DATA, "--eps", eps, "--method", method, "--json",
                     "--points", pts], ranks)
            outs[ranks] = (p.stdout, pts)
        for ranks in (2, 3):
            j = same_json(outs[0][0], outs[ranks][0], "certify %s --json on %d ranks" % (method, ranks))
            same_file(outs[0][1], outs[ranks][1], "certify %s --points on %d ranks" % (method, ranks))
        if not 0 < j["n_certified"] < j["n"]:
            sys.exit("FAIL: certify %s: %d of %d certified: pick an eps that splits the points" % (method, j["n_certified"], j["n"]))
        print("certify %s: %d of %d certified, mean margin %.6g: the same per point on 1, 2, 3 ranks"
              % (method, j["n_certified"], j["n"], j["mean_margin_lower"]))


def case_attack(tmp):
    m = model(tmp)
    runs = (["--attack", "pgd", "--eps", "0.5", "--steps", "5", "--random-start", "--restarts", "2",
             "--targeted", "random", "--batch", "16"],
            ["--attack", "square", "--eps", "0.5", "--queries", "60", "--batch", "16"],
            ["--attack", "pgd", "--eps-list", "0.2,0.5,1", "--steps", "5", "--random-start", "--batch", "16"])
    # the cost counters are the ranks' summed work (audits on rank 0's share): not compared
    drop = ("seconds", "grad_evals", "queries", "warnings")
    for args in runs:
        outs = {}
        for ranks in (0, 2, 4):
            adv = os.path.join(tmp, "adv-%s-%d.npy" % (args[1], ranks))
            p = run(["attack", "--model", m, "--data", DATA, "--n", "120", "--json", "--save-adv", adv] + args, ranks)
            outs[ranks] = (p.stdout, adv)
        for ranks in (2, 4):
            j = same_json(outs[0][0], outs[ranks][0], "attack %s on %d ranks" % (" ".join(args), ranks), drop)
            same_file(outs[0][1], outs[ranks][1], "attack --save-adv %s on %d ranks" % (" ".join(args), ranks))
        if not 0 < j["robust_accuracy"] < j["clean_accuracy"]:
            sys.exit("FAIL: attack %s: robust %.3f, clean %.3f: the test needs an attack that breaks some points"
                     % (" ".join(args), j["robust_accuracy"], j["clean_accuracy"]))
        print("attack %s: clean %.4f robust %.4f: the same adversarial examples and figures on 1, 2, 4 ranks"
              % (" ".join(args), j["clean_accuracy"], j["robust_accuracy"]))


def case_train(tmp):
    common = ["train", "--data", DATA, "--arch", "mlp:16-32-32-4:relu", "--epochs", "2", "--batch", "64",
              "--seed", "5", "--optimizer", "momentum", "--lr", "0.05", "--json"]
    outs = {}
    for label, ranks, extra in (("micro", 0, ["--micro-batch", "32"]), ("dp2", 2, []), ("plain", 0, []),
                                ("micro3", 0, ["--micro-batch", "22"]), ("dp3", 3, [])):
        out = os.path.join(tmp, "t-%s.safetensors" % label)
        p = run(common + ["--out", out] + extra, ranks)
        outs[label] = json.loads(p.stdout)
    keys = ("weights_fnv1a64", "train_loss", "train_acc", "test_accuracy", "test_loss")
    for a, b in (("micro", "dp2"), ("micro3", "dp3")):
        for k in keys:
            if k in outs[a] and outs[a][k] != outs[b][k]:
                sys.exit("FAIL: train: %s %r (one process) vs %r (%s)" % (k, outs[a][k], outs[b][k], b))
    if outs["plain"]["weights_fnv1a64"] == outs["dp2"]["weights_fnv1a64"] and outs["plain"]["train_loss"] != outs["dp2"]["train_loss"]:
        sys.exit("FAIL: train: inconsistent summaries")
    print("train: 2 ranks = one process with --micro-batch 32, 3 ranks = --micro-batch 22, bitwise (weights hash %s);"
          " without --micro-batch the loss is %.9g vs %.9g (float reassociation)"
          % (outs["dp2"]["weights_fnv1a64"], outs["plain"]["train_loss"], outs["dp2"]["train_loss"]))


def sweep_rows(path):
    rows = {}
    for line in open(path):
        r = json.loads(line)
        rows[r["config_hash"]] = r
    return rows


def case_sweep(tmp):
    args = ["sweep", "--data", "blobs:n=300,k=3,dim=8,noise=3", "--depth", "1,2", "--width", "8,16",
            "--optimizer", "sgd,adam", "--epochs", "1", "--n-adv", "40", "--n-suite", "0", "--n-curv", "64",
            "--cert-eps", "0.01", "--models", "none", "--threads", "1", "--json"]
    rows = {}
    for ranks in (0, 2, 4):
        out = os.path.join(tmp, "rows%d.jsonl" % ranks)
        run(args + ["--out", out, "--summary", os.path.join(tmp, "sum%d.json" % ranks)], ranks)
        rows[ranks] = sweep_rows(out)
    if len(rows[0]) != 8:
        sys.exit("FAIL: sweep: %d rows from one process, 8 configurations" % len(rows[0]))
    for ranks in (2, 4):
        if rows[ranks] != rows[0]:
            diff = [h for h in rows[0] if rows[0][h] != rows[ranks].get(h)]
            sys.exit("FAIL: sweep on %d ranks: rows of %d configurations differ, e.g. %s\n  one: %s\n  ranks: %s"
                     % (ranks, len(diff), diff[:1], rows[0][diff[0]] if diff else None,
                        rows[ranks].get(diff[0]) if diff else None))
    print("sweep: the same 8 rows (every field: measures, measure and weights hashes) from 1, 2 and 4 ranks")


def case_abort(tmp):
    """A failure on one rank ends every rank (no rank waits for ever)."""
    m = model(tmp)
    cmd = ["certify", "--model", m, "--data", DATA, "--eps", "0.05"]
    # rank 1 alone runs out of memory (an injected failure) inside its share
    launch = mpirun(1) + [SKEPTIC] + cmd + [":", "-np", "1", "-x", "SKEPTIC_FAIL_ALLOC=30", SKEPTIC] + cmd
    try:
        p = subprocess.run(launch, capture_output=True, text=True, env=env_for(2), timeout=120)
    except subprocess.TimeoutExpired:
        sys.exit("FAIL: a failure on rank 1 left the job waiting (no end after 120 s)")
    if p.returncode == 0 or "rank 1 of 2" not in p.stderr or "injected" not in p.stderr:
        sys.exit("FAIL: rank 1's failure: exit %d, stderr:\n%s" % (p.returncode, p.stderr))
    print("abort: rank 1 failed (injected out of memory), the job ended with exit %d and the rank's message"
          % p.returncode)


def case_queue(tmp):
    probe = os.path.join(BUILD, "mpi_dist_probe")
    for ranks in (0, 1, 2, 4):
        cmd = [probe] if not ranks else mpirun(ranks) + [probe]
        p = subprocess.run(cmd, capture_output=True, text=True, env=env_for(ranks), timeout=120)
        sys.stdout.write(p.stdout)
        if p.returncode != 0 or "FAIL" in p.stdout or p.stdout.count("ok  ") != 5:
            sys.exit("FAIL: %s\n%s" % (" ".join(cmd), p.stderr))


def main():
    case = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        globals()["case_" + case](tmp)


if __name__ == "__main__":
    main()
