"""Accuracy and activity metrics: WER/CER (Levenshtein), activation sparsity, effective ops.

Definitions (NeuroBench, Yik et al. 2024, "NeuroBench: a framework for benchmarking neuromorphic
computing algorithms and systems"):

- Activation sparsity: zeros / all outputs of the activation sites (SiLU, FATReLU or LIF), over
  all sites, time steps and utterances (``ActivationSparsity``). Reported per site as well.
- Effective MACs / ACs: for every Linear and Conv layer, the number of (nonzero input, nonzero
  weight) pairs; inputs whose values are all in {-1, 0, 1} count as ACs (spikes), otherwise as
  MACs. Bias is not counted (``SynapticOperations``; metrics/utils/layers/macs.py).
"""
from __future__ import annotations

import torch

from models.mamba import ActivationSite


def edit_distance(ref: list, hyp: list) -> int:
    """Levenshtein distance (substitutions, insertions, deletions all cost 1)."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


class ErrorRate:
    """Accumulates word and character errors; ``wer``/``cer`` are totals over totals (0-1)."""

    def __init__(self):
        self.word_err = self.words = self.char_err = self.chars = 0

    def add(self, ref: str, hyp: str) -> None:
        self.word_err += edit_distance(ref.split(), hyp.split())
        self.words += len(ref.split())
        self.char_err += edit_distance(list(ref), list(hyp))
        self.chars += len(ref)

    @property
    def wer(self) -> float:
        return self.word_err / max(self.words, 1)

    @property
    def cer(self) -> float:
        return self.char_err / max(self.chars, 1)


class SparsityMeter:
    """Forward hooks on every activation site; counts zeros and outputs per site.

    ``lengths`` (set before each forward on a padded batch) limits counting to the real frames.
    """

    def __init__(self, model: torch.nn.Module):
        self.zeros: dict[str, int] = {}
        self.total: dict[str, int] = {}
        self.lengths = None
        self.handles = []
        for name, m in model.named_modules():
            if isinstance(m, ActivationSite):
                self.zeros[name] = self.total[name] = 0
                self.handles.append(m.register_forward_hook(self._hook(name)))

    def _hook(self, name):
        def fn(module, inputs, out):
            if self.lengths is None:
                self.zeros[name] += int((out == 0).sum())
                self.total[name] += out.numel()
            else:
                for i, n in enumerate(self.lengths.tolist()):
                    o = out[i, :n]
                    self.zeros[name] += int((o == 0).sum())
                    self.total[name] += o.numel()
        return fn

    def per_site(self) -> dict[str, float]:
        return {n: self.zeros[n] / self.total[n] for n in self.zeros if self.total[n]}

    def overall(self) -> float:
        t = sum(self.total.values())
        return sum(self.zeros.values()) / t if t else 0.0

    def close(self):
        for h in self.handles:
            h.remove()
        self.handles = []
