"""Helpers of the models/ tests (a plain module, not conftest, so that another conftest.py in
the tree cannot shadow it)."""
import importlib.util
import pathlib
import sys
import types

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CKPT = ROOT / "models" / "checkpoints"


def import_mamba_ssm():
    """Import mamba-ssm's pure-PyTorch parts (``selective_scan_ref`` and the ``Mamba`` module) on a
    machine without CUDA, or skip.

    mamba-ssm's package ``__init__`` and ``selective_scan_interface`` import its CUDA extension
    (``selective_scan_cuda``), causal-conv1d and triton kernels at module level, none of which
    exist on a CPU-only machine. The reference scan and the module's constructor use none of
    them, so we (1) register an empty package object for ``mamba_ssm`` pointing at the real
    directory, so that its ``__init__`` (which imports the triton-based Mamba2) is not run, and
    (2) put empty stand-in modules in ``sys.modules`` for the extensions. Calling anything that
    needs the real kernels would fail; the tests only use ``selective_scan_ref`` and
    ``Mamba(...).state_dict()``. The stand-ins are removed again afterwards.

    CI install line (no build, no torch pulled in):
        MAMBA_FORCE_BUILD=TRUE MAMBA_SKIP_CUDA_BUILD=TRUE pip install --no-build-isolation --no-deps mamba-ssm einops
    """
    spec = importlib.util.find_spec("mamba_ssm")
    if spec is None or importlib.util.find_spec("einops") is None:
        pytest.skip("mamba-ssm (and einops) not installed: MAMBA_FORCE_BUILD=TRUE MAMBA_SKIP_CUDA_BUILD=TRUE "
                    "pip install --no-build-isolation --no-deps mamba-ssm einops")
    saved = {k: v for k, v in sys.modules.items() if k == "mamba_ssm" or k.startswith("mamba_ssm.")}
    stubs = {}
    pkg = types.ModuleType("mamba_ssm")
    pkg.__path__ = list(spec.submodule_search_locations)
    stubs["mamba_ssm"] = pkg
    for name in ("selective_scan_cuda", "causal_conv1d_cuda"):
        if importlib.util.find_spec(name.split(".")[0]) is None:
            stubs[name] = types.ModuleType(name)
    ln = types.ModuleType("mamba_ssm.ops.triton.layer_norm")
    ln._layer_norm_fwd = ln.layer_norm_fn = ln.rms_norm_fn = None
    ln.RMSNorm = None
    stubs["mamba_ssm.ops.triton.layer_norm"] = ln
    added = [k for k in stubs if k not in sys.modules]
    sys.modules.update({k: v for k, v in stubs.items() if k in added})
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_ref
        from mamba_ssm.modules.mamba_simple import Mamba
    except Exception as exc:  # pragma: no cover - depends on the mamba-ssm version
        pytest.skip(f"mamba-ssm present but not importable with CPU stubs: {exc}")
    finally:
        for k in added:
            sys.modules.pop(k, None)
        for k in list(sys.modules):
            if (k == "mamba_ssm" or k.startswith("mamba_ssm.")) and k not in saved:
                sys.modules.pop(k, None)
        sys.modules.update(saved)
    return selective_scan_ref, Mamba


def write_tone(path, seconds=1.2, sr=16000, f0=220.0, seed=0):
    """A short deterministic test signal (harmonics + noise) as a 16-bit WAV."""
    import numpy as np

    from models.data import write_wav

    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = sum(0.2 / k * np.sin(2 * np.pi * f0 * k * t * (1 + 0.1 * t)) for k in range(1, 6))
    x = x + 0.01 * rng.standard_normal(t.size)
    write_wav(path, x, sr)
    return path
