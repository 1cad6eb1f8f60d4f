"""Design-space sweeps: many architecture points × traces, on a local pool or a Dask cluster.

A sweep is a base architecture, one or more traces and the parameters to vary::

    spec = SweepSpec.from_cli(["pe.mac_lanes=4,8,16", "sram.banks=1,2,4"],
                              arch="archs/pe16.yaml", traces=["traces/fatrelu.npz"])
    run_sweep(spec, "out/sweep1", jobs=2)          # or scheduler="tcp://host:8786"
    df = load_sweep("out/sweep1")                  # one row per (point, trace)
    plot_sweep("out/sweep1")                       # pareto.png, sensitivity.png

Points expand deterministically: the base design (no overrides) first, then the cartesian grid
in the order given, then the explicit ``points``. Overrides equal to the base value are dropped
(so a grid value equal to the base's gives the base design, run once). Each (point, trace) run
has a stable ``point_id``: a hash of the trace path and the canonical overrides.

Every finished run is committed at once to ``DIR/results.sqlite`` (table ``results``, primary
key ``(point_id, trace)``), so a killed sweep loses nothing finished; a rerun of the same spec
skips runs already ``ok`` (and those ``failed`` too, unless ``retry_failed``). The spec is kept
in ``DIR/sweep.json`` (and a re-runnable ``DIR/sweep.yaml``); a different spec in the same
directory is refused unless ``force``. At the end the table is exported to ``DIR/sweep.parquet``.

Every user mistake is an :class:`hwsim.errors.InputError`.
"""

from __future__ import annotations

import contextlib
import datetime
import difflib
import hashlib
import itertools
import json
import os
import re
import sqlite3
import sys
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from .arch import PARAMS, Arch, _fmt, _load_yaml_text, load_arch, parse_override, resolve_arch_path
from .errors import InputError
from .errors import where as _where

STORE_FILE = "results.sqlite"
SPEC_FILE = "sweep.json"
SPEC_YAML = "sweep.yaml"
PARQUET_FILE = "sweep.parquet"
LOCK_FILE = ".sweep.lock"
TABLE = "results"
ENGINES = ("fast", "detailed")
SPEC_FORMAT = "hwsim-sweep"
SPEC_VERSION = 1

_YAML_KEYS = ("arch", "traces", "grid", "points", "engine", "steps", "plugins")
# Row columns that describe the run rather than its figures (in this order, first in the table).
ID_COLUMNS = ("point_id", "trace", "status", "error", "design_id", "is_base", "overrides", "seq",
              "run", "finished_at", "wall_s")


# ------------------------------------------------------------------------------------------------
# The spec
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """One design: canonical overrides of the base architecture (``{}`` is the base)."""

    index: int
    overrides: dict
    design_id: str
    values: dict  # swept parameter -> effective value (the base's where not overridden)

    @property
    def is_base(self) -> bool:
        return not self.overrides

    @property
    def label(self) -> str:
        if not self.overrides:
            return "base"
        return ", ".join(f"{k.split('.')[-1]}={_show(v)}" for k, v in self.overrides.items())


@dataclass(frozen=True)
class Run:
    """One (point, trace) pair: the unit of work and of the results table."""

    point: Point
    trace: str
    point_id: str
    seq: int


@dataclass
class SweepSpec:
    """A base architecture, traces, a grid and explicit points, the engine and the steps.

    ``grid`` maps dotted parameter paths to lists of values (strings are parsed by the
    parameter's type, as on the command line); ``points`` is a list of ``{dotted: value}``.
    ``source`` names where the spec came from (for error messages); ``lines`` maps
    ``grid.KEY`` / ``points[i]`` to lines of that file.
    """

    arch: str | None = None
    traces: list = field(default_factory=list)
    grid: dict = field(default_factory=dict)
    points: list = field(default_factory=list)
    engine: str = "fast"
    steps: int | None = None
    plugins: list = field(default_factory=list)
    source: str = "command line"
    lines: dict = field(default_factory=dict, repr=False)
    cli_keys: set = field(default_factory=set, repr=False)  # grid keys given by --set

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def from_cli(cls, set_args: Iterable[str] = (), *, arch=None, traces: Iterable = (),
                 engine: str = "fast", steps: int | None = None, plugins: Iterable = (),
                 base: "SweepSpec | None" = None) -> "SweepSpec":
        """Parse ``--set KEY=V1,V2,...`` arguments (commas inside ``{}``/``[]`` do not split).

        With ``base`` (a spec read by ``from_yaml``), the arguments add to or replace its grid;
        ``arch``/``traces``/``engine``/``steps`` replace its values when given.
        """
        grid: dict = {}
        for text in set_args:
            key, raw = parse_override(text)
            if key in grid:
                raise InputError(f"--set {text}: {key}: given twice; list all its values in one "
                                 f"--set {key}=V1,V2,...")
            values = _split_values(raw) if _splittable(key) else [raw]
            if not values or any(v == "" for v in values):
                raise InputError(f"--set {text}: {key}: empty value; expected "
                                 f"{key}=V1,V2,... (comma-separated values)")
            grid[key] = values
        if base is None:
            return cls(arch=None if arch is None else str(arch), traces=[str(t) for t in traces],
                       grid=grid, engine=engine or "fast", steps=steps, plugins=list(plugins),
                       cli_keys=set(grid))
        merged = dict(base.grid)
        merged.update(grid)
        lines = {k: v for k, v in base.lines.items() if not (k.startswith("grid.") and
                                                               k[5:] in grid)}
        return cls(arch=str(arch) if arch is not None else base.arch,
                   traces=[str(t) for t in traces] if traces else list(base.traces),
                   grid=merged, points=list(base.points), engine=engine or base.engine,
                   steps=steps if steps is not None else base.steps,
                   plugins=list(base.plugins) + [p for p in plugins if p not in base.plugins],
                   source=base.source, lines=lines, cli_keys=set(grid))

    @classmethod
    def from_yaml(cls, path) -> "SweepSpec":
        """Read a sweep YAML (keys: arch, traces, grid, points, engine, steps, plugins).

        Relative paths are taken from the current directory, or else from the YAML's folder.
        """
        import yaml

        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError(f"{source}: --config: sweep file not found") from None
        except IsADirectoryError:
            raise InputError(f"{source}: --config: is a directory, expected a sweep YAML") from None
        except UnicodeDecodeError as e:
            raise InputError(f"{source}: not a text file ({e.reason})") from None
        data, lines = _load_yaml_text(text, source)
        if data is None:
            raise InputError(f"{source}: the file is empty; expected a mapping with arch, traces "
                             f"and grid and/or points")
        if not isinstance(data, dict):
            raise InputError(f"{source}: expected a mapping at the top level "
                             f"({', '.join(_YAML_KEYS)}), got {type(data).__name__}")

        def loc(key, line_key=None):
            return _where(source, key, lines.get(line_key or key))

        for k in data:
            if k not in _YAML_KEYS:
                m = difflib.get_close_matches(str(k), _YAML_KEYS, n=1)
                hint = f"; did you mean {m[0]}?" if m else f" (keys: {', '.join(_YAML_KEYS)})"
                raise InputError(f"{loc(str(k))}: unknown key{hint}")
        # lines of list items (points[i], grid.KEY[j]) from the node tree
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        for knode, vnode in node.value:
            if knode.value == "points" and isinstance(vnode, yaml.SequenceNode):
                for i, item in enumerate(vnode.value):
                    lines[f"points[{i}]"] = item.start_mark.line + 1
        base_dir = Path(path).resolve().parent

        def rel(p, key):
            if not isinstance(p, str) or not p:
                raise InputError(f"{loc(key)}: expected a path (string), got {p!r}")
            q = Path(p)
            if q.is_absolute() or q.exists() or (key == "arch" and resolve_arch_path(p).exists()):
                return p
            alt = base_dir / q
            return str(alt) if alt.exists() else p

        arch = data.get("arch")
        if arch is not None:
            arch = rel(arch, "arch")
        traces = data.get("traces", [])
        if isinstance(traces, str):
            traces = [traces]
        if not isinstance(traces, list):
            raise InputError(f"{loc('traces')}: expected a list of trace files, got "
                             f"{type(traces).__name__}")
        traces = [rel(t, "traces") for t in traces]
        grid = data.get("grid") or {}
        if not isinstance(grid, dict):
            raise InputError(f"{loc('grid')}: expected a mapping of parameter -> list of values, "
                             f"e.g. {{pe.mac_lanes: [4, 8, 16]}}")
        grid = {str(k): (v if isinstance(v, list) else [v]) for k, v in grid.items()}
        for k, v in grid.items():
            if not v:
                raise InputError(f"{loc('grid.' + k)}: empty list of values")
        points = data.get("points") or []
        if not isinstance(points, list) or not all(isinstance(p, dict) for p in points):
            raise InputError(f"{loc('points')}: expected a list of mappings "
                             f"{{parameter: value}}, e.g. [{{pe.mac_lanes: 8, sram.banks: 2}}]")
        engine = data.get("engine", "fast")
        steps = data.get("steps")
        plugins = data.get("plugins") or []
        if isinstance(plugins, str):
            plugins = [plugins]
        if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
            raise InputError(f"{loc('plugins')}: expected a list of module names or .py files")
        return cls(arch=arch, traces=traces, grid=grid, points=[dict(p) for p in points],
                   engine=engine, steps=steps, plugins=plugins, source=source, lines=lines)

    # -- validation and expansion --------------------------------------------------------------
    def _loc(self, key: str) -> str:
        if key.startswith("grid.") and key[5:] in self.cli_keys:
            return f"--set {key[5:]}=" + ",".join(map(str, self.grid[key[5:]]))
        return _where(self.source, key, self.lines.get(key))

    def params(self) -> list[str]:
        """The swept parameters: grid keys, then keys first seen in explicit points."""
        out = list(self.grid)
        for p in self.points:
            out += [str(k) for k in p if str(k) not in out]
        return out

    def base_arch(self) -> Arch:
        if not self.arch:
            raise InputError(f"{self.source}: arch: no base architecture given (the ARCH "
                             f"argument, or `arch:` in the sweep YAML)")
        return load_arch(self.arch)

    def validate(self) -> tuple[Arch, list[Point], list[Run]]:
        """Check everything up front; return the base arch, the points and the runs."""
        if self.engine not in ENGINES:
            raise InputError(f"{self._loc('engine')}: expected one of {', '.join(ENGINES)}, got "
                             f"{self.engine!r}")
        if self.steps is not None and (isinstance(self.steps, bool) or
                                       not isinstance(self.steps, int) or self.steps < 1):
            raise InputError(f"{self._loc('steps')}: expected an integer >= 1, got {self.steps!r}")
        if self.plugins:
            from .components import registry

            for p in self.plugins:
                registry.load_plugin(p)
        base = self.base_arch()
        if not self.traces:
            raise InputError(f"{self.source}: traces: no trace given (TRACE arguments, or "
                             f"`traces:` in the sweep YAML)")
        seen = set()
        for t in self.traces:
            if t in seen:
                raise InputError(f"{self._loc('traces')}: {t}: trace given twice")
            seen.add(t)
            if not Path(t).is_file():
                raise InputError(f"{t}: trace file not found")
        # every value on its own, so a typo is named with its file and line
        grid: dict[str, list] = {}
        for key, values in self.grid.items():
            canon = []
            for v in values:
                c = _canonical(base, key, v, self._loc(f"grid.{key}"))
                if any(_same(c, d) for d in canon):
                    raise InputError(f"{self._loc('grid.' + key)}: value {_show(c)} given twice")
                canon.append(c)
            grid[key] = canon
        explicit = []
        for i, p in enumerate(self.points):
            explicit.append({str(k): _canonical(base, str(k), v, self._loc(f"points[{i}]") +
                                                f".{k}") for k, v in p.items()})
        params = self.params()
        candidates = [{}]
        keys = list(grid)
        for combo in itertools.product(*(grid[k] for k in keys)):
            candidates.append(dict(zip(keys, combo)))
        candidates += explicit
        points: list[Point] = []
        by_design: dict[str, Point] = {}
        for ov in candidates:
            ov = {k: ov[k] for k in params if k in ov and not _same(ov[k], _base_value(base, k))}
            did = _hash({"overrides": ov})
            if did in by_design:
                continue
            values = {k: ov.get(k, _base_value(base, k)) for k in params}
            pt = Point(len(points), ov, did, values)
            by_design[did] = pt
            points.append(pt)
        runs = []
        for pt in points:
            for t in self.traces:
                runs.append(Run(pt, t, _hash({"trace": _norm_trace(t), "overrides": pt.overrides}),
                                len(runs)))
        return base, points, runs

    def fingerprint(self, base: Arch | None = None) -> dict:
        """What identifies the sweep's results (stored as DIR/sweep.json and compared)."""
        base = base or self.base_arch()
        arch_file = resolve_arch_path(self.arch)
        return {
            "format": SPEC_FORMAT, "version": SPEC_VERSION,
            "arch": self.arch, "arch_digest": base.digest(),
            "arch_file": str(arch_file),
            "traces": [{"path": t, "sha256": _file_sha256(t)} for t in self.traces],
            "grid": {k: [_jsonable(_canonical(base, k, v, "")) for v in vs]
                     for k, vs in self.grid.items()},
            "points": [{str(k): _jsonable(_canonical(base, str(k), v, "")) for k, v in p.items()}
                       for p in self.points],
            "engine": self.engine, "steps": self.steps, "plugins": list(self.plugins),
        }

    def to_yaml(self) -> str:
        """A sweep YAML that reproduces this spec (``--config DIR/sweep.yaml``)."""
        import yaml

        fp = self.fingerprint()
        doc = {"arch": self.arch, "traces": list(self.traces), "grid": fp["grid"],
               "points": fp["points"],
               "engine": self.engine, "steps": self.steps}
        if self.plugins:
            doc["plugins"] = list(self.plugins)
        if not doc["points"]:
            del doc["points"]
        if doc["steps"] is None:
            del doc["steps"]
        return ("# hwsim sweep spec, written by `hwsim sweep`; rerun with\n"
                "#   python -m hwsim sweep --config THIS_FILE --out THIS_DIR\n"
                + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None))


def _splittable(key: str) -> bool:
    p = PARAMS.get(key)
    return p is None or p.type is not dict


def _split_values(raw: str) -> list[str]:
    """'4,8,16' -> ['4', '8', '16']; commas inside {...} or [...] or quotes do not split."""
    out, depth, cur, quote = [], 0, [], None
    for ch in raw:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = None
            continue
        if ch in "'\"":
            quote = ch
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    out.append("".join(cur).strip())
    return out


def _canonical(base: Arch, key: str, value, loc: str):
    """The value as the architecture stores it (validated on its own against the base).

    A value that breaks only a rule between fields (``sram.sharing`` larger than the base's
    PE count) is accepted here: with the other values of its point it may be fine, and a
    point that is not is recorded as failed when it runs."""
    try:
        arch = base.with_overrides({key: value})
    except InputError as e:
        msg = str(e)
        p = PARAMS.get(key)
        if "(after the command-line override" in msg and p is not None:
            v = p.parse(value) if isinstance(value, str) and p.type is not str else value
            return p.check(v)
        # drop the generic 'command line (override of FILE): ' prefix; we name the sweep's place
        prefix = f"command line (override of {base.path or '<dict>'}): "
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
            if msg.startswith(f"{key}: "):
                msg = msg[len(key) + 2:]
            msg = re.sub(r" \(from the override '.*'\)$", "", msg, flags=re.S)
        raise InputError(f"{loc}: {msg}" if loc else msg) from None
    if key in PARAMS:
        return arch.get(key)
    head = ".".join(key.split(".")[:2])
    return arch.get(head)[key[len(head) + 1:]]


def _base_value(base: Arch, key: str):
    if key in PARAMS:
        return base.get(key)
    head = ".".join(key.split(".")[:2])
    return base.get(head).get(key[len(head) + 1:])


def _same(a, b) -> bool:
    return type(a) is type(b) and a == b


def _show(v) -> str:
    return _fmt(v) if v is not None else "null"


def _jsonable(v):
    if isinstance(v, (datetime.date, datetime.datetime)):
        return v.isoformat()
    return v


def _hash(obj) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _norm_trace(t: str) -> str:
    return os.path.normpath(t)


def _file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ------------------------------------------------------------------------------------------------
# The worker: one (point, trace) run, in any process
# ------------------------------------------------------------------------------------------------

_TRACES: dict = {}
_PLUGINS: set = set()


def run_point(task: Mapping) -> dict:
    """Simulate one run; never raises for a failing point (returns status 'failed').

    ``task``: arch, overrides, trace, engine, steps, plugins (plain data, picklable).
    """
    t0 = time.perf_counter()
    try:
        import hwsim

        from .trace import load_trace

        if task.get("plugins"):
            from .components import registry

            for p in task["plugins"]:
                if p not in _PLUGINS:
                    registry.load_plugin(p)
                    _PLUGINS.add(p)
        arch = load_arch(task["arch"], task["overrides"] or None)
        path = task["trace"]
        st = os.stat(path)
        key = (os.path.abspath(path), st.st_mtime_ns, st.st_size)
        trace = _TRACES.get(key)
        if trace is None:
            trace = load_trace(path)
            _TRACES.clear()  # keep one trace per worker process
            _TRACES[key] = trace
        res = hwsim.simulate(arch, trace, engine=task["engine"], steps=task["steps"])
        row = summary_row(res.summary)
        row["status"], row["error"] = "ok", None
    except Exception as e:  # a failing point is a result, not the end of the sweep
        row = {"status": "failed", "error": error_text(e)}
    row["wall_s"] = time.perf_counter() - t0
    return row


def error_text(e: BaseException) -> str:
    if isinstance(e, InputError):
        text = str(e)
    else:
        text = f"{type(e).__name__}: {e}"
        tb = e.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        if tb is not None:
            text += f" (at {Path(tb.tb_frame.f_code.co_filename).name}:{tb.tb_lineno})"
    return " ".join(text.split())


def summary_row(s: Mapping) -> dict:
    """Every scalar figure of a run's summary, flattened to columns."""
    row: dict[str, Any] = {}
    for k, v in s.items():
        if k in ("ops", "arch_file", "trace_file"):
            continue
        if k == "wall_s":
            row["sim_wall_s"] = v
        elif k == "bottleneck" and isinstance(v, Mapping):
            row["bottleneck"] = v.get("class")
            row["bottleneck_share"] = v.get("share")
            row["bottleneck_pe_cycles"] = v.get("pe_cycles")
        elif k == "cycle_split_pe_cycles" and isinstance(v, Mapping):
            for c, n in v.items():
                row[f"pe_cycles_{c}"] = n
        elif k == "energy_by_component_pj" and isinstance(v, Mapping):
            for c, n in v.items():
                row[f"energy_{c}_pj"] = n
        elif k == "notes" and isinstance(v, list):
            row["notes"] = "; ".join(map(str, v)) or None
        elif isinstance(v, Mapping):
            for c, n in v.items():
                if _scalar(n):
                    row[f"{k}_{c}"] = n
        elif _scalar(v):
            row[k] = v
    steps = s.get("steps")
    if steps:
        if s.get("time_ms") is not None:
            row["time_ms_per_step"] = s["time_ms"] / steps
        if s.get("cycles") is not None:
            row["cycles_per_step"] = s["cycles"] / steps
        if s.get("energy_pj") is not None:
            row["energy_pj_per_step"] = s["energy_pj"] / steps
        if "time_ms_per_step" in row and "energy_pj_per_step" in row:
            # the efficiency figure of the co-exploration: energy x latency per step (pJ*ms)
            row["edp_per_step"] = row["energy_pj_per_step"] * row["time_ms_per_step"]
    return row


def _scalar(v) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


# ------------------------------------------------------------------------------------------------
# The store
# ------------------------------------------------------------------------------------------------


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Store:
    """``DIR/results.sqlite``: one table, a row per (point, trace), committed row by row."""

    def __init__(self, path):
        self.path = Path(path)
        self.conn = sqlite3.connect(str(self.path), timeout=30)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (point_id TEXT NOT NULL, "
                          "trace TEXT NOT NULL, status TEXT NOT NULL, error TEXT, "
                          "PRIMARY KEY (point_id, trace))")
        self.conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        self.conn.commit()
        self._cols = self.columns()

    def columns(self) -> list[str]:
        return [r[1] for r in self.conn.execute(f"PRAGMA table_info({TABLE})")]

    def ensure(self, cols: Iterable[str]):
        for c in cols:
            if c not in self._cols:
                self.conn.execute(f"ALTER TABLE {TABLE} ADD COLUMN {_q(c)}")
                self._cols.append(c)

    def put(self, row: Mapping):
        row = {k: _sql_value(v) for k, v in row.items()}
        self.ensure(row)
        cols = list(row)
        self.conn.execute(f"INSERT OR REPLACE INTO {TABLE} ({', '.join(map(_q, cols))}) VALUES "
                          f"({', '.join('?' * len(cols))})", [row[c] for c in cols])
        self.conn.commit()

    def statuses(self) -> dict[tuple[str, str], str]:
        return {(p, t): s for p, t, s in
                self.conn.execute(f"SELECT point_id, trace, status FROM {TABLE}")}

    def delete_except(self, keep: set):
        gone = [k for k in self.statuses() if k not in keep]
        self.conn.executemany(f"DELETE FROM {TABLE} WHERE point_id = ? AND trace = ?", gone)
        self.conn.commit()
        return len(gone)

    def set_seq(self, runs: Iterable[Run]):
        self.ensure(["seq"])
        self.conn.executemany(f"UPDATE {TABLE} SET seq = ? WHERE point_id = ? AND trace = ?",
                              [(r.seq, r.point_id, r.trace) for r in runs])
        self.conn.commit()

    def next_run(self) -> int:
        cur = self.conn.execute("SELECT value FROM meta WHERE key = 'runs'").fetchone()
        n = int(cur[0]) + 1 if cur else 1
        self.conn.execute("INSERT OR REPLACE INTO meta VALUES ('runs', ?)", (str(n),))
        self.conn.commit()
        return n

    def close(self):
        self.conn.close()


def _sql_value(v):
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True)
    if hasattr(v, "item") and callable(v.item):  # numpy scalars
        return v.item()
    return v


LOCK_WAIT_S = 10.0


@contextlib.contextmanager
def _lock(out: Path):
    import fcntl

    f = open(out / LOCK_FILE, "w")
    try:
        # the workers of a sweep killed a moment ago may still hold the lock (they inherit it
        # when forked) until the kernel has reaped them: wait a little before refusing
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise InputError(f"{out}: --out: another sweep is running in this "
                                     "directory") from None
                time.sleep(0.1)
        yield
    finally:
        f.close()


_BOOL_COLUMNS = ("is_base", "synthetic_trace")


def load_sweep(out) -> "pd.DataFrame":
    """The results table of a sweep directory, one row per (point, trace), in sweep order.

    Columns: point_id, trace, status, error, design_id, is_base, overrides (JSON), the swept
    parameters (dotted names, effective values), then every figure of the run's summary.
    """
    import pandas as pd

    out = Path(out)
    db = out / STORE_FILE
    if not db.is_file():
        raise InputError(f"{out}: no {STORE_FILE}: not a directory written by `hwsim sweep --out`")
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        cur = conn.execute(f"SELECT * FROM {TABLE}")
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
    finally:
        conn.close()
    cols = {}
    for j, name in enumerate(names):
        vals = [r[j] for r in rows]
        present = [v for v in vals if v is not None]
        p = PARAMS.get(name)
        if name in _BOOL_COLUMNS or (p is not None and p.type is bool):
            if all(isinstance(v, int) for v in present):
                vals = [None if v is None else bool(v) for v in vals]
                cols[name] = pd.array(vals, dtype="boolean" if len(present) < len(vals)
                                      else "bool")
                continue
        if present and all(isinstance(v, int) for v in present):
            cols[name] = pd.array(vals, dtype="Int64" if len(present) < len(vals) else "int64")
        elif present and all(isinstance(v, (int, float)) for v in present):
            cols[name] = pd.array([float("nan") if v is None else float(v) for v in vals],
                                  dtype="float64")
        else:
            cols[name] = pd.array(vals, dtype=object)
    df = pd.DataFrame(cols, columns=names)
    params = []
    spec_file = out / SPEC_FILE
    if spec_file.is_file():
        spec = json.loads(spec_file.read_text())
        params = list(spec.get("params", []))
    if "seq" in df:
        df = df.sort_values("seq", kind="stable").reset_index(drop=True)
    first = [c for c in ID_COLUMNS if c in df.columns] + [c for c in params if c in df.columns]
    return df[first + [c for c in df.columns if c not in first]]


# ------------------------------------------------------------------------------------------------
# Running a sweep
# ------------------------------------------------------------------------------------------------


@dataclass
class SweepReport:
    """What one invocation of :func:`run_sweep` did."""

    out: Path
    total: int  # runs in the spec (points x traces)
    points: int
    skipped: int  # already in the store, not rerun
    ok: int  # finished ok in this invocation
    failed: int  # failed in this invocation
    errors: list  # (label, trace, error) of the failures of this invocation
    wall_s: float

    def __str__(self):
        lines = [f"sweep: {self.points} points x {self.total // max(self.points, 1)} traces = "
                 f"{self.total} runs; {self.ok} ok, {self.failed} failed, {self.skipped} already "
                 f"done; {self.wall_s:.1f} s",
                 f"  results: {self.out / STORE_FILE} (and {self.out / PARQUET_FILE})"]
        for label, trace, err in self.errors[:5]:
            lines.append(f"  failed: [{label}] {trace}: {err}")
        if len(self.errors) > 5:
            lines.append(f"  ... and {len(self.errors) - 5} more failures (column `error`)")
        return "\n".join(lines)


def run_sweep(spec: SweepSpec, out, *, jobs: int | None = None, scheduler: str | None = None,
              retry_failed: bool = False, force: bool = False, progress: bool = True,
              worker: Callable[[dict], dict] | None = None) -> SweepReport:
    """Run every (point, trace) of ``spec`` not yet done in ``out``; return a report.

    ``jobs``: worker processes of the local pool (default: the CPU count). ``scheduler``: a Dask
    scheduler address (``tcp://host:8786``) to run on instead. ``worker`` replaces
    :func:`run_point` (a picklable function of the task dict; for tests).
    """
    t0 = time.perf_counter()
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise InputError(f"--jobs: expected an integer >= 1, got {jobs!r}")
    base, points, runs = spec.validate()
    fp = spec.fingerprint(base)
    fp["params"] = spec.params()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: --out: exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    with _lock(out):
        keep_note = _adopt_spec(out, fp, spec, runs, force)
        store = Store(out / STORE_FILE)
        try:
            store.ensure(ID_COLUMNS)
            store.ensure(fp["params"])
            if keep_note is not None:
                store.delete_except(keep_note)
            store.set_seq(runs)
            run_no = store.next_run()
            done = store.statuses()
            todo = [r for r in runs
                    if done.get((r.point_id, r.trace)) != "ok"
                    and (retry_failed or done.get((r.point_id, r.trace)) != "failed")]
            skipped = len(runs) - len(todo)
            ok = failed = 0
            errors = []
            bar = None
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=len(runs), initial=skipped, desc="sweep", unit="run",
                           dynamic_ncols=True, file=sys.stderr)
                bar.set_postfix_str(f"ok 0, failed 0, left {len(todo)}")

            def record(r: Run, result: Mapping):
                nonlocal ok, failed
                row = {
                    "point_id": r.point_id, "trace": r.trace,
                    "status": result.get("status", "failed"), "error": result.get("error"),
                    "design_id": r.point.design_id, "is_base": r.point.is_base,
                    "overrides": json.dumps(r.point.overrides, sort_keys=True,
                                            default=_jsonable),
                    "seq": r.seq, "run": run_no,
                    "finished_at": datetime.datetime.now().isoformat(timespec="seconds"),
                }
                row.update(r.point.values)
                row.update({k: v for k, v in result.items() if k not in row})
                store.put(row)
                if row["status"] == "ok":
                    ok += 1
                else:
                    failed += 1
                    errors.append((r.point.label, r.trace, row["error"]))
                if bar is not None:
                    bar.set_postfix_str(f"ok {ok}, failed {failed}, "
                                        f"left {len(todo) - ok - failed}", refresh=False)
                    bar.update()

            tasks = [(r, _task(spec, r)) for r in todo]
            fn = worker or run_point
            try:
                if not tasks:
                    pass
                elif scheduler:
                    _run_dask(tasks, scheduler, fn, record)
                else:
                    _run_local(tasks, jobs or os.cpu_count() or 1, fn, record)
            finally:
                if bar is not None:
                    bar.close()
                with contextlib.suppress(Exception):
                    export_parquet(out)
        finally:
            store.close()
    return SweepReport(out, len(runs), len(points), skipped, ok, failed, errors,
                       time.perf_counter() - t0)


def _task(spec: SweepSpec, r: Run) -> dict:
    return {"arch": spec.arch, "overrides": dict(r.point.overrides), "trace": r.trace,
            "engine": spec.engine, "steps": spec.steps, "plugins": list(spec.plugins)}


def _adopt_spec(out: Path, fp: dict, spec: SweepSpec, runs: list[Run], force: bool):
    """Compare with the spec stored in ``out``. Returns None (nothing to delete) or the set of
    (point_id, trace) to keep when ``force`` adopts a different spec."""
    spec_file = out / SPEC_FILE
    keep = None
    has_results = (out / STORE_FILE).exists()
    if spec_file.exists():
        try:
            old = json.loads(spec_file.read_text())
        except (OSError, ValueError) as e:
            raise InputError(f"{spec_file}: unreadable sweep spec ({e}); use another --out or "
                             f"remove the file") from None
        if old != fp:
            diff = [k for k in sorted(set(old) | set(fp)) if old.get(k) != fp.get(k)]
            if not force:
                raise InputError(
                    f"{out}: --out: this directory holds the results of another sweep (differs "
                    f"in: {', '.join(diff)}); use another --out, or pass --force to adopt this "
                    f"sweep (its runs already done with the same architecture file, traces, "
                    f"engine and steps are kept; the others are deleted)")
            same_context = all(old.get(k) == fp.get(k) for k in
                               ("arch_digest", "engine", "steps", "plugins"))
            old_sha = {t["path"]: t["sha256"] for t in old.get("traces", [])}
            new_sha = {t["path"]: t["sha256"] for t in fp["traces"]}
            keep = {(r.point_id, r.trace) for r in runs if same_context and
                    old_sha.get(r.trace) == new_sha[r.trace]}
    elif has_results and not force:
        raise InputError(f"{out}: --out: holds {STORE_FILE} but no {SPEC_FILE}; use another "
                         f"--out or pass --force")
    elif has_results:
        keep = set()
    _write_atomic(spec_file, json.dumps(fp, indent=2, default=_jsonable) + "\n")
    _write_atomic(out / SPEC_YAML, spec.to_yaml())
    return keep


def _write_atomic(path: Path, text: str):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _run_local(tasks: list, jobs: int, fn, record):
    """A process pool with at most ``jobs`` runs in flight; a dead worker fails the runs in
    flight, and the pool is restarted for the rest."""
    pending = deque(tasks)
    while pending:
        with ProcessPoolExecutor(max_workers=min(jobs, len(pending))) as pool:
            inflight: dict = {}
            broken = False
            while (pending and not broken) or inflight:
                while pending and not broken and len(inflight) < jobs:
                    r, task = pending.popleft()
                    try:
                        inflight[pool.submit(fn, task)] = r
                    except BrokenProcessPool:
                        pending.appendleft((r, task))
                        broken = True
                done, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
                for f in done:
                    r = inflight.pop(f)
                    try:
                        result = f.result()
                    except BrokenProcessPool as e:
                        broken = True
                        result = {"status": "failed",
                                  "error": "worker process died while this point was in flight "
                                           f"(killed, out of memory or crashed): {e}"}
                    except Exception as e:
                        result = {"status": "failed", "error": error_text(e)}
                    record(r, result)


def _run_dask(tasks: list, address: str, fn, record):
    try:
        from dask.distributed import Client, as_completed
    except ImportError:
        raise InputError("--scheduler: dask.distributed is not installed; install the [dist] "
                         "extra: pip install 'hwsim[dist]'") from None
    import dask

    try:
        client = Client(address, set_as_default=False,
                        timeout=dask.config.get("distributed.comm.timeouts.connect"))
    except (OSError, TimeoutError, ValueError) as e:
        raise InputError(f"--scheduler {address}: cannot connect to a Dask scheduler: "
                         f"{type(e).__name__}: {e}") from None
    with client:
        futures = {}
        for r, task in tasks:
            futures[client.submit(fn, task, pure=False, key=f"hwsim-sweep-{r.point_id}-"
                                  f"{r.seq}-{time.time_ns()}")] = r
        for f in as_completed(list(futures), loop=client.loop):
            r = futures[f]
            try:
                result = f.result()
            except Exception as e:  # KilledWorker, a lost worker, ...
                result = {"status": "failed", "error": "dask: " + error_text(e)}
            record(r, result)
            f.release()


def export_parquet(out) -> Path:
    """Write DIR/sweep.parquet from the store (done at the end of every sweep)."""
    out = Path(out)
    df = load_sweep(out)
    path = out / PARQUET_FILE
    tmp = out / (PARQUET_FILE + ".tmp")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return path


# ------------------------------------------------------------------------------------------------
# Reading a sweep: Pareto front and sensitivity
# ------------------------------------------------------------------------------------------------


def pareto_mask(x, y) -> "np.ndarray":
    """True for the points no other point beats on both x and y (lower is better on both)."""
    import numpy as np

    x, y = np.asarray(x, float), np.asarray(y, float)
    n = len(x)
    mask = np.ones(n, bool)
    for i in range(n):
        dom = (x <= x[i]) & (y <= y[i]) & ((x < x[i]) | (y < y[i]))
        mask[i] = not dom.any()
    return mask


def plot_sweep(out, x: str = "time_ms_per_step", y: str = "energy_pj", *,
               dest=None) -> list[Path]:
    """Draw DIR/pareto.png (y against x, lower is better on both: the non-dominated points
    highlighted and joined, the base design starred; one panel per trace) and
    DIR/sensitivity.png (per swept parameter: cycles and energy relative to the base design,
    mean over the other parameters with the min-max spread). Returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import MaxNLocator
    import pandas as pd

    out = Path(out)
    df = load_sweep(out)
    dest = Path(dest) if dest is not None else out
    dest.mkdir(parents=True, exist_ok=True)
    ok = df[df["status"] == "ok"].copy()
    numeric = [c for c in ok.columns if pd.api.types.is_numeric_dtype(ok[c])
               and not pd.api.types.is_bool_dtype(ok[c]) and c not in ("seq", "run")]
    for name, col in (("--x", x), ("--y", y)):
        if col not in ok.columns or col not in numeric:
            m = difflib.get_close_matches(col, numeric, n=1)
            hint = f"did you mean {m[0]}? " if m else ""
            raise InputError(f"{out}: {name} {col}: not a numeric column of the sweep; {hint}"
                             f"columns: {', '.join(numeric)}")
    if ok.empty:
        raise InputError(f"{out}: no finished point to plot ({len(df)} failed)")
    spec = json.loads((out / SPEC_FILE).read_text()) if (out / SPEC_FILE).exists() else {}
    params = [p for p in spec.get("params", []) if p in ok.columns]
    n_failed = int((df["status"] != "ok").sum())
    written = []

    def label(row):
        try:
            ov = json.loads(row["overrides"])
        except (TypeError, ValueError):
            ov = {}
        return "base" if not ov else ", ".join(f"{k.split('.')[-1]}={_show(v)}"
                                               for k, v in ov.items())

    # -- Pareto ----------------------------------------------------------------------------
    traces = list(dict.fromkeys(ok["trace"]))
    fig, axes = plt.subplots(1, len(traces), figsize=(6.4 * len(traces), 5.0), squeeze=False)
    for ax, tr in zip(axes[0], traces):
        d = ok[ok["trace"] == tr]
        xs, ys = d[x].to_numpy(float), d[y].to_numpy(float)
        front = pareto_mask(xs, ys)
        ax.scatter(xs[~front], ys[~front], s=22, color="0.65", label="dominated", zorder=2)
        order = np.argsort(xs[front])
        fx, fy = xs[front][order], ys[front][order]
        ax.plot(fx, fy, "-o", color="tab:red", ms=6, lw=1.5, label="Pareto front", zorder=3)
        fl = [label(r) for _, r in d[front].iloc[order].iterrows()]
        for i, (px, py, lab) in enumerate(zip(fx, fy, fl)):
            if i < 10:
                ax.annotate(lab, (px, py), textcoords="offset points", xytext=(6, 4), fontsize=7,
                            color="tab:red")
        b = d[d["is_base"]]
        if len(b):
            ax.scatter(b[x], b[y], marker="*", s=260, color="tab:blue", edgecolor="k",
                       label="base design", zorder=4)
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_locator(MaxNLocator(nbins=6))
        ax.ticklabel_format(style="sci", scilimits=(-3, 4), useOffset=False)
        ax.set_title(f"{Path(tr).name}: {len(d)} points, {int(front.sum())} on the front",
                     fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    title = f"Sweep {out.name}: {y} vs {x}\n(lower is better on both"
    title += f"; {n_failed} failed runs not shown)" if n_failed else ")"
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    path = dest / "pareto.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)

    # -- sensitivity -----------------------------------------------------------------------
    swept = [p for p in params if ok[p].nunique(dropna=False) > 1]
    metrics = [m for m in ("cycles", "energy_pj") if m in ok.columns]
    if swept and metrics:
        rel = ok.copy()
        base_rows = ok[ok["is_base"]].set_index("trace")
        for m in metrics:
            ref = rel["trace"].map(base_rows[m]) if len(base_rows) else np.nan
            rel[m + "_rel"] = rel[m] / ref
        fig, axes = plt.subplots(len(swept), len(metrics),
                                 figsize=(5.2 * len(metrics), 2.9 * len(swept)), squeeze=False)
        for i, p in enumerate(swept):
            values = sorted(ok[p].dropna().unique(), key=_sort_key)
            pos = {v: k for k, v in enumerate(values)}
            for j, m in enumerate(metrics):
                ax = axes[i][j]
                col = m + "_rel" if rel[m + "_rel"].notna().any() else m
                for k, tr in enumerate(traces):
                    g = rel[rel["trace"] == tr].groupby(p)[col].agg(["mean", "min", "max"])
                    g = g.reindex([v for v in values if v in g.index])
                    xs = np.array([pos[v] for v in g.index], float) + (k - (len(traces) - 1) / 2) * 0.06
                    ax.errorbar(xs, g["mean"], yerr=[g["mean"] - g["min"], g["max"] - g["mean"]],
                                fmt="-o", capsize=3, label=Path(tr).name if len(traces) > 1 else
                                "mean (bars: min-max)")
                if col.endswith("_rel"):
                    ax.axhline(1.0, color="0.5", lw=0.8, ls="--")
                ax.set_xticks(range(len(values)))
                ax.set_xticklabels([_show(v.item() if hasattr(v, "item") else v) for v in values])
                ax.set_xlabel(p)
                ax.set_ylabel(f"{m} / base" if col.endswith("_rel") else m)
                ax.grid(alpha=0.3)
                if i == 0:
                    ax.set_title(f"{m} relative to the base design" if col.endswith("_rel")
                                 else m, fontsize=10)
                    ax.legend(fontsize=7)
        fig.suptitle(f"Sweep {out.name}: sensitivity to each swept parameter\n(mean over the "
                     f"other parameters, bars: min-max)", fontsize=10)
        fig.tight_layout()
        path = dest / "sensitivity.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def _sort_key(v):
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return (0, float(v), "")
    if hasattr(v, "item"):
        return _sort_key(v.item())
    return (1, 0.0, str(v))


__all__ = ["SweepSpec", "Point", "Run", "SweepReport", "Store", "run_sweep", "run_point",
           "load_sweep", "export_parquet", "plot_sweep", "pareto_mask", "summary_row"]
