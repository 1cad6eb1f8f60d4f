"""hwsim: event-driven neuromorphic accelerator simulator for SpeechMamba activation traces.

The flow is trace -> arch -> mapping -> engine -> result:

    import hwsim
    result = hwsim.simulate("archs/pe64.yaml", "traces/fatrelu.npz")
    result.ops        # pandas DataFrame, one row per op
    result.summary    # cycles, energy, real-time factor, bottleneck, ...

`import hwsim` never imports torch.
"""

from __future__ import annotations

__version__ = "0.1.0"


def simulate(arch, trace, *, engine: str = "fast", steps: int | None = None, jobs: int = 1,
             overrides: dict | None = None, progress: bool = False):
    """Simulate `trace` (path or Trace) on `arch` (path or Arch); returns a Result."""
    from .arch import Arch, load_arch
    from .runner import run
    from .trace import Trace, load_trace

    if not isinstance(arch, Arch):
        arch = load_arch(arch, overrides)
    elif overrides:
        arch = arch.with_overrides(overrides)
    if not isinstance(trace, Trace):
        trace = load_trace(trace)
    return run(trace, arch, engine=engine, steps=steps, jobs=jobs, progress=progress)


def load_result(path):
    """Read back a directory written by `hwsim run --out DIR` or `Result.save`."""
    from .result import load_result as _load

    return _load(path)


__all__ = ["simulate", "load_result", "__version__"]
