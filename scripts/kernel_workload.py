"""The workload of scripts/kernel_instructions and scripts/kernel_profile: the distinct phases of
the first steps of ``hwsim.synth.benchmark_trace()`` on archs/pe64.yaml, as one batch."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's hwsim, for the scripts that import this


def batch(steps: int, op: str):
    """(batch, timing) of the phases of `op` (its name's last part, or "all") in `steps` steps."""
    from hwsim.arch import load_arch
    from hwsim.mapping import Mapping
    from hwsim.synth import benchmark_trace

    arch = load_arch(ROOT / "archs" / "pe64.yaml")
    trace = benchmark_trace(steps)
    mapping = Mapping(trace, arch)
    names = [o.name.split(".")[-1] for o in trace.ops]
    keys = [(t, i) for t in range(steps) for i in range(len(trace.ops)) if op in ("all", names[i])]
    if not keys:
        sys.exit(f"--op: no op named {op!r}; the ops are {', '.join(sorted(set(names)))}")
    return mapping.batch(mapping.distinct(keys)[0]), arch.timing()
