"""The README and the docs stay short, correct and in step with the code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CLI_MD = ROOT / "docs" / "cli.md"
GEN_CLI = ROOT / "docs" / "gen_cli.py"
FIX_CLI = "python docs/gen_cli.py > docs/cli.md"
# The pages whose links are checked: the README and the docs it sends readers to first.
LINKED_PAGES = ("README.md", "docs/cli.md", "docs/architecture.md", "docs/cluster.md")

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*$", re.MULTILINE)
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))  # a '#' line in a code block is no heading
    return {_slug(h) for h in HEADING.findall(text)}


def test_readme_is_at_most_200_lines() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, (
        f"README.md has {len(lines)} lines (at most 200): move details to docs/ and link them"
    )


def test_readme_python_quick_start_compiles() -> None:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"^```python\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    assert match, "README.md has no ```python block (the Python quick start)"
    code = match.group(1)
    compile(code, "README.md (Python quick start)", "exec")
    assert "TuneCast" in code and ".fit(" in code, "the first ```python block is not the quick start"


def test_readme_holds_one_test_command() -> None:
    """.ci/run runs the one command line between the test-command markers."""
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"<!-- test-command -->\n(.*?)<!-- /test-command -->", text, re.DOTALL)
    assert len(blocks) == 1, "README.md must hold exactly one <!-- test-command --> block"
    lines = [ln for ln in blocks[0].splitlines() if ln.strip() and not ln.startswith("```")]
    assert len(lines) == 1, f"the test-command block must hold one command line, not {len(lines)}"


@pytest.mark.parametrize("page", LINKED_PAGES)
def test_relative_links_point_to_existing_files(page: str) -> None:
    source = ROOT / page
    text = FENCE.sub("", source.read_text(encoding="utf-8"))
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...
            continue
        path_part, _, anchor = target.partition("#")
        linked = (source.parent / path_part).resolve() if path_part else source
        if not linked.exists():
            broken.append(f"{target} (no file {linked.relative_to(ROOT)})")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(f"{target} (no heading #{anchor} in {linked.relative_to(ROOT)})")
    assert not broken, f"{page}: broken relative links: " + "; ".join(broken)


def test_cli_md_is_generated_from_the_parser() -> None:
    """docs/cli.md is what docs/gen_cli.py prints now, so the option reference cannot drift."""
    written = CLI_MD.read_text(encoding="utf-8")
    recorded = re.search(r"with Python (\d+\.\d+)", written)
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if recorded and recorded.group(1) != here:  # argparse's help layout changes between versions
        pytest.skip(f"docs/cli.md was generated with Python {recorded.group(1)}, this is {here}")
    result = subprocess.run(
        [sys.executable, str(GEN_CLI)], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"docs/gen_cli.py failed:\n{result.stderr}"
    assert result.stdout == written, (
        f"docs/cli.md is out of date with the command line's parsers; regenerate it: {FIX_CLI}"
    )
