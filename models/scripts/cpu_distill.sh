#!/usr/bin/env bash
# FATReLU fine-tuning with knowledge distillation, on this CPU (one thread per run), as run in
# the session of 2026-11-26 (see docs/models.md, "Distillation"). Stage 1 fine-tunes the dense
# checkpoint into FATReLU with a threshold ramp, learning the dense model's CTC posteriors (KL)
# as well as the transcripts, on frequency-masked features; stage 2 continues from stage 1's
# best checkpoint (full dev set for the selection) at a fixed 0.603 quantile. Stage 1's
# output is the shipped models/checkpoints/fatrelu.pt; stage 2 was stopped after 70 steps for
# time and is not shipped.
set -euo pipefail
PY=${PYTHON:-/work/venv/bin/python}
D=${CORPUS:-models/data/espeak}
common=(--variant fatrelu --distill models/checkpoints/dense.pt --distill-weight 1.0 --augment
        --train "$D/train.tsv" --dev "$D/dev.tsv" --device cpu --threads 1 --batch 32 --force
        --steps 100000 --eval-every 60)
$PY -m models.train "${common[@]}" --init models/checkpoints/dense.pt --out models/data/kd_dense_fatrelu.pt \
    --max-dev 100 --target-sparsity 0.605 --ramp-start 0.5 --ramp-steps 300 --minutes 60 --lr 3e-4 \
    --warmup 30 --seed 1
$PY -m models.train "${common[@]}" --init models/data/kd_dense_fatrelu.pt --out models/data/kd4_fatrelu.pt \
    --target-sparsity 0.603 --ramp-start 0.603 --ramp-steps 1 --minutes 38 --lr 1e-4 --warmup 10 --seed 2
