"""Trace format v1: the contract between ``models/`` (writes traces) and hwsim (reads them).

A trace is one ``.npz`` archive holding a JSON header and, for every op of the model in execution
order, the events that reach that op's input at every time step, stored as CSR over time steps.
See docs/trace-format.md for the full description. The archive is always read with
``allow_pickle=False`` and everything in it is validated; any problem is an ``InputError`` that
names the file, the op (number and name) and the field.
"""

from __future__ import annotations

import copy
import json
import math
import os
import tempfile
import zipfile
import zlib
from dataclasses import asdict, dataclass, field

import numpy as np

from hwsim.errors import InputError, where

OP_KINDS = ("linear", "conv1d", "scan", "elementwise", "norm")
FORMAT_NAME = "hwsim-trace"
FORMAT_VERSION = 1

# Kinds whose output width must equal their input width (they act channel by channel).
_SAME_WIDTH_KINDS = ("conv1d", "scan", "norm")
# The params every kind takes: name -> description of the expected value.
_KIND_PARAMS = {
    "linear": {},
    "conv1d": {"kernel": "an integer >= 1"},
    "scan": {"d_state": "an integer >= 1"},
    "elementwise": {},
    "norm": {},
}
_HEADER_KEYS = ("format", "version", "variant", "steps", "step_ms", "model", "provenance", "ops")
_PROVENANCE_OPTIONAL = (
    "checkpoint_sha256",
    "utterance_id",
    "transcript",
    "hypothesis",
    "generator",
    "created",
)
_OP_REQUIRED = ("name", "kind", "in_width", "out_width", "source", "binary")
_OP_OPTIONAL = ("weight_density", "params")

_INT64_MAX = np.iinfo(np.int64).max


# --------------------------------------------------------------------------------------------
# Data classes
# --------------------------------------------------------------------------------------------


@dataclass
class OpSpec:
    """One operator of the model. ``name``'s layer prefix is everything before its last dot."""

    name: str
    kind: str
    in_width: int
    out_width: int
    source: str | None
    binary: bool
    weight_density: float = 1.0
    params: dict = field(default_factory=dict)


@dataclass(eq=False)
class OpEvents:
    """Input events of one op in CSR form over time steps.

    Events of step ``t`` are ``index[indptr[t]:indptr[t+1]]`` (channels, strictly increasing) and,
    for graded ops, ``value[indptr[t]:indptr[t+1]]``.
    """

    indptr: np.ndarray
    index: np.ndarray
    value: np.ndarray | None


@dataclass(eq=False)
class Trace:
    header: dict
    ops: list[OpSpec]
    events: list[OpEvents]
    path: str | None = None

    @property
    def steps(self) -> int:
        return int(self.header["steps"])

    @property
    def step_ms(self) -> float:
        return float(self.header["step_ms"])

    @property
    def variant(self) -> str:
        return str(self.header["variant"])

    @property
    def synthetic(self) -> bool:
        return bool(self.header["provenance"]["synthetic"])

    def step(self, op: int, t: int) -> tuple[np.ndarray, np.ndarray | None]:
        """``(index, value)`` of op number ``op`` at time step ``t`` (views, not copies)."""
        if not 0 <= t < self.steps:
            raise IndexError(f"step {t} out of range [0, {self.steps})")
        ev = self.events[op]
        a, b = int(ev.indptr[t]), int(ev.indptr[t + 1])
        return ev.index[a:b], (None if ev.value is None else ev.value[a:b])

    def n_events(self) -> int:
        """Total number of events over all ops and steps."""
        return int(sum(len(ev.index) for ev in self.events))

    def head(self, steps: int) -> Trace:
        """The first ``steps`` time steps only (array views; more steps than there are is
        clamped). The header's ``steps`` is updated."""
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise ValueError(f"head(): expected an integer >= 1, got {steps!r}")
        n = min(int(steps), self.steps)
        header = copy.deepcopy(self.header)
        header["steps"] = n
        events = []
        for ev in self.events:
            end = int(ev.indptr[n])
            events.append(
                OpEvents(
                    indptr=ev.indptr[: n + 1],
                    index=ev.index[:end],
                    value=None if ev.value is None else ev.value[:end],
                )
            )
        return Trace(header=header, ops=copy.deepcopy(self.ops), events=events, path=self.path)


# --------------------------------------------------------------------------------------------
# Building and writing
# --------------------------------------------------------------------------------------------


def _canonical_events(ev: OpEvents) -> OpEvents:
    return OpEvents(
        indptr=np.asarray(ev.indptr, dtype=np.int64),
        index=np.asarray(ev.index, dtype=np.int32),
        value=None if ev.value is None else np.asarray(ev.value, dtype=np.float32),
    )


def _plain(x):
    """numpy scalars -> Python scalars (so the header is JSON), everything else unchanged."""
    return x.item() if isinstance(x, (np.generic,)) else x


def _arr(x, empty_dtype) -> np.ndarray:
    """np.asarray, except that an empty Python list gets ``empty_dtype`` instead of float64."""
    a = np.asarray(x)
    if not isinstance(x, np.ndarray) and a.size == 0:
        a = a.astype(empty_dtype)
    return a


def _header_json(header: dict, path) -> str:
    try:
        return json.dumps(header, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as e:
        raise InputError(
            f"{where(path, 'header')}: expected plain JSON data (dicts, lists, strings, finite "
            f"numbers, booleans, null), cannot encode it: {e}"
        ) from None


def make_trace(
    ops,
    events,
    *,
    steps: int,
    step_ms: float,
    variant: str,
    model: dict | None = None,
    provenance: dict | None = None,
) -> Trace:
    """Build (and validate) a trace, filling in the header.

    ``ops`` are ``OpSpec`` (or dicts with the same keys), ``events`` are ``OpEvents`` (arrays of
    any integer / floating dtype; they are checked, then stored as int64 / int32 / float32) in
    the same order. ``provenance`` gets ``synthetic`` set to ``variant == "synthetic"`` when it
    lacks it. Raises ``InputError`` if anything is inconsistent.
    """
    raw_ops = []
    for op in ops:
        d = asdict(op) if isinstance(op, OpSpec) else dict(op)
        d = {k: _plain(v) for k, v in d.items()}
        if isinstance(d.get("params"), dict):
            d["params"] = {k: _plain(v) for k, v in d["params"].items()}
        raw_ops.append(d)
    prov = {k: _plain(v) for k, v in (provenance or {}).items()}
    prov.setdefault("synthetic", variant == "synthetic")
    header = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "variant": variant,
        "steps": _plain(steps),
        "step_ms": float(step_ms) if _is_num(step_ms) else step_ms,
        "model": dict(model or {}) if isinstance(model, dict) or model is None else model,
        "provenance": prov,
        "ops": raw_ops,
    }
    op_list = _check_header(header, None)
    header["ops"] = [asdict(op) for op in op_list]
    _header_json(header, None)
    events = list(events)
    if len(events) != len(op_list):
        raise InputError(
            f"{where(None, 'events')}: expected one OpEvents per op ({len(op_list)}), "
            f"got {len(events)}"
        )
    ev_list = []
    for i, (op, ev) in enumerate(zip(op_list, events)):
        if not isinstance(ev, OpEvents):
            raise InputError(
                f"{where(None, _opf(i, op, 'events'))}: expected OpEvents, got {type(ev).__name__}"
            )
        ev_list.append(
            _check_events(
                i,
                op,
                _arr(ev.indptr, np.int64),
                _arr(ev.index, np.int32),
                None if ev.value is None else _arr(ev.value, np.float32),
                header["steps"],
                None,
            )
        )
    return Trace(header=header, ops=op_list, events=ev_list)


def save_trace(path, trace: Trace) -> None:
    """Validate ``trace`` and write it to ``path`` (exactly that name; an existing file is
    replaced). The file is written to a temporary file in the same folder, then renamed, so a
    reader never sees a half-written trace. Nothing is pickled."""
    path = os.fspath(path)
    validate_trace(trace, path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputError(f"{where(path, '')}: cannot write trace: folder {folder} does not exist")
    header = dict(trace.header)
    header["ops"] = [asdict(op) for op in _check_header(trace.header, path)]
    text = _header_json(header, path)
    arrays = {"header": np.frombuffer(text.encode("utf-8"), dtype=np.uint8)}
    for i, (op, ev) in enumerate(zip(trace.ops, trace.events)):
        ev = _canonical_events(ev)
        arrays[f"op{i}.indptr"] = ev.indptr
        arrays[f"op{i}.index"] = ev.index
        if not op.binary:
            arrays[f"op{i}.value"] = ev.value
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------

_READ_ERRORS = (zipfile.BadZipFile, EOFError, OSError, ValueError, zlib.error, KeyError)


def _read_npz(path: str) -> dict[str, np.ndarray]:
    if not os.path.exists(path):
        raise InputError(f"{where(path, '')}: trace file not found")
    if os.path.isdir(path):
        raise InputError(f"{where(path, '')}: expected a trace file (.npz), got a folder")
    if not zipfile.is_zipfile(path):
        try:
            with open(path, "rb") as f:
                magic = f.read(6)
        except OSError as e:
            raise InputError(f"{where(path, '')}: cannot read the trace file: {e}") from None
        if magic.startswith(b"PK"):
            why = (
                "it starts like a zip archive but is truncated or corrupt "
                "(no zip directory found)"
            )
        elif magic.startswith(b"\x93NUMPY"):
            why = "got a single .npy array"
        elif not magic:
            why = "got an empty file"
        else:
            why = "the file is not a zip archive"
        raise InputError(
            f"{where(path, '')}: not a readable trace: expected an .npz (zip) archive; {why}"
        )
    try:
        npz = np.load(path, allow_pickle=False)
    except _READ_ERRORS as e:
        raise InputError(
            f"{where(path, '')}: cannot read the .npz archive (truncated or corrupt?): {e}"
        ) from None
    if not isinstance(npz, np.lib.npyio.NpzFile):  # pragma: no cover - zip always gives NpzFile
        raise InputError(f"{where(path, '')}: expected an .npz archive of named arrays")
    arrays = {}
    with npz:
        for name in npz.files:
            try:
                arrays[name] = npz[name]
            except ValueError as e:
                if "pickle" in str(e).lower() or "object" in str(e).lower():
                    raise InputError(
                        f"{where(path, f'array {name}')}: holds pickled Python objects (an object "
                        "array); pickled objects are refused, traces hold plain numeric arrays only"
                    ) from None
                raise InputError(
                    f"{where(path, f'array {name}')}: cannot read the array (corrupt file?): {e}"
                ) from None
            except _READ_ERRORS as e:
                raise InputError(
                    f"{where(path, f'array {name}')}: cannot read the array "
                    f"(truncated or corrupt file?): {type(e).__name__}: {e}"
                ) from None
    return arrays


def _decode_header(arr: np.ndarray, path) -> dict:
    if arr.ndim != 1 or arr.dtype != np.uint8:
        raise InputError(
            f"{where(path, 'header')}: expected a 1-D uint8 array of UTF-8 JSON, "
            f"got a {arr.ndim}-D {arr.dtype} array"
        )
    try:
        text = arr.tobytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(
            f"{where(path, 'header')}: expected UTF-8 JSON, not valid UTF-8: {e}"
        ) from None
    try:
        header = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(
            f"{where(path, 'header')}: expected JSON, got invalid JSON "
            f"(line {e.lineno} column {e.colno}: {e.msg})"
        ) from None
    if not isinstance(header, dict):
        raise InputError(
            f"{where(path, 'header')}: expected a JSON object, got {type(header).__name__}"
        )
    return header


def load_trace(path) -> Trace:
    """Read and fully validate a trace file. Arrays come back as int64 ``indptr``, int32
    ``index`` and float32 ``value``. Raises ``InputError`` on any problem."""
    path = os.fspath(path)
    arrays = _read_npz(path)
    if "header" not in arrays:
        raise InputError(
            f"{where(path, 'header')}: missing array 'header' (the JSON header); "
            "is this an hwsim trace?"
        )
    header = _decode_header(arrays["header"], path)
    ops = _check_header(header, path)

    expected = {"header"}
    for i, op in enumerate(ops):
        expected |= {f"op{i}.indptr", f"op{i}.index"}
        if not op.binary:
            expected.add(f"op{i}.value")
    for i, op in enumerate(ops):
        if op.binary and f"op{i}.value" in arrays:
            raise InputError(
                f"{where(path, _opf(i, op, f'op{i}.value'))}: the op is binary (spike events carry "
                "no values), expected no value array, found one"
            )
    extra = sorted(set(arrays) - expected)
    if extra:
        raise InputError(
            f"{where(path, 'arrays')}: unexpected array(s) {', '.join(extra)}; "
            f"the header lists {len(ops)} op(s) (op0..op{len(ops) - 1}), and binary ops "
            "carry no value array"
        )
    steps = header["steps"]
    events = []
    for i, op in enumerate(ops):
        for part in ("indptr", "index") + (() if op.binary else ("value",)):
            if f"op{i}.{part}" not in arrays:
                extra_note = " (graded op: needs values)" if part == "value" else ""
                raise InputError(
                    f"{where(path, _opf(i, op, f'op{i}.{part}'))}: missing array{extra_note}"
                )
        events.append(
            _check_events(
                i,
                op,
                arrays[f"op{i}.indptr"],
                arrays[f"op{i}.index"],
                arrays.get(f"op{i}.value"),
                steps,
                path,
            )
        )
    return Trace(header=header, ops=ops, events=events, path=path)


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _opf(i: int, op, f: str) -> str:
    """Field label naming op number and name."""
    name = op.name if isinstance(op, OpSpec) else (op.get("name") if isinstance(op, dict) else None)
    return f"op {i} {name!r}: {f}" if isinstance(name, str) else f"op {i}: {f}"


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _is_num(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(
        x, (bool, np.bool_)
    )


def _check_header(header, path) -> list[OpSpec]:
    """Check every header field; return the op list as OpSpec."""
    if not isinstance(header, dict):
        raise InputError(
            f"{where(path, 'header')}: expected a JSON object (dict), got {type(header).__name__}"
        )
    fmt = header.get("format")
    if fmt != FORMAT_NAME:
        raise InputError(
            f"{where(path, 'header.format')}: expected {FORMAT_NAME!r}, got {fmt!r}; "
            "this is not an hwsim trace"
        )
    if "version" not in header:
        raise InputError(
            f"{where(path, 'header.version')}: missing; this hwsim reads version {FORMAT_VERSION}"
        )
    ver = header["version"]
    if not _is_int(ver):
        raise InputError(
            f"{where(path, 'header.version')}: expected the integer {FORMAT_VERSION}, got {ver!r}"
        )
    if ver > FORMAT_VERSION:
        raise InputError(
            f"{where(path, 'header.version')}: written by a newer hwsim, version {ver}; "
            f"this hwsim reads version {FORMAT_VERSION}. Upgrade hwsim to read it"
        )
    if ver != FORMAT_VERSION:
        raise InputError(
            f"{where(path, 'header.version')}: unknown trace format version {ver}; "
            f"this hwsim reads version {FORMAT_VERSION} only (re-export the trace)"
        )
    unknown = [k for k in header if k not in _HEADER_KEYS]
    if unknown:
        raise InputError(
            f"{where(path, 'header')}: unknown key(s) {', '.join(map(repr, unknown))}; "
            f"version {FORMAT_VERSION} headers have {', '.join(_HEADER_KEYS)}"
        )
    for k in _HEADER_KEYS:
        if k not in header:
            raise InputError(f"{where(path, f'header.{k}')}: missing")

    variant = header["variant"]
    if not isinstance(variant, str) or not variant:
        raise InputError(
            f"{where(path, 'header.variant')}: expected a non-empty string, got {variant!r}"
        )
    steps = header["steps"]
    if not _is_int(steps) or steps < 1:
        raise InputError(f"{where(path, 'header.steps')}: expected an integer >= 1, got {steps!r}")
    step_ms = header["step_ms"]
    if not _is_num(step_ms) or not math.isfinite(step_ms) or step_ms <= 0:
        raise InputError(
            f"{where(path, 'header.step_ms')}: expected a finite number > 0, got {step_ms!r}"
        )
    if not isinstance(header["model"], dict):
        raise InputError(
            f"{where(path, 'header.model')}: "
            f"expected an object (dict), got {type(header['model']).__name__}"
        )
    prov = header["provenance"]
    if not isinstance(prov, dict):
        raise InputError(
            f"{where(path, 'header.provenance')}: "
            f"expected an object (dict), got {type(prov).__name__}"
        )
    if "synthetic" not in prov:
        raise InputError(
            f"{where(path, 'header.provenance.synthetic')}: missing (expected true or false)"
        )
    if not isinstance(prov["synthetic"], (bool, np.bool_)):
        raise InputError(
            f"{where(path, 'header.provenance.synthetic')}: "
            f"expected true or false, got {prov['synthetic']!r}"
        )
    for k in _PROVENANCE_OPTIONAL:
        if k in prov and prov[k] is not None and not isinstance(prov[k], str):
            raise InputError(
                f"{where(path, f'header.provenance.{k}')}: "
                f"expected a string or null, got {prov[k]!r}"
            )

    raw_ops = header["ops"]
    if not isinstance(raw_ops, list) or not raw_ops:
        raise InputError(
            f"{where(path, 'header.ops')}: expected a non-empty list of ops, got {raw_ops!r:.80}"
        )
    ops: list[OpSpec] = []
    seen: dict[str, int] = {}
    all_names = {
        d.get("name"): j
        for j, d in enumerate(raw_ops)
        if isinstance(d, dict) and isinstance(d.get("name"), str)
    }
    for i, d in enumerate(raw_ops):
        op = _check_op(i, d, path)
        if op.name in seen:
            raise InputError(
                f"{where(path, _opf(i, op, 'name'))}: duplicate op name (also op {seen[op.name]}); "
                "op names must be unique"
            )
        if op.source is not None:
            if op.source == op.name:
                raise InputError(
                    f"{where(path, _opf(i, op, 'source'))}: an op cannot feed itself; "
                    "expected the name of an earlier op or null (model input)"
                )
            if op.source not in seen:
                if op.source in all_names:
                    raise InputError(
                        f"{where(path, _opf(i, op, 'source'))}: "
                        f"names op {op.source!r}, which comes "
                        f"later (op {all_names[op.source]}); expected an earlier op or null "
                        "(ops are listed in execution order)"
                    )
                raise InputError(
                    f"{where(path, _opf(i, op, 'source'))}: no op named {op.source!r}; expected "
                    "the name of an earlier op or null (model input)"
                )
        seen[op.name] = i
        ops.append(op)
    return ops


def _check_op(i: int, d, path) -> OpSpec:
    if not isinstance(d, dict):
        raise InputError(
            f"{where(path, f'header.ops[{i}]')}: expected an object (dict), got {d!r:.80}"
        )
    f = lambda name: where(path, _opf(i, d, name))  # noqa: E731
    unknown = [k for k in d if k not in _OP_REQUIRED + _OP_OPTIONAL]
    if unknown:
        raise InputError(
            f"{f('keys')}: unknown key(s) {', '.join(map(repr, unknown))}; "
            f"expected {', '.join(_OP_REQUIRED + _OP_OPTIONAL)}"
        )
    for k in _OP_REQUIRED:
        if k not in d:
            raise InputError(f"{f(k)}: missing")
    name = d["name"]
    if not isinstance(name, str) or not name:
        raise InputError(f"{f('name')}: expected a non-empty string, got {name!r}")
    kind = d["kind"]
    if kind not in OP_KINDS:
        raise InputError(
            f"{f('kind')}: unknown kind {kind!r}; expected one of {', '.join(OP_KINDS)}"
        )
    for k in ("in_width", "out_width"):
        if not _is_int(d[k]) or d[k] < 1:
            raise InputError(f"{f(k)}: expected an integer >= 1, got {d[k]!r}")
    if d["in_width"] > np.iinfo(np.int32).max:
        raise InputError(
            f"{f('in_width')}: expected at most {np.iinfo(np.int32).max}, got {d['in_width']}"
        )
    if kind in _SAME_WIDTH_KINDS and d["in_width"] != d["out_width"]:
        raise InputError(
            f"{f('out_width')}: a {kind} op works channel by channel, expected out_width == "
            f"in_width ({d['in_width']}), got {d['out_width']}"
        )
    source = d["source"]
    if source is not None and (not isinstance(source, str) or not source):
        raise InputError(
            f"{f('source')}: expected an op name or null (model input), got {source!r}"
        )
    binary = d["binary"]
    if not isinstance(binary, (bool, np.bool_)):
        raise InputError(f"{f('binary')}: expected true or false, got {binary!r}")
    wd = d.get("weight_density", 1.0)
    if not _is_num(wd) or not math.isfinite(wd) or not 0 < wd <= 1:
        raise InputError(f"{f('weight_density')}: expected a number in (0, 1], got {wd!r}")
    params = d.get("params", {})
    if not isinstance(params, dict):
        raise InputError(f"{f('params')}: expected an object (dict), got {params!r:.80}")
    wanted = _KIND_PARAMS[kind]
    extra = [k for k in params if k not in wanted]
    if extra:
        allowed = ", ".join(wanted) if wanted else "none"
        raise InputError(
            f"{f('params')}: unknown param(s) {', '.join(map(repr, extra))} for a {kind} op; "
            f"allowed: {allowed}"
        )
    for k, desc in wanted.items():
        if k not in params:
            raise InputError(f"{f(f'params.{k}')}: missing; a {kind} op needs {k}, {desc}")
        if not _is_int(params[k]) or params[k] < 1:
            raise InputError(f"{f(f'params.{k}')}: expected {desc}, got {params[k]!r}")
    return OpSpec(
        name=name,
        kind=kind,
        in_width=int(d["in_width"]),
        out_width=int(d["out_width"]),
        source=source,
        binary=bool(binary),
        weight_density=float(wd),
        params={k: int(v) for k, v in params.items()},
    )


def _step_of(indptr: np.ndarray, pos: int) -> int:
    """The time step that event position ``pos`` belongs to."""
    return int(np.searchsorted(indptr, pos, side="right") - 1)


def _check_events(i, op: OpSpec, indptr, index, value, steps: int, path) -> OpEvents:
    """Check one op's CSR arrays; return them as canonical dtypes."""
    f = lambda name: where(path, _opf(i, op, name))  # noqa: E731
    arrs = {"indptr": indptr, "index": index}
    if value is not None:
        arrs["value"] = value
    for part, a in arrs.items():
        if not isinstance(a, np.ndarray):
            raise InputError(
                f"{f(f'op{i}.{part}')}: expected a numpy array, got {type(a).__name__}"
            )
        if a.ndim != 1:
            raise InputError(f"{f(f'op{i}.{part}')}: expected a 1-D array, got shape {a.shape}")
    for part in ("indptr", "index"):
        a = arrs[part]
        if a.dtype.kind not in "iu":
            raise InputError(
                f"{f(f'op{i}.{part}')}: expected an integer array, got dtype {a.dtype}"
            )
    if op.binary and value is not None:
        raise InputError(
            f"{f(f'op{i}.value')}: the op is binary (spike events carry no values), "
            "expected no value array, found one"
        )
    if not op.binary and value is None:
        raise InputError(
            f"{f(f'op{i}.value')}: missing array; a graded op (binary: false) needs values"
        )
    if value is not None and value.dtype.kind != "f":
        raise InputError(
            f"{f(f'op{i}.value')}: expected a floating-point array, got dtype {value.dtype}"
        )

    # indptr
    if len(indptr) != steps + 1:
        raise InputError(
            f"{f(f'op{i}.indptr')}: expected length steps+1 = {steps + 1}, got {len(indptr)}"
        )
    if indptr.dtype.kind == "u" and indptr.dtype.itemsize == 8 and int(indptr.max()) > _INT64_MAX:
        raise InputError(f"{f(f'op{i}.indptr')}: value {int(indptr.max())} too large")
    ip = indptr.astype(np.int64, copy=False)
    if ip[0] != 0:
        raise InputError(f"{f(f'op{i}.indptr')}: expected indptr[0] == 0, got {int(ip[0])}")
    d = np.diff(ip)
    if d.size and d.min() < 0:
        t = int(np.argmax(d < 0))
        raise InputError(
            f"{f(f'op{i}.indptr')}: expected non-decreasing values, but it decreases at step {t}: "
            f"indptr[{t}] = {int(ip[t])} > indptr[{t + 1}] = {int(ip[t + 1])}"
        )
    nnz = len(index)
    if ip[-1] != nnz:
        raise InputError(
            f"{f(f'op{i}.indptr')}: expected indptr[-1] == len(op{i}.index) = {nnz}, "
            f"got {int(ip[-1])}"
        )

    # index
    if nnz:
        bad = (index < 0) | (index >= op.in_width)
        if bad.any():
            pos = int(np.argmax(bad))
            raise InputError(
                f"{f(f'op{i}.index')}: channel {int(index[pos])} at step {_step_of(ip, pos)} is "
                f"out of range; expected 0 <= channel < in_width = {op.in_width}"
            )
    idx = index.astype(np.int32, copy=False)
    if nnz > 1:
        first = np.zeros(nnz, dtype=bool)
        starts = ip[:-1]
        first[starts[starts < nnz]] = True
        bad = (np.diff(idx.astype(np.int64)) <= 0) & ~first[1:]
        if bad.any():
            pos = int(np.argmax(bad)) + 1
            prev, cur = int(idx[pos - 1]), int(idx[pos])
            what = "duplicate channel" if prev == cur else "channels not increasing"
            raise InputError(
                f"{f(f'op{i}.index')}: {what} at step {_step_of(ip, pos)}: {cur} follows {prev}; "
                "expected strictly increasing channels within a step"
            )

    # value
    val = None
    if value is not None:
        if len(value) != nnz:
            raise InputError(
                f"{f(f'op{i}.value')}: expected length len(op{i}.index) = {nnz}, got {len(value)}"
            )
        with np.errstate(over="ignore", invalid="ignore"):
            val = value.astype(np.float32, copy=False)
        bad = ~np.isfinite(val)
        if bad.any():
            pos = int(np.argmax(bad))
            orig = value[pos]
            if np.isfinite(orig):
                msg = f"value {float(orig)!r} does not fit in float32"
            else:
                msg = f"got {float(orig)!r}"
            raise InputError(
                f"{f(f'op{i}.value')}: expected finite values, {msg} at step {_step_of(ip, pos)} "
                f"(channel {int(idx[pos])})"
            )
    return OpEvents(indptr=ip, index=idx, value=val)


def validate_trace(trace: Trace, path=None) -> None:
    """Check an in-memory trace as thoroughly as ``load_trace`` checks a file: the header, that
    ``trace.ops`` agrees with ``header["ops"]``, and every op's arrays. Raises ``InputError``."""
    if path is None:
        path = trace.path
    ops = _check_header(trace.header, path)
    if len(trace.ops) != len(ops):
        raise InputError(
            f"{where(path, 'ops')}: header lists {len(ops)} op(s), Trace.ops has {len(trace.ops)}"
        )
    for i, (mine, theirs) in enumerate(zip(ops, trace.ops)):
        if mine != theirs:
            raise InputError(
                f"{where(path, _opf(i, mine, 'spec'))}: header.ops[{i}] = {asdict(mine)} "
                f"disagrees with Trace.ops[{i}] = {theirs!r}"
            )
    if len(trace.events) != len(ops):
        raise InputError(
            f"{where(path, 'events')}: expected one OpEvents per op ({len(ops)}), "
            f"got {len(trace.events)}"
        )
    for i, (op, ev) in enumerate(zip(ops, trace.events)):
        if not isinstance(ev, OpEvents):
            raise InputError(
                f"{where(path, _opf(i, op, 'events'))}: expected OpEvents, got {type(ev).__name__}"
            )
        _check_events(i, op, ev.indptr, ev.index, ev.value, trace.header["steps"], path)
