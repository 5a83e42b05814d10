# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every relative link in README.md and docs/*.md reaches a file that exists, and
every `#anchor` (into another Markdown file or the same one) names one of its
headings, slugged as GitHub does: lower-case, characters other than letters,
digits, spaces, hyphens and underscores dropped, spaces to hyphens, a repeated
heading's slug suffixed -1, -2...

The repository root is two levels above this file, in the checkout and in the
tree `make tree` copies (.cache/tree/..., which holds docs/ too). Links inside
fenced code blocks and inline code are not links and are not checked.
"""
from __future__ import annotations

import pathlib
import re
import urllib.parse

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
# [text](target) or ![alt](target), with an optional title; text may hold one level of brackets.
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s<>]*)>?(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
REFERENCE_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?")
HTML_ANCHOR = re.compile(r"<a\s[^>]*(?:id|name)=[\"']([^\"']+)[\"']", re.IGNORECASE)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def _prose_lines(text: str):
    """(line number, line) outside fenced code blocks."""
    fence = None
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if fence is None:
            if match:
                fence = match.group(1)
                continue
            yield number, line
        elif match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence) \
                and not line.strip()[len(match.group(1)):].strip():
            fence = None


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text."""
    text = INLINE_LINK.sub(lambda m: re.sub(r"^!?\[(.*)\]\(.*$", r"\1", m.group(0)), heading)
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: pathlib.Path) -> set[str]:
    """Every anchor a page defines: its headings' slugs (repeats numbered) and HTML ids."""
    seen: dict[str, int] = {}
    found = set()
    for _number, line in _prose_lines(path.read_text(encoding="utf-8")):
        found.update(HTML_ANCHOR.findall(line))
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: pathlib.Path):
    """(line number, target) of every link in a page's prose."""
    for number, line in _prose_lines(path.read_text(encoding="utf-8")):
        prose = CODE_SPAN.sub("", line)
        for match in INLINE_LINK.finditer(prose):
            yield number, match.group(1)
        match = REFERENCE_DEF.match(prose)
        if match:
            yield number, match.group(1)


def broken_links(page: pathlib.Path) -> list[str]:
    problems = []
    for number, target in links(page):
        if not target or SCHEME.match(target) or target.startswith("//"):
            continue
        file_part, _hash, anchor = target.partition("#")
        where = f"{page.relative_to(ROOT)}:{number}: ({target})"
        dest = (page.parent / urllib.parse.unquote(file_part)).resolve() if file_part else page
        if not dest.exists():
            problems.append(f"{where}: no such file {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest}")
            continue
        if not anchor:
            continue
        if dest.suffix.lower() != ".md":
            problems.append(f"{where}: an anchor into a file that is not Markdown is not checked; link the file")
            continue
        if urllib.parse.unquote(anchor) not in anchors(dest):
            problems.append(f"{where}: no heading in {dest.relative_to(ROOT)} has the anchor #{anchor}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_relative_links_reach_a_file_and_a_heading(page):
    if not page.exists():
        pytest.skip(f"{page.relative_to(ROOT)} is not in this tree")
    problems = broken_links(page)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("heading, expected", [
    ("Reruns, tags, limits and batches", "reruns-tags-limits-and-batches"),
    ("Fault suite (`make faults`)", "fault-suite-make-faults"),
    ("Celery tasks: at least once", "celery-tasks-at-least-once"),
    ("Let's Encrypt's limits the role respects", "lets-encrypts-limits-the-role-respects"),
    ("certbot (`certonly --webroot`)", "certbot-certonly---webroot"),
    ("flask_app", "flask_app"),
    ("What `flaskfleet.stack.plan` shows", "what-flaskfleetstackplan-shows"),
])
def test_slug_follows_github(heading, expected):
    assert slug(heading) == expected
