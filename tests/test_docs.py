"""The docs keep their form: docs/architecture.md names only modules that exist, and
CHANGES.md is one line per change, grouped by release."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ARCHITECTURE = REPO / "docs" / "architecture.md"
CHANGES = REPO / "CHANGES.md"
#: A release heading: ``## 0.3.0 — the daemon``.
RELEASE = re.compile(r"## (\d+)\.(\d+)\.(\d+) — \S.*")
#: The longest line a change may take.
CHANGE_WIDTH = 100


def named_modules(text: str) -> set[str]:
    """The paths of ingestd's modules and folders that a text names."""
    return set(re.findall(r"ingestd/[\w/]+(?:\.py)?/?", text))


def test_every_module_the_architecture_names_exists() -> None:
    named = named_modules(ARCHITECTURE.read_text())
    assert len(named) > 30  # the picture names the stages' modules, not a handful
    missing = sorted(path for path in named if not (REPO / path).exists())
    assert not missing, f"docs/architecture.md names modules that do not exist: {missing}"


def test_every_stage_module_is_in_the_architecture() -> None:
    named = named_modules(ARCHITECTURE.read_text())
    top = {f"ingestd/{p.name}" for p in (REPO / "ingestd").glob("*.py") if p.stem[0] != "_"}
    left_out = {"ingestd/console.py", "ingestd/faults.py", "ingestd/metrics.py",
                "ingestd/replay.py", "ingestd/replay_page.py", "ingestd/sanitize.py",
                "ingestd/config.py", "ingestd/config_values.py", "ingestd/types.py",
                "ingestd/errors.py"}  # fmt: skip
    assert sorted(top - named - left_out) == []


def test_a_renamed_module_would_be_caught() -> None:
    assert named_modules("see ingestd/nowhere.py") == {"ingestd/nowhere.py"}
    assert not (REPO / "ingestd/nowhere.py").exists()


def changes_problems(text: str) -> list[str]:
    """What breaks CHANGES.md's form: ``# Changes``, then ``## Unreleased`` and releases
    newest first, each holding only bullets of one line of at most ``CHANGE_WIDTH``."""
    lines = text.splitlines()
    if not lines or lines[0] != "# Changes":
        return ["the first line is not '# Changes'"]
    problems: list[str] = []
    sections: list[str] = []
    bullets: dict[str, int] = {}
    for number, line in enumerate(lines[1:], 2):
        if line.startswith("#"):
            if line != "## Unreleased" and not RELEASE.fullmatch(line):
                problems.append(f"line {number}: not '## Unreleased' or '## X.Y.Z — words'")
            sections.append(line)
            bullets[line] = 0
        elif sections and line:
            if not line.startswith("- "):
                problems.append(f"line {number}: not a bullet")
            elif len(line) > CHANGE_WIDTH:
                problems.append(f"line {number}: {len(line)} characters (at most {CHANGE_WIDTH})")
            bullets[sections[-1]] += 1
    if not sections or sections[0] != "## Unreleased" or sections.count("## Unreleased") > 1:
        problems.append("'## Unreleased' must be the first section, and only once")
    versions = [tuple(map(int, m.groups())) for s in sections if (m := RELEASE.fullmatch(s))]
    if versions != sorted(set(versions), reverse=True):
        problems.append(f"releases not newest first, or repeated: {versions}")
    problems += [
        f"{s}: no change listed" for s, n in bullets.items() if n == 0 and s[3:4].isdigit()
    ]
    return problems


def test_changes_is_one_line_per_change_grouped_by_release() -> None:
    text = CHANGES.read_text(encoding="utf-8")
    assert changes_problems(text) == []
    assert len(RELEASE.findall(text)) >= 7  # 0.1.0 to 0.7.0, one per milestone


def test_the_package_version_is_past_the_newest_release() -> None:
    # "Unreleased" is what the running code adds to the newest release listed.
    from packaging.version import Version

    import ingestd

    newest = RELEASE.search(CHANGES.read_text(encoding="utf-8"))
    assert newest is not None
    assert Version(ingestd.__version__) > Version(".".join(newest.groups()))


def test_the_changes_check_catches_each_breach() -> None:
    good = "# Changes\n\n## Unreleased\n- a\n\n## 0.2.0 — two\n- b\n\n## 0.1.0 — one\n- c\n"
    assert changes_problems(good) == []
    breaches = {
        "long": good.replace("- b", "- " + "b" * 99),
        "continued": good.replace("- b\n", "- b\n  more of b\n"),
        "heading": good.replace("## 0.2.0 — two", "## 0.2.0"),
        "dated heading only": good.replace("## 0.2.0 — two", "## [0.2.0] - 2026-11-22"),
        "order": good.replace("0.2.0", "0.0.9"),
        "unreleased last": good.replace("## Unreleased\n- a\n\n", "") + "## Unreleased\n- a\n",
        "empty release": good.replace("- c\n", ""),
        "subheading": good.replace("- b", "### Fixed\n- b"),
    }
    for name, text in breaches.items():
        assert changes_problems(text), name
