"""`rfmlake report` and `rfmlake dashboard` run as a user runs them, and what their pages say: the
visible text (tags dropped, whitespace folded) and the rows of a section's tables."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

from rfmlake.cli.main import main


def render_report(lake: Path, out: Path) -> str:
    """`rfmlake report --lake LAKE --out OUT`: exits 0; the page's HTML."""
    assert main(["report", "--lake", str(lake), "--out", str(out)]) == 0
    return out.read_text()


def render_dashboard(lake: Path, out: Path) -> str:
    """`rfmlake dashboard --lake LAKE --out OUT`: exits 0; the page's HTML."""
    assert main(["dashboard", "--lake", str(lake), "--out", str(out)]) == 0
    return out.read_text()


class _Page(HTMLParser):
    def __init__(self, section_id: str | None) -> None:
        super().__init__(convert_charrefs=True)
        self.section_id = section_id
        self.text: list[str] = []
        self.section_text: list[str] = []
        self.rows: list[list[str]] = []
        self._depth = 0          # open <section> elements since the wanted one opened (0: outside it)
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self._hidden = 0         # inside <style> or <script>

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script"):
            self._hidden += 1
        if tag == "section":
            if self._depth:
                self._depth += 1
            elif dict(attrs).get("id") == self.section_id:
                self._depth = 1
        if self._depth and tag == "tr":
            self._row = []
        if self._row is not None and tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script"):
            self._hidden -= 1
        if self._row is not None and self._cell is not None and tag in ("td", "th"):
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        if self._row is not None and tag == "tr":
            self.rows.append(self._row)
            self._row = None
        if tag == "section" and self._depth:
            self._depth -= 1

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        self.text.append(data)
        if self._depth:
            self.section_text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def page_text(html: str) -> str:
    """The visible text, whitespace folded (markup between words adds no space: "<b>Skipped</b>:")."""
    page = _Page(None)
    page.feed(html)
    return " ".join("".join(page.text).split())


def section_text(html: str, section_id: str) -> str:
    """The visible text of <section id=section_id>, as page_text."""
    page = _Page(section_id)
    page.feed(html)
    return " ".join("".join(page.section_text).split())


def section_rows(html: str, section_id: str) -> list[list[str]]:
    """The table rows (cell texts, header rows included) of <section id=section_id>."""
    page = _Page(section_id)
    page.feed(html)
    return page.rows
