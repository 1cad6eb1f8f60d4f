"""The Mamba block, its selective scan, and the three activation variants, in one file.

Follows mamba-minimal (johnma2006/mamba-minimal, model.py) in layout and naming, and mamba-ssm
(state-spaces/mamba, mamba_ssm/modules/mamba_simple.py, class ``Mamba``) in parameter names and
shapes, so that weights load both ways with ``strict=True``:

    in_proj   Linear(d_model, 2 * d_inner, bias=False)
    conv1d    Conv1d(d_inner, d_inner, d_conv, groups=d_inner, padding=d_conv - 1, bias=True)
    x_proj    Linear(d_inner, dt_rank + 2 * d_state, bias=False)
    dt_proj   Linear(dt_rank, d_inner, bias=True)
    A_log     (d_inner, d_state)
    D         (d_inner,)
    out_proj  Linear(d_inner, d_model, bias=False)

Glossary of shape letters (used in every docstring below):

    b        batch size
    l        sequence length (encoder frames; one frame = one trace time step)
    d        d_model, the residual stream width
    d_in     d_inner = expand * d_model, the width inside the block
    n        d_state, the state size of the selective scan per channel
    dt_rank  rank of the low-rank projection of delta (ceil(d_model / 16))
    k        d_conv, the kernel of the depthwise causal convolution

Paper: Gu & Dao, "Mamba: Linear-Time Sequence Modeling with Selective State Spaces" (2023),
Section 3.2 / Algorithm 2 (the selective SSM) and Figure 3 (the block).

Variants (``MambaConfig.variant``) change only the two activation *sites* of the block, where
mamba-ssm applies SiLU: after the causal convolution (``act_conv``) and on the gate branch
(``act_gate``):

- ``dense``: SiLU, as in mamba-ssm.
- ``fatrelu``: FATReLU ``y = x if x > T else 0`` (Kurtz et al. 2020), one threshold T per site,
  scheduled during fine-tuning (``models.train`` raises it until the site reaches the target
  sparsity). Gradient: identity where x > T, zero elsewhere.
- ``spiking``: leaky integrate-and-fire neurons over the time axis l that emit binary spikes:
  ``v[t] = beta * v[t-1] + x[t]``, ``s[t] = 1 if v[t] >= theta else 0``, reset by subtraction
  ``v[t] -= theta * s[t]``, ``v[-1] = 0``. Defaults ``beta = 0.5``, ``theta = 1.0``. The spike
  non-linearity is trained with the fast-sigmoid surrogate gradient
  ``ds/dv = 1 / (1 + slope * |v - theta|)^2`` with ``slope = 5`` (Zenke & Ganguli 2018); the
  reset is detached from the graph.

Every operator the trace records (``models.export``) is its own ``nn.Module`` so that a forward
hook sees its input: ``in_proj``, ``conv1d``, ``x_proj``, ``dt_proj``, ``scan``, ``gate``,
``out_proj`` here, plus ``norm`` and ``residual`` in the residual wrapper (``models.speech``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

VARIANTS = ("dense", "fatrelu", "spiking")


@dataclass
class MambaConfig:
    d_model: int
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    dt_rank: int | str = "auto"
    variant: str = "dense"
    lif_beta: float = 0.5
    lif_threshold: float = 1.0
    lif_slope: float = 5.0

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; expected one of {VARIANTS}")
        self.d_inner = int(self.expand * self.d_model)
        if self.dt_rank == "auto":
            self.dt_rank = math.ceil(self.d_model / 16)


# --------------------------------------------------------------------------- selective scan
class SelectiveScanFn(torch.autograd.Function):
    """The selective-scan recurrence with a hand-written backward pass (sequential both ways).

    Forward (Algorithm 2 of the paper, discretization as in mamba-ssm's ``selective_scan_ref``):

        dA[t]  = exp(delta[t] * A)                      (b, d_in, n)
        dBu[t] = delta[t] * B[t] * u[t]                 (b, d_in, n)
        h[t]   = dA[t] * h[t-1] + dBu[t],  h[-1] = 0    (b, d_in, n)
        y[t]   = sum_n h[t] * C[t]                      (b, d_in)

    Backward: g_h[t] = gy[t] * C[t] + dA[t+1] * g_h[t+1] (reverse loop), then the gradients of
    dA, dBu, C are local and chain into u, delta, A, B in one vectorized step. Autograd over a
    Python loop would record ~l small graphs per block; this keeps one saved tensor of states
    and runs 2 * l small kernels in all. Checked with ``torch.autograd.gradcheck`` (tests).

    Args (shapes in the mamba-minimal (b, l, ...) layout):
        u (b, l, d_in), delta (b, l, d_in) after softplus, A (d_in, n), B (b, l, n), C (b, l, n)
    Returns:
        y (b, l, d_in), without the ``D * u`` skip term.
    """

    @staticmethod
    def forward(ctx, u, delta, A, B, C):
        b, l, d_in = u.shape
        dA = torch.exp(delta.unsqueeze(-1) * A)  # (b, l, d_in, n)
        dBu = (delta * u).unsqueeze(-1) * B.unsqueeze(2)  # (b, l, d_in, n)
        hs = torch.empty_like(dA)
        h = torch.zeros_like(dA[:, 0])
        for t in range(l):
            h = dA[:, t] * h + dBu[:, t]
            hs[:, t] = h
        y = torch.einsum("bldn,bln->bld", hs, C)
        ctx.save_for_backward(u, delta, A, B, C, dA, hs)
        return y

    @staticmethod
    def backward(ctx, gy):
        u, delta, A, B, C, dA, hs = ctx.saved_tensors
        l = u.shape[1]
        gh_all = gy.unsqueeze(-1) * C.unsqueeze(2)  # (b, l, d_in, n): direct term gy[t] * C[t]
        gh = torch.zeros_like(gh_all[:, 0])
        for t in range(l - 1, -1, -1):
            gh = gh_all[:, t] + (dA[:, t + 1] * gh if t + 1 < l else 0.0)
            gh_all[:, t] = gh
        gC = torch.einsum("bldn,bld->bln", hs, gy)
        # gradient w.r.t. (delta * A) inside exp: g_h[t] * h[t-1] * dA[t]  (zero at t = 0)
        g_dA = torch.zeros_like(dA)
        torch.mul(gh_all[:, 1:], hs[:, :-1], out=g_dA[:, 1:])
        g_dA.mul_(dA)
        gBsum = torch.einsum("bldn,bln->bld", gh_all, B)  # sum_n g_dBu * B
        gdelta = (g_dA * A).sum(-1) + gBsum * u
        gA = torch.einsum("bldn,bld->dn", g_dA, delta)
        gB = torch.einsum("bldn,bld->bln", gh_all, delta * u)
        gu = gBsum * delta
        return gu, gdelta, gA, gB, gC


def _mamba_ssm_scan():
    """mamba-ssm's fused CUDA scan, or None where mamba-ssm (or its CUDA extension) is absent."""
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except Exception:  # ImportError, or the CUDA extension failing to load
        return None
    return selective_scan_fn


def selective_scan(u, delta, A, B, C, D, backend: str = "auto"):
    """y = scan(u, delta, A, B, C) + D * u.  Shapes as in ``SelectiveScanFn``; D (d_in,).

    ``backend``: ``"torch"`` (pure PyTorch, any device), ``"cuda"`` (mamba-ssm fused kernel) or
    ``"auto"`` (mamba-ssm's kernel when the tensors are on CUDA and mamba-ssm imports).
    """
    if backend in ("auto", "cuda") and u.is_cuda:
        fn = _mamba_ssm_scan()
        if fn is not None:
            # mamba-ssm layout: u, delta (b, d_in, l); B, C (b, n, l)
            y = fn(u.transpose(1, 2).contiguous(), delta.transpose(1, 2).contiguous(), A,
                   B.transpose(1, 2).contiguous(), C.transpose(1, 2).contiguous(), D.float())
            return y.transpose(1, 2)
        if backend == "cuda":
            raise RuntimeError("backend='cuda' needs mamba-ssm with its CUDA extension")
    return SelectiveScanFn.apply(u, delta, A, B, C) + u * D


# --------------------------------------------------------------------------- activation sites
class ActivationSite(nn.Module):
    """Base class of the places where the variants differ. Sparsity is measured at their outputs
    (NeuroBench ActivationSparsity: zeros / all outputs, over sites, steps and utterances)."""

    binary = False  # True where the output is spikes (0/1)


class SiLUSite(ActivationSite):
    def forward(self, x):
        return F.silu(x)


class FATReLUSite(ActivationSite):
    """``y = x if x > T else 0``. T is a non-persistent buffer (it is saved in the checkpoint's
    ``thresholds`` entry) so that the block's state_dict keeps mamba-ssm's exact keys."""

    def __init__(self, threshold: float = 0.0):
        super().__init__()
        self.register_buffer("threshold", torch.tensor(float(threshold)), persistent=False)

    def forward(self, x):
        return x * (x > self.threshold).to(x.dtype)


class LIFFn(torch.autograd.Function):
    """LIF over time with a hand-written sequential backward (as ``SelectiveScanFn``).

    Forward:  v[t] = beta * (v[t-1] - theta * s[t-1]) + x[t],  s[t] = H(v[t] - theta)
    Backward (reset detached): g_v[t] = g_s[t] * sg(v[t] - theta) + beta * g_v[t+1],
    g_x[t] = g_v[t], with the fast-sigmoid surrogate sg(u) = 1 / (1 + slope * |u|)^2.
    x (b, l, c) -> s (b, l, c).
    """

    @staticmethod
    def forward(ctx, x, beta, theta, slope):
        v = torch.zeros_like(x[:, 0])
        vs = torch.empty_like(x)
        s = torch.zeros_like(x[:, 0])
        for t in range(x.shape[1]):
            v = beta * (v - theta * s) + x[:, t]
            vs[:, t] = v
            s = (v >= theta).to(x.dtype)
        ctx.save_for_backward(vs)
        ctx.beta, ctx.theta, ctx.slope = beta, theta, slope
        return (vs >= theta).to(x.dtype)

    @staticmethod
    def backward(ctx, gs):
        (vs,) = ctx.saved_tensors
        gv_all = gs / (1.0 + ctx.slope * (vs - ctx.theta).abs()) ** 2
        gv = torch.zeros_like(gv_all[:, 0])
        for t in range(vs.shape[1] - 1, -1, -1):
            gv = gv_all[:, t] + ctx.beta * gv
            gv_all[:, t] = gv
        return gv_all, None, None, None


class LIFSite(ActivationSite):
    """Leaky integrate-and-fire over the time axis: (b, l, c) -> binary spikes (b, l, c)."""

    binary = True

    def __init__(self, beta: float = 0.5, threshold: float = 1.0, slope: float = 5.0):
        super().__init__()
        self.beta, self.threshold, self.slope = beta, threshold, slope

    def forward(self, x):
        return LIFFn.apply(x, self.beta, self.threshold, self.slope)


def make_site(cfg: MambaConfig) -> ActivationSite:
    if cfg.variant == "dense":
        return SiLUSite()
    if cfg.variant == "fatrelu":
        return FATReLUSite()
    return LIFSite(cfg.lif_beta, cfg.lif_threshold, cfg.lif_slope)


# --------------------------------------------------------------------------- op modules
class Scan(nn.Module):
    """The selective scan as a hookable op (no parameters: A_log and D belong to the block)."""

    def __init__(self, backend: str = "auto"):
        super().__init__()
        self.backend = backend

    def forward(self, u, delta, A, B, C, D):
        """u, delta (b, l, d_in); A (d_in, n); B, C (b, l, n); D (d_in,) -> y (b, l, d_in)."""
        return selective_scan(u, delta, A, B, C, D, self.backend)


class Gate(nn.Module):
    """y * g, elementwise. Trace op input = concat(y, g) (width 2 * d_in -> d_in)."""

    def forward(self, y, g):
        return y * g


class Residual(nn.Module):
    """out + skip, elementwise. Trace op input = concat(out, skip) (width 2 * d -> d)."""

    def forward(self, out, skip):
        return out + skip


# --------------------------------------------------------------------------- the block
class Mamba(nn.Module):
    """One Mamba mixer (Figure 3 of the paper; mamba_simple.py ``Mamba``, slow path)."""

    def __init__(self, cfg: MambaConfig, scan_backend: str = "auto"):
        super().__init__()
        self.cfg = cfg
        d, d_in, n, r = cfg.d_model, cfg.d_inner, cfg.d_state, cfg.dt_rank
        self.in_proj = nn.Linear(d, 2 * d_in, bias=False)
        self.conv1d = nn.Conv1d(d_in, d_in, kernel_size=cfg.d_conv, groups=d_in,
                                padding=cfg.d_conv - 1, bias=True)
        self.x_proj = nn.Linear(d_in, r + 2 * n, bias=False)
        self.dt_proj = nn.Linear(r, d_in, bias=True)
        # S4D-real initialization: A = -(1..n) per channel (mamba_simple.py, "S4D real initialization")
        A = torch.arange(1, n + 1, dtype=torch.float32).repeat(d_in, 1)
        self.A_log = nn.Parameter(torch.log(A))
        self.D = nn.Parameter(torch.ones(d_in))
        self.out_proj = nn.Linear(d_in, d, bias=False)
        self.act_conv = make_site(cfg)
        self.act_gate = make_site(cfg)
        self.scan = Scan(scan_backend)
        self.gate = Gate()
        self._init_dt()

    def _init_dt(self, dt_min=1e-3, dt_max=0.1, dt_init_floor=1e-4):
        """dt_proj init as mamba_simple.py: weight U(+-dt_rank^-0.5), bias = softplus^-1(dt),
        dt log-uniform in [dt_min, dt_max]."""
        std = self.cfg.dt_rank ** -0.5
        nn.init.uniform_(self.dt_proj.weight, -std, std)
        dt = torch.exp(torch.rand(self.cfg.d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        dt = dt.clamp(min=dt_init_floor)
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))

    def forward(self, x):
        """x (b, l, d) -> (b, l, d).  mamba_simple.py ``Mamba.forward`` (the non-fused path)."""
        l = x.shape[1]
        xz = self.in_proj(x)  # (b, l, 2 * d_in)
        x, z = xz.chunk(2, dim=-1)  # (b, l, d_in) each
        x = self.conv1d(x.transpose(1, 2))[..., :l].transpose(1, 2)  # causal depthwise conv
        x = self.act_conv(x)  # SiLU / FATReLU / LIF
        y = self.ssm(x)  # (b, l, d_in)
        y = self.gate(y, self.act_gate(z))
        return self.out_proj(y)  # (b, l, d)

    def ssm(self, u):
        """u (b, l, d_in) -> y (b, l, d_in).  Section 3.2 / Algorithm 2 (selective SSM)."""
        n, r = self.cfg.d_state, self.cfg.dt_rank
        A = -torch.exp(self.A_log.float())  # (d_in, n)
        x_dbl = self.x_proj(u)  # (b, l, dt_rank + 2n)
        delta, B, C = x_dbl.split([r, n, n], dim=-1)
        delta = F.softplus(self.dt_proj(delta))  # (b, l, d_in)
        return self.scan(u, delta, A, B, C, self.D.float())
