"""docs/design.md is the project's own design: every citation of it lands on a heading,
nothing in the repository points at a design outside it, and its catalogue names every
event type the service takes (a new type without a row fails here)."""

import re
import subprocess
from pathlib import Path

from domain.nominal import EVENT_TYPES

ROOT = Path(__file__).resolve().parents[2]
DESIGN = ROOT / "docs" / "design.md"


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors() -> set[str]:
    return {
        _slug(line.lstrip("#"))
        for line in DESIGN.read_text().splitlines()
        if re.match(r"#{1,6} ", line)
    }


def _tracked(*patterns: str) -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", *patterns], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return [ROOT / name for name in listed]


def test_every_citation_of_the_design_lands_on_a_heading():
    anchors = _anchors()
    cited = {
        (path.relative_to(ROOT).as_posix(), anchor)
        for path in _tracked("*.py", "*.md")
        for anchor in re.findall(r"design\.md#([a-z0-9-]+)", path.read_text())
    }
    assert cited, "nothing cites docs/design.md"
    assert {(where, a) for where, a in cited if a not in anchors} == set()


def test_nothing_points_at_a_design_outside_the_repository():
    outside = re.compile("|".join([r"\.\./" + "shared", "DESIGN" + r"\.md"]))
    found = [
        path.relative_to(ROOT).as_posix()
        for path in _tracked("*.py", "*.md")
        if outside.search(path.read_text())
        and not path.relative_to(ROOT).as_posix().startswith("docs/adr/")  # history
    ]
    assert found == []


def test_the_catalogue_has_a_row_for_every_event_type():
    text = DESIGN.read_text()
    catalogue = text[text.index("### The catalogue") : text.index("### Invariants")]
    rows = set(re.findall(r"^\| `(\w+)` \|", catalogue, flags=re.MULTILINE))
    assert set(EVENT_TYPES) - rows == set(), "add a row to docs/design.md#the-catalogue"
    assert rows - set(EVENT_TYPES) == set(), "a row for an event type the service does not take"
