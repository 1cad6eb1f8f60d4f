"""Architecture files: the parameter declaration, the loader, validation and overrides.

Every parameter of a chip is declared exactly once, in ``PARAMS`` below (gem5-style: type,
default, unit, range or choices, one-line description). Everything else is generated from that
declaration: the validation and its error messages, the JSON schema (``json_schema()``), the
parsing of command-line overrides and the reference page ``docs/architecture.md``
(``python -m hwsim.arch --markdown > docs/architecture.md``).

Usage::

    arch = load_arch("archs/pe64.yaml", {"sram.banks": "8"})
    arch.get("sram.banks")      # 8
    arch["noc"]["topology"]     # 'mesh'
    arch.where("sram.banks")    # 'command line (override of archs/pe64.yaml)'
    arch.timing()               # hwsim.phase.Timing for the engines

Every problem with a file or an override is an :class:`hwsim.errors.InputError` that names the
file, the dotted key, the line where there is one, and what was expected.
"""

from __future__ import annotations

import copy
import datetime
import difflib
import hashlib
import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from hwsim.errors import InputError, where as _where
from hwsim.phase import BUS, MESH, Timing

FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)

ARCH_DIR = Path(__file__).resolve().parent.parent / "archs"
DEFAULT_ARCH = ARCH_DIR / "pe64.yaml"


class _Required:
    """Marker for a parameter without a default (the file must give it)."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self):
        return "REQUIRED"

    def __deepcopy__(self, memo):
        return self

    def __copy__(self):
        return self


REQUIRED = _Required()


@dataclass(frozen=True)
class Param:
    """One architecture parameter. ``default is REQUIRED`` means the file must give it.

    ``type`` is one of ``int``, ``float``, ``str``, ``bool``, ``dict`` (a free-form mapping).
    ``min``/``max`` bound numbers (inclusive; ``min_exclusive`` makes the lower bound strict);
    ``choices`` lists the accepted values of a string.
    """

    section: str
    name: str
    type: type
    default: Any
    unit: str
    doc: str
    min: float | None = None
    max: float | None = None
    choices: tuple | None = None
    min_exclusive: bool = False

    @property
    def path(self) -> str:
        return f"{self.section}.{self.name}"

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def __hash__(self):
        return hash(self.path)

    # -- messages -------------------------------------------------------------------------------
    def expected(self) -> str:
        """What a valid value looks like, e.g. 'an integer from 1 to 64'."""
        if self.choices is not None:
            if len(self.choices) == 1:
                return f"{_fmt(self.choices[0])} (the only value supported)"
            return "one of " + ", ".join(_fmt(c) for c in self.choices)
        noun = _TYPE_NOUN[self.type]
        if self.type in (int, float):
            lo, hi = self.min, self.max
            if lo is not None and hi is not None and not self.min_exclusive:
                return f"{noun} from {_fmt(lo)} to {_fmt(hi)}"
            parts = []
            if lo is not None:
                parts.append(f"{'>' if self.min_exclusive else '>='} {_fmt(lo)}")
            if hi is not None:
                parts.append(f"<= {_fmt(hi)}")
            return f"{noun} {' and '.join(parts)}" if parts else noun
        return noun

    def allowed(self) -> str:
        """The range or choices column of the reference table."""
        if self.choices is not None:
            return ", ".join(f"`{_fmt(c)}`" for c in self.choices)
        if self.type in (int, float):
            lo, hi = self.min, self.max
            if lo is not None and hi is not None and not self.min_exclusive:
                return f"{_fmt(lo)} … {_fmt(hi)}"
            parts = []
            if lo is not None:
                parts.append(f"{'>' if self.min_exclusive else '≥'} {_fmt(lo)}")
            if hi is not None:
                parts.append(f"≤ {_fmt(hi)}")
            return ", ".join(parts) if parts else "any"
        if self.type is bool:
            return "`true`, `false`"
        return "any"

    # -- checking -------------------------------------------------------------------------------
    def check(self, value) -> Any:
        """Return the canonical value (an int given for a float becomes a float), or raise a
        ValueError whose text is the part of the message after the key."""
        t = self.type
        ok_type = (
            (t is int and isinstance(value, int) and not isinstance(value, bool))
            or (t is float and isinstance(value, (int, float)) and not isinstance(value, bool))
            or (t is str and isinstance(value, str))
            or (t is bool and isinstance(value, bool))
            or (t is dict and isinstance(value, dict))
        )
        if not ok_type:
            raise ValueError(f"expected {self.expected()}, got {_describe(value)}")
        if t is float:
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"expected {self.expected()}, got {_describe(value)}")
        if t is dict:
            bad = [k for k in value if not isinstance(k, str)]
            if bad:
                raise ValueError(f"expected a mapping with string keys, got key {_describe(bad[0])}")
            return copy.deepcopy(value)
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"expected {self.expected()}, got {_describe(value)}")
        if t in (int, float):
            lo, hi = self.min, self.max
            too_low = lo is not None and (value <= lo if self.min_exclusive else value < lo)
            too_high = hi is not None and value > hi
            if too_low or too_high:
                raise ValueError(f"expected {self.expected()}, got {_fmt(value)}")
        return value

    def parse(self, text: str) -> Any:
        """Parse a command-line string by the declared type (not yet range-checked)."""
        s = text.strip()
        t = self.type
        if t is bool:
            low = s.lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError(f"expected true or false, got {text!r}")
        if t is int:
            if re.fullmatch(r"[+-]?\d[\d_]*", s):
                return int(s)
            raise ValueError(f"expected {self.expected()}, got {text!r}")
        if t is float:
            try:
                v = float(s)
            except ValueError:
                raise ValueError(f"expected {self.expected()}, got {text!r}") from None
            return v
        if t is dict:
            try:
                v = _load_yaml_text(s or "{}", "<override>")[0]
            except InputError as e:
                raise ValueError(f"expected a YAML mapping such as '{{a: 1}}': {e}") from None
            if v is None:
                v = {}
            if not isinstance(v, dict):
                raise ValueError(f"expected a YAML mapping such as '{{a: 1}}', got {text!r}")
            return v
        return text


_TYPE_NOUN = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
              dict: "a mapping"}
_TYPE_NAME = {int: "int", float: "float", str: "string", bool: "bool", dict: "mapping"}
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def _fmt(v) -> str:
    """A value as a user writes it in YAML."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v)) if abs(v) >= 1 or v == 0 else repr(v)
        return repr(v)
    if isinstance(v, dict):
        return "{}" if not v else json.dumps(v, sort_keys=True)
    return str(v)


def _describe(v) -> str:
    if v is None:
        return "nothing (null)"
    if isinstance(v, bool):
        return f"a boolean ({_fmt(v)})"
    if isinstance(v, int):
        return f"an integer ({v})"
    if isinstance(v, float):
        return f"a number ({v!r})"
    if isinstance(v, str):
        return f"a string ({v!r})"
    if isinstance(v, dict):
        return "a mapping"
    if isinstance(v, list):
        return "a list"
    return f"{type(v).__name__} ({v!r})"


# ------------------------------------------------------------------------------------------------
# The declaration: the single source of truth.
# ------------------------------------------------------------------------------------------------

SECTIONS: dict[str, str] = {
    "chip": "The chip as a whole: clock and the PE array.",
    "pe": "One processing element: input event queue, decoder, MAC lanes, neuron-update unit.",
    "sram": "The SRAM of a PE (weights and neuron state) and the bit widths stored in it.",
    "noc": "The network on chip that carries events between PEs.",
    "sync": "Synchronisation between phases.",
    "mapping": "How a model's ops are placed on the PEs.",
    "energy": "Energy per action, in picojoules (docs/timing-model.md §5 says how it is summed).",
}

PARAMS: dict[str, Param] = {
    p.path: p
    for p in [
        # chip
        Param("chip", "name", str, "", "", "Name used in reports; empty: the file's stem."),
        Param("chip", "clock_mhz", float, REQUIRED, "MHz", "Clock frequency (converts cycles to time).",
              min=1, max=10000),
        Param("chip", "mesh_rows", int, REQUIRED, "PEs", "Rows of the PE array.", min=1, max=64),
        Param("chip", "mesh_cols", int, REQUIRED, "PEs", "Columns of the PE array (PEs are numbered "
              "row-major).", min=1, max=64),
        # pe
        Param("pe", "component", str, "pe", "", "Name of the registered PE component that models "
              "each PE."),
        Param("pe", "component_params", dict, {}, "", "Free-form parameters of a custom component "
              "(validated by the component)."),
        Param("pe", "queue_depth", int, REQUIRED, "events", "Entries of the input event queue (and "
              "credits of its PE).", min=1, max=4096),
        Param("pe", "mac_lanes", int, REQUIRED, "lanes", "MAC/AC operations per cycle.", min=1,
              max=1024),
        Param("pe", "decode_cycles", int, REQUIRED, "cycles", "Cycles to decode one popped event.",
              min=1, max=64),
        Param("pe", "neuron_update_cycles", int, REQUIRED, "cycles/neuron", "Cycles of the "
              "end-of-phase update per owned neuron.", min=1, max=64),
        # sram
        Param("sram", "banks", int, REQUIRED, "banks", "Banks read in parallel (one word each per "
              "cycle).", min=1, max=64),
        Param("sram", "bank_width_bits", int, REQUIRED, "bits", "Width of one bank word.", min=8,
              max=1024),
        Param("sram", "capacity_kib", float, REQUIRED, "KiB/PE", "SRAM capacity per PE.", min=0,
              max=65536, min_exclusive=True),
        Param("sram", "read_latency", int, REQUIRED, "cycles", "Cycles from an SRAM grant to the "
              "first data.", min=1, max=64),
        Param("sram", "sharing", int, REQUIRED, "PEs", "Consecutive PEs that share one SRAM "
              "(1 = private).", min=1, max=64),
        Param("sram", "weight_bits", int, REQUIRED, "bits", "Bits of one stored weight.", min=1,
              max=32),
        Param("sram", "state_bits", int, REQUIRED, "bits", "Bits of one stored neuron state.",
              min=1, max=64),
        Param("sram", "value_bits", int, REQUIRED, "bits", "Bits of a graded event value on the NoC "
              "(binary spikes carry none).", min=1, max=32),
        # noc
        Param("noc", "topology", str, REQUIRED, "", "`mesh`: 2-D mesh, XY routing; `bus`: one "
              "shared bus.", choices=("mesh", "bus")),
        Param("noc", "hop_latency", int, REQUIRED, "cycles", "Cycles for a packet head to cross "
              "one link (or the bus).", min=1, max=64),
        Param("noc", "link_width_bits", int, REQUIRED, "bits", "Width of a link, i.e. of one flit.",
              min=1, max=1024),
        Param("noc", "address_bits", int, REQUIRED, "bits", "Bits of an event's address in a packet.",
              min=1, max=64),
        Param("noc", "multicast", bool, REQUIRED, "", "One packet serves all destinations "
              "(`false`: one unicast per destination)."),
        Param("noc", "flow_control", str, "credit", "", "Back-pressure scheme.",
              choices=("credit",)),
        Param("noc", "credit_latency", int, REQUIRED, "cycles", "Cycles from a queue pop until its "
              "credit is back at the senders.", min=1, max=64),
        # sync
        Param("sync", "barrier_latency", int, REQUIRED, "cycles", "Cycles of the barrier that ends "
              "every phase.", min=1, max=1_000_000),
        # mapping
        Param("mapping", "mode", str, REQUIRED, "", "`op_by_op`: each op over all PEs, barrier "
              "after each op; `layer_pipelined`: ops on disjoint PE groups, one barrier per step.",
              choices=("op_by_op", "layer_pipelined")),
        Param("mapping", "strategy", str, "even", "", "How an op's output neurons are spread over "
              "its PEs (`even`: contiguous, equal blocks; `balanced`: in proportion to the work "
              "the trace puts on them, and PE groups sized by op work in `layer_pipelined`).",
              choices=("even", "balanced")),
        # energy
        Param("energy", "mac_pj", float, REQUIRED, "pJ/MAC", "One multiply-accumulate (graded "
              "event).", min=0),
        Param("energy", "ac_pj", float, REQUIRED, "pJ/AC", "One accumulate (binary spike).", min=0),
        Param("energy", "sram_read_pj_per_bit", float, REQUIRED, "pJ/bit", "SRAM read, per bit of "
              "the words read.", min=0),
        Param("energy", "sram_write_pj_per_bit", float, REQUIRED, "pJ/bit", "SRAM write, per bit "
              "of the words written.", min=0),
        Param("energy", "queue_push_pj", float, REQUIRED, "pJ/event", "Push of one event into an "
              "input queue.", min=0),
        Param("energy", "queue_pop_pj", float, REQUIRED, "pJ/event", "Pop of one event from an "
              "input queue.", min=0),
        Param("energy", "noc_hop_pj_per_flit", float, REQUIRED, "pJ/flit-hop", "One flit crossing "
              "one link (or one bus transfer).", min=0),
        Param("energy", "neuron_update_pj", float, REQUIRED, "pJ/neuron", "Datapath of one neuron "
              "update (its SRAM traffic is priced separately).", min=0),
        Param("energy", "leakage_pj_per_pe_cycle", float, REQUIRED, "pJ/(PE·cycle)", "Static "
              "energy of one PE per cycle.", min=0),
    ]
}

# Cross-field rules, documented in the reference page.
CROSS_CHECKS = (
    "`chip.mesh_rows × chip.mesh_cols` ≥ 1 (the chip has at least one PE).",
    "`sram.sharing` ≤ `chip.mesh_rows × chip.mesh_cols` (an SRAM cannot be shared by more PEs "
    "than the chip has).",
)


def params_of(section: str) -> list[Param]:
    return [p for p in PARAMS.values() if p.section == section]


assert list(SECTIONS) == list(dict.fromkeys(p.section for p in PARAMS.values()))

# ------------------------------------------------------------------------------------------------
# YAML with line numbers, duplicate-key detection and safe tags only.
# ------------------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads YAML 1.2 floats such as ``1e3`` (YAML 1.1 wants ``1.0e+3``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d[\d_]*)?(?:\.\d*)?[eE][-+]?\d+$"),
    list("-+0123456789."),
)

_YAML = "tag:yaml.org,2002:"
_SAFE_TAGS = {_YAML + t for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp",
                                  "merge")}


def _mark(e) -> tuple[int | None, int | None]:
    m = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    if m is None:
        return None, None
    return m.line + 1, m.column + 1


def _load_yaml_text(text: str, source: str):
    """Parse YAML text into plain Python data and a {dotted key: line} map (top two levels).

    Refuses duplicate keys and any tag beyond plain YAML values (no Python objects, ever).
    """
    loader = _Loader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.YAMLError as e:
            line, col = _mark(e)
            loc = f"{source}:{line}:{col}" if line else source
            problem = getattr(e, "problem", None) or str(e)
            raise InputError(f"{loc}: not valid YAML: {problem}") from None
        lines: dict[str, int] = {}
        if node is not None:
            _walk(node, (), source, lines, set())
        try:
            data = loader.construct_document(node) if node is not None else None
        except yaml.YAMLError as e:  # pragma: no cover - _walk refuses what could fail here
            line, col = _mark(e)
            loc = f"{source}:{line}:{col}" if line else source
            raise InputError(f"{loc}: not valid YAML: {getattr(e, 'problem', e)}") from None
    finally:
        loader.dispose()
    return data, lines


def _walk(node, keys: tuple, source: str, lines: dict, seen: set):
    if id(node) in seen:  # an alias: already checked (and keeps 'billion laughs' linear)
        return
    seen.add(id(node))
    dotted = ".".join(keys) or "(top level)"
    if node.tag not in _SAFE_TAGS:
        raise InputError(
            f"{source}:{node.start_mark.line + 1}:{node.start_mark.column + 1}: {dotted}: "
            f"unsupported YAML tag {node.tag!r} (only plain values, lists and mappings are allowed)"
        )
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for knode, vnode in node.value:
            _walk(knode, keys, source, lines, seen)
            line = knode.start_mark.line + 1
            if isinstance(knode, yaml.ScalarNode) and knode.tag != _YAML + "merge":
                name = knode.value
                here = ".".join(keys + (name,))
                if name in first:
                    raise InputError(
                        f"{_where(source, here, line)}: duplicate key (first given on line "
                        f"{first[name]}); YAML would silently keep only the last one"
                    )
                first[name] = line
                if len(keys) < 2:
                    lines.setdefault(here, line)
                _walk(vnode, keys + (name,), source, lines, seen)
            else:
                _walk(vnode, keys, source, lines, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, keys + (f"[{i}]",), source, lines, seen)


# ------------------------------------------------------------------------------------------------
# Validation
# ------------------------------------------------------------------------------------------------


def _close(name: str, options: Iterable[str]) -> str:
    m = difflib.get_close_matches(str(name), list(options), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(m)}?" if m else ""


def _validate(data, source: str, lines: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Check a loaded document against PARAMS; return canonical {section: {name: value}}."""

    def loc(key: str | None, field: str) -> str:
        return _where(source, field, lines.get(key) if key else None)

    if data is None:
        raise InputError(f"{source}: the file is empty; expected a mapping with `version: 1` and "
                         f"the sections {', '.join(SECTIONS)}")
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a mapping at the top level "
                         f"(version, {', '.join(SECTIONS)}), got {_describe(data)}")
    if "version" not in data:
        raise InputError(f"{source}: version: missing required key; expected `version: "
                         f"{FORMAT_VERSION}` at the top of the file")
    v = data["version"]
    if isinstance(v, bool) or not isinstance(v, int) or v not in SUPPORTED_VERSIONS:
        raise InputError(f"{loc('version', 'version')}: unsupported architecture file version "
                         f"{_fmt(v) if not isinstance(v, str) else repr(v)}; this hwsim reads "
                         f"version {', '.join(map(str, SUPPORTED_VERSIONS))}")
    for key in data:
        if key == "version":
            continue
        if not isinstance(key, str) or key not in SECTIONS:
            raise InputError(f"{loc(str(key), str(key))}: unknown section{_close(key, SECTIONS)} "
                             f"(sections: {', '.join(SECTIONS)})")
    out: dict[str, dict[str, Any]] = {}
    for section in SECTIONS:
        decl = params_of(section)
        if section not in data:
            needed = [p for p in decl if p.required]
            if needed:
                raise InputError(f"{source}: {section}: missing required section (it needs "
                                 f"{', '.join(p.name for p in needed)})")
            body = {}
        else:
            body = data[section]
            if body is None:
                body = {}
            if not isinstance(body, dict):
                raise InputError(f"{loc(section, section)}: expected a mapping of "
                                 f"{section} parameters, got {_describe(body)}")
        names = {p.name for p in decl}
        for key in body:
            if not isinstance(key, str) or key not in names:
                dotted = f"{section}.{key}"
                hint = _close(key, names) or f" (keys of {section}: {', '.join(sorted(names))})"
                raise InputError(f"{loc(dotted, dotted)}: unknown key{hint}")
        vals: dict[str, Any] = {}
        for p in decl:
            if p.name not in body:
                if p.required:
                    raise InputError(f"{loc(section, p.path)}: missing required key (expected "
                                     f"{p.expected()}{', in ' + p.unit if p.unit else ''})")
                vals[p.name] = copy.deepcopy(p.default)
                continue
            try:
                vals[p.name] = p.check(body[p.name])
            except ValueError as e:
                raise InputError(f"{loc(p.path, p.path)}: {e}") from None
        out[section] = vals
    return out


def _cross_check(values: dict, locate) -> None:
    """Rules between fields. ``locate(dotted)`` gives the location prefix of a key."""
    rows, cols = values["chip"]["mesh_rows"], values["chip"]["mesh_cols"]
    n_pe = rows * cols
    if n_pe < 1:
        raise InputError(f"{locate('chip.mesh_cols')}: chip.mesh_rows * chip.mesh_cols must be "
                         f">= 1, got {rows} * {cols}")
    sharing = values["sram"]["sharing"]
    if sharing > n_pe:
        raise InputError(f"{locate('sram.sharing')}: expected at most the number of PEs "
                         f"(chip.mesh_rows * chip.mesh_cols = {rows} * {cols} = {n_pe}), "
                         f"got {sharing}")


# ------------------------------------------------------------------------------------------------
# Arch
# ------------------------------------------------------------------------------------------------

_CLI = "command line"


class Arch:
    """A validated architecture. Immutable: ``with_overrides`` returns a new one."""

    __slots__ = ("path", "_values", "_lines", "_overridden")

    def __init__(self, values: dict, path: str | None = None, lines: dict | None = None,
                 overridden: frozenset = frozenset()):
        self.path = path
        self._values = values
        self._lines = dict(lines or {})
        self._overridden = frozenset(overridden)

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping, path: str | None = None) -> "Arch":
        """Validate an in-memory document (same rules and messages as a file)."""
        source = str(path) if path is not None else "<dict>"
        values = _validate(copy.deepcopy(dict(data)) if isinstance(data, Mapping) else data,
                           source, {})
        arch = cls(values, None if path is None else str(path))
        _cross_check(values, arch._locate)
        return arch

    # -- access ---------------------------------------------------------------------------------
    def get(self, dotted: str):
        section, _, name = dotted.partition(".")
        if dotted not in PARAMS:
            raise KeyError(f"unknown architecture parameter {dotted!r}"
                           f"{_close(dotted, PARAMS)}")
        return copy.deepcopy(self._values[section][name]) if PARAMS[dotted].type is dict \
            else self._values[section][name]

    def __getitem__(self, section: str) -> dict:
        if section not in self._values:
            raise KeyError(f"unknown architecture section {section!r}{_close(section, SECTIONS)}")
        return copy.deepcopy(self._values[section])

    def where(self, dotted: str) -> str:
        """'file:line' of a key (or section); the file alone where the line is unknown (a
        default, an in-memory arch); 'command line (override of file)' for an override."""
        if dotted in self._overridden:
            return f"{_CLI} (override of {self.path or '<dict>'})"
        return _where(self.path or "<dict>", "", self._lines.get(dotted))

    def _locate(self, dotted: str) -> str:
        return f"{self.where(dotted)}: {dotted}"

    @property
    def n_pe(self) -> int:
        return self._values["chip"]["mesh_rows"] * self._values["chip"]["mesh_cols"]

    @property
    def name(self) -> str:
        n = self._values["chip"]["name"]
        if n:
            return n
        return Path(self.path).stem if self.path else "arch"

    def timing(self) -> Timing:
        v = self._values
        return Timing(
            rows=v["chip"]["mesh_rows"],
            cols=v["chip"]["mesh_cols"],
            topology=MESH if v["noc"]["topology"] == "mesh" else BUS,
            queue_depth=v["pe"]["queue_depth"],
            decode_cycles=v["pe"]["decode_cycles"],
            banks=v["sram"]["banks"],
            read_latency=v["sram"]["read_latency"],
            sharing=v["sram"]["sharing"],
            hop_latency=v["noc"]["hop_latency"],
            credit_latency=v["noc"]["credit_latency"],
            barrier_latency=v["sync"]["barrier_latency"],
        )

    def to_dict(self) -> dict:
        """The canonical document: version plus every section, defaults filled in."""
        return {"version": FORMAT_VERSION, **copy.deepcopy(self._values)}

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def digest(self) -> str:
        """sha256 (hex) of the canonical dict: equal chips have equal digests."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), default=_json_default)
        return hashlib.sha256(text.encode()).hexdigest()

    # -- overrides ------------------------------------------------------------------------------
    def with_overrides(self, overrides: Mapping[str, object] | Iterable | None) -> "Arch":
        """A validated copy with ``{dotted: value}`` applied. Values may be strings from the
        command line (parsed by the declared type) or Python values (checked strictly).
        ``pe.component_params.KEY`` sets one entry of the component's mapping (YAML-parsed).
        Also accepts an iterable of 'key=value' strings."""
        items = _override_items(overrides)
        if not items:
            return self
        src = f"{_CLI} (override of {self.path or '<dict>'})"
        values = copy.deepcopy(self._values)
        touched = set(self._overridden)
        for dotted, raw in items:
            dotted = str(dotted).strip()
            section, _, name = dotted.partition(".")
            p = PARAMS.get(dotted)
            sub = None
            if p is None:
                head = ".".join(dotted.split(".")[:2])
                if head in PARAMS and PARAMS[head].type is dict and dotted != head:
                    p, sub = PARAMS[head], dotted[len(head) + 1:]
                    section, name = p.section, p.name
                else:
                    raise InputError(f"{src}: {dotted}: unknown parameter{_close(dotted, PARAMS)}")
            try:
                if sub is not None:
                    value = _parse_scalar(raw) if isinstance(raw, str) else copy.deepcopy(raw)
                    new = dict(values[section][name])
                    new[sub] = value
                    values[section][name] = p.check(new)
                else:
                    value = p.parse(raw) if isinstance(raw, str) and p.type is not str else raw
                    values[section][name] = p.check(value)
            except ValueError as e:
                shown = raw if isinstance(raw, str) else _fmt(raw)
                raise InputError(f"{src}: {dotted}: {e} (from the override "
                                 f"'{dotted}={shown}')") from None
            touched.add(p.path)
        arch = Arch(values, self.path, self._lines, frozenset(touched))
        try:
            _cross_check(values, arch._locate)
        except InputError as e:
            applied = ", ".join(f"{k}={v if isinstance(v, str) else _fmt(v)}" for k, v in items)
            raise InputError(f"{e} (after the command-line override {applied})") from None
        return arch

    # -- dunder ---------------------------------------------------------------------------------
    def __eq__(self, other):
        return isinstance(other, Arch) and self.to_dict() == other.to_dict()

    def __hash__(self):
        return hash(self.digest())

    def __repr__(self):
        v = self._values
        return (f"Arch({self.name!r}, {v['chip']['mesh_rows']}x{v['chip']['mesh_cols']} "
                f"{v['noc']['topology']}, path={self.path!r})")


def _json_default(o):
    if isinstance(o, (datetime.date, datetime.datetime)):
        return o.isoformat()
    raise TypeError(f"not serialisable: {o!r}")


def _parse_scalar(text: str):
    v, _ = _load_yaml_text(text, "<override>")
    return v


def _override_items(overrides) -> list[tuple[str, object]]:
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        return list(overrides.items())
    if isinstance(overrides, str):
        return [parse_override(overrides)]
    items = []
    for o in overrides:
        items.append(parse_override(o) if isinstance(o, str) else tuple(o))
    return items


_OVERRIDE_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+)\s*=(.*)$",
                          re.S)


def parse_override(text: str) -> tuple[str, str]:
    """'sram.banks=4' -> ('sram.banks', '4'). The value is kept as text (stripped) and parsed by
    the parameter's type when applied."""
    m = _OVERRIDE_RE.match(text) if isinstance(text, str) else None
    if not m:
        raise InputError(f"{_CLI}: {text!r}: expected an override of the form SECTION.KEY=VALUE, "
                         f"e.g. sram.banks=4")
    return m.group(1), m.group(2).strip()


# ------------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------------


def shipped_archs() -> list[Path]:
    """The architecture files shipped in archs/."""
    return sorted(ARCH_DIR.glob("*.yaml"))


def resolve_arch_path(path) -> Path:
    """A path as given, or the name of a shipped architecture ('pe16' -> archs/pe16.yaml)."""
    p = Path(path)
    if p.exists():
        return p
    if p.suffix == "" and len(p.parts) == 1 and (ARCH_DIR / f"{p.name}.yaml").exists():
        return ARCH_DIR / f"{p.name}.yaml"
    return p


def load_arch(path=None, overrides=None) -> Arch:
    """Load, validate and (optionally) override an architecture file.

    ``path`` may be a file or the name of a shipped architecture (``"pe64"``); ``None`` loads the
    default (archs/pe64.yaml). ``overrides`` is ``{dotted: value}`` or a list of 'key=value'.
    """
    if path is None:
        path = DEFAULT_ARCH
    resolved = resolve_arch_path(path)
    source = str(path) if Path(path) == resolved else str(resolved)
    try:
        text = Path(resolved).read_text(encoding="utf-8")
    except FileNotFoundError:
        names = ", ".join(p.stem for p in shipped_archs())
        raise InputError(f"{source}: architecture file not found (shipped architectures: "
                         f"{names})") from None
    except IsADirectoryError:
        raise InputError(f"{source}: is a directory, expected an architecture YAML file") from None
    except UnicodeDecodeError as e:
        raise InputError(f"{source}: not a text file ({e.reason})") from None
    data, lines = _load_yaml_text(text, source)
    values = _validate(data, source, lines)
    arch = Arch(values, source, lines)
    _cross_check(values, arch._locate)
    return arch.with_overrides(overrides)


# ------------------------------------------------------------------------------------------------
# Generated artefacts: JSON schema and the reference page
# ------------------------------------------------------------------------------------------------

_JSON_TYPE = {int: "integer", float: "number", str: "string", bool: "boolean", dict: "object"}


def json_schema() -> dict:
    """A JSON schema (draft 2020-12) of the architecture file, generated from PARAMS. Editors can
    use it; hwsim itself validates with the richer checks above (lines, cross-field rules)."""
    sections = {}
    for section, doc in SECTIONS.items():
        props, required = {}, []
        for p in params_of(section):
            s: dict[str, Any] = {"type": _JSON_TYPE[p.type], "description": p.doc}
            if p.unit:
                s["description"] += f" [{p.unit}]"
            if p.choices is not None:
                s["enum"] = list(p.choices)
            if p.min is not None:
                s["exclusiveMinimum" if p.min_exclusive else "minimum"] = p.min
            if p.max is not None:
                s["maximum"] = p.max
            if not p.required:
                s["default"] = copy.deepcopy(p.default)
            else:
                required.append(p.name)
            props[p.name] = s
        sections[section] = {"type": "object", "description": doc, "properties": props,
                             "required": required, "additionalProperties": False}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "hwsim architecture file",
        "type": "object",
        "properties": {"version": {"const": FORMAT_VERSION}, **sections},
        "required": ["version"] + [s for s in SECTIONS if any(p.required for p in params_of(s))],
        "additionalProperties": False,
    }


_INTRO = """\
# Architecture file reference

<!-- GENERATED by `python -m hwsim.arch --markdown > docs/architecture.md` from the declaration
     in hwsim/arch.py. Do not edit by hand; tests/test_arch.py checks it is up to date. -->

An architecture file is a YAML document that describes one chip: a mesh of processing elements
(PEs) joined by a network on chip (NoC). Each PE has an input event queue, a decoder, MAC lanes,
an SRAM with banks (weights and neuron state) and a neuron-update unit. The timing rules that
read these parameters are in [timing-model.md](timing-model.md).

Shipped architectures (in `archs/`): `pe64` (8×8 mesh, the default), `pe16` (4×4), `pe256`
(16×16) and `seneca` (2×4 bus of larger SENECA-like cores). Each file cites the published figures
its defaults come from (SENECA, Tang et al. 2023; Loihi, Davies et al. 2018; Horowitz, ISSCC 2014)
and marks the values that are our own assumptions.

Rules:

* `version: 1` is required and is the only version this hwsim reads.
* Every key below is required unless it has a default. Unknown sections or keys, duplicate keys,
  values of the wrong type (`true` is not an integer; an integer is fine where a number is
  expected) and values out of range are errors that name the file, the line and the key.
* Only plain YAML values are read: tags such as `!!python/object` are refused.
* Any parameter can be overridden without editing the file, e.g.
  `load_arch("archs/pe64.yaml", {"sram.banks": "8"})` or `sram.banks=8` on the command line.
  Text values are parsed by the parameter's type (`true`/`false`/`yes`/`no` for booleans);
  `pe.component_params.KEY=VALUE` sets one entry of the component's mapping.

```yaml
version: 1
chip: {mesh_rows: 8, mesh_cols: 8, clock_mhz: 500}
pe: {queue_depth: 64, mac_lanes: 4, ...}
...
```
"""


def markdown() -> str:
    """The reference page docs/architecture.md, generated from the declaration."""
    out = [_INTRO]
    out.append("## `version`\n")
    out.append(f"Required integer; the only supported value is `{FORMAT_VERSION}`.\n")
    for section, doc in SECTIONS.items():
        out.append(f"## `{section}`\n")
        out.append(f"{doc}\n")
        out.append("| key | type | default | unit | allowed | description |")
        out.append("|---|---|---|---|---|---|")
        for p in params_of(section):
            default = "*required*" if p.required else f"`{_fmt(p.default)}`" if _fmt(p.default) \
                else '`""`'
            doc_ = p.doc.replace("|", "\\|")
            out.append(f"| `{p.name}` | {_TYPE_NAME[p.type]} | {default} | {p.unit or '–'} | "
                       f"{p.allowed()} | {doc_} |")
        out.append("")
    out.append("## Checks between fields\n")
    out.extend(f"* {c}" for c in CROSS_CHECKS)
    out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m hwsim.arch",
                                 description="Architecture files: reference, schema, checks.")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--markdown", action="store_true", help="print docs/architecture.md")
    g.add_argument("--schema", action="store_true", help="print the JSON schema")
    ap.add_argument("files", nargs="*", help="architecture files to validate")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a parameter (repeatable)")
    args = ap.parse_args(argv)
    if args.markdown:
        sys.stdout.write(markdown())
        return 0
    if args.schema:
        sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")
        return 0
    if not args.files:
        ap.print_usage(sys.stderr)
        return 2
    try:
        overrides = [parse_override(s) for s in args.set]
        for f in args.files:
            a = load_arch(f, overrides)
            t = a.timing()
            print(f"{a.path}: ok: {a.name}, {t.rows}x{t.cols} {a.get('noc.topology')}, "
                  f"digest {a.digest()[:12]}")
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
