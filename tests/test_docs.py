"""The documentation: every relative link and anchor in the committed Markdown files resolves, a table of contents
in every document over 100 lines, and a README that a new user reads quickly, with the set-up commands CI runs."""

import re
import subprocess
from pathlib import Path

import pytest
from shared import REPO

PENDING = "docs/_pending/"  # notes waiting to be folded into the docs: not published, not checked


def committed_docs() -> list[str]:
    """The Markdown files git tracks (README.md, docs/...), as paths relative to the repository."""
    try:
        listed = subprocess.run(["git", "ls-files", "*.md"], cwd=REPO, capture_output=True, text=True, check=True)
        names = listed.stdout.split()
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: every Markdown file there
        names = [str(path.relative_to(REPO)) for path in REPO.rglob("*.md") if ".venv" not in path.parts]
    return sorted(name for name in names if not name.startswith(PENDING) and (REPO / name).is_file())


DOCS = committed_docs()
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def anchors(path: Path) -> set[str]:
    """GitHub's anchors for a Markdown file's headings: lower case, punctuation dropped, spaces as hyphens."""
    found = set()
    for line in FENCE.sub("", path.read_text(encoding="utf-8")).splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


def broken_links(name: str) -> list[str]:
    path = REPO / name
    broken = []
    for target in LINK.findall(FENCE.sub("", path.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z]+:", target):  # https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading #{anchor}")
    return broken


def test_the_docs_are_found():
    assert "README.md" in DOCS and "docs/benchmarks.md" in DOCS


@pytest.mark.parametrize("name", DOCS)
def test_every_relative_link_resolves(name):
    assert broken_links(name) == []


@pytest.mark.parametrize("name", DOCS)
def test_a_long_document_opens_with_a_table_of_contents(name):
    lines = (REPO / name).read_text(encoding="utf-8").splitlines()
    if len(lines) <= 100:
        return
    head = "\n".join(lines[:40])
    assert "## Contents" in head and head.count("](#") >= 3, f"{name}: {len(lines)} lines and no table of contents"


def test_the_readme_is_short_and_sets_up_in_the_two_commands_ci_runs():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250
    setup = readme.split("## Set up", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    assert setup.splitlines() == [
        "python3 -m venv .venv && . .venv/bin/activate && pip install -r requirements.txt"
        " && python fine_tune_all.py configs/demo.yaml",
        "HF_HUB_OFFLINE=1 python -m pytest -q tests",
    ]
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "pip install -q -r requirements.txt" in ci and "python -m pytest -q tests" in ci


def test_the_link_check_finds_a_broken_link_and_a_missing_anchor(tmp_path, monkeypatch):
    (tmp_path / "a.md").write_text("# Title\n\n## Set up\n\n[ok](#set-up) [bad](#nowhere) [gone](b.md)\n"
                                   "```\n[in code](c.md)\n```\n")
    monkeypatch.setattr(__import__(__name__), "REPO", tmp_path)
    assert broken_links("a.md") == ["#nowhere: no heading #nowhere", "b.md: no such file"]


def shell_commands(path: Path) -> list[str]:
    """The commands in a Markdown file's fenced code blocks, continuation lines joined, spaces normalised."""
    commands = []
    for block in FENCE.findall(path.read_text(encoding="utf-8")):
        text = re.sub(r"\\\n\s*", " ", "\n".join(block.splitlines()[1:-1]))
        commands += [" ".join(line.split("#")[0].split()) for line in text.splitlines() if line.strip()]
    return commands


def test_the_classifier_quick_start_is_the_same_in_the_readme_and_its_document():
    readme = shell_commands(REPO / "README.md")
    quick_start = next(command for command in readme
                       if command.startswith("HF_HUB_OFFLINE=1 python run_classification.py --model_name_or_path gt-"))
    assert quick_start in shell_commands(REPO / "docs" / "classification.md")
