"""Deterministic synthetic SpeechMamba traces, for tests, benchmarks and placeholders.

A synthetic trace has the op list of a real Mamba encoder (per block: norm, in_proj, conv1d,
x_proj, dt_proj, scan, gate, out_proj, residual) and random events at each op's input with a
per-variant density at the activation sites. Its header says `synthetic: true`, and every run
on it says so. The densities below are assumptions, not measurements; traces exported from the
trained models replace them.

    python -m hwsim.synth --variant fatrelu --layers 2 --steps 50 --out traces/x.npz
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from .trace import OpEvents, OpSpec, make_trace, save_trace

# Density of events at the activation sites (after the conv, on the gate) per variant.
ACTIVATION_DENSITY = {"dense": 1.0, "fatrelu": 0.35, "spiking": 0.2}


def mamba_ops(layers: int, d_model: int, expand: int, d_state: int, variant: str) -> list[OpSpec]:
    """The ops of `layers` Mamba blocks in execution order (names as in models/)."""
    d_inner = expand * d_model
    dt_rank = math.ceil(d_model / 16)
    spikes = variant == "spiking"
    ops = []
    prev = None
    for n in range(layers):
        p = f"layers.{n}."
        ops += [
            OpSpec(p + "norm", "norm", d_model, d_model, prev, False),
            OpSpec(p + "in_proj", "linear", d_model, 2 * d_inner, p + "norm", False),
            OpSpec(p + "conv1d", "conv1d", d_inner, d_inner, p + "in_proj", False,
                   params={"kernel": 4}),
            OpSpec(p + "x_proj", "linear", d_inner, dt_rank + 2 * d_state, p + "conv1d", spikes),
            OpSpec(p + "dt_proj", "linear", dt_rank, d_inner, p + "x_proj", False),
            OpSpec(p + "scan", "scan", d_inner, d_inner, p + "conv1d", spikes,
                   params={"d_state": d_state}),
            OpSpec(p + "gate", "elementwise", d_inner, d_inner, p + "in_proj", spikes),
            OpSpec(p + "out_proj", "linear", d_inner, d_model, p + "gate", False),
            OpSpec(p + "residual", "elementwise", d_model, d_model, p + "out_proj", False),
        ]
        prev = p + "residual"
    return ops


def _density(op: OpSpec, variant: str) -> float:
    name = op.name.rsplit(".", 1)[-1]
    act = ACTIVATION_DENSITY[variant]
    if name in ("x_proj", "scan", "gate"):
        return act
    if name == "out_proj":  # the gated product is zero wherever the gate is
        return act
    return 1.0


def synthetic_trace(variant: str = "fatrelu", *, layers: int = 2, d_model: int = 64,
                    expand: int = 2, d_state: int = 16, steps: int = 50, step_ms: float = 40.0,
                    seed: int = 0, density_scale: float = 1.0):
    """A reproducible trace: the same arguments give the same events on every machine.

    `density_scale` multiplies every density (capped at 1), to make workloads with more or fewer
    events from the same model.
    """
    if variant not in ACTIVATION_DENSITY:
        raise ValueError(f"variant: expected one of {sorted(ACTIVATION_DENSITY)}, got {variant!r}")
    rng = np.random.default_rng(seed)
    ops = mamba_ops(layers, d_model, expand, d_state, variant)
    events = []
    for op in ops:
        d = min(1.0, _density(op, variant) * density_scale)
        # the density drifts over time, as speech and silence alternate
        drift = 0.75 + 0.5 * rng.random(steps)
        mask = rng.random((steps, op.in_width)) < np.minimum(1.0, d * drift)[:, None]
        t, ch = np.nonzero(mask)
        indptr = np.concatenate([[0], np.cumsum(np.bincount(t, minlength=steps))])
        value = None
        if not op.binary:
            value = rng.standard_normal(len(ch)).astype(np.float32)
            value[value == 0] = 1.0
        events.append(OpEvents(indptr.astype(np.int64), ch.astype(np.int32), value))
    config = {"layers": layers, "d_model": d_model, "expand": expand, "d_state": d_state}
    provenance = {
        "synthetic": True,
        "generator": f"hwsim.synth.synthetic_trace(variant={variant!r}, layers={layers}, "
                     f"d_model={d_model}, expand={expand}, d_state={d_state}, steps={steps}, "
                     f"seed={seed}, density_scale={density_scale})",
    }
    return make_trace(ops, events, steps=steps, step_ms=step_ms, variant=variant, model=config,
                      provenance=provenance)


def benchmark_trace(steps: int = 250, density_scale: float = 1.0):
    """The full-scale workload of the speed benchmarks: 12 layers, d_model 144, expand 2,
    FATReLU-like densities, 250 steps of 40 ms = 10 s of audio."""
    return synthetic_trace("fatrelu", layers=12, d_model=144, expand=2, d_state=16, steps=steps,
                           seed=2026, density_scale=density_scale)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m hwsim.synth", description=__doc__.splitlines()[0])
    ap.add_argument("--variant", choices=sorted(ACTIVATION_DENSITY), default="fatrelu")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    save_trace(a.out, synthetic_trace(a.variant, layers=a.layers, d_model=a.d_model,
                                      steps=a.steps, seed=a.seed))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
