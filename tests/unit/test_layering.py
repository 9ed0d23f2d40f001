"""Dependencies point inwards (DESIGN.md section 1, ADR 001): read every module's imports."""

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "mappa_record"

# layer -> layers of ours it must not import
FORBIDDEN = {
    "domain": {"service", "projections", "api", "migrations"},
    "service": {"api"},
    "projections": {"service", "api"},
    "migrations": {"api"},
}
# The domain is pure: the standard library, the event-sourcing base classes, the holiday data,
# and orjson (no I/O: the canonical form's fast writer, domain/chain.py).
DOMAIN_MAY_IMPORT = {"eventsourcing.domain", "holidays", "orjson"}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = path.relative_to(PACKAGE.parent).with_suffix("").parts[: -node.level]
                names.add(".".join(base + ((node.module,) if node.module else ())))
            elif node.module:
                names.add(node.module)
    return names


def modules(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_layer_imports_outwards(layer):
    offending = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in modules(layer)
        for name in imports_of(path)
        if name.startswith("mappa_record.") and name.split(".")[1] in FORBIDDEN[layer]
    ]
    assert offending == []


def test_the_domain_does_no_io():
    offending = []
    for path in modules("domain"):
        for name in imports_of(path):
            top = name.split(".")[0]
            if top in sys.stdlib_module_names or name.startswith("mappa_record.domain"):
                continue
            if any(
                name == allowed or name.startswith(allowed + ".") for allowed in DOMAIN_MAY_IMPORT
            ):
                continue
            offending.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert offending == []


def test_the_check_sees_imports(tmp_path):
    # The reader must find both absolute and relative imports, or the tests above prove nothing.
    assert "mappa_record.service.records" in imports_of(PACKAGE / "api" / "routes" / "nominals.py")
    assert "mappa_record.service.auth" in imports_of(PACKAGE / "service" / "records.py")
