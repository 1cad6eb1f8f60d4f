"""Speed of one SpeechMamba training step on CPU (pytest-benchmark).

    pytest benchmarks/bench_models.py --benchmark-only

The shipped model size (d_model 128, 6 blocks, d_state 16, 0.74 M parameters) on a batch of
8 utterances of 2.6 s (260 frames -> 65 encoder steps), one thread. The pure-PyTorch selective
scan (``SelectiveScanFn``: sequential forward and reverse loops) is what makes this fast enough;
a Python loop over time steps under autograd was measured at 17-37 s per step (issue 4).
"""
import pytest

torch = pytest.importorskip("torch")

from models.speech import SpeechConfig, SpeechMamba  # noqa: E402
from models.train import ctc_loss  # noqa: E402


@pytest.mark.parametrize("variant", ["dense", "fatrelu", "spiking"])
def test_train_step(benchmark, variant):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = SpeechMamba(SpeechConfig(d_model=128, n_layers=6, d_state=16, variant=variant))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    b = 8
    x = torch.randn(b, 260, 80)
    lens = torch.full((b,), 260)
    targets = torch.randint(1, 29, (b * 30,))
    tlens = torch.full((b,), 30)

    def step():
        loss, _ = ctc_loss(model, x, lens, targets, tlens)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    benchmark.pedantic(step, rounds=3, warmup_rounds=1)
