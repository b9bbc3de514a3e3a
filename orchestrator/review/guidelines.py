"""The guidelines a policy cites, as the review pages show them: docs/guidelines.md (one section
per guideline, in the project's own words) served at /review/guidelines, and a rule's citation
matched to its section.

The file's shape, checked by the tests: a `# ` title and intro paragraphs, then per guideline
`<a id="ID"></a>`, a `## ` heading, a line `Cited as: `phrase`, `phrase`` and paragraphs. A
citation belongs to the section with the longest "cited as" phrase it starts with (case
ignored), where the phrase ends at a word boundary ("#1" does not claim "#10")."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from flask import render_template
from markupsafe import Markup, escape

from .session import bp, not_found, page
from .views import POLICY_READERS

# The repository's docs/ (an editable install, the tests), else docs/ in the working directory
# (the container image copies docs/ next to the code and runs from there).
CANDIDATES = (Path(__file__).resolve().parents[2] / "docs" / "guidelines.md", Path("docs") / "guidelines.md")
_ANCHOR = re.compile(r'^<a id="([a-z0-9-]+)"></a>\s*$')
_PHRASE = re.compile(r"`([^`]+)`")


@dataclass
class Guideline:
    id: str
    title: str = ""
    cited_as: list[str] = field(default_factory=list)
    paragraphs: list[str] = field(default_factory=list)


@dataclass
class Guidelines:
    title: str
    intro: list[str]
    sections: list[Guideline]

    def resolve(self, citation: str) -> Guideline | None:
        """The section a citation refers to, or None."""
        text = " ".join(citation.split()).casefold()
        best: tuple[int, Guideline] | None = None
        for section in self.sections:
            for phrase in section.cited_as:
                p = phrase.casefold()
                boundary = len(text) == len(p) or not text[len(p):len(p) + 1].isalnum()
                if text.startswith(p) and boundary and (best is None or len(p) > best[0]):
                    best = (len(p), section)
        return best[1] if best else None


def parse(text: str) -> Guidelines:
    title, intro, sections = "", [], []
    current: Guideline | None = None
    paragraph: list[str] = []

    def end_paragraph() -> None:
        if paragraph:
            (current.paragraphs if current else intro).append(" ".join(paragraph))
            paragraph.clear()

    for line in text.splitlines():
        anchor = _ANCHOR.match(line)
        if anchor:
            end_paragraph()
            current = Guideline(anchor.group(1))
            sections.append(current)
        elif line.startswith("# ") and not title:
            title = line[2:].strip()
        elif line.startswith("## ") and current is not None:
            current.title = line[3:].strip()
        elif line.startswith("Cited as:") and current is not None:
            current.cited_as = _PHRASE.findall(line)
        elif not line.strip():
            end_paragraph()
        else:
            paragraph.append(line.strip())
    end_paragraph()
    return Guidelines(title, intro, sections)


@lru_cache(maxsize=1)
def load() -> Guidelines | None:
    for path in CANDIDATES:
        if path.is_file():
            return parse(path.read_text(encoding="utf-8"))
    return None


def inline(text: str) -> Markup:
    """The file's only inline markup, `code` and **bold**, as HTML (everything else escaped)."""
    html = str(escape(text))
    html = re.sub(r"`([^`]+)`", r"<code>\1</code>", html)
    return Markup(re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", html))


@bp.app_template_filter("guideline_links")
def citation_links(cites: list[str] | tuple[str, ...]) -> list[tuple[str, str | None]]:
    """Each citation with the anchor id of its guideline (None when no section states it)."""
    guidelines = load()
    out = []
    for citation in cites:
        section = guidelines.resolve(str(citation)) if guidelines else None
        out.append((str(citation), section.id if section else None))
    return out


@bp.get("/guidelines")
@page(*POLICY_READERS)
def guidelines_page():
    guidelines = load()
    if guidelines is None:
        return not_found("The guidelines page (docs/guidelines.md) is not installed with this copy.")
    return render_template("review/guidelines.html", g=guidelines, inline=inline)
