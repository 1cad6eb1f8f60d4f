"""SpeechMamba: shapes, op table, variants, sparsity, a few training steps."""
import pytest
import torch

from models.features import VOCAB_SIZE
from models.metrics import ErrorRate, SparsityMeter, edit_distance
from models.speech import SpeechConfig, SpeechMamba, greedy_decode, op_table
from models.train import ctc_loss


def tiny(variant="dense", layout="mamba", **kw):
    torch.manual_seed(0)
    return SpeechMamba(SpeechConfig(d_model=16, n_layers=2, d_state=4, variant=variant, layout=layout, **kw))


@pytest.mark.parametrize("layout", ["mamba", "conmamba"])
@pytest.mark.parametrize("variant", ["dense", "fatrelu", "spiking"])
def test_forward_shapes_and_op_table(variant, layout):
    from models.export import record

    m = tiny(variant, layout)
    feats = torch.randn(43, 80)
    logp = m(feats[None])
    assert logp.shape == (1, 10, VOCAB_SIZE)
    torch.testing.assert_close(logp.exp().sum(-1), torch.ones(1, 10))
    ops, inputs, hyp, tallies = record(m, feats)  # checks hook order == op_table order
    assert isinstance(hyp, str)
    names = [o.name for o in ops]
    assert len(names) == len(set(names))
    for op, x in zip(ops, inputs):
        assert x.shape == (10, op.in_width), op.name
        if op.kind in ("conv1d", "scan", "norm"):
            assert op.in_width == op.out_width
        if op.binary:
            assert bool(((x == 0) | (x == 1)).all()), op.name
        assert op.source is None or op.source in names[: names.index(op.name)]
    per_block = [o.kind for o in ops if o.name.startswith("layers.0.") and ".mixer." in o.name]
    assert per_block == ["linear", "conv1d", "linear", "linear", "scan", "elementwise", "linear"]


def test_spiking_sites_emit_binary_spikes_and_fatrelu_thresholds():
    m = tiny("spiking")
    meter = SparsityMeter(m)
    outs = []
    hs = [s.register_forward_hook(lambda mod, i, o: outs.append(o)) for s in m.sites().values()]
    m(torch.randn(2, 40, 80))
    assert outs and all(bool(((o == 0) | (o == 1)).all()) for o in outs)
    assert 0 < meter.overall() < 1
    for h in hs:
        h.remove()
    f = tiny("fatrelu")
    f.set_thresholds({n: 1e9 for n in f.thresholds()})
    meter = SparsityMeter(f)
    f(torch.randn(1, 40, 80))
    assert meter.overall() == 1.0
    assert set(meter.per_site()) == set(f.sites())


def test_sparsity_meter_equals_neurobench_activation_sparsity():
    nb = pytest.importorskip("neurobench.metrics.workload", reason="neurobench not installed (pip install --no-deps neurobench snntorch)")
    from neurobench.models import TorchModel

    from models.mamba import ActivationSite

    m = tiny("fatrelu")
    m.set_thresholds({n: 0.05 for n in m.thresholds()})
    x = torch.randn(1, 48, 80)
    meter = SparsityMeter(m)
    model = TorchModel(m)
    model.add_activation_module(ActivationSite)
    model.register_hooks()
    with torch.no_grad():
        preds = model(x)
    expected = nb.ActivationSparsity()(model, preds, (x, None))
    model.cleanup_hooks()
    assert meter.overall() == pytest.approx(expected, abs=1e-12)


def test_a_few_training_steps_reduce_the_loss():
    torch.manual_seed(0)
    m = tiny()
    x = torch.randn(4, 64, 80)
    lens = torch.tensor([64, 60, 56, 64])
    targets = torch.randint(1, VOCAB_SIZE, (4 * 5,))
    tlens = torch.full((4,), 5)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss, _ = ctc_loss(m, x, lens, targets, tlens)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


def test_distillation_kl_is_zero_for_the_same_model_and_falls_when_learned():
    torch.manual_seed(0)
    student, teacher = tiny(), tiny()
    with torch.no_grad():
        for p in teacher.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x = torch.randn(2, 48, 80)
    lens = torch.tensor([48, 40])
    targets, tlens = torch.randint(1, VOCAB_SIZE, (2 * 4,)), torch.full((2,), 4)
    _, same = ctc_loss(student, x, lens, targets, tlens, teacher=student)
    assert abs(same.item()) < 1e-5
    opt = torch.optim.Adam(student.parameters(), lr=3e-3)
    kls = []
    for _ in range(10):
        _, kl = ctc_loss(student, x, lens, targets, tlens, teacher=teacher)
        opt.zero_grad()
        kl.backward()
        opt.step()
        kls.append(kl.item())
    assert kls[0] > 1e-3 and kls[-1] < 0.7 * kls[0]


def test_spec_augment_masks_frequency_bands_and_leaves_the_input_alone():
    import random

    from models.train import spec_augment

    x = torch.randn(3, 50, 80) + 5.0  # no value is 0 before masking
    lens = torch.tensor([50, 40, 30])
    y = spec_augment(x, lens, random.Random(0), freq_masks=2, freq_width=8)
    assert (x != 0).all()  # a copy was masked
    zero_bands = (y == 0).all(dim=1)  # (b, mel): a whole frequency band is masked
    assert zero_bands.any() and zero_bands.sum(dim=1).max() <= 16
    assert torch.equal(y[y != 0], x[y != 0])
    assert torch.equal(spec_augment(x, lens, random.Random(0), freq_masks=2, freq_width=8), y)


def test_greedy_decode_and_error_rates():
    logp = torch.full((1, 6, VOCAB_SIZE), -10.0)
    for t, c in enumerate([3, 3, 0, 3, 1, 4]):  # a a _ a ' ' b -> "aa b"
        logp[0, t, c] = 0.0
    assert greedy_decode(logp) == ["aa b"]
    assert edit_distance("kitten", "sitting") == 3
    er = ErrorRate()
    er.add("the cat sat", "the cat sat")
    er.add("a dog", "a dig")
    assert er.wer == pytest.approx(1 / 5) and er.cer == pytest.approx(1 / 16)


def test_config_rejects_unknown_variant_and_layout():
    with pytest.raises(ValueError, match="variant"):
        SpeechConfig(variant="relu")
    with pytest.raises(ValueError, match="layout"):
        SpeechConfig(layout="transformer")


def test_threshold_schedule_sets_quantiles_and_averages():
    from models.train import ThresholdSchedule

    torch.manual_seed(0)
    m = SpeechMamba(SpeechConfig(d_model=16, n_layers=1, d_state=4, variant="fatrelu")).eval()
    x = torch.randn(2, 40, 80)
    seen = {}
    hooks = [s.register_forward_pre_hook(lambda mod, inp, n=n: seen.__setitem__(n, inp[0].detach().flatten()))
             for n, s in m.sites().items()]
    m(x)  # one block: each site's input does not depend on any threshold
    for h in hooks:
        h.remove()
    want = {n: max(0.0, float(torch.quantile(v, 0.6))) for n, v in seen.items()}
    sched = ThresholdSchedule(m, target=0.6, ramp_steps=1, start=0.6)
    sched.arm()
    m(x)
    assert sched.update(5) == pytest.approx(0.6)
    assert m.thresholds() == pytest.approx(want)
    m.set_thresholds({n: 0.0 for n in want})
    sched = ThresholdSchedule(m, target=0.6, ramp_steps=1, start=0.6, momentum=0.75)
    sched.arm()
    m(x)
    sched.update(5)
    assert m.thresholds() == pytest.approx({n: 0.25 * t for n, t in want.items()})
    assert all(t > 0 for t in want.values())  # so the average is not trivially 0
