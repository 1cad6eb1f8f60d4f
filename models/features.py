"""Log-mel features (torch.stft + a mel filterbank built here; torchaudio is not needed) and the
character tokenizer of the CTC head.

Shapes: a waveform is ``(samples,)`` float32 at 16 kHz; features are ``(frames, n_mels)`` with a
10 ms hop (frames = 1 + samples // hop).
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch

SAMPLE_RATE = 16000
N_FFT = 400  # 25 ms window
HOP = 160  # 10 ms hop
N_MELS = 80

# CTC alphabet: index 0 is the blank.
ALPHABET = " 'abcdefghijklmnopqrstuvwxyz"
BLANK = 0
VOCAB_SIZE = len(ALPHABET) + 1


def _hz_to_mel(f: float) -> float:
    return 2595.0 * math.log10(1.0 + f / 700.0)


@lru_cache(maxsize=4)
def mel_filterbank(n_mels: int = N_MELS, n_fft: int = N_FFT, sr: int = SAMPLE_RATE,
                   f_min: float = 20.0, f_max: float | None = None) -> torch.Tensor:
    """Triangular HTK-scale mel filterbank, ``(n_fft // 2 + 1, n_mels)``."""
    f_max = f_max or sr / 2
    n_freqs = n_fft // 2 + 1
    freqs = torch.linspace(0, sr / 2, n_freqs, dtype=torch.float64)
    mels = torch.linspace(_hz_to_mel(f_min), _hz_to_mel(f_max), n_mels + 2, dtype=torch.float64)
    hz = 700.0 * (10 ** (mels / 2595.0) - 1.0)
    lower, center, upper = hz[:-2], hz[1:-1], hz[2:]
    up = (freqs[:, None] - lower[None]) / (center - lower)[None]
    down = (upper[None] - freqs[:, None]) / (upper - center)[None]
    return torch.clamp(torch.minimum(up, down), min=0.0).to(torch.float32)


def log_mel(wave: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """``(samples,)`` -> ``(frames, n_mels)`` log-mel energies, mean/variance-normalized per utterance."""
    wave = torch.as_tensor(wave, dtype=torch.float32)
    window = torch.hann_window(N_FFT)
    spec = torch.stft(wave, N_FFT, HOP, window=window, center=True, return_complex=True)
    power = spec.abs().pow(2).T  # (frames, freqs)
    mel = power @ mel_filterbank()
    feats = torch.log(mel + 1e-6)
    if normalize:
        feats = (feats - feats.mean(0, keepdim=True)) / (feats.std(0, keepdim=True) + 1e-5)
    return feats


def normalize_text(text: str) -> str:
    """Lower-case, keep the alphabet, collapse spaces."""
    text = text.lower()
    text = "".join(c if c in ALPHABET else " " for c in text)
    return " ".join(text.split())


def encode(text: str) -> list[int]:
    return [ALPHABET.index(c) + 1 for c in normalize_text(text)]


def decode(ids) -> str:
    return "".join(ALPHABET[i - 1] for i in ids if i != BLANK)
