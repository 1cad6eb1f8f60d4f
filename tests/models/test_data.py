"""Corpus generator, audio I/O, manifests, LibriSpeech reader, features, training CLI."""
import hashlib
import shutil

import numpy as np
import pytest
import torch

from models_helpers import write_tone
from models import ModelsError
from models.data import (VOCABULARY, build_corpus, make_sentences, read_librispeech, read_manifest,
                         read_wav, resample, write_wav)
from models.features import ALPHABET, decode, encode, log_mel, mel_filterbank, normalize_text


def test_sentences_are_deterministic_and_splits_disjoint():
    a = make_sentences(300, 20, 30, seed=0)
    b = make_sentences(300, 20, 30, seed=0)
    assert a == b
    assert not set(a["test"]) & set(a["train"]) and not set(a["dev"]) & set(a["train"])
    # test/dev do not depend on the size of train
    c = make_sentences(50, 20, 30, seed=0)
    assert c["test"] == a["test"] and c["dev"] == a["dev"]
    words = {w for s in a["train"] for w in s.split()}
    assert words <= set(VOCABULARY) and len(VOCABULARY) < 300
    assert all(set(s) <= set(ALPHABET) for s in a["train"])


def test_resample_keeps_duration_and_pitch():
    sr = 22050
    t = np.arange(sr) / sr
    y = resample(np.sin(2 * np.pi * 440 * t), sr)
    assert len(y) == 16000
    spec = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spec) - 440) <= 1  # 1 s of audio: bin = Hz


def test_read_wav_errors_and_resampling(tmp_path):
    with pytest.raises(ModelsError, match="nope.wav: audio file not found"):
        read_wav(tmp_path / "nope.wav")
    empty = tmp_path / "empty.wav"
    write_wav(empty, np.zeros(0))
    with pytest.raises(ModelsError, match="empty.wav: audio file has no samples"):
        read_wav(empty)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF....not a wav")
    with pytest.raises(ModelsError, match="junk.wav: cannot read"):
        read_wav(junk)
    w8 = tmp_path / "w8.wav"
    write_wav(w8, np.zeros(8000) + 0.1, 8000)
    assert len(read_wav(w8)) == 16000


def test_manifest_reader(tmp_path):
    wav = write_tone(tmp_path / "a.wav", 0.3)
    m = tmp_path / "m.tsv"
    m.write_text(f"# comment\n\na.wav\tHello there\n{wav}\tabs path\n")
    utts = read_manifest(m)
    assert [u.text for u in utts] == ["Hello there", "abs path"] and utts[0].wav == wav
    m.write_text("a.wav\n")
    with pytest.raises(ModelsError, match=r"m.tsv:1: expected 2 tab-separated columns"):
        read_manifest(m)
    m.write_text("a.wav\tok\nb.wav\tgone\n")
    with pytest.raises(ModelsError, match=r"m.tsv:2: audio file not found: .*b.wav"):
        read_manifest(m)
    with pytest.raises(ModelsError, match="manifest not found"):
        read_manifest(tmp_path / "none.tsv")


def test_librispeech_reader(tmp_path):
    d = tmp_path / "LibriSpeech" / "dev-clean" / "84" / "121123"
    d.mkdir(parents=True)
    write_tone(d / "84-121123-0000.wav", 0.2)
    (d / "84-121123.trans.txt").write_text("84-121123-0000 GO DO YOU HEAR\n")
    utts = read_librispeech(tmp_path / "LibriSpeech")
    assert len(utts) == 1 and utts[0].text == "go do you hear"
    (d / "84-121123.trans.txt").write_text("84-121123-0001 MISSING\n")
    with pytest.raises(ModelsError, match=r"trans.txt:1: audio for 84-121123-0001 not found"):
        read_librispeech(tmp_path / "LibriSpeech")


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (apt-get install espeak-ng)")
def test_build_corpus_is_deterministic(tmp_path):
    m1 = build_corpus(tmp_path / "a", 3, 1, 1, seed=3, progress=False)
    m2 = build_corpus(tmp_path / "b", 3, 1, 1, seed=3, progress=False)
    assert m1["train"].read_text() == m2["train"].read_text()
    for name in ("train-000000.wav", "test-000000.wav"):
        # digests, not the bytes: pytest's diff of two ~100 kB byte strings runs for hours
        a, b = (hashlib.sha256((tmp_path / d / "wav" / name).read_bytes()).hexdigest() for d in "ab")
        assert a == b, name
    assert len(read_manifest(m1["train"])) == 3


def test_features_and_tokenizer():
    fb = mel_filterbank()
    assert fb.shape == (201, 80) and torch.all(fb >= 0) and torch.all(fb.sum(0) > 0)
    feats = log_mel(torch.randn(16000))
    assert feats.shape == (101, 80) and torch.isfinite(feats).all()
    assert normalize_text("Hello,  WORLD!") == "hello world"
    assert decode(encode("it's a dog")) == "it's a dog"


def test_train_cli_tiny_and_refuses_overwrite(tmp_path):
    from models.train import main

    rows = []
    for i, text in enumerate(["red cat", "blue dog", "one bird"]):
        write_tone(tmp_path / f"u{i}.wav", 0.6, f0=150 + 60 * i, seed=i)
        rows.append(f"u{i}.wav\t{text}")
    man = tmp_path / "m.tsv"
    man.write_text("\n".join(rows) + "\n")
    out = tmp_path / "c.pt"
    args = ["--train", str(man), "--dev", str(man), "--out", str(out), "--d-model", "16", "--layers", "1",
            "--d-state", "4", "--steps", "3", "--batch", "2", "--eval-every", "3", "--warmup", "1"]
    assert main(args) == 0 and out.is_file()
    before = out.read_bytes()
    assert main(args) == 2  # exists, no --force
    assert out.read_bytes() == before
    assert main(args + ["--variant", "spiking", "--init", str(out), "--out", str(tmp_path / "s.pt")]) == 0
