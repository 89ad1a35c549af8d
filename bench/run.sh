#!/bin/sh
# Run skeptic's and PyTorch's training benchmarks in the same run, under both
# OpenBLAS kernel sets, and print every result and the ratios as JSON lines.
#
#   bench/run.sh [BUILD_DIR] [REPS] [N]        (defaults: build 3 60000)
#
# Both sides: 2 threads, one epoch of N rows x 784 floats, batch 128, SGD with
# momentum; MLP 784-512-512-10 and the CNN of README.md, section Performance; sgemm GFLOP/s.
# PyTorch gets its best settings on this machine: OMP_WAIT_POLICY=PASSIVE and
# GLIBC_TUNABLES=glibc.malloc.mmap_threshold=2147483647 (keep large buffers).
# OPENBLAS_CORETYPE=Haswell (AVX2 kernels, this machine's preset) and unset
# (OpenBLAS picks the AVX-512 kernels) are both measured; torch links the same
# OpenBLAS, so the setting applies to both sides. skeptic runs twice, as is and
# with PyTorch's settings; the ratios compare like with like (same settings).
set -e
BUILD=${1:-build}
REPS=${2:-3}
N=${3:-60000}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
BENCH="$BUILD/bench/bench_train"
[ -x "$BENCH" ] || { echo "bench/run.sh: $BENCH not built (cmake --build $BUILD)" >&2; exit 1; }
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT

load() { cut -d' ' -f1-3 /proc/loadavg; }
for core in Haswell unset; do
  if [ "$core" = unset ]; then set -- env -u OPENBLAS_CORETYPE; else set -- env OPENBLAS_CORETYPE=$core; fi
  echo "{\"bench\":\"load\",\"when\":\"before\",\"coretype\":\"$core\",\"loadavg\":\"$(load)\"}" | tee -a "$OUT"
  # skeptic twice: as is (libgomp's default, spin-then-sleep) and with the
  # same settings as PyTorch; the ratio lines use the latter (same settings).
  "$@" "$BENCH" --threads 2 --reps "$REPS" --n "$N" | sed "s/^{/{\"coretype\":\"$core\",\"env\":\"default\",/" | tee -a "$OUT"
  "$@" OMP_WAIT_POLICY=PASSIVE GLIBC_TUNABLES=glibc.malloc.mmap_threshold=2147483647 \
    "$BENCH" --threads 2 --reps "$REPS" --n "$N" | sed "s/^{/{\"coretype\":\"$core\",\"env\":\"torch\",/" | tee -a "$OUT"
  "$@" OMP_WAIT_POLICY=PASSIVE GLIBC_TUNABLES=glibc.malloc.mmap_threshold=2147483647 \
    "$PY" "$HERE/torch_bench.py" --threads 2 --reps "$REPS" --n "$N" | sed "s/^{/{\"coretype\": \"$core\", /" | tee -a "$OUT"
  echo "{\"bench\":\"load\",\"when\":\"after\",\"coretype\":\"$core\",\"loadavg\":\"$(load)\"}" | tee -a "$OUT"
done

"$PY" - "$OUT" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
def get(core, bench, impl, key, keyval, env="torch"):
    for r in rows:
        if (r.get("coretype") == core and r["bench"] == bench and r.get("impl", "skeptic") == impl
                and r.get(key) == keyval and (impl == "torch" or r.get("env") == env)):
            return r
    return None
targets = {"mlp": (1.2, 90000), "cnn": (2.0, 10000)}
for core in ("Haswell", "unset"):
    for model in ("mlp", "cnn"):
        s, t = get(core, "train_epoch", "skeptic", "model", model), get(core, "train_epoch", "torch", "model", model)
        d = get(core, "train_epoch", "skeptic", "model", model, env="default")
        if not s or not t:
            continue
        ratio = s["samples_per_s"] / t["samples_per_s"]
        rt, at = targets[model]
        print(json.dumps({"bench": "ratio", "coretype": core, "model": model, "blas_core": s["blas_core"],
                          "skeptic_samples_per_s": s["samples_per_s"], "torch_samples_per_s": t["samples_per_s"],
                          "skeptic_default_env_samples_per_s": d["samples_per_s"] if d else None,
                          "ratio": round(ratio, 2), "target_ratio": rt, "target_samples_per_s": at,
                          "meets_ratio": ratio >= rt, "meets_abs": s["samples_per_s"] >= at}))
    for r in rows:
        if (r.get("coretype") == core and r["bench"] == "sgemm" and r.get("impl", "skeptic") == "skeptic"
                and r.get("env") == "torch"):
            t = get(core, "sgemm", "torch", "shape", r["shape"])
            if t:
                print(json.dumps({"bench": "sgemm_ratio", "coretype": core, "shape": r["shape"],
                                  "blas_core": r["blas_core"], "skeptic_gflops": r["gflops"],
                                  "torch_gflops": t["gflops"], "ratio": round(r["gflops"] / t["gflops"], 2)}))
EOF
