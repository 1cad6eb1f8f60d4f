"""The lexicon-constrained beam search (models.decode) and its use by models.evaluate."""
import json
import math

import pytest
import torch

from models import ModelsError
from models.decode import LexiconDecoder, read_lexicon
from models.features import ALPHABET, BLANK
from models.speech import greedy_decode


def emissions(frames: list[dict[str, float]]) -> torch.Tensor:
    """(1, l, v) log-probabilities: each frame's listed characters get their probability, the
    rest of the mass goes to the blank (characters as in ALPHABET; "_" is the blank)."""
    v = len(ALPHABET) + 1
    out = torch.full((1, len(frames), v), 1e-6)
    for t, probs in enumerate(frames):
        for ch, p in probs.items():
            out[0, t, BLANK if ch == "_" else ALPHABET.index(ch) + 1] = p
        out[0, t, BLANK] += max(0.0, 1.0 - out[0, t].sum())
    return out.log()


def test_lexicon_beats_a_greedy_near_miss():
    # greedy reads "hte cat"; the lexicon only knows "the", which is the runner-up path
    lp = emissions([{"h": .6, "t": .4}, {"t": .6, "h": .4}, {"e": .9}, {" ": .9},
                    {"c": .9}, {"a": .9}, {"t": .9}])
    assert greedy_decode(lp) == ["hte cat"]
    assert LexiconDecoder(["the", "cat", "dog"])(lp) == ["the cat"]
    # with "hte" in the lexicon, the best path wins again: the lexicon constrains, it does not bias
    assert LexiconDecoder(["the", "hte", "cat"])(lp) == ["hte cat"]


def test_lengths_cut_each_utterance():
    lp = emissions([{"c": .9}, {"a": .9}, {"t": .9}, {" ": .9}, {"d": .9}, {"o": .9}, {"g": .9}])
    two = torch.cat([lp, lp])
    assert LexiconDecoder(["cat", "dog"])(two, torch.tensor([7, 3])) == ["cat dog", "cat"]


def test_read_lexicon_word_list_and_manifest(tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("The\ncat\n\ncat\n")
    assert read_lexicon(words) == ["cat", "the"]
    man = tmp_path / "m.tsv"
    man.write_text("a.wav\tone red dog\nb.wav\tthe dog\n")
    assert read_lexicon(man) == ["dog", "one", "red", "the"]
    with pytest.raises(ModelsError, match="nope.txt: cannot read the lexicon"):
        read_lexicon(tmp_path / "nope.txt")
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(ModelsError, match="empty.txt: the lexicon has no words"):
        read_lexicon(tmp_path / "empty.txt")
    with pytest.raises(ModelsError, match="beam: expected at least 1"):
        LexiconDecoder(["cat"], beam=0)


def test_evaluate_cli_with_lexicon(tmp_path, capsys):
    from models.evaluate import main
    from models_helpers import CKPT, write_tone

    wav = write_tone(tmp_path / "tone.wav")
    man = tmp_path / "m.tsv"
    man.write_text(f"{wav}\tthe red cat\n")
    out = tmp_path / "r.json"
    args = ["--checkpoint", str(CKPT / "dense.pt"), "--manifest", str(man), "--json", str(out),
            "--no-progress"]
    assert main(args + ["--lexicon", str(man)]) == 0
    res = json.loads(out.read_text())
    assert res["decoder"].startswith("lexicon beam 50")
    # a tone is no speech: whatever the decoder says, it says only lexicon words
    assert set(res["samples"][0]["hyp"].split()) <= {"the", "red", "cat"}
    assert {"greedy_wer", "greedy_cer"} <= res.keys() and math.isfinite(res["greedy_wer"])
    assert main(args + ["--lexicon", str(tmp_path / "none.txt")]) == 2
    assert "none.txt: cannot read the lexicon" in capsys.readouterr().err
