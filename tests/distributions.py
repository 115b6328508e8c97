"""Which installed distributions provide which modules, and what a set of requirements installs: shared
by the checks that a runtime (the Lambda image, the Glue bundle) imports only what it ships."""

from __future__ import annotations

import importlib.metadata as md
import sys
import sysconfig
from collections.abc import Iterable
from functools import cache

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def requirement_closure(root: str, extras: set[str]) -> set[str]:
    """Canonical names of `root` and of every distribution pip installs for root[extras], following the
    installed distributions' Requires-Dist with their markers (evaluated for this interpreter)."""
    names: set[str] = set()
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [(root, frozenset(extras))]
    while todo:
        name, wanted = todo.pop()
        key = (canonicalize_name(name), wanted)
        if key in seen:
            continue
        seen.add(key)
        names.add(key[0])
        try:
            requires = md.distribution(name).requires or []
        except md.PackageNotFoundError:  # required but not installed here: named, nothing to follow
            continue
        for requirement in map(Requirement, requires):
            marker = requirement.marker
            if marker is None or any(marker.evaluate({"extra": extra}) for extra in (wanted or {""})):
                todo.append((requirement.name, frozenset(requirement.extras)))
    return names


def _top_level(dist: md.Distribution) -> set[str]:
    """Top-level importable names of a distribution, extension modules included
    (packages_distributions() infers names from .py files only and misses e.g. duckdb's _duckdb)."""
    declared = dist.read_text("top_level.txt")
    names = set(declared.split()) if declared else set()
    for file in dist.files or []:
        if file.parts[0] in ("..", "__pycache__") or file.parts[0].endswith((".dist-info", ".data")):
            continue
        name = file.parts[0] if len(file.parts) > 1 else file.name.split(".")[0]
        if len(file.parts) > 1 or file.suffix in (".py", ".so", ".pyd"):
            names.add(name)
    return {n for n in names if n.isidentifier()}


@cache
def module_distributions() -> dict[str, frozenset[str]]:
    """Top-level module -> canonical names of the installed distributions providing it."""
    found: dict[str, set[str]] = {m: {canonicalize_name(d) for d in ds} for m, ds in md.packages_distributions().items()}
    for dist in md.distributions():
        for module in _top_level(dist):
            found.setdefault(module, set()).add(canonicalize_name(dist.metadata["Name"]))
    return {m: frozenset(ds) for m, ds in found.items()}


def blocked_modules(closure: set[str]) -> set[str]:
    """Top-level modules provided only by distributions outside the closure: absent from the image."""
    return {m for m, dists in module_distributions().items() if not dists & closure}


STDLIB_DIRS = tuple({sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib")})


def third_party(modules: dict[str, str | None]) -> tuple[dict[str, frozenset[str]], list[str]]:
    """(module -> distributions) for the third-party modules, and modules of no known origin."""
    owners, unknown = {}, []
    for module, origin in modules.items():
        dists = module_distributions().get(module)
        if dists:
            owners[module] = dists
        elif origin and not origin.startswith(STDLIB_DIRS) and module not in sys.stdlib_module_names:
            unknown.append(f"{module} ({origin})")
    return owners, unknown


def missing(owners: dict[str, frozenset[str]], closure: set[str]) -> dict[str, list[str]]:
    return {m: sorted(d) for m, d in owners.items() if not d & closure}


def requirements_closure(requirements: Iterable[Requirement | str]) -> set[str]:
    """Canonical names of the distributions pip installs for a list of requirements."""
    names: set[str] = set()
    for requirement in requirements:
        requirement = Requirement(str(requirement))
        names |= requirement_closure(requirement.name, set(requirement.extras))
    return names
