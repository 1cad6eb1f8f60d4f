#!/usr/bin/env bash
# Second stage of the shipped checkpoints: continue the fatrelu and spiking fine-tuning that
# gpu_train.sh started (its GPU time ran out after 326 fatrelu / 71 spiking steps) on this CPU,
# on the local corpus (python -m models.data build --out models/data/espeak --n-train 10000
# --n-dev 200 --n-test 300 --seed 0).
# As run for the shipped files: (1) FAT_TARGET=0.63 FAT_MIN=22, stopped after 9 min (step ~100;
# its step-60 checkpoint kept as models/data/cpu_fatrelu_063.pt), then (2)
# FAT_INIT=models/data/cpu_fatrelu_063.pt FAT_TARGET=0.615 FAT_MIN=15 SPK_MIN=30. One process at a time, 1 thread (2 threads ran 10x slower here when the cores were shared).
set -euo pipefail
PY=${PYTHON:-/work/venv/bin/python}
D=${CORPUS:-models/data/espeak}
FAT_INIT=${FAT_INIT:-models/data/gpu_fatrelu.pt}
SPK_INIT=${SPK_INIT:-models/data/gpu_spiking.pt}
FAT_MIN=${FAT_MIN:-22}
FAT_TARGET=${FAT_TARGET:-0.615}
SPK_MIN=${SPK_MIN:-32}
common=(--train "$D/train.tsv" --dev "$D/dev.tsv" --device cpu --threads 1 --batch 32 --force
        --max-dev 100 --steps 100000)
$PY -m models.train --variant fatrelu --init "$FAT_INIT" --out models/checkpoints/fatrelu.pt "${common[@]}" \
    --target-sparsity "$FAT_TARGET" --ramp-start "$FAT_TARGET" --ramp-steps 1 --minutes "$FAT_MIN" --lr 3e-4 --warmup 20 \
    --eval-every 60
$PY -m models.train --variant spiking --init "$SPK_INIT" --out models/checkpoints/spiking.pt "${common[@]}" \
    --rate-penalty 0.05 --target-sparsity 0.7 --minutes "$SPK_MIN" --lr 1e-3 --warmup 20 --eval-every 60
