#!/usr/bin/env bash
# One-shot training of the three shipped checkpoints on a borrowed GPU machine that has torch but
# no espeak-ng and no internet. The espeak-ng binary, its shared libraries and its English data
# travel with the job in models/data/gpu/ (made by models/scripts/make_espeak_bundle.sh); the
# corpus is rebuilt there with the same seed, so its dev/test splits are byte-identical to the
# ones `$PY -m models.data build ... --seed 0` writes on this machine.
#
#   OUT=/tmp/out N_TRAIN=20000 DENSE_MIN=4 FT_MIN=1.5 bash models/scripts/gpu_train.sh
set -euo pipefail
B=${BUNDLE:-models/data/gpu}
export LD_LIBRARY_PATH=$PWD/$B/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export ESPEAK_DATA_PATH=$PWD/$B/share
export PATH=$PWD/$B/bin:$PATH
export PYTHONPATH=$PWD:$PWD/$B/py
OUT=${OUT:?set OUT}
D=${CORPUS:-/tmp/espeak}
JOBS=${JOBS:-16}
N_TRAIN=${N_TRAIN:-20000}
DENSE_MIN=${DENSE_MIN:-4}
FT_MIN=${FT_MIN:-1.5}
DEVICE=${DEVICE:-cuda}
PY=${PYTHON:-python}
BATCH=${BATCH:-64}
export TQDM_DISABLE=1
mkdir -p "$OUT"
$PY -c "import sys, torch; print(sys.version.split()[0], torch.__version__, torch.cuda.is_available())"
espeak-ng --version
date +%s > "$OUT/t_start"
$PY -m models.data build --out "$D" --n-train "$N_TRAIN" --n-dev 200 --n-test 300 --seed 0 \
    --jobs "$JOBS" --no-progress
md5sum "$D"/wav/test-000000.wav "$D"/wav/dev-000000.wav | tee "$OUT/corpus_md5.txt"
date +%s > "$OUT/t_corpus"
common=(--train "$D/train.tsv" --dev "$D/dev.tsv" --test "$D/test.tsv" --device "$DEVICE"
        --feature-jobs "$JOBS" --batch "$BATCH" --force)
$PY -m models.train --variant dense --out "$OUT/dense.pt" "${common[@]}" \
    --layers 6 --d-state 16 --steps 100000 --minutes "$DENSE_MIN" --lr 2e-3 --warmup 300 \
    --eval-every 500 2>&1 | tee "$OUT/train_dense.log"
$PY -m models.train --variant fatrelu --init "$OUT/dense.pt" --out "$OUT/fatrelu.pt" "${common[@]}" \
    --target-sparsity 0.7 --ramp-steps 600 --steps 100000 --minutes "$FT_MIN" --lr 5e-4 --warmup 50 \
    --eval-every 250 2>&1 | tee "$OUT/train_fatrelu.log"
$PY -m models.train --variant spiking --init "$OUT/dense.pt" --out "$OUT/spiking.pt" "${common[@]}" \
    --rate-penalty 0.05 --target-sparsity 0.7 --steps 100000 --minutes "$FT_MIN" --lr 1e-3 --warmup 50 \
    --eval-every 250 2>&1 | tee "$OUT/train_spiking.log"
date +%s > "$OUT/t_end"
