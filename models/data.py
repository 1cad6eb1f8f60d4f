"""Speech data: a reproducible espeak-ng corpus, manifest and LibriSpeech readers, WAV loading.

Build the corpus (deterministic for a given seed and espeak-ng version)::

    python -m models.data build --out models/data/espeak --n-train 8000 --n-dev 200 --n-test 300 --seed 0

writes ``wav/*.wav`` (16 kHz mono PCM16) and ``train.tsv``, ``dev.tsv``, ``test.tsv``.

Manifest format (TSV, one utterance per line): ``wav_path<TAB>transcript``. A relative path is
relative to the manifest's directory. Lines starting with ``#`` and blank lines are skipped.
WAVs at another sample rate are resampled to 16 kHz; stereo is averaged to mono.

Text: a small-vocabulary template grammar (``VOCABULARY``, ~200 words). The test and dev
sentences are drawn first and never appear in the training split (checked, not assumed).
"""
from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import subprocess
import sys
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models import ModelsError

SAMPLE_RATE = 16000

# --------------------------------------------------------------------------- text generator
WORDS = {
    "det": ["the", "a", "my", "your", "his", "her", "our", "their", "this", "that", "every", "one"],
    "num": ["two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "many", "some", "few"],
    "adj": ["red", "blue", "green", "yellow", "black", "white", "small", "big", "old", "young",
            "happy", "quiet", "loud", "fast", "slow", "warm", "cold", "bright", "dark", "soft",
            "heavy", "tiny", "funny", "clever", "strange", "lazy", "brave", "gentle", "hungry", "sleepy"],
    "noun": ["cat", "dog", "bird", "horse", "fish", "mouse", "rabbit", "teacher", "doctor", "farmer",
             "child", "friend", "king", "queen", "robot", "pilot", "baker", "singer", "driver", "student",
             "car", "boat", "train", "house", "garden", "river", "table", "window", "apple", "letter",
             "book", "chair", "clock", "door", "flower", "lamp", "market", "road", "tree", "village"],
    "nouns": ["cats", "dogs", "birds", "horses", "fish", "mice", "rabbits", "teachers", "doctors", "farmers",
              "children", "friends", "kings", "robots", "pilots", "bakers", "singers", "drivers", "students",
              "cars", "boats", "trains", "houses", "apples", "letters", "books", "chairs", "clocks", "flowers"],
    "verb": ["sees", "finds", "likes", "wants", "needs", "takes", "brings", "moves", "opens", "closes",
             "paints", "cleans", "watches", "follows", "helps", "carries", "builds", "visits", "buys", "sells"],
    "verbp": ["see", "find", "like", "want", "need", "take", "bring", "move", "open", "close",
              "paint", "clean", "watch", "follow", "help", "carry", "build", "visit", "buy", "sell"],
    "prep": ["near", "behind", "under", "above", "beside", "inside", "outside", "without", "with", "across"],
    "adv": ["today", "again", "quickly", "slowly", "always", "never", "often", "sometimes", "tonight", "now",
            "early", "later", "together", "carefully", "happily", "quietly"],
}
VOCABULARY = sorted({w for ws in WORDS.values() for w in ws})


def _phrase(rng: random.Random, plural: bool) -> list[str]:
    words = [rng.choice(WORDS["num"])] if plural else [rng.choice(WORDS["det"])]
    if rng.random() < 0.6:
        words.append(rng.choice(WORDS["adj"]))
    words.append(rng.choice(WORDS["nouns"] if plural else WORDS["noun"]))
    return words


def sentence(rng: random.Random) -> str:
    """One sentence of the template grammar: NP V NP [PREP NP] [ADV] (4 to 11 words)."""
    plural = rng.random() < 0.4
    words = _phrase(rng, plural)
    words.append(rng.choice(WORDS["verbp"] if plural else WORDS["verb"]))
    words += _phrase(rng, rng.random() < 0.4)
    if rng.random() < 0.35:
        words.append(rng.choice(WORDS["prep"]))
        words += _phrase(rng, rng.random() < 0.4)
    if rng.random() < 0.4:
        words.append(rng.choice(WORDS["adv"]))
    return " ".join(words)


def make_sentences(n_train: int, n_dev: int, n_test: int, seed: int) -> dict[str, list[str]]:
    """Distinct sentences per split; dev and test sentences never occur in train (nor each other)."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out: dict[str, list[str]] = {}
    for split, n in (("test", n_test), ("dev", n_dev), ("train", n_train)):
        lst: list[str] = []
        tries = 0
        while len(lst) < n:
            s = sentence(rng)
            tries += 1
            if tries > 100 * n + 1000:
                raise ModelsError(f"could not draw {n} distinct {split} sentences")
            if s in seen:
                continue
            seen.add(s)
            lst.append(s)
        out[split] = lst
    return out


# espeak-ng voices (language + variant), speeds (words/min) and pitches (0-99).
VOICES = ["en-us", "en-us+f2", "en-us+m3", "en-gb", "en-gb+f4", "en-gb-x-rp+m1",
          "en-gb-scotland", "en-029+f3", "en-us+m7", "en-gb+f1"]
SPEEDS = (130, 190)
PITCHES = (30, 70)


# --------------------------------------------------------------------------- audio I/O
def resample(x: np.ndarray, sr: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited resampling of a 1-D float signal by FFT (whole-utterance, deterministic)."""
    if sr == target or x.size == 0:
        return x.astype(np.float32)
    n_out = int(round(x.size * target / sr))
    spec = np.fft.rfft(x.astype(np.float64))
    keep = n_out // 2 + 1
    out_spec = np.zeros(keep, dtype=np.complex128)
    m = min(keep, spec.size)
    out_spec[:m] = spec[:m]
    y = np.fft.irfft(out_spec, n=n_out) * (n_out / x.size)
    return y.astype(np.float32)


def read_wav(path: str | os.PathLike, *, where: str = "") -> np.ndarray:
    """Read a WAV/FLAC file as float32 mono at 16 kHz. Errors name the file (and ``where``)."""
    path = Path(path)
    ctx = f" ({where})" if where else ""
    if not path.is_file():
        raise ModelsError(f"{path}: audio file not found{ctx}")
    try:
        import soundfile as sf

        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
        x = data.mean(axis=1)
    except ImportError:
        x, sr = _read_wav_stdlib(path, ctx)
    except Exception as exc:  # soundfile raises its own error types
        raise ModelsError(f"{path}: cannot read audio{ctx}: {exc}") from None
    if x.size == 0:
        raise ModelsError(f"{path}: audio file has no samples{ctx}")
    if not np.all(np.isfinite(x)):
        raise ModelsError(f"{path}: audio contains NaN or Inf{ctx}")
    return resample(x, int(sr))


def _read_wav_stdlib(path: Path, ctx: str) -> tuple[np.ndarray, int]:
    try:
        with wave.open(str(path), "rb") as w:
            sr, ch, sw, n = w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()
            raw = w.readframes(n)
    except (wave.Error, EOFError) as exc:
        raise ModelsError(f"{path}: cannot read WAV{ctx}: {exc}") from None
    if sw != 2:
        raise ModelsError(f"{path}: only 16-bit PCM WAV is supported without soundfile{ctx}")
    x = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    return x.reshape(-1, ch).mean(axis=1), sr


def write_wav(path: str | os.PathLike, x: np.ndarray, sr: int = SAMPLE_RATE) -> None:
    """Write float audio in [-1, 1] as 16-bit PCM mono WAV (stdlib only)."""
    pcm = np.clip(np.round(np.asarray(x, dtype=np.float64) * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())


def synthesize(text: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    """Speak ``text`` with espeak-ng; float32 mono at 16 kHz."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise ModelsError("espeak-ng not found: install it (apt-get install -y espeak-ng)")
    proc = subprocess.run([exe, "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text],
                          capture_output=True, check=False)
    if proc.returncode != 0 or not proc.stdout:
        raise ModelsError(f"espeak-ng failed for voice {voice!r}: {proc.stderr.decode(errors='replace').strip()}")
    with wave.open(io.BytesIO(proc.stdout), "rb") as w:
        sr = w.getframerate()
        raw = w.readframes(w.getnframes())
    x = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    return resample(x, sr)


# --------------------------------------------------------------------------- manifests
@dataclass(frozen=True)
class Utterance:
    id: str
    wav: Path
    text: str
    where: str = ""  # "manifest.tsv:12" for error messages


def read_manifest(path: str | os.PathLike) -> list[Utterance]:
    """Read a TSV manifest (wav path, transcript). Rows pointing nowhere are errors naming the row."""
    path = Path(path)
    if not path.is_file():
        raise ModelsError(f"{path}: manifest not found")
    base = path.parent
    out: list[Utterance] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip() or line.startswith("#"):
                continue
            cols = line.split("\t")
            where = f"{path}:{lineno}"
            if len(cols) < 2:
                raise ModelsError(f"{where}: expected 2 tab-separated columns (wav path, transcript), got {len(cols)}")
            wav = Path(cols[0])
            if not wav.is_absolute():
                wav = base / wav
            if not wav.is_file():
                raise ModelsError(f"{where}: audio file not found: {wav}")
            out.append(Utterance(id=wav.stem, wav=wav, text=cols[1].strip(), where=where))
    if not out:
        raise ModelsError(f"{path}: manifest has no utterances")
    return out


def write_manifest(path: str | os.PathLike, rows: list[tuple[str, str]]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for wav, text in rows:
            f.write(f"{wav}\t{text}\n")


def read_librispeech(root: str | os.PathLike) -> list[Utterance]:
    """Read a LibriSpeech directory (``<spk>/<chapter>/<spk>-<chapter>.trans.txt`` + ``.flac``)."""
    root = Path(root)
    if not root.is_dir():
        raise ModelsError(f"{root}: LibriSpeech directory not found")
    out: list[Utterance] = []
    for trans in sorted(root.rglob("*.trans.txt")):
        with open(trans, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                uid, _, text = line.strip().partition(" ")
                audio = trans.parent / f"{uid}.flac"
                if not audio.is_file():
                    audio = trans.parent / f"{uid}.wav"
                if not audio.is_file():
                    raise ModelsError(f"{trans}:{lineno}: audio for {uid} not found in {trans.parent}")
                out.append(Utterance(id=uid, wav=audio, text=text.lower(), where=f"{trans}:{lineno}"))
    if not out:
        raise ModelsError(f"{root}: no *.trans.txt files found (not a LibriSpeech directory?)")
    return out


# --------------------------------------------------------------------------- corpus builder
def _voice_for(seed: int, split: str, i: int) -> tuple[str, int, int]:
    """Voice, speed and pitch of utterance ``i`` of ``split`` (independent of the split sizes)."""
    rng = random.Random(f"{seed}/{split}/{i}")
    return rng.choice(VOICES), rng.randint(*SPEEDS), rng.randint(*PITCHES)


def _synth_job(job: tuple[str, str, str, int, int]) -> str:
    wav_path, text, voice, speed, pitch = job
    if not os.path.isfile(wav_path):
        tmp = wav_path + ".tmp"
        write_wav(tmp, synthesize(text, voice, speed, pitch))
        os.replace(tmp, wav_path)
    return wav_path


def build_corpus(out: str | os.PathLike, n_train: int, n_dev: int, n_test: int, seed: int = 0,
                 progress: bool = True, jobs: int = 1) -> dict[str, Path]:
    """Synthesize the corpus into ``out``; returns the manifest paths. Deterministic per seed:
    the sentences of a split depend only on the seed and the sizes of the splits before it
    (test, dev, train), the voice of an utterance only on (seed, split, index)."""
    from tqdm import tqdm

    out = Path(out)
    (out / "wav").mkdir(parents=True, exist_ok=True)
    splits = make_sentences(n_train, n_dev, n_test, seed)
    manifests, work = {}, []
    for split in ("train", "dev", "test"):
        rows = []
        for i, text in enumerate(splits[split]):
            name = f"{split}-{i:06d}"
            work.append((str(out / "wav" / f"{name}.wav"), text, *_voice_for(seed, split, i)))
            rows.append((f"wav/{name}.wav", text))
        manifests[split] = out / f"{split}.tsv"
        write_manifest(manifests[split], rows)
    work.sort(key=lambda w: ("test", "dev", "train").index(Path(w[0]).name.split("-")[0]))  # eval sets first
    bar = tqdm(total=len(work), desc="espeak-ng", unit="utt", disable=not progress, mininterval=2)
    if jobs > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(jobs) as pool:
            for _ in pool.imap_unordered(_synth_job, work, chunksize=16):
                bar.update(1)
    else:
        for job in work:
            _synth_job(job)
            bar.update(1)
    bar.close()
    return manifests


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m models.data", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="synthesize the espeak-ng corpus")
    b.add_argument("--out", required=True)
    b.add_argument("--n-train", type=int, default=8000)
    b.add_argument("--n-dev", type=int, default=200)
    b.add_argument("--n-test", type=int, default=300)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--jobs", type=int, default=1, help="parallel espeak-ng processes")
    b.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    try:
        m = build_corpus(args.out, args.n_train, args.n_dev, args.n_test, args.seed, not args.no_progress, args.jobs)
    except ModelsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for split, path in m.items():
        print(f"{split}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
