"""Every dependency is pinned, so `make deps-check` sees it (docs/adr/022)."""

import importlib.util
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _deps_check():
    spec = importlib.util.spec_from_file_location("deps_check", ROOT / ".ci" / "deps_check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_requirement_is_pinned_exactly_and_deps_check_reads_each_pin():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [
        r for extra in project["optional-dependencies"].values() for r in extra
    ]
    pins = _deps_check().pins()
    assert len(pins) == len(requirements)
    assert pins["holidays"][1] == "runtime"


def test_the_environment_holds_the_pinned_versions():
    for name, (version, group) in _deps_check().pins().items():
        if group in ("runtime", "test"):
            assert metadata.version(name) == version, name


def test_one_aes_implementation_and_no_filetype():
    """The service's cipher is the library's `cryptography` one (not the `crypto` extra's
    pycryptodome, which only the tests install), and `filetype` is not a dependency."""
    requires = [r for r in metadata.requires("mappa-record") or [] if "extra ==" not in r]
    assert not any(r.startswith(("filetype", "pycryptodome")) for r in requires)
    [eventsourcing] = [r for r in requires if r.startswith("eventsourcing[")]
    extras = set(eventsourcing.partition("[")[2].partition("]")[0].split(","))
    assert extras == {"postgres", "cryptography"}
