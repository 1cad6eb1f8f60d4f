"""SpeechMamba: log-mel front end (x4 subsampling), Mamba or ConMamba blocks, CTC head.

Shape letters as in ``models.mamba`` (b, l, d, d_in, n), plus

    f        input frames (10 ms hop), f = 4 * l after trimming to a multiple of 4
    m        n_mels (80)
    v        output vocabulary (CTC blank + characters)

Layouts (``SpeechConfig.layout``):

- ``mamba``: each block is ``x + Mamba(RMSNorm(x))`` (mamba-ssm's ``Block`` with a residual).
- ``conmamba``: the ConMamba layout (Conformer with the attention replaced by Mamba):
  ``x + FFN(x)/2``, ``x + Mamba(RMSNorm(x))``, ``x + ConvModule(x)``, ``x + FFN(x)/2``, RMSNorm.
  The FFN and conv-module activations are activation sites too (SiLU / FATReLU / LIF).

Every op the trace records is an ``nn.Module``; ``op_table(model)`` lists them in execution order
with their trace kind, widths, source op and how to read their input events from a forward hook.
Ops also count their own input events and effective synaptic operations when
``model.set_tally(True)`` (``models.metrics.OpTally``): that count is what the trace is tested
against.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from models.features import BLANK, N_MELS, VOCAB_SIZE, decode
from models.mamba import (ActivationSite, FATReLUSite, Gate, Mamba, MambaConfig, Residual, Scan, make_site)

SUBSAMPLE = 4


@dataclass
class SpeechConfig:
    n_mels: int = N_MELS
    d_model: int = 128
    n_layers: int = 4
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    vocab: int = VOCAB_SIZE
    variant: str = "dense"
    layout: str = "mamba"  # "mamba" | "conmamba"
    ffn_mult: int = 2  # conmamba FFN hidden = ffn_mult * d_model
    conv_kernel: int = 7  # conmamba conv module depthwise kernel (causal)
    lif_beta: float = 0.5
    lif_threshold: float = 1.0
    lif_slope: float = 5.0

    def __post_init__(self):
        if self.layout not in ("mamba", "conmamba"):
            raise ValueError(f"unknown layout {self.layout!r}; expected 'mamba' or 'conmamba'")
        self.mamba = MambaConfig(d_model=self.d_model, d_state=self.d_state, d_conv=self.d_conv,
                                 expand=self.expand, variant=self.variant, lif_beta=self.lif_beta,
                                 lif_threshold=self.lif_threshold, lif_slope=self.lif_slope)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("mamba", None)
        return d


# --------------------------------------------------------------------------- op modules
class _Tally:
    """Mixin: an op that counts its input events (nonzeros) and effective synaptic ops."""

    tally = None  # None, or a dict {"events", "macs", "acs"} of ints while counting

    def _count(self, events: int, synops: int = 0, spiking: bool = False):
        if self.tally is not None:
            self.tally["events"] += int(events)
            self.tally["acs" if spiking else "macs"] += int(synops)


def _is_spikes(x: torch.Tensor) -> bool:
    # NeuroBench's rule (metrics/utils/layers/input.py): every value in {-1, 0, 1}
    return bool(((x == 0) | (x == 1) | (x == -1)).all())


class Linear(_Tally, nn.Linear):
    """nn.Linear that counts; parameter names unchanged (weight, bias)."""

    def forward(self, x):
        if self.tally is not None:
            nz = (x != 0).to(torch.float64).reshape(-1, x.shape[-1])
            fan = (self.weight != 0).to(torch.float64).sum(0)  # nonzero weights per input channel
            self._count(nz.sum().item(), (nz @ fan).sum().item(), _is_spikes(x))
        return super().forward(x)


class Conv1d(_Tally, nn.Conv1d):
    """nn.Conv1d that counts: each nonzero input reaches kernel * (out/groups) weights (bias and
    padding not counted, as NeuroBench's binary-copy method counts them)."""

    def forward(self, x):
        if self.tally is not None:
            xb = (x != 0).to(torch.float64)
            wb = (self.weight != 0).to(torch.float64)
            syn = F.conv1d(xb, wb, None, self.stride, self.padding, self.dilation, self.groups).sum()
            self._count(xb.sum().item(), syn.item(), _is_spikes(x))
        return super().forward(x)


class RMSNorm(_Tally, nn.Module):
    def __init__(self, d: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        self._count((x != 0).sum().item())
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class CountedScan(_Tally, Scan):
    def forward(self, u, delta, A, B, C, D):
        self._count((u != 0).sum().item())
        return super().forward(u, delta, A, B, C, D)


class CountedGate(_Tally, Gate):
    def forward(self, y, g):
        self._count((y != 0).sum().item() + (g != 0).sum().item())
        return super().forward(y, g)


class CountedResidual(_Tally, Residual):
    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = scale

    def forward(self, out, skip):
        self._count((out != 0).sum().item() + (skip != 0).sum().item())
        return skip + (out if self.scale == 1.0 else self.scale * out)


class GLU(_Tally, nn.Module):
    """a * sigmoid(b) for x = concat(a, b): elementwise (2d -> d)."""

    def forward(self, x):
        self._count((x != 0).sum().item())
        return F.glu(x, dim=-1)


def _counted_mamba(cfg: MambaConfig, scan_backend: str) -> Mamba:
    """A ``Mamba`` whose op modules count; parameter names and shapes are unchanged."""
    m = Mamba(cfg, scan_backend)
    for name in ("in_proj", "x_proj", "dt_proj", "out_proj"):
        old = getattr(m, name)
        new = Linear(old.in_features, old.out_features, bias=old.bias is not None)
        new.load_state_dict(old.state_dict())
        setattr(m, name, new)
    c = m.conv1d
    conv = Conv1d(c.in_channels, c.out_channels, c.kernel_size[0], groups=c.groups, padding=c.padding[0])
    conv.load_state_dict(c.state_dict())
    m.conv1d = conv
    m.scan = CountedScan(scan_backend)
    m.gate = CountedGate()
    return m


# --------------------------------------------------------------------------- blocks
class MambaLayer(nn.Module):
    """x + Mamba(RMSNorm(x)): (b, l, d) -> (b, l, d)."""

    def __init__(self, cfg: SpeechConfig, scan_backend: str = "auto"):
        super().__init__()
        self.norm = RMSNorm(cfg.d_model)
        self.mixer = _counted_mamba(cfg.mamba, scan_backend)
        self.residual = CountedResidual()

    def forward(self, x):
        return self.residual(self.mixer(self.norm(x)), x)


class FFN(nn.Module):
    """x + 0.5 * W2 act(W1 RMSNorm(x)) (Macaron half-step FFN of the Conformer)."""

    def __init__(self, cfg: SpeechConfig):
        super().__init__()
        h = cfg.ffn_mult * cfg.d_model
        self.norm = RMSNorm(cfg.d_model)
        self.fc1 = Linear(cfg.d_model, h)
        self.act = make_site(cfg.mamba)
        self.fc2 = Linear(h, cfg.d_model)
        self.residual = CountedResidual(0.5)

    def forward(self, x):
        return self.residual(self.fc2(self.act(self.fc1(self.norm(x)))), x)


class ConvModule(nn.Module):
    """x + PW2 act(DWConv(GLU(PW1 RMSNorm(x)))), causal depthwise conv (Conformer conv module)."""

    def __init__(self, cfg: SpeechConfig):
        super().__init__()
        d, k = cfg.d_model, cfg.conv_kernel
        self.norm = RMSNorm(d)
        self.pw1 = Linear(d, 2 * d)
        self.glu = GLU()
        self.dwconv = Conv1d(d, d, k, groups=d, padding=k - 1)
        self.act = make_site(cfg.mamba)
        self.pw2 = Linear(d, d)
        self.residual = CountedResidual()

    def forward(self, x):
        l = x.shape[1]
        y = self.glu(self.pw1(self.norm(x)))
        y = self.dwconv(y.transpose(1, 2))[..., :l].transpose(1, 2)
        return self.residual(self.pw2(self.act(y)), x)


class ConMambaLayer(nn.Module):
    """FFN/2 + Mamba + ConvModule + FFN/2 + RMSNorm: (b, l, d) -> (b, l, d)."""

    def __init__(self, cfg: SpeechConfig, scan_backend: str = "auto"):
        super().__init__()
        self.ffn1 = FFN(cfg)
        self.mamba = MambaLayer(cfg, scan_backend)
        self.conv = ConvModule(cfg)
        self.ffn2 = FFN(cfg)
        self.norm_out = RMSNorm(cfg.d_model)

    def forward(self, x):
        return self.norm_out(self.ffn2(self.conv(self.mamba(self.ffn1(x)))))


# --------------------------------------------------------------------------- the model
class SpeechMamba(nn.Module):
    """Features (b, f, m) -> CTC log-probabilities (b, l, v), l = f // 4."""

    def __init__(self, cfg: SpeechConfig, scan_backend: str = "auto"):
        super().__init__()
        self.cfg = cfg
        # x4 subsampling: a strided conv over time (kernel 4, stride 4) = one linear map of 4 stacked frames
        self.frontend = Conv1d(cfg.n_mels, cfg.d_model, kernel_size=SUBSAMPLE, stride=SUBSAMPLE)
        layer = MambaLayer if cfg.layout == "mamba" else ConMambaLayer
        self.layers = nn.ModuleList([layer(cfg, scan_backend) for _ in range(cfg.n_layers)])
        self.norm_f = RMSNorm(cfg.d_model)
        self.head = Linear(cfg.d_model, cfg.vocab)

    def forward(self, feats):
        """feats (b, f, m) -> log-probs (b, l, v)."""
        f = feats.shape[1] - feats.shape[1] % SUBSAMPLE
        x = self.frontend(feats[:, :f].transpose(1, 2)).transpose(1, 2)  # (b, l, d)
        for layer in self.layers:
            x = layer(x)
        return F.log_softmax(self.head(self.norm_f(x)), dim=-1)

    @staticmethod
    def out_lengths(frames: torch.Tensor) -> torch.Tensor:
        return frames // SUBSAMPLE

    def sites(self) -> dict[str, ActivationSite]:
        return {n: m for n, m in self.named_modules() if isinstance(m, ActivationSite)}

    def set_tally(self, on: bool) -> dict[str, dict]:
        """Switch op counting on (fresh counters, returned by name) or off."""
        out = {}
        for name, m in self.named_modules():
            if isinstance(m, _Tally):
                m.tally = {"events": 0, "macs": 0, "acs": 0} if on else None
                if on:
                    out[name] = m.tally
        return out

    def thresholds(self) -> dict[str, float]:
        """FATReLU thresholds by site name (empty for the other variants)."""
        return {n: float(s.threshold) for n, s in self.sites().items() if isinstance(s, FATReLUSite)}

    def set_thresholds(self, th: dict[str, float]) -> None:
        sites = self.sites()
        for n, t in th.items():
            if isinstance(sites.get(n), FATReLUSite):
                sites[n].threshold.fill_(float(t))


def greedy_decode(logp: torch.Tensor, lengths: torch.Tensor | None = None) -> list[str]:
    """CTC greedy decoding: best path, collapse repeats, drop blanks. logp (b, l, v)."""
    best = logp.argmax(-1)
    out = []
    for i in range(best.shape[0]):
        seq = best[i, : (int(lengths[i]) if lengths is not None else best.shape[1])].tolist()
        ids = [c for j, c in enumerate(seq) if c != BLANK and (j == 0 or c != seq[j - 1])]
        out.append(decode(ids))
    return out


# --------------------------------------------------------------------------- the op table
@dataclass
class OpInfo:
    name: str
    module: nn.Module
    kind: str
    in_width: int
    out_width: int
    source: str | None
    binary: bool
    params: dict = field(default_factory=dict)
    extract: Callable = None  # hook inputs -> (b, l, in_width) tensor of input values


def _lin(x):
    return x[0]


def _chan_first(x):
    return x[0].transpose(1, 2)


def _cat2(x):
    return torch.cat([x[0], x[1]], dim=-1)


def _frontend(x):
    # (b, m, f) -> (b, l, m * 4): channel index = mel * 4 + tap, i.e. weight.reshape(d, m * 4)
    b, m, f = x[0].shape
    f -= f % SUBSAMPLE
    return x[0][..., :f].reshape(b, m, f // SUBSAMPLE, SUBSAMPLE).permute(0, 2, 1, 3).reshape(b, f // SUBSAMPLE, m * SUBSAMPLE)


def op_table(model: SpeechMamba) -> list[OpInfo]:
    """Every traced op of the model, in execution order (checked against hook order in tests)."""
    cfg = model.cfg
    d, d_in, n, r = cfg.d_model, cfg.mamba.d_inner, cfg.d_state, cfg.mamba.dt_rank
    spk = cfg.variant == "spiking"
    ops: list[OpInfo] = []

    def add(name, kind, i, o, source, binary=False, params=None, extract=_lin):
        ops.append(OpInfo(name, model.get_submodule(name), kind, i, o, source, binary, params or {}, extract))
        return name

    last = add("frontend", "linear", cfg.n_mels * SUBSAMPLE, d, None, extract=_frontend)

    def mamba_layer(p, x):
        nm = add(f"{p}.norm", "norm", d, d, x)
        ip = add(f"{p}.mixer.in_proj", "linear", d, 2 * d_in, nm)
        cv = add(f"{p}.mixer.conv1d", "conv1d", d_in, d_in, ip, params={"kernel": cfg.d_conv}, extract=_chan_first)
        xp = add(f"{p}.mixer.x_proj", "linear", d_in, r + 2 * n, cv, binary=spk)
        dp = add(f"{p}.mixer.dt_proj", "linear", r, d_in, xp)
        sc = add(f"{p}.mixer.scan", "scan", d_in, d_in, cv, binary=spk, params={"d_state": n})
        gt = add(f"{p}.mixer.gate", "elementwise", 2 * d_in, d_in, sc, extract=_cat2)
        op = add(f"{p}.mixer.out_proj", "linear", d_in, d, gt)
        return add(f"{p}.residual", "elementwise", 2 * d, d, op, extract=_cat2)

    def ffn(p, x):
        h = cfg.ffn_mult * d
        nm = add(f"{p}.norm", "norm", d, d, x)
        f1 = add(f"{p}.fc1", "linear", d, h, nm)
        f2 = add(f"{p}.fc2", "linear", h, d, f1, binary=spk)
        return add(f"{p}.residual", "elementwise", 2 * d, d, f2, extract=_cat2)

    def conv_module(p, x):
        nm = add(f"{p}.norm", "norm", d, d, x)
        p1 = add(f"{p}.pw1", "linear", d, 2 * d, nm)
        gl = add(f"{p}.glu", "elementwise", 2 * d, d, p1)
        dw = add(f"{p}.dwconv", "conv1d", d, d, gl, params={"kernel": cfg.conv_kernel}, extract=_chan_first)
        p2 = add(f"{p}.pw2", "linear", d, d, dw, binary=spk)
        return add(f"{p}.residual", "elementwise", 2 * d, d, p2, extract=_cat2)

    for i in range(cfg.n_layers):
        p = f"layers.{i}"
        if cfg.layout == "mamba":
            last = mamba_layer(p, last)
        else:
            last = ffn(f"{p}.ffn1", last)
            last = mamba_layer(f"{p}.mamba", last)
            last = conv_module(f"{p}.conv", last)
            last = ffn(f"{p}.ffn2", last)
            last = add(f"{p}.norm_out", "norm", d, d, last)
    nf = add("norm_f", "norm", d, d, last)
    add("head", "linear", d, cfg.vocab, nf)
    return ops
