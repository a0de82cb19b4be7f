"""Strings from the user or the data appear as text in the report, never as markup."""

from __future__ import annotations

import json
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

from tests.reports.fixtures import XSS_IMG, XSS_SCRIPT
from tunecast.reports import render_report


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


def test_payload_in_an_ensemble_member_id_is_escaped(make_exp: Callable[..., Path]) -> None:
    """Ensemble member ids reach the metrics table's row label and a note: as text only."""
    path = make_exp(n_trials=8, ensemble=3)
    file = path / "ensemble" / "metrics.json"
    metrics = json.loads(file.read_text())
    metrics["members"][2]["trial_id"] = XSS_IMG
    first, second = (m["trial_id"] for m in metrics["members"][:2])
    file.write_text(json.dumps(metrics))
    html = render_report(path).read_text(encoding="utf-8")
    page = _Tags()
    page.feed(html)
    assert [attrs for tag, attrs in page.tags if tag == "script"] == [{}]
    assert all(not name.startswith("on") for _, attrs in page.tags for name in attrs)
    text = "".join(page.text)
    assert f"top-3 ensemble (mean of trials {first}, {second}, {XSS_IMG})" in text
    assert "<img src=x" not in html


def test_payloads_in_the_combination_are_escaped(make_exp: Callable[..., Path]) -> None:
    """The combination's network ids and model names reach its table row, note, verdict and a
    figure's caption: as text only."""
    path = make_exp(n_trials=8, combine=True)
    file = path / "combined" / "metrics.json"
    metrics = json.loads(file.read_text())
    metrics.update(networks=[XSS_IMG], statistical=[XSS_SCRIPT, "AutoARIMA"])
    file.write_text(json.dumps(metrics))
    html = render_report(path).read_text(encoding="utf-8")
    page = _Tags()
    page.feed(html)
    assert [attrs for tag, attrs in page.tags if tag == "script"] == [{}]
    assert all(not name.startswith("on") for _, attrs in page.tags for name in attrs)
    text = "".join(page.text)
    assert f"combined: trial {XSS_IMG} + {XSS_SCRIPT} + AutoARIMA (equal mean)" in text
    assert f"Trial {XSS_IMG} combined with {XSS_SCRIPT} and AutoARIMA: test MASE" in text
    assert XSS_SCRIPT not in html and "<img src=x" not in html
