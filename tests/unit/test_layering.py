"""Dependencies point inwards (docs/design.md#architecture, ADR 016): read every module's imports.

Between the top-level packages: `api -> service -> domain`, `projections -> domain`, nothing
imports `api`. Inside `service`, the rooms have floors: `runtime` (settings, database) imports
no other room of the service, and `store` (the event-store adapter) only `runtime`.
"""

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("api", "service", "domain", "projections", "migrations")

# package (or room) -> packages and rooms of ours it must not import
FORBIDDEN = {
    "domain": {"service", "projections", "api", "migrations"},
    "service": {"api"},
    "projections": {"service", "api"},
    "migrations": {"api", "service", "projections"},
    "service/runtime": {
        "api",
        "projections",
        "migrations",
        *(
            f"service.{p.stem}"
            for p in (ROOT / "service").iterdir()
            if p.stem not in {"runtime", "__init__", "__pycache__"}
        ),
    },
    "service/store": {
        "api",
        "projections",
        *(
            f"service.{p.stem}"
            for p in (ROOT / "service").iterdir()
            if p.stem not in {"runtime", "store", "__init__", "__pycache__"}
        ),
    },
}
# The domain is pure: the standard library, the event-sourcing base classes (and the
# library's topic registry, for names stored before a move), the holiday data, and orjson
# (no I/O: the canonical form's fast writer, domain/chain.py).
DOMAIN_MAY_IMPORT = {"eventsourcing.domain", "eventsourcing.utils", "holidays", "orjson"}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = path.relative_to(ROOT).with_suffix("").parts[: -node.level]
                names.add(".".join(base + ((node.module,) if node.module else ())))
            elif node.module:
                names.add(node.module)
    return names


def modules(where: str) -> list[Path]:
    return sorted((ROOT / where).rglob("*.py"))


def _within(name: str, forbidden: str) -> bool:
    return name == forbidden or name.startswith(forbidden + ".")


@pytest.mark.parametrize("where", sorted(FORBIDDEN))
def test_no_layer_imports_outwards(where):
    offending = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in modules(where)
        for name in imports_of(path)
        if any(_within(name, forbidden) for forbidden in FORBIDDEN[where])
    ]
    assert offending == []


def test_the_domain_does_no_io():
    offending = []
    for path in modules("domain"):
        for name in imports_of(path):
            top = name.split(".")[0]
            if top in sys.stdlib_module_names or top == "domain":
                continue
            if any(_within(name, allowed) for allowed in DOMAIN_MAY_IMPORT):
                continue
            offending.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offending == []


def test_the_layout_is_the_commissioned_one():
    for package in PACKAGES:
        assert (ROOT / package / "__init__.py").is_file(), package
    for room in ("store", "integrations", "runtime"):
        assert (ROOT / "service" / room / "__init__.py").is_file(), room


def test_the_check_sees_imports():
    # The reader must find both absolute and relative imports, or the tests above prove nothing.
    assert "service.records" in imports_of(ROOT / "api" / "routes" / "nominals.py")
    assert "service.auth" in imports_of(ROOT / "service" / "records.py")
    assert any(
        _within(n, "service.runtime")
        for n in imports_of(ROOT / "service" / "store" / "eventstore.py")
    )
