"""List the pins of pyproject.toml that have a newer release on the package index.

`make deps-check` runs it in the project's environment. It asks pip (`pip list --outdated`,
the index pip is configured with, nothing else) which installed distributions have a newer
release, and prints those that pyproject.toml pins with `==`, the runtime's first. `holidays`
is named on its own: its releases carry one-off bank holidays, and a stale pin seals wrong
minutes deadlines into the record (docs/adr/023-dependencies-current-and-few.md).

Exit status 0 whatever it finds (it lists; a person decides), 1 if pip cannot answer.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*==\s*([^;\s]+)")
SEALED = {"holidays": "bank holidays decide minutes' due_on, sealed in the hash chain: ADR 023"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins() -> dict[str, tuple[str, str]]:
    """canonical name -> (pinned version, where: "runtime" or the extra's name)."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    groups = {"runtime": project.get("dependencies", [])}
    groups |= project.get("optional-dependencies", {})
    found: dict[str, tuple[str, str]] = {}
    for group, requirements in groups.items():
        for requirement in requirements:
            match = PIN.match(requirement)
            if match is not None:
                found.setdefault(canonical(match[1]), (match[2], group))
    return found


def outdated() -> dict[str, str]:
    """canonical name -> the latest version, for installed distributions that have a newer one."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "list", "--outdated", "--format=json"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"deps-check: pip could not list outdated packages: {done.stderr.strip()[-500:]}")
    return {canonical(d["name"]): d["latest_version"] for d in json.loads(done.stdout)}


def installed() -> set[str]:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "list", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return {canonical(d["name"]) for d in json.loads(done.stdout)}


def main() -> int:
    pinned = pins()
    newer = outdated()
    rows = sorted(
        (
            (group != "runtime", group, name, version, newer[name])
            for name, (version, group) in pinned.items()
            if name in newer
        ),
    )
    if rows:
        print(f"{len(rows)} of {len(pinned)} pins have a newer release:")
        width = max(len(r[2]) for r in rows)
        for _, group, name, version, latest in rows:
            note = f"  ({SEALED[name]})" if name in SEALED else ""
            print(f"  {name:<{width}}  {version:>10} -> {latest:<10} [{group}]{note}")
    else:
        print(f"all {len(pinned)} pins are the latest release")
    absent = sorted(set(pinned) - installed())
    if absent:
        print(f"not installed here, so not checked: {', '.join(absent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
