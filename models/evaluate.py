"""Evaluate a checkpoint on a manifest: WER, CER, activation sparsity (per site and overall),
parameter count, effective MACs/ACs (NeuroBench definitions, see ``models.metrics``).

    python -m models.evaluate --checkpoint models/checkpoints/fatrelu.pt \\
        --manifest models/data/espeak/test.tsv --json out/fatrelu_test.json

The manifest is TSV (WAV path, transcript), 16 kHz or resampled. Utterances run one at a time
(no padding), so the counts are exact. ``--json`` is written only after the whole evaluation has
succeeded (atomically), with at least the keys ``wer``, ``cer``, ``sparsity`` (overall, 0-1),
``params`` and ``utterances``.

Decoding is greedy (best path) unless ``--lexicon FILE`` is given (a word list, or a manifest
whose transcripts' words are taken): then ``wer``/``cer`` come from a lexicon-constrained beam
search (``models.decode``, ``--beam`` hypotheses), and ``greedy_wer``/``greedy_cer`` are still
reported next to them.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from models import ModelsError
from models.checkpoint import load_checkpoint, sha256
from models.data import read_manifest, read_wav
from models.decode import LexiconDecoder, read_lexicon
from models.features import log_mel, normalize_text
from models.metrics import ErrorRate, SparsityMeter
from models.speech import SpeechMamba, greedy_decode, op_table


@torch.no_grad()
def evaluate(model: SpeechMamba, utts, progress: bool = True,
             decoder: LexiconDecoder | None = None) -> dict:
    from tqdm import tqdm

    model.eval()
    er = ErrorRate()
    greedy_er = ErrorRate() if decoder else er  # without a decoder the greedy errors are er's
    meter = SparsityMeter(model)
    tallies = model.set_tally(True)
    kinds = {op.name: op.kind for op in op_table(model)}
    samples, steps = [], []
    try:
        for u in tqdm(utts, desc="evaluate", unit="utt", disable=not progress, mininterval=2):
            feats = log_mel(torch.from_numpy(read_wav(u.wav, where=u.where)))
            if feats.shape[0] < 4:
                raise ModelsError(f"{u.wav}: too short ({feats.shape[0]} frames; need >= 4) ({u.where})")
            logp = model(feats[None])
            greedy = greedy_decode(logp)[0]
            hyp = decoder(logp)[0] if decoder else greedy
            ref = normalize_text(u.text)
            er.add(ref, hyp)
            if decoder:
                greedy_er.add(ref, greedy)
            samples.append({"id": u.id, "ref": ref, "hyp": hyp, **({"greedy": greedy} if decoder else {})})
            steps.append(feats.shape[0] // 4)
    finally:
        meter.close()
        model.set_tally(False)
    n = len(utts)
    synaptic = {k: v for k, v in tallies.items() if kinds.get(k) in ("linear", "conv1d")}
    macs = sum(v["macs"] for v in synaptic.values())
    acs = sum(v["acs"] for v in synaptic.values())
    dense = sum(_dense_synops(model, l) for l in steps)
    return {
        "wer": er.wer, "cer": er.cer, "greedy_wer": greedy_er.wer, "greedy_cer": greedy_er.cer,
        "sparsity": meter.overall(),
        "sparsity_per_site": meter.per_site(),
        "params": sum(p.numel() for p in model.parameters()),
        "utterances": n,
        "effective_macs": macs / n, "effective_acs": acs / n,
        "dense_synops": dense / n,
        "events_per_op": {k: v["events"] / n for k, v in tallies.items()},
        "samples": samples[:20],
    }


def _dense_synops(model: SpeechMamba, steps: int) -> int:
    """Synaptic ops of the Linear/Conv layers if every input were nonzero (NeuroBench "Dense")."""
    total = 0
    for op in op_table(model):
        if op.kind == "linear":
            total += steps * op.in_width * op.out_width
        elif op.kind == "conv1d":  # depthwise: each input reaches `kernel` outputs
            total += steps * op.in_width * op.params["kernel"]
    return total


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m models.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--manifest", required=True, help="TSV: wav path <TAB> transcript")
    p.add_argument("--json", help="write the results here (atomically, after success)")
    p.add_argument("--lexicon", metavar="FILE",
                   help="decode with a lexicon-constrained beam search over these words (a word list, "
                        "or a manifest: its transcripts' words)")
    p.add_argument("--beam", type=int, default=50, help="beam size of the lexicon decoder")
    p.add_argument("--limit", type=int, default=0, help="only the first N utterances")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        model, ckpt = load_checkpoint(args.checkpoint)
        utts = read_manifest(args.manifest)
        if args.limit:
            utts = utts[: args.limit]
        decoder = LexiconDecoder(read_lexicon(args.lexicon), args.beam) if args.lexicon else None
        t0 = time.time()
        res = evaluate(model, utts, progress=not args.no_progress, decoder=decoder)
    except ModelsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    res.update({"checkpoint": str(args.checkpoint), "checkpoint_sha256": sha256(args.checkpoint),
                "manifest": str(args.manifest), "variant": model.cfg.variant,
                "config": model.cfg.to_dict(), "seconds": round(time.time() - t0, 1),
                "decoder": f"lexicon beam {args.beam} ({args.lexicon})" if decoder else "greedy"})
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(res, f, indent=1)
        os.replace(tmp, out)
    print(f"checkpoint  {args.checkpoint} ({res['variant']}, {res['params']} params)")
    print(f"utterances  {res['utterances']}")
    print(f"decoder     {res['decoder']}")
    print(f"WER         {100 * res['wer']:.2f} %")
    print(f"CER         {100 * res['cer']:.2f} %")
    if decoder:
        print(f"greedy      WER {100 * res['greedy_wer']:.2f} %, CER {100 * res['greedy_cer']:.2f} %")
    print(f"sparsity    {100 * res['sparsity']:.2f} % (activation sites, NeuroBench definition)")
    for site, s in res["sparsity_per_site"].items():
        print(f"  {site:32s} {100 * s:6.2f} %")
    print(f"effective MACs / utt  {res['effective_macs']:.4g}")
    print(f"effective ACs / utt   {res['effective_acs']:.4g}")
    print(f"dense synops / utt    {res['dense_synops']:.4g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
