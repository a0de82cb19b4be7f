"""Strings from the user or the data appear as text in the report, never as markup."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

from reports import render_report
from reports._synthetic import XSS_IMG, XSS_SCRIPT


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self.text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        (self.scripts if self._in_script else self.text).append(data)


def test_payloads_in_name_column_and_error_are_escaped(exp_xss: Path) -> None:
    html = render_report(exp_xss).read_text(encoding="utf-8")
    page = _Tags()
    page.feed(html)

    # No injected element: the page's only script is its own table sorter, and no <img> has an
    # event handler or the payload's src.
    scripts = [attrs for tag, attrs in page.tags if tag == "script"]
    assert len(scripts) == 1 and "alert(" not in "".join(page.scripts)
    for tag, attrs in page.tags:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        if tag == "img":
            assert (attrs.get("src") or "").startswith("data:image/png;base64,")
    # The payloads are there, as text: in the title, heading, dataset card and error list.
    text = "".join(page.text)
    assert f"exp {XSS_SCRIPT} {XSS_IMG}" in text  # experiment name
    assert f"col{XSS_IMG}{XSS_SCRIPT}" in text  # target column
    assert f"ValueError: bad value {XSS_SCRIPT} {XSS_IMG}" in text  # error message
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    assert XSS_SCRIPT not in html and "<img src=x" not in html
