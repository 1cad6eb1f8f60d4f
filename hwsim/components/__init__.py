"""Hardware components of the detailed engine, one module per unit, and their registry.

Built-ins: ``"pe"`` (:class:`hwsim.components.pe.PE`). Users register their own with
``@register("name")`` in a module loaded by ``--plugin`` or an entry point (see
docs/custom-components.md).
"""

from hwsim.components.pe import PE
from hwsim.components.registry import (
    ComponentParam,
    get,
    load_entry_points,
    load_plugin,
    names,
    register,
    resolve,
    validate_params,
)

register("pe", PE)

__all__ = ["PE", "ComponentParam", "get", "load_entry_points", "load_plugin", "names",
           "register", "resolve", "validate_params"]
