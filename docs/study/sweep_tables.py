"""Markdown tables of a sweep's rows (skeptic sweep --out ROWS.jsonl).

    python3 docs/study/sweep_tables.py docs/study/sweep-fmnist-72.jsonl

prints the per-configuration table (accuracy, gap, lambda_max, clean and
adversarial calibration, robust and certified accuracy, OOD AUROC) and the
means per value of each axis. The tau/Psi table is skeptic's own:
skeptic sweep --summarize ROWS.jsonl --format md.
"""
import json
import sys


def f(v, d=3):
    return "n/a" if v is None else f"{v:.{d}f}"


def main(path):
    rows = [json.loads(line) for line in open(path) if line.endswith("\n")]
    rows.sort(key=lambda r: r["index"])
    print(f"{len(rows)} configurations\n")
    cols = [("train acc", "train_acc", 3), ("test acc", "test_acc", 3), ("gap (err)", "gap_err", 3),
            ("gap (NLL)", "gap_loss", 3), ("λmax", "lambda_max", 1), ("ECE", "ece", 3), ("FGSM acc", "fgsm_acc", 2),
            ("PGD acc", "pgd_acc", 2), ("suite acc", "suite_acc", 2), ("PGD ECE", "pgd_ece", 3),
            ("PGD NLL", "pgd_nll", 2), ("PGD conf", "pgd_conf", 3), ("IBP cert", "ibp_cert_acc", 2),
            ("OOD AUROC", "ood_auroc_entropy", 3)]
    print("| depth | width | optimizer | batch | " + " | ".join(c[0] for c in cols) + " |")
    print("|---:|---:|---|---:|" + "---:|" * len(cols))
    for r in rows:
        print(f"| {r['depth']} | {r['width']} | {r['optimizer']} | {r['batch']} | "
              + " | ".join(f(r[k], d) for _, k, d in cols) + " |")
    means = [("test acc", "test_acc"), ("gap (err)", "gap_err"), ("ECE", "ece"), ("PGD acc", "pgd_acc"),
             ("PGD ECE", "pgd_ece"), ("PGD conf", "pgd_conf"), ("λmax", "lambda_max"), ("OOD AUROC", "ood_auroc_entropy")]
    print("\nMeans over the configurations with each value of an axis:\n")
    print("| axis | value | n | " + " | ".join(m[0] for m in means) + " |")
    print("|---|---|---:|" + "---:|" * len(means))
    for axis in ["depth", "width", "optimizer", "batch"]:
        seen = []
        for r in rows:
            if r[axis] not in seen:
                seen.append(r[axis])
        for v in seen:
            sel = [r for r in rows if r[axis] == v]
            vals = []
            for _, k in means:
                xs = [r[k] for r in sel if r[k] is not None]
                vals.append(f(sum(xs) / len(xs), 1 if k == "lambda_max" else 3) if xs else "n/a")
            print(f"| {axis} | {v} | {len(sel)} | " + " | ".join(vals) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
