"""The selective scan, the LIF neuron and the Mamba block against references."""
import math

import pytest
import torch
import torch.nn.functional as F

from models.mamba import LIFFn, Mamba, MambaConfig, SelectiveScanFn, selective_scan


def _scan_inputs(b=2, l=9, d=5, n=4, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(b, l, d, generator=g, dtype=dtype)
    delta = F.softplus(torch.randn(b, l, d, generator=g, dtype=dtype))
    A = -torch.rand(d, n, generator=g, dtype=dtype) - 0.1
    B = torch.randn(b, l, n, generator=g, dtype=dtype)
    C = torch.randn(b, l, n, generator=g, dtype=dtype)
    D = torch.randn(d, generator=g, dtype=dtype)
    return u, delta, A, B, C, D


def _naive(u, delta, A, B, C, D):
    h = torch.zeros(u.shape[0], u.shape[2], A.shape[1], dtype=u.dtype)
    ys = []
    for t in range(u.shape[1]):
        h = torch.exp(delta[:, t, :, None] * A) * h + delta[:, t, :, None] * B[:, t, None, :] * u[:, t, :, None]
        ys.append((h * C[:, t, None, :]).sum(-1))
    return torch.stack(ys, 1) + u * D


def test_scan_gradcheck_double():
    u, delta, A, B, C, _ = _scan_inputs()
    args = [t.clone().requires_grad_() for t in (u, delta, A, B, C)]
    assert torch.autograd.gradcheck(SelectiveScanFn.apply, args, eps=1e-6, atol=1e-6)


def test_scan_matches_naive_loop_and_autograd():
    u, delta, A, B, C, D = [t.float() for t in _scan_inputs(l=17, d=6, n=3)]
    leaves = [t.clone().requires_grad_() for t in (u, delta, A, B, C)]
    y = selective_scan(*leaves, D, backend="torch")
    leaves2 = [t.clone().requires_grad_() for t in (u, delta, A, B, C)]
    y2 = _naive(*leaves2, D)
    torch.testing.assert_close(y, y2, rtol=1e-5, atol=1e-5)
    w = torch.randn_like(y)
    g1 = torch.autograd.grad((y * w).sum(), leaves)
    g2 = torch.autograd.grad((y2 * w).sum(), leaves2)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_scan_matches_mamba_ssm_reference(mamba_ssm):
    selective_scan_ref, _ = mamba_ssm
    u, delta, A, B, C, D = [t.float() for t in _scan_inputs(b=3, l=33, d=8, n=16, seed=1)]
    ours = selective_scan(u, delta, A, B, C, D, backend="torch")
    ref = selective_scan_ref(u.transpose(1, 2), delta.transpose(1, 2), A, B.transpose(1, 2),
                             C.transpose(1, 2), D).transpose(1, 2)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)  # float32 rounding


def test_lif_function_matches_autograd_loop():
    class Spike(torch.autograd.Function):
        @staticmethod
        def forward(ctx, v):
            ctx.save_for_backward(v)
            return (v >= 0).to(v.dtype)

        @staticmethod
        def backward(ctx, g):
            (v,) = ctx.saved_tensors
            return g / (1 + 5.0 * v.abs()) ** 2

    x = (2 * torch.randn(3, 11, 4, dtype=torch.float64)).requires_grad_()
    v = torch.zeros(3, 4, dtype=torch.float64)
    out = []
    for t in range(11):
        v = 0.5 * v + x[:, t]
        s = Spike.apply(v - 1.0)
        v = v - s.detach() * 1.0
        out.append(s)
    ref = torch.stack(out, 1)
    y = LIFFn.apply(x, 0.5, 1.0, 5.0)
    assert torch.equal(y, ref)
    w = torch.randn_like(y)
    torch.testing.assert_close(torch.autograd.grad((y * w).sum(), x)[0],
                               torch.autograd.grad((ref * w).sum(), x)[0])


def test_documented_parameter_shapes():
    """mamba_simple.py ``Mamba`` parameter names and shapes (checked even without mamba-ssm)."""
    cfg = MambaConfig(d_model=32, d_state=16)
    shapes = {k: tuple(v.shape) for k, v in Mamba(cfg).state_dict().items()}
    d_in, r = 64, math.ceil(32 / 16)
    assert shapes == {
        "A_log": (d_in, 16), "D": (d_in,), "in_proj.weight": (2 * d_in, 32),
        "conv1d.weight": (d_in, 1, 4), "conv1d.bias": (d_in,), "x_proj.weight": (r + 32, d_in),
        "dt_proj.weight": (d_in, r), "dt_proj.bias": (d_in,), "out_proj.weight": (32, d_in),
    }


@pytest.mark.parametrize("variant", ["dense", "fatrelu", "spiking"])
def test_strict_load_both_ways_with_mamba_ssm(mamba_ssm, variant):
    _, RefMamba = mamba_ssm
    from models.speech import SpeechConfig, SpeechMamba

    ref = RefMamba(d_model=24, d_state=8, d_conv=4, expand=2)
    ours = SpeechMamba(SpeechConfig(d_model=24, d_state=8, n_layers=1, variant=variant)).layers[0].mixer
    ours.load_state_dict(ref.state_dict(), strict=True)
    ref.load_state_dict(ours.state_dict(), strict=True)
    for k, v in ref.state_dict().items():
        assert torch.equal(v, ours.state_dict()[k])


def test_dense_block_equals_mamba_ssm_slow_path(mamba_ssm):
    """Our dense block on mamba-ssm's weights == mamba_simple.py's non-fused path written with
    ``selective_scan_ref`` (the fused path needs CUDA)."""
    selective_scan_ref, RefMamba = mamba_ssm
    torch.manual_seed(0)
    ref = RefMamba(d_model=16, d_state=8)
    ours = Mamba(MambaConfig(d_model=16, d_state=8))
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 13, 16)
    l = x.shape[1]
    xz = (ref.in_proj.weight @ x.transpose(1, 2))  # (b, 2 d_in, l)
    xs, z = xz.chunk(2, dim=1)
    xs = F.silu(ref.conv1d(xs)[..., :l])
    x_dbl = ref.x_proj(xs.transpose(1, 2))
    dt, B, C = torch.split(x_dbl, [ref.dt_rank, ref.d_state, ref.d_state], dim=-1)
    dt = ref.dt_proj.weight @ dt.transpose(1, 2)
    y = selective_scan_ref(xs, dt, -torch.exp(ref.A_log.float()), B.transpose(1, 2), C.transpose(1, 2),
                           ref.D.float(), z=z, delta_bias=ref.dt_proj.bias.float(), delta_softplus=True)
    expected = ref.out_proj(y.transpose(1, 2))
    torch.testing.assert_close(ours(x), expected, rtol=1e-5, atol=1e-5)
