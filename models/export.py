"""Export the input events of every op of a checkpoint's model on one utterance, as a trace
(format v1, ``hwsim.trace``).

    python -m models.export --checkpoint models/checkpoints/fatrelu.pt --audio FILE.wav \\
        --out traces/fatrelu.npz [--transcript "..."] [--force]
    python -m models.export --checkpoint CKPT --manifest models/data/espeak/test.tsv --index 0 --out X.npz

Forward pre-hooks on the op modules (``models.speech.op_table``) record each op's input at every
encoder step (one step = 4 input frames = 40 ms); an event is a nonzero input value, its channel
the input channel (concatenated inputs for the two-input elementwise ops: gate = (y, act(z)),
residual = (block output, skip)). Spiking ops (inputs are spikes) are stored binary (no values).
An existing ``--out`` is refused unless ``--force``; nothing is written if anything fails.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from models import ModelsError
from models.checkpoint import load_checkpoint, sha256
from models.data import Utterance, read_manifest, read_wav
from models.features import log_mel, normalize_text
from models.speech import SUBSAMPLE, SpeechMamba, greedy_decode, op_table

STEP_MS = 10.0 * SUBSAMPLE  # 10 ms hop x 4 subsampling


@torch.no_grad()
def record(model: SpeechMamba, feats: torch.Tensor):
    """Run one utterance (f, m) with hooks; returns (op infos, per-op input (l, w) tensors,
    hypothesis, model op tallies)."""
    model.eval()
    ops = op_table(model)
    seen: list[tuple[str, torch.Tensor]] = []
    handles = []
    for op in ops:
        handles.append(op.module.register_forward_pre_hook(
            lambda m, inputs, op=op: seen.append((op.name, op.extract(inputs)[0].detach().clone()))))
    tallies = model.set_tally(True)
    try:
        logp = model(feats[None])
    finally:
        for h in handles:
            h.remove()
        model.set_tally(False)
    order = [n for n, _ in seen]
    if order != [op.name for op in ops]:
        raise RuntimeError(f"hook order {order} differs from op_table order")
    return ops, [x for _, x in seen], greedy_decode(logp)[0], tallies


def to_events(x: torch.Tensor, binary: bool):
    """(l, w) input values -> CSR (indptr int64 [l+1], index int32, value float32 or None)."""
    from hwsim.trace import OpEvents

    mask = x != 0
    counts = mask.sum(1).numpy().astype(np.int64)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    rows_cols = mask.nonzero()  # row-major: steps ascending, channels ascending within a step
    index = rows_cols[:, 1].numpy().astype(np.int32)
    value = None if binary else x[mask].numpy().astype(np.float32)
    if binary and not bool(((x == 0) | (x == 1)).all()):
        raise RuntimeError("an op marked binary received values other than 0/1")
    return OpEvents(indptr=indptr, index=index, value=value)


def export(checkpoint: str, utt: Utterance, out: str, force: bool = False):
    from hwsim.trace import OpSpec, make_trace, save_trace

    out_p = Path(out)
    if out_p.exists() and not force:
        raise ModelsError(f"{out_p}: exists; pass --force to overwrite it")
    model, ckpt = load_checkpoint(checkpoint)
    feats = log_mel(torch.from_numpy(read_wav(utt.wav, where=utt.where)))
    if feats.shape[0] < SUBSAMPLE:
        raise ModelsError(f"{utt.wav}: too short ({feats.shape[0]} frames; need >= {SUBSAMPLE})")
    ops, inputs, hyp, tallies = record(model, feats)
    steps = feats.shape[0] // SUBSAMPLE
    specs, events = [], []
    for op, x in zip(ops, inputs):
        w = op.module.weight if op.kind == "linear" and hasattr(op.module, "weight") else None
        density = float((w != 0).float().mean()) if w is not None else 1.0
        specs.append(OpSpec(name=op.name, kind=op.kind, in_width=op.in_width, out_width=op.out_width,
                            source=op.source, binary=op.binary, weight_density=max(density, 1e-9),
                            params=op.params))
        assert x.shape == (steps, op.in_width), (op.name, tuple(x.shape))
        events.append(to_events(x, op.binary))
    provenance = {
        "synthetic": False,
        "checkpoint_sha256": sha256(checkpoint),
        "utterance_id": utt.id,
        "transcript": normalize_text(utt.text) if utt.text else None,
        "hypothesis": hyp,
        "generator": "models.export",
    }
    info = {"config": model.cfg.to_dict(), "checkpoint": Path(checkpoint).name,
            "audio": utt.wav.name, "frames": int(feats.shape[0]),
            "thresholds": model.thresholds()}
    trace = make_trace(specs, events, steps=steps, step_ms=STEP_MS, variant=model.cfg.variant,
                       model=info, provenance=provenance)
    out_p.parent.mkdir(parents=True, exist_ok=True)
    save_trace(out_p, trace)
    return trace, tallies


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m models.export", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--audio", help="a WAV file")
    src.add_argument("--manifest", help="a TSV manifest (with --index)")
    p.add_argument("--index", type=int, default=0, help="row of --manifest (0-based, data rows only)")
    p.add_argument("--transcript", default="", help="reference text for --audio (provenance)")
    p.add_argument("--out", required=True)
    p.add_argument("--force", action="store_true", help="overwrite an existing --out")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    try:
        if args.audio:
            wav = Path(args.audio)
            utt = Utterance(id=wav.stem, wav=wav, text=args.transcript, where="--audio")
        else:
            utts = read_manifest(args.manifest)
            if not 0 <= args.index < len(utts):
                raise ModelsError(f"{args.manifest}: --index {args.index} out of range (0..{len(utts) - 1})")
            utt = utts[args.index]
        if not utt.wav.is_file():
            raise ModelsError(f"{utt.wav}: audio file not found")
        trace, _ = export(args.checkpoint, utt, args.out, args.force)
    except Exception as exc:
        from hwsim.errors import InputError

        if not isinstance(exc, (ModelsError, InputError)):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    prov = trace.header["provenance"]
    print(f"wrote {args.out}: {len(trace.ops)} ops, {trace.steps} steps x {STEP_MS:g} ms, "
          f"{trace.n_events()} events, variant {trace.variant}")
    print(f"transcript: {prov.get('transcript')}\nhypothesis: {prov.get('hypothesis')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
