"""Module attributes imported when first used (PEP 562).

A command's start-up time is mostly imports: `pagebridge grep` needs the
client, not the server, the pager or RE2.  A package lists its public names
with the module each comes from, and this builds its ``__getattr__``.
"""

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_getattr(package: str, names: Mapping[str, str], namespace: dict[str, Any],
                 submodules: Iterable[str] = ()) -> Callable[[str], Any]:
    """A module ``__getattr__`` for `package`.

    `names` maps a public name to the relative module that defines it; the
    first access imports that module and caches the value in `namespace`
    (the package's ``globals()``), so later accesses are plain look-ups.
    `submodules` are names answered by importing ``package.name`` itself.
    """
    subs = frozenset(submodules)

    def __getattr__(name: str) -> Any:
        if name in subs:
            return importlib.import_module(f"{package}.{name}")
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value
        return value

    return __getattr__
