"""Print the markdown results table of docs/models.md from the evaluate JSON files.

    python models/scripts/results_table.py models/data/results/{dense,fatrelu,spiking}_test.json
"""
import json
import sys

print("| variant | test WER, greedy | test CER, greedy | test WER, lexicon beam | test CER, lexicon beam "
      "| activation sparsity | params | effective MACs / utt | effective ACs / utt | dense synops / utt |")
print("|---|---|---|---|---|---|---|---|---|---|")
for path in sys.argv[1:]:
    r = json.load(open(path))
    print(f"| {r['variant']} | {100 * r['greedy_wer']:.2f} % | {100 * r['greedy_cer']:.2f} % | "
          f"{100 * r['wer']:.2f} % | {100 * r['cer']:.2f} % | {100 * r['sparsity']:.2f} % | "
          f"{r['params']:,} | {r['effective_macs'] / 1e6:.2f} M | {r['effective_acs'] / 1e6:.2f} M | "
          f"{r['dense_synops'] / 1e6:.2f} M |")
