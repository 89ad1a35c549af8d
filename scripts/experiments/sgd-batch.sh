#!/bin/sh
# Small batch against large batch on Fashion-MNIST (Keskar et al. 2017): test accuracy, the
# generalization gap, lambda_max, the Hessian trace and the sharpness measures of each solution,
# then the loss on the segment between the two solutions and a filter-normalised plane around each.
#
#   scripts/experiments/sgd-batch.sh [SKEPTIC] [WORKDIR] [FIGDIR]
#
# SKEPTIC defaults to build/skeptic, WORKDIR (models, logs, JSON) to /tmp/sgd-batch, FIGDIR to
# docs/figures/curvature. SEEDS="1 2", EPOCHS=20 and STAGES="train curvature landscape" may be set in the environment.
# Everything runs at nice 5 on the training split of all 60,000 rows; the curvature is measured
# on 10,000 of them (a fixed seeded choice, the same rows for every model).
set -eu

SK=${1:-build/skeptic}
W=${2:-/tmp/sgd-batch}
FIG=${3:-docs/figures/curvature}
SEEDS=${SEEDS:-"1 2"}
EPOCHS=${EPOCHS:-20}
ARCH=mlp:784-256-256-10:relu
mkdir -p "$W" "$FIG"
STAGES=${STAGES:-"train curvature landscape"}
run() { echo "+ $*" >&2; nice -n 5 "$@"; }
stage() { case " $STAGES " in *" $1 "*) return 0 ;; esac; return 1; }

# Training: SGD with momentum 0.9, constant learning rate, same epochs and seed for each batch size.
#   b32        batch 32,   lr 0.01
#   b4096      batch 4096, lr 0.01  (the same learning rate: Keskar et al.'s comparison)
#   b4096q     batch 4096, lr 0.113 (square-root scaled, 0.01 x sqrt(4096/32), Hoffer et al. 2017),
#              75 warm-up steps (5 epochs)
#   b4096s     batch 4096, lr 1.28  (linearly scaled, 0.01 x 4096/32, Goyal et al. 2017), 75
#              warm-up steps; with momentum 0.9 it diverges during the warm-up, which the train
#              command reports (exit 1); its log is kept and nothing else is measured on it.
stage train && for s in $SEEDS; do
  run "$SK" train --data fashion-mnist --arch $ARCH --epochs "$EPOCHS" --optimizer momentum \
      --momentum 0.9 --seed "$s" --batch 32 --lr 0.01 \
      --log "$W/b32-s$s.jsonl" --out "$W/b32-s$s.safetensors" -q
  run "$SK" train --data fashion-mnist --arch $ARCH --epochs "$EPOCHS" --optimizer momentum \
      --momentum 0.9 --seed "$s" --batch 4096 --lr 0.01 \
      --log "$W/b4096-s$s.jsonl" --out "$W/b4096-s$s.safetensors" -q
  run "$SK" train --data fashion-mnist --arch $ARCH --epochs "$EPOCHS" --optimizer momentum \
      --momentum 0.9 --seed "$s" --batch 4096 --lr 1.28 --warmup 75 \
      --log "$W/b4096s-s$s.jsonl" --out "$W/b4096s-s$s.safetensors" -q \
      || echo "b4096s seed $s: training stopped (see above)" >&2
  run "$SK" train --data fashion-mnist --arch $ARCH --epochs "$EPOCHS" --optimizer momentum \
      --momentum 0.9 --seed "$s" --batch 4096 --lr 0.113 --warmup 75 \
      --log "$W/b4096q-s$s.jsonl" --out "$W/b4096q-s$s.safetensors" -q
done

# Curvature of each solution on the same 10,000 training rows (--seed 42 chooses them) and the
# first 10,000 test rows: top-5 eigenvalues (Lanczos, at most 20 steps), Hutchinson trace (100
# probes), lambda_max on 5 disjoint sets of 128 rows, eps-sharpness (eps 1e-3), adaptive sharpness
# (rho 0.05), PAC-Bayes sigma, norms and the generalization gap.
stage curvature && for s in $SEEDS; do
  for m in b32 b4096 b4096q; do
    run "$SK" curvature --model "$W/$m-s$s.safetensors" --data fashion-mnist --n 10000 \
        --n-test 10000 --top-k 5 --probes 100 --seed 42 --json -q > "$W/curv-$m-s$s.json"
  done
done

# Spectral densities of the first seed's solutions (stochastic Lanczos quadrature, 4 runs of 80
# steps, the same 10,000 rows).
s=$(echo $SEEDS | cut -d' ' -f1)
stage curvature && for m in b32 b4096 b4096q; do
  run "$SK" curvature --model "$W/$m-s$s.safetensors" --data fashion-mnist --n 10000 \
      --n-test 10000 --top-k 1 --probes 10 --spread-sets 0 --no-sharpness --seed 42 \
      --density "$FIG/density-$m.png" --json -q > "$W/density-$m-s$s.json"
done

# Landscapes of the first seed: the segment from the batch-32 solution (t = 0) to each batch-4096
# solution (t = 1), train and test loss on 10,000 rows; and a plane of two filter-normalised random
# directions (seed 42) around each solution, training loss on 2,000 rows.
stage landscape && {
  for m in b4096 b4096q; do
    run "$SK" landscape --model "$W/b32-s$s.safetensors" --between "$W/$m-s$s.safetensors" \
        --data fashion-mnist --n 10000 --test --steps 41 --range -0.5,1.5 \
        --csv "$W/interp-b32-$m-s$s.csv" --out "$FIG/interp-b32-$m.png" -q
  done
  for m in b32 b4096 b4096q; do
    run "$SK" landscape --model "$W/$m-s$s.safetensors" --data fashion-mnist --n 2000 \
        --dims 2 --steps 21 --range -1,1 --seed 42 \
        --csv "$W/plane-$m-s$s.csv" --out "$FIG/plane-$m.png" -q
  done
}
exit 0
