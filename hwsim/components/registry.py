"""Component registry: the link between a name in an architecture file and a SimPy class.

gem5 habit: a component declares its parameters once (``params``, a tuple of
:class:`ComponentParam`); the architecture file only *names* the component (``pe.component``)
and gives values (``pe.component_params``), which :func:`validate_params` checks against the
declaration. YAML never imports code: a user's component comes in through :func:`load_plugin`
(the CLI's ``--plugin``) or an installed package's entry point (:func:`load_entry_points`).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Mapping

from hwsim.errors import InputError

ENTRY_POINT_GROUP = "hwsim.components"
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_TYPES = (int, float, bool, str)

_REGISTRY: dict[str, type] = {}
_LOADED_FILES: dict[str, str] = {}  # resolved plugin path -> module name


@dataclass(frozen=True)
class ComponentParam:
    """One declared parameter of a component: the single source of truth for its docs and
    its validation."""

    name: str
    type: type
    default: Any
    unit: str
    doc: str
    min: float | None = None
    max: float | None = None

    def check(self, value, where: str = ""):
        """Return ``value`` if it is of the declared type and range, else raise InputError."""
        loc = f"{where}.{self.name}" if where else self.name
        t = self.type
        ok = (isinstance(value, bool) if t is bool
              else isinstance(value, int) and not isinstance(value, bool) if t is int
              else isinstance(value, (int, float)) and not isinstance(value, bool) if t is float
              else isinstance(value, t))
        if not ok:
            raise InputError(f"{loc}: expected {_type_phrase(self)}, got {value!r} "
                             f"({type(value).__name__})")
        if self.min is not None and value < self.min or self.max is not None and value > self.max:
            raise InputError(f"{loc}: expected {_type_phrase(self)}, got {value!r}")
        return float(value) if t is float else value

    def describe(self) -> str:
        """One line for reference pages and error messages."""
        unit = f" [{self.unit}]" if self.unit else ""
        return f"{self.name} ({_type_phrase(self)}, default {self.default!r}){unit}: {self.doc}"


def _type_phrase(p: ComponentParam) -> str:
    s = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}[p.type]
    if p.min is not None and p.max is not None:
        return f"{s} in [{p.min}, {p.max}]"
    if p.min is not None:
        return f"{s} >= {p.min}"
    if p.max is not None:
        return f"{s} <= {p.max}"
    return s


def _check_class(name: str, cls) -> None:
    if not isinstance(cls, type):
        raise InputError(f"component {name!r}: expected a class, got {cls!r}")
    params = getattr(cls, "params", None)
    if not isinstance(params, tuple) or not all(isinstance(p, ComponentParam) for p in params):
        raise InputError(f"component {name!r} ({cls.__qualname__}): `params` must be a tuple "
                         "of ComponentParam")
    seen = set()
    for p in params:
        if p.type not in _TYPES:
            raise InputError(f"component {name!r}: param {p.name!r} has type {p.type!r}; "
                             "expected one of int, float, bool, str")
        if p.name in seen:
            raise InputError(f"component {name!r}: param {p.name!r} declared twice")
        seen.add(p.name)
        p.check(p.default, f"component {name!r} default")
    if not isinstance(getattr(cls, "has_fast_kernel", None), bool):
        raise InputError(f"component {name!r} ({cls.__qualname__}): `has_fast_kernel` must be "
                         "True or False")


def register(name: str, cls=None):
    """Register ``cls`` under ``name``; usable as ``@register("my_pe")``.

    Registering a second, different class under a taken name is refused (InputError);
    registering the same class again is a no-op.
    """
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise InputError(f"component name {name!r}: expected letters, digits, '_', '-', '.'")

    def deco(c):
        _check_class(name, c)
        old = _REGISTRY.get(name)
        if old is not None and old is not c:
            raise InputError(f"component {name!r} is already registered "
                             f"(by {old.__module__}.{old.__qualname__}); choose another name")
        _REGISTRY[name] = c
        c.component_name = name
        return c

    return deco if cls is None else deco(cls)


def names() -> list[str]:
    return sorted(_REGISTRY)


def get(name: str, where: str = "") -> type:
    """The class registered under ``name``; an unknown name is an InputError naming ``where``."""
    cls = _REGISTRY.get(name) if isinstance(name, str) else None
    if cls is None:
        loc = where or "component"
        raise InputError(
            f"{loc}: unknown component {name!r}; registered: {', '.join(names()) or '(none)'}. "
            "A component written in your own code must be loaded first: "
            "--plugin some.module or --plugin path/to/file.py "
            f"(or installed under the {ENTRY_POINT_GROUP!r} entry-point group)")
    return cls


def validate_params(cls, values: Mapping | None, where: str = "") -> SimpleNamespace:
    """Check ``values`` against ``cls.params``; return every declared param (defaults filled).

    Unknown names, wrong types and out-of-range values are InputErrors naming ``where``
    (e.g. ``archs/x.yaml:9: pe.component_params``).
    """
    values = {} if values is None else values
    loc = where or f"{getattr(cls, 'component_name', cls.__name__)} params"
    if not isinstance(values, Mapping):
        raise InputError(f"{loc}: expected a mapping of parameter names to values, "
                         f"got {values!r}")
    declared = {p.name: p for p in cls.params}
    for key in values:
        if key not in declared:
            known = ", ".join(declared) or "(none)"
            raise InputError(f"{loc}: unknown parameter {key!r} for component "
                             f"{getattr(cls, 'component_name', cls.__name__)!r}; "
                             f"declared: {known}")
    out = {name: p.check(values[name], loc) if name in values else p.default
           for name, p in declared.items()}
    return SimpleNamespace(**out)


def resolve(spec, where: str = "") -> tuple[type, SimpleNamespace]:
    """Turn a component spec into ``(class, validated params)``.

    ``spec`` is a registered name, a class, or a pair ``(name or class, params mapping)``.
    """
    params = None
    if isinstance(spec, tuple):
        if len(spec) != 2:
            raise InputError(f"{where or 'component'}: expected (name, params), got {spec!r}")
        spec, params = spec
    if isinstance(spec, type):
        _check_class(getattr(spec, "component_name", spec.__name__), spec)
        cls = spec
    else:
        cls = get(spec, where)
    pwhere = f"{where}_params" if where.endswith("component") else (
        f"{where}: params" if where else "")
    return cls, validate_params(cls, params, pwhere)


def load_plugin(spec: str):
    """Import a plugin module (``some.module``) or file (``path/to/file.py``); the import
    registers its components. A file is imported once however often it is named."""
    if not isinstance(spec, str) or not spec:
        raise InputError(f"--plugin: expected a module name or a .py file, got {spec!r}")
    try:
        if spec.endswith(".py") or "/" in spec or "\\" in spec:
            path = Path(spec).expanduser().resolve()
            if not path.is_file():
                raise InputError(f"--plugin {spec}: no such file")
            key = str(path)
            if key in _LOADED_FILES:
                return sys.modules[_LOADED_FILES[key]]
            modname = (f"hwsim_plugin_{re.sub(r'[^A-Za-z0-9_]', '_', path.stem)}_"
                       f"{hashlib.sha1(key.encode()).hexdigest()[:8]}")
            loader_spec = importlib.util.spec_from_file_location(modname, path)
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[modname] = module
            try:
                loader_spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[modname]
                raise
            _LOADED_FILES[key] = modname
            return module
        return importlib.import_module(spec)
    except InputError as e:
        if str(e).startswith("--plugin"):
            raise
        raise InputError(f"--plugin {spec}: {e}") from e
    except Exception as e:  # an import error in the user's code: say where
        raise InputError(f"--plugin {spec}: cannot import: {type(e).__name__}: {e}") from e


def load_entry_points():
    """Load every installed ``hwsim.components`` entry point. An entry point may name a module
    (whose import registers components) or a class (registered under the entry point's name)."""
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as e:
            raise InputError(f"entry point {ep.name} = {ep.value} ({ENTRY_POINT_GROUP}): "
                             f"cannot load: {type(e).__name__}: {e}") from e
        if isinstance(obj, type) and _REGISTRY.get(ep.name) is not obj:
            register(ep.name, obj)


def param_table(cls) -> str:
    """Markdown table of a component's declared params (for generated reference pages)."""
    rows = ["| param | type | default | unit | range | meaning |", "|---|---|---|---|---|---|"]
    for p in cls.params:
        rng = (f"{'' if p.min is None else p.min}..{'' if p.max is None else p.max}"
               if p.min is not None or p.max is not None else "")
        rows.append(f"| `{p.name}` | {p.type.__name__} | {p.default!r} | {p.unit} | {rng} "
                    f"| {p.doc} |")
    return "\n".join(rows)
