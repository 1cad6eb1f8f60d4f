"""Checkpoint files: ``{"format", "version", "config", "state_dict", "thresholds", "info"}``.

Written atomically (temporary file + rename). Loading checks the format and rebuilds the model
with ``strict=True``; any problem is a ``ModelsError`` naming the file.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import torch

from models import ModelsError
from models.speech import SpeechConfig, SpeechMamba

FORMAT = "speechmamba-checkpoint"
VERSION = 1


def sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_checkpoint(path: str | os.PathLike, model: SpeechMamba, info: dict | None = None) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ckpt = {
        "format": FORMAT,
        "version": VERSION,
        "config": model.cfg.to_dict(),
        "state_dict": {k: v.detach().cpu().float().clone() for k, v in model.state_dict().items()},
        "thresholds": model.thresholds(),
        "info": info or {},
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(ckpt, tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_checkpoint(path: str | os.PathLike, variant: str | None = None,
                    scan_backend: str = "auto") -> tuple[SpeechMamba, dict]:
    """Rebuild the model of a checkpoint (optionally as another variant, for fine-tuning)."""
    path = Path(path)
    if not path.is_file():
        raise ModelsError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelsError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ModelsError(f"{path}: not a SpeechMamba checkpoint (format field missing or wrong)")
    if ckpt.get("version") != VERSION:
        raise ModelsError(f"{path}: checkpoint version {ckpt.get('version')!r} is not supported (expected {VERSION})")
    cfg_d = dict(ckpt["config"])
    same_variant = variant is None or variant == cfg_d["variant"]
    if variant is not None:
        cfg_d["variant"] = variant
    try:
        model = SpeechMamba(SpeechConfig(**cfg_d), scan_backend)
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except (TypeError, ValueError, RuntimeError, KeyError) as exc:
        raise ModelsError(f"{path}: checkpoint does not match the model ({str(exc).splitlines()[0][:200]})") from None
    if same_variant and ckpt.get("thresholds"):
        model.set_thresholds(ckpt["thresholds"])
    model.eval()
    return model, ckpt
