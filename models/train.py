"""Train a SpeechMamba variant with CTC on CPU, or fine-tune dense -> fatrelu / spiking.

    python -m models.train --variant dense --train models/data/espeak/train.tsv \\
        --dev models/data/espeak/dev.tsv --out models/checkpoints/dense.pt --steps 3000
    python -m models.train --variant fatrelu --init models/checkpoints/dense.pt \\
        --target-sparsity 0.7 --train ... --dev ... --out models/checkpoints/fatrelu.pt --steps 600

Features are cached next to the manifest (``<manifest>.feats.pt``). The learning rate warms up
for ``--warmup`` steps, then follows a cosine to 5 % of ``--lr`` at ``--steps``; ``--minutes``
stops earlier if the time budget runs out. The checkpoint with the best dev WER (then CER) is kept (for
fatrelu/spiking: the best among those that reach ``--target-sparsity`` on dev, if given).

FATReLU thresholds are scheduled, not learned: every ``--calib-every`` steps each site's
threshold is set to the quantile of its inputs at the scheduled sparsity, which ramps linearly
from ``--ramp-start`` (0.5) to ``--target-sparsity`` over ``--ramp-steps``. The quantile is taken
on the batch's features before any mask; ``--calib-momentum`` averages it with the previous
threshold, and ``--calib-every 0`` keeps the ``--init`` checkpoint's thresholds. Spiking fine-tuning may add a
firing-rate penalty ``--rate-penalty * mean(spikes)``.

``--augment`` applies SpecAugment masks; ``--distill TEACHER`` adds ``--distill-weight`` x the frame-level KL divergence from a (dense)
teacher's CTC posteriors to the student's: the sparse student then learns to keep the dense
model's alignments rather than only the transcript, which the thresholds otherwise disturb.
"""
from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from models import ModelsError
from models.checkpoint import load_checkpoint, save_checkpoint
from models.data import read_manifest
from models.features import encode, log_mel, normalize_text
from models.metrics import ErrorRate, SparsityMeter
from models.speech import SpeechConfig, SpeechMamba, greedy_decode


# --------------------------------------------------------------------------- data
def _features_job(job: tuple[str, str, str, str]) -> dict:
    from models.data import read_wav

    torch.set_num_threads(1)
    uid, wav, where, text = job
    feats = log_mel(torch.from_numpy(read_wav(wav, where=where)))
    text = normalize_text(text)
    # numpy, not tensors: tensors returned through a Pool travel as shared-memory file
    # descriptors, which runs out of descriptors ("received 0 items of ancdata") on big corpora
    return {"id": uid, "feats": feats.half().numpy(), "text": text, "tokens": encode(text)}


def _to_torch(d: dict) -> dict:
    return {**d, "feats": torch.from_numpy(d["feats"]), "tokens": torch.tensor(d["tokens"], dtype=torch.long)}


def load_features(manifest: str | os.PathLike, cache: bool = True, progress: bool = True,
                  jobs: int = 1) -> list[dict]:
    """[{id, feats (f, 80) float16, text, tokens}] for every row of the manifest (cached)."""
    from tqdm import tqdm

    manifest = Path(manifest)
    utts = read_manifest(manifest)
    cache_path = manifest.with_name(manifest.name + ".feats.pt")
    if cache and cache_path.is_file() and cache_path.stat().st_mtime >= manifest.stat().st_mtime:
        data = torch.load(cache_path, weights_only=True)
        if len(data) == len(utts):
            return data
    work = [(u.id, str(u.wav), u.where, u.text) for u in utts]
    bar = tqdm(total=len(work), desc=f"features {manifest.name}", unit="utt", disable=not progress, mininterval=2)
    data = []
    if jobs > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(jobs) as pool:
            for d in pool.imap(_features_job, work, chunksize=32):
                data.append(_to_torch(d))
                bar.update(1)
    else:
        for job in work:
            data.append(_to_torch(_features_job(job)))
            bar.update(1)
    bar.close()
    if cache:
        tmp = cache_path.with_suffix(".tmp")
        torch.save(data, tmp)
        os.replace(tmp, cache_path)
    return data


def make_batches(data: list[dict], batch: int, rng: random.Random | None) -> list[list[int]]:
    """Length-sorted batches (little padding), in random order when ``rng`` is given."""
    order = sorted(range(len(data)), key=lambda i: data[i]["feats"].shape[0])
    if rng is not None:  # jitter the sort so batches differ between epochs
        order = sorted(order, key=lambda i: data[i]["feats"].shape[0] + rng.randint(0, 40))
    batches = [order[i:i + batch] for i in range(0, len(order), batch)]
    if rng is not None:
        rng.shuffle(batches)
    return batches


def collate(data: list[dict], idx: list[int], device="cpu"):
    feats = [data[i]["feats"].float() for i in idx]
    lens = torch.tensor([f.shape[0] for f in feats])
    x = torch.zeros(len(idx), int(lens.max()), feats[0].shape[1])
    for j, f in enumerate(feats):
        x[j, : f.shape[0]] = f
    tokens = [data[i]["tokens"] for i in idx]
    tl = torch.tensor([len(t) for t in tokens])
    return x.to(device), lens.to(device), torch.cat(tokens).to(device), tl.to(device)


def spec_augment(x: torch.Tensor, lens: torch.Tensor, rng: random.Random, freq_masks: int = 1,
                 freq_width: int = 8, time_masks: int = 0, time_width: int = 24) -> torch.Tensor:
    """SpecAugment masks (to the utterance mean, i.e. 0 after normalization): new inputs each
    epoch, so a memorized training set still teaches something. Frequency masks only by
    default: time masks erase whole characters, which unsettles a converged model."""
    x = x.clone()
    for b in range(x.shape[0]):
        for _ in range(freq_masks):
            w = rng.randint(0, freq_width)
            f = rng.randint(0, x.shape[2] - w)
            x[b, :, f:f + w] = 0
        for _ in range(time_masks):
            w = rng.randint(0, min(time_width, int(lens[b]) // 5))
            t = rng.randint(0, max(0, int(lens[b]) - w))
            x[b, t:t + w] = 0
    return x


def ctc_loss(model: SpeechMamba, x, lens, targets, tlens, teacher: SpeechMamba | None = None):
    """CTC loss, and (with a teacher) the mean per-frame KL(teacher || model) over real frames."""
    logp = model(x)  # (b, l, v)
    olens = torch.clamp(SpeechMamba.out_lengths(lens), max=logp.shape[1])
    ctc = F.ctc_loss(logp.transpose(0, 1), targets, olens, tlens, blank=0, zero_infinity=True,
                     reduction="mean")
    if teacher is None:
        return ctc, None
    with torch.no_grad():
        t_logp = teacher(x)
    real = torch.arange(logp.shape[1], device=logp.device)[None, :] < olens[:, None]
    kl = (t_logp.exp() * (t_logp - logp)).sum(-1)
    return ctc, kl[real].mean()


@torch.no_grad()
def evaluate_batched(model: SpeechMamba, data: list[dict], batch: int = 32, device="cpu") -> dict:
    """Greedy WER/CER and activation sparsity (real frames only) over ``data``."""
    model.eval()
    er = ErrorRate()
    meter = SparsityMeter(model)
    try:
        for idx in make_batches(data, batch, None):
            x, lens, _, _ = collate(data, idx, device)
            lens = lens.cpu()
            olens = SpeechMamba.out_lengths(lens)
            meter.lengths = olens
            hyps = greedy_decode(model(x), olens)
            for i, h in zip(idx, hyps):
                er.add(data[i]["text"], h)
    finally:
        meter.close()
    return {"wer": er.wer, "cer": er.cer, "sparsity": meter.overall(), "per_site": meter.per_site()}


# --------------------------------------------------------------------------- schedules
def lr_at(step: int, base: float, warmup: int, total: int, time_frac: float = 0.0) -> float:
    """Linear warm-up, then cosine to 5 % by step ``total`` or by the time budget, whichever is first."""
    if step < warmup:
        return base * (step + 1) / warmup
    p = min(1.0, max((step - warmup) / max(1, total - warmup), time_frac))
    return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * p)))


class ThresholdSchedule:
    """Sets each FATReLU site's threshold to the quantile of its inputs at the scheduled sparsity."""

    def __init__(self, model: SpeechMamba, target: float, ramp_steps: int, start: float = 0.5,
                 momentum: float = 0.0):
        self.model, self.target, self.ramp, self.start = model, target, ramp_steps, start
        self.momentum = momentum
        self.inputs: dict[str, torch.Tensor] = {}
        self.handles = []

    def arm(self):
        for name, site in self.model.sites().items():
            self.handles.append(site.register_forward_pre_hook(self._hook(name)))

    def _hook(self, name):
        def fn(module, inputs):
            x = inputs[0].detach().reshape(-1)
            if x.numel() > 200_000:
                x = x[torch.randint(0, x.numel(), (200_000,))]
            self.inputs[name] = x
        return fn

    def update(self, step: int):
        s = self.start + (self.target - self.start) * min(1.0, step / max(1, self.ramp))
        old = self.model.thresholds()
        th = {n: max(0.0, float(torch.quantile(x.float(), s))) for n, x in self.inputs.items()}
        if self.momentum:  # a running average: one batch's quantile alone makes the thresholds jitter
            th = {n: self.momentum * old[n] + (1 - self.momentum) * t for n, t in th.items()}
        self.model.set_thresholds(th)
        for h in self.handles:
            h.remove()
        self.handles, self.inputs = [], {}
        return s


class RateMeter:
    """Keeps the outputs of the activation sites (with grad) for a firing-rate penalty."""

    def __init__(self, model: SpeechMamba):
        self.outs: list[torch.Tensor] = []
        self.handles = [s.register_forward_hook(lambda m, i, o: self.outs.append(o))
                        for s in model.sites().values()]

    def pop_mean(self) -> torch.Tensor:
        r = torch.stack([o.abs().mean() for o in self.outs]).mean()
        self.outs = []
        return r


# --------------------------------------------------------------------------- main loop
def train(args) -> dict:
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    if out.exists() and not args.force:
        raise ModelsError(f"{out}: exists; pass --force to overwrite it")
    dev = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                       ("cpu" if args.device == "auto" else args.device))
    train_data = load_features(args.train, jobs=args.feature_jobs)
    dev_data = load_features(args.dev, jobs=args.feature_jobs)
    test_data = load_features(args.test, jobs=args.feature_jobs) if args.test else None  # before CUDA init
    if args.max_dev:
        dev_data = dev_data[: args.max_dev]
    if args.init:
        model, _ = load_checkpoint(args.init, variant=args.variant)
    else:
        model = SpeechMamba(SpeechConfig(d_model=args.d_model, n_layers=args.layers, d_state=args.d_state,
                                         variant=args.variant, layout=args.layout))
    model.to(dev)
    cfg = model.cfg
    params = sum(p.numel() for p in model.parameters())
    print(f"model: {cfg.to_dict()} params={params}", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    sched = None
    if cfg.variant == "fatrelu":
        sched = ThresholdSchedule(model, args.target_sparsity or 0.7, args.ramp_steps, args.ramp_start,
                                  args.calib_momentum)
    rates = RateMeter(model) if args.rate_penalty > 0 else None
    teacher = None
    if args.distill:
        teacher, _ = load_checkpoint(args.distill)
        teacher.to(dev).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)

    from tqdm import tqdm

    t0 = time.time()
    step, best, history = 0, None, []
    bar = tqdm(total=args.steps, desc=f"train {cfg.variant}", unit="step", mininterval=5)
    done = False
    while not done:
        for idx in make_batches(train_data, args.batch, rng):
            model.train()
            for g in opt.param_groups:
                g["lr"] = lr_at(step, args.lr, args.warmup, args.steps,
                                (time.time() - t0) / 60 / args.minutes if args.minutes else 0.0)
            calib = sched is not None and args.calib_every and step % args.calib_every == 0
            x, lens, tg, tl = collate(train_data, idx, dev)
            if calib:  # on the clean features, before any mask
                sched.arm()
                with torch.no_grad():
                    model(x)
                sched.update(step)
            if args.augment:
                x = spec_augment(x, lens, rng)
            loss, kl = ctc_loss(model, x, lens, tg, tl, teacher)
            total = loss if kl is None else loss + args.distill_weight * kl
            if rates is not None:
                total = loss + args.rate_penalty * rates.pop_mean()
            opt.zero_grad()
            total.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", **({} if kl is None else {"kl": f"{kl.item():.4f}"}))
            minutes = (time.time() - t0) / 60
            last = step >= args.steps or (args.minutes and minutes >= args.minutes)
            if step % args.eval_every == 0 or last:
                ev = evaluate_batched(model, dev_data, device=dev)
                ok = not args.target_sparsity or ev["sparsity"] >= args.target_sparsity - 0.005
                rec = {"step": step, "minutes": round(minutes, 2), "loss": round(loss.item(), 4),
                       "dev_wer": round(ev["wer"], 4), "dev_cer": round(ev["cer"], 4),
                       "dev_sparsity": round(ev["sparsity"], 4), "saved": False}
                if ok and (best is None or (ev["wer"], ev["cer"]) <= (best["dev_wer"], best["dev_cer"])):
                    rec["saved"] = True
                    best = rec
                    info = {"args": {k: v for k, v in vars(args).items()}, "step": step,
                            "minutes": round(minutes, 2), "dev": rec, "history": history + [rec],
                            "params": params}
                    save_checkpoint(out, model, info)
                history.append(rec)
                print(f"eval {rec}", flush=True)
            if last:
                done = True
                break
    bar.close()
    print(f"trained {step} steps in {(time.time() - t0) / 60:.2f} min on {dev}", flush=True)
    if best is None:  # nothing reached the sparsity target: keep the last state, say so
        save_checkpoint(out, model, {"args": vars(args), "step": step, "history": history,
                                     "note": "sparsity target not reached on dev", "params": params})
    result = {"best": best, "history": history}
    if args.test:
        m, _ = load_checkpoint(out)
        ev = evaluate_batched(m.to(dev), test_data, device=dev)
        result["test"] = ev
        print(f"test {out}: wer={ev['wer']:.4f} cer={ev['cer']:.4f} sparsity={ev['sparsity']:.4f}", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m models.train", description=__doc__.split("\n")[0])
    p.add_argument("--variant", choices=["dense", "fatrelu", "spiking"], default="dense")
    p.add_argument("--train", required=True, help="training manifest (TSV)")
    p.add_argument("--dev", required=True, help="dev manifest (TSV)")
    p.add_argument("--out", required=True, help="checkpoint to write")
    p.add_argument("--force", action="store_true", help="overwrite an existing --out")
    p.add_argument("--init", help="checkpoint to start from (fine-tuning)")
    p.add_argument("--layout", choices=["mamba", "conmamba"], default="mamba")
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--d-state", type=int, default=8)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--minutes", type=float, default=0.0, help="stop after this many minutes (0 = no limit)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--max-dev", type=int, default=0, help="use only the first N dev utterances")
    p.add_argument("--target-sparsity", type=float, default=0.0)
    p.add_argument("--ramp-steps", type=int, default=300)
    p.add_argument("--ramp-start", type=float, default=0.5, help="scheduled sparsity at step 0")
    p.add_argument("--calib-every", type=int, default=10,
                   help="steps between threshold calibrations (0: keep the --init checkpoint's thresholds)")
    p.add_argument("--calib-momentum", type=float, default=0.0,
                   help="weight of the previous thresholds in each calibration (0: the batch's quantile only)")
    p.add_argument("--rate-penalty", type=float, default=0.0)
    p.add_argument("--distill", metavar="TEACHER", help="checkpoint whose CTC posteriors the model also learns (KL)")
    p.add_argument("--distill-weight", type=float, default=1.0)
    p.add_argument("--augment", action="store_true", help="SpecAugment frequency masks")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    p.add_argument("--feature-jobs", type=int, default=1, help="processes computing features")
    p.add_argument("--test", help="test manifest: evaluate the saved checkpoint on it at the end")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        res = train(args)
    except ModelsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"best: {res['best']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
