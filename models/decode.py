"""Lexicon-constrained CTC beam search: Flashlight's lexicon decoder (flashlight-text).

This is the decoder that torchaudio's ``ctc_decoder`` wraps (torchaudio itself fails to import
next to this CPU torch), used here with no language model: it keeps the best-scoring prefixes
whose words are all in a lexicon. On a closed vocabulary (the espeak-ng corpus speaks ~190 words)
it turns the character-level near misses of greedy decoding into the right words; a word outside
the lexicon can never be recognised, so use it only where the vocabulary is known.

    decoder = LexiconDecoder(read_lexicon("models/data/espeak/train.tsv"))
    texts = decoder(log_probs, lengths)
"""
from __future__ import annotations

import os

import torch

from models import ModelsError
from models.features import ALPHABET, BLANK, normalize_text

SILENCE = "|"  # the word separator token (our space), as Flashlight's lexicons spell it
UNKNOWN = "<unk>"


def read_lexicon(path: str | os.PathLike) -> list[str]:
    """The words of a lexicon file: one word per line, or a TSV manifest (WAV path, transcript),
    whose transcripts' words are taken (e.g. the training manifest: the words seen in training)."""
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError as exc:
        raise ModelsError(f"{path}: cannot read the lexicon ({exc.strerror})") from None
    words = set()
    for line in lines:
        text = line.split("\t")[1] if "\t" in line else line
        words.update(normalize_text(text).split())
    if not words:
        raise ModelsError(f"{path}: the lexicon has no words (expected one word per line, or a "
                          "TSV manifest: WAV path <TAB> transcript)")
    return sorted(words)


class LexiconDecoder:
    """Beam search over the CTC log-probabilities, every word in ``words`` (no language model)."""

    def __init__(self, words: list[str], beam: int = 50):
        try:
            from flashlight.lib.text.decoder import (CriterionType, LexiconDecoderOptions, SmearingMode,
                                                     Trie, ZeroLM)
            from flashlight.lib.text.decoder import LexiconDecoder as _Decoder
            from flashlight.lib.text.dictionary import Dictionary, create_word_dict
        except ImportError:
            raise ModelsError("the lexicon decoder needs flashlight-text: pip install flashlight-text "
                              "(part of hwsim's [models] extra)") from None
        if beam < 1:
            raise ModelsError(f"beam: expected at least 1, got {beam}")
        tokens = ["<blank>"] + [SILENCE if c == " " else c for c in ALPHABET]
        self.tokens = Dictionary(tokens)
        spell = {w: [list(w) + [SILENCE]] for w in words}
        self.words = create_word_dict({**spell, UNKNOWN: [[UNKNOWN]]})
        self.lm = ZeroLM()  # kept alive as long as the decoder: the C++ side holds a reference
        self.silence = silence = self.tokens.get_index(SILENCE)
        trie = Trie(self.tokens.index_size(), silence)
        start = self.lm.start(False)
        for w, (spelling,) in spell.items():
            idx = self.words.get_index(w)
            trie.insert([self.tokens.get_index(c) for c in spelling], idx, self.lm.score(start, idx)[1])
        trie.smear(SmearingMode.MAX)
        opts = LexiconDecoderOptions(
            beam_size=beam, beam_size_token=len(tokens), beam_threshold=50.0, lm_weight=0.0,
            word_score=0.0, unk_score=float("-inf"), sil_score=0.0, log_add=False,
            criterion_type=CriterionType.CTC)
        self.decoder = _Decoder(opts, trie, self.lm, silence, BLANK, self.words.get_index(UNKNOWN),
                                [], False)

    def __call__(self, logp: torch.Tensor, lengths: torch.Tensor | None = None) -> list[str]:
        """Best word sequence of each utterance of ``logp`` (b, l, v), its first ``lengths[i]`` frames."""
        out = []
        for i in range(logp.shape[0]):
            n = int(lengths[i]) if lengths is not None else logp.shape[1]
            em = logp[i, :n].detach().to("cpu", torch.float32)
            # a last frame that is surely the word separator: the spellings end with one, and a
            # model need not emit it after the last word (the same score for every hypothesis)
            end = torch.full((1, em.shape[1]), -1e4)
            end[0, self.silence] = 0.0
            em = torch.cat([em, end]).contiguous()
            best = self.decoder.decode(em.data_ptr(), em.shape[0], em.shape[1])
            out.append(" ".join(self.words.get_entry(x) for x in best[0].words if x >= 0) if best else "")
        return out
