"""Trace export and evaluation on the shipped checkpoints; op counts against the model's own
counts and against NeuroBench's SynapticOperations; bad inputs."""
import json

import numpy as np
import pytest
import torch

from models_helpers import CKPT, ROOT, write_tone
from models import ModelsError
from models.checkpoint import load_checkpoint, save_checkpoint
from models.speech import SpeechConfig, SpeechMamba

VARIANTS = ["dense", "fatrelu", "spiking"]


def shipped(variant):
    p = CKPT / f"{variant}.pt"
    if not p.is_file():
        pytest.skip(f"{p} not shipped")
    return p


@pytest.fixture(scope="module")
def wav(tmp_path_factory):
    return write_tone(tmp_path_factory.mktemp("audio") / "tone.wav", seconds=1.0)


def trace_synops(trace, model):
    """MACs/ACs implied by the trace for its linear and conv1d ops (events x nonzero fan-out)."""
    macs = acs = 0
    for op, ev in zip(trace.ops, trace.events):
        mod = model.get_submodule(op.name)
        if op.kind == "linear":
            w = mod.weight.detach().reshape(mod.weight.shape[0], -1)  # frontend conv: (d, m * 4)
            fan = (w != 0).sum(0).numpy()
        elif op.kind == "conv1d":
            fan = (mod.weight.detach() != 0).reshape(mod.weight.shape[0], -1).sum(1).numpy()
        else:
            continue
        n = int(fan[ev.index].sum())
        if op.binary:
            acs += n
        else:
            macs += n
    return macs, acs


def neurobench_synops(model, feats):
    nb = pytest.importorskip("neurobench.metrics.workload",
                             reason="neurobench not installed (pip install --no-deps neurobench snntorch)")
    from neurobench.models import TorchModel

    wrapped = TorchModel(model)
    wrapped.register_hooks()
    x = feats[None]
    with torch.no_grad():
        preds = wrapped(x)
    res = nb.SynapticOperations()(wrapped, preds, (x, None))
    wrapped.cleanup_hooks()
    return res


def _export_and_check(ckpt, wav, out):
    from hwsim.trace import load_trace

    from models.data import Utterance, read_wav
    from models.export import export
    from models.features import log_mel

    trace, tallies = export(str(ckpt), Utterance("tone", wav, ""), str(out))
    loaded = load_trace(out)
    assert loaded.header["provenance"]["synthetic"] is False
    assert loaded.header["provenance"]["checkpoint_sha256"]
    model, _ = load_checkpoint(ckpt)
    # 1. every op's events == the model's own count of nonzero inputs
    for op, ev in zip(loaded.ops, loaded.events):
        assert len(ev.index) == tallies[op.name]["events"], op.name
    # 2. synaptic ops implied by the trace == the model's own MAC/AC count
    macs, acs = trace_synops(loaded, model)
    own = {k: v for k, v in tallies.items() if model.get_submodule(k).__class__.__name__ in ("Linear", "Conv1d")}
    assert macs == sum(v["macs"] for v in own.values())
    assert acs == sum(v["acs"] for v in own.values())
    # 3. ... == NeuroBench SynapticOperations on the same input
    feats = log_mel(torch.from_numpy(read_wav(wav)))
    nbres = neurobench_synops(model, feats)
    assert nbres["Effective_MACs"] == macs
    assert nbres["Effective_ACs"] == acs
    return loaded


@pytest.mark.parametrize("variant", VARIANTS)
def test_export_shipped_checkpoint_counts(variant, wav, tmp_path):
    tr = _export_and_check(shipped(variant), wav, tmp_path / f"{variant}.npz")
    assert tr.variant == variant
    assert any(op.binary for op in tr.ops) == (variant == "spiking")


@pytest.mark.parametrize("variant,layout", [("spiking", "conmamba"), ("fatrelu", "conmamba")])
def test_export_counts_conmamba(variant, layout, wav, tmp_path):
    torch.manual_seed(0)
    m = SpeechMamba(SpeechConfig(d_model=16, n_layers=1, d_state=4, variant=variant, layout=layout))
    if variant == "fatrelu":
        m.set_thresholds({n: 0.1 for n in m.thresholds()})
    ck = tmp_path / "m.pt"
    save_checkpoint(ck, m)
    tr = _export_and_check(ck, wav, tmp_path / "t.npz")
    macs, acs = trace_synops(tr, m)
    assert macs > 0 and (acs > 0) == (variant == "spiking")


def test_export_refuses_to_overwrite(wav, tmp_path):
    from models.export import main

    out = tmp_path / "x.npz"
    out.write_bytes(b"keep me")
    ck = shipped("dense")
    assert main(["--checkpoint", str(ck), "--audio", str(wav), "--out", str(out)]) == 2
    assert out.read_bytes() == b"keep me"
    assert main(["--checkpoint", str(ck), "--audio", str(wav), "--out", str(out), "--force"]) == 0
    assert out.read_bytes() != b"keep me"


def test_evaluate_cli_json(wav, tmp_path):
    from models.data import read_wav, write_wav
    from models.evaluate import main

    # a second file at 22.05 kHz: resampled, not refused
    x = read_wav(wav)
    other = tmp_path / "tone22k.wav"
    n = int(len(x) * 22050 / 16000)
    write_wav(other, np.interp(np.linspace(0, len(x) - 1, n), np.arange(len(x)), x), 22050)
    man = tmp_path / "m.tsv"
    man.write_text(f"{wav}\tthe red cat\n{other.name}\tone dog\n")
    out = tmp_path / "r.json"
    assert main(["--checkpoint", str(shipped("fatrelu")), "--manifest", str(man), "--json", str(out), "--no-progress"]) == 0
    res = json.loads(out.read_text())
    for k in ("wer", "cer", "sparsity", "params", "utterances", "sparsity_per_site", "effective_macs", "effective_acs"):
        assert k in res
    assert res["utterances"] == 2 and 0 <= res["sparsity"] <= 1 and res["params"] > 0


def test_bad_inputs_are_clear_errors(wav, tmp_path, capsys):
    from models.evaluate import main

    ck = shipped("dense")
    out = tmp_path / "r.json"
    man = tmp_path / "m.tsv"
    man.write_text(f"{wav}\tok\n")
    # missing checkpoint
    assert main(["--checkpoint", str(tmp_path / "nope.pt"), "--manifest", str(man), "--json", str(out)]) == 2
    assert "nope.pt: checkpoint not found" in capsys.readouterr().err
    # corrupt checkpoint
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00garbage" * 10)
    assert main(["--checkpoint", str(bad), "--manifest", str(man), "--json", str(out)]) == 2
    assert "bad.pt: not a readable checkpoint" in capsys.readouterr().err
    # a manifest row pointing nowhere: file and row named
    man2 = tmp_path / "m2.tsv"
    man2.write_text(f"{wav}\tok\nmissing.wav\tgone\n")
    assert main(["--checkpoint", str(ck), "--manifest", str(man2), "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert "m2.tsv:2" in err and "missing.wav" in err
    # an empty WAV
    from models.data import write_wav

    empty = tmp_path / "empty.wav"
    write_wav(empty, np.zeros(0))
    man3 = tmp_path / "m3.tsv"
    man3.write_text(f"{empty}\tnothing\n")
    assert main(["--checkpoint", str(ck), "--manifest", str(man3), "--json", str(out), "--no-progress"]) == 2
    assert "empty.wav: audio file has no samples" in capsys.readouterr().err
    assert not out.exists()  # nothing written on failure
    with pytest.raises(ModelsError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "nope.pt")


def test_shipped_traces_are_real(tmp_path):
    from hwsim.trace import load_trace

    for v in VARIANTS:
        p = ROOT / "traces" / f"{v}.npz"
        if not p.is_file():
            pytest.skip(f"{p} not shipped")
        tr = load_trace(p)
        if tr.synthetic:
            pytest.skip(f"{p} is still a synthetic placeholder")
        prov = tr.header["provenance"]
        assert tr.variant == v and tr.step_ms == 40.0
        assert prov["transcript"] and prov["hypothesis"] is not None and len(prov["checkpoint_sha256"]) == 64
        assert prov["checkpoint_sha256"] == __import__("models.checkpoint", fromlist=["sha256"]).sha256(CKPT / f"{v}.pt")
