"""Every path the documentation points to exists: the markdown links (and their #anchors) of
README.md, docs/, docs/history/ and models/*.md, and the repository paths named in backticks
or code blocks of README.md, docs/*.md and models/*.md (the dated journal in docs/history/
names files of its time, so only its links are checked)."""

from __future__ import annotations

import glob
import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CURRENT = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
           *sorted((ROOT / "models").glob("*.md"))]
HISTORY = sorted((ROOT / "docs" / "history").glob("*.md"))

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
CODE_BLOCK = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)
CODE_SPAN = re.compile(r"`([^`\n]+)`")
# top-level folders of the repository whose paths the docs name (runs/ and data/ are outputs;
# gsnerf_ros/2 is a checkpoint format, not a path)
REPO_PATH = re.compile(r"(?<![\w/.$-])((?:gsnerf_ros|config|docs|models|tools|test|launch|msg|"
                       r"srv|action|requirements|\.ci)/(?!\d+\b)[\w./*{},-]*[\w/*}])")


def _slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to -."""
    text = heading.strip().lower()
    text = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    text = CODE_BLOCK.sub("", path.read_text())
    for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.M):
        slug = _slug(re.sub(r"[`*_]", lambda c: "_" if c.group() == "_" else "", m.group(1)))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def _broken_links(doc: Path) -> list[str]:
    bad = []
    text = CODE_BLOCK.sub("", doc.read_text())
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target):          # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = (doc.parent / file_part).resolve() if file_part else doc
        if not dest.exists():
            bad.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            bad.append(f"{target}: no heading #{anchor} in {dest.relative_to(ROOT)}")
    return bad


def _exists(path: str) -> bool:
    path = path.rstrip(".,;:")
    path = path.split("::")[0]                      # test/test_x.py::test_name
    if "{" in path:                                 # docs/img/a_{x,y}.png
        head, alts, tail = re.match(r"(.*)\{([^}]*)\}(.*)", path).groups()
        return all(_exists(head + alt + tail) for alt in alts.split(","))
    if "*" in path:
        return bool(glob.glob(str(ROOT / path)))
    full = ROOT / path
    # a checkpoint is named by its stem (weights .safetensors + sidecar .json)
    return full.exists() or full.with_name(full.name + ".safetensors").exists()


def _missing_paths(doc: Path) -> list[str]:
    text = doc.read_text()
    spans = CODE_BLOCK.findall(text) + CODE_SPAN.findall(CODE_BLOCK.sub("", text))
    # a path followed by $ or < is a template (stage$N, <name>): not a file name
    return sorted({m.group(1) for span in spans for m in REPO_PATH.finditer(span)
                   if span[m.end():m.end() + 1] not in ("$", "<") and not _exists(m.group(1))})


@pytest.mark.parametrize("doc", CURRENT + HISTORY, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_markdown_link_resolves(doc: Path) -> None:
    assert not _broken_links(doc)


@pytest.mark.parametrize("doc", CURRENT, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_repository_path_named_in_code_exists(doc: Path) -> None:
    assert not _missing_paths(doc)


def test_the_checks_find_what_is_missing(tmp_path: Path) -> None:
    """The checks fail on a missing file, a missing heading and a missing backticked path."""
    doc = ROOT / "docs" / "_link_check_probe.md"
    doc.write_text("# A heading\n[ok](#a-heading) [gone](#nowhere) [file](METHOD.md)\n"
                   "[none](no_such.md) ![img](img/absent.png) `config/recipes/cpu.yaml`\n"
                   "`config/train_cpu_stage7.yaml` and `models/gsnerf_cpu`\n"
                   "```\ngsnerf-train --config config/train_nothing.yaml\n```\n")
    try:
        assert _broken_links(doc) == ["#nowhere: no heading #nowhere in "
                                      "docs/_link_check_probe.md",
                                      "no_such.md: no such file", "img/absent.png: no such file"]
        assert _missing_paths(doc) == ["config/train_cpu_stage7.yaml",
                                       "config/train_nothing.yaml"]
    finally:
        doc.unlink()
