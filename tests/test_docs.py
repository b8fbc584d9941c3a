"""The documentation's relative links resolve, and the README stays an entry page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README_MAX_LINES = 400

# [text](target) and [text](target "title"); images too. Code spans and fenced
# blocks are removed first so shell snippets like `a[0](x)` are not taken for links.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1\s*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def relative_links(text: str) -> list[str]:
    prose = CODE_SPAN.sub("", FENCE.sub("", text))
    found = []
    for target in LINK.findall(prose):
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL (http:, mailto:) or an anchor on the same page
        found.append(target.split("#", 1)[0])
    return found


def test_link_scanner_sees_links_and_skips_code() -> None:
    text = ("See [a](docs/a.md#x), [b](../b.md \"t\") and ![i](img.png).\n"
            "`[no](code.md)` and [web](https://example.org) and [here](#top).\n"
            "```\n[fenced](fenced.md)\n```\n")
    assert relative_links(text) == ["docs/a.md", "../b.md", "img.png"]


@pytest.mark.parametrize("page", doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_at_existing_files(page: Path) -> None:
    missing = [target for target in relative_links(page.read_text(encoding="utf-8"))
               if not (page.parent / target).exists()]
    assert not missing, f"{page.relative_to(ROOT)} links to missing files: {missing}"


def test_readme_stays_short() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines (at most {README_MAX_LINES})"


def test_docs_exist() -> None:
    assert (ROOT / "docs" / "README.md").is_file()
    assert len(doc_files()) > 2
