#!/usr/bin/env bash
# Reproduce the results table of docs/models.md and the shipped traces from the shipped
# checkpoints (CPU, one thread; ~2-5 min per checkpoint on a shared 2-core machine).
set -euo pipefail
PY=${PYTHON:-/work/venv/bin/python}
D=${CORPUS:-models/data/espeak}
R=${RESULTS:-models/data/results}
mkdir -p "$R"
for v in dense fatrelu spiking; do
  # greedy and lexicon-beam WER in one pass (the lexicon: the words of the training transcripts)
  $PY -m models.evaluate --checkpoint "models/checkpoints/$v.pt" --manifest "$D/test.tsv" \
      --lexicon "$D/train.tsv" --json "$R/${v}_test.json" --no-progress | tee "$R/${v}_test.txt"
done
# held-out utterance test-000126 ("your slow king sees that fish", 1.6 s, 40 steps)
for v in dense fatrelu spiking; do
  $PY -m models.export --checkpoint "models/checkpoints/$v.pt" --manifest "$D/test.tsv" --index 126 \
      --out "traces/$v.npz" ${FORCE:+--force}
done
