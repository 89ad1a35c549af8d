#!/bin/sh
# Data-parallel training throughput: skeptic train under mpirun -np 2 (one
# thread per rank) against one process with one and with two threads, the
# same global batch. Prints one JSON line per run and one with the ratios.
#
#   bench/mpi_train.sh [BUILD_DIR] [REPS] [N] [ARCH] [BATCH]
#   (defaults: build 3 20000 mlp:784-512-512-10:relu 128)
#
# Fashion-MNIST (Debian's dataset-fashion-mnist), the first N training rows,
# one epoch, SGD with momentum; rows per second from the epoch's own clock
# (the JSON summary's seconds, loading excluded). The median of REPS runs of
# each setting is reported; the machine's load average is printed beside.
# The ranks yield the core while they wait in MPI (mpi_yield_when_idle): on a
# machine busy with other work, ranks that spin would take the cores from
# each other at every all-reduce.
set -e
BUILD=${1:-build}
REPS=${2:-3}
N=${3:-20000}
ARCH=${4:-mlp:784-512-512-10:relu}
BATCH=${5:-128}
SK="$BUILD/skeptic"
[ -x "$SK" ] || { echo "bench/mpi_train.sh: $SK not built (cmake --build $BUILD)" >&2; exit 1; }
command -v mpirun >/dev/null || { echo "bench/mpi_train.sh: mpirun not found (apt-get install openmpi-bin)" >&2; exit 1; }
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export OMP_WAIT_POLICY=PASSIVE
ARGS="train --data fashion-mnist --n $N --arch $ARCH --epochs 1 --batch $BATCH --optimizer momentum --lr 0.05 --seed 1 --json -q --out $TMP/m.safetensors"

one() { # label, then the command; prints rows/s of the epoch
  label=$1
  shift
  "$@" > "$TMP/out.json"
  "$PY" -c "import json,sys; j=json.load(open(sys.argv[1])); print(j['train_rows'] / j['seconds'])" "$TMP/out.json"
}

for setting in 1rank-1thread 1rank-2threads 2ranks-1thread; do
  : > "$TMP/$setting"
  for r in $(seq "$REPS"); do
    case $setting in
      1rank-1thread) v=$(OMP_NUM_THREADS=1 one "$setting" "$SK" $ARGS --threads 1) ;;
      1rank-2threads) v=$(OMP_NUM_THREADS=2 one "$setting" "$SK" $ARGS --threads 2) ;;
      2ranks-1thread) v=$(one "$setting" mpirun --allow-run-as-root --oversubscribe --bind-to none --mca mpi_yield_when_idle 1 -x OMP_NUM_THREADS=1 \
                          -x OMP_WAIT_POLICY -np 2 "$SK" $ARGS --threads 1) ;;
    esac
    echo "$v" >> "$TMP/$setting"
    echo "{\"bench\":\"mpi_train\",\"setting\":\"$setting\",\"rep\":$r,\"rows\":$N,\"arch\":\"$ARCH\",\"batch\":$BATCH,\"rows_per_s\":$v,\"loadavg\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}"
  done
done
"$PY" - "$TMP" <<'PYEOF'
import json, statistics, sys
d = sys.argv[1]
med = {s: statistics.median(float(x) for x in open(d + "/" + s)) for s in ("1rank-1thread", "1rank-2threads", "2ranks-1thread")}
print(json.dumps({"bench": "mpi_train_ratio", "median_rows_per_s": med,
                  "ratio_2ranks_vs_1rank_1thread": med["2ranks-1thread"] / med["1rank-1thread"],
                  "ratio_2ranks_vs_1rank_2threads": med["2ranks-1thread"] / med["1rank-2threads"]}))
PYEOF
