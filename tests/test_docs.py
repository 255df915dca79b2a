"""README.md and docs/: every relative link leads somewhere, and every Python
code block runs as written.

The blocks of one page run in order in one namespace, as a reader pasting
them into a session would run them, in a temporary directory (files they
save land there). A page may shrink a block's settings for the test with a
comment right before the block::

    <!-- test: "max_iter=100" -> "max_iter=3" -->

which replaces that text in the block's code (the page shows the real
settings); the test fails if the text is not in the block.
"""
import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
FENCE = re.compile(r"(?:<!-- test: (?P<subs>.*?) -->\n)?(?P<indent>[ \t]*)```python\n"
                   r"(?P<code>.*?)(?P=indent)```", re.S)
SUBSTITUTION = re.compile(r'"((?:[^"\\]|\\.)*)" -> "((?:[^"\\]|\\.)*)"')
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces
    to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", text))


def _anchors(path):
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {_slug(match) for match in re.findall(r"^#+ (.+)$", text, flags=re.M)}


def code_blocks(path):
    """(line number, code) of each Python block of a page, its test
    substitutions applied, dedented."""
    text = path.read_text()
    blocks = []
    for match in FENCE.finditer(text):
        code = textwrap.dedent(match["code"])
        for old, new in SUBSTITUTION.findall(match["subs"] or ""):
            assert old in code, (f"{path.name}, line {text[:match.start()].count(chr(10)) + 1}"
                                 f": the test's substitution {old!r} is not in the block")
            code = code.replace(old, new)
        blocks.append((text[:match.start("code")].count("\n") + 1, code))
    return blocks


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_lead_to_a_file_and_heading(page):
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{page.name}: broken links {broken}"


@pytest.mark.parametrize("page", [p for p in PAGES if code_blocks(p)],
                         ids=lambda p: p.relative_to(ROOT).as_posix())
def test_python_blocks_run_as_written(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__main__"}
    for line, code in code_blocks(page):
        try:
            exec(compile(code, f"{page.name}, block at line {line}", "exec"), namespace)
        except Exception as error:
            raise AssertionError(f"{page.name}, the block at line {line} fails: "
                                 f"{type(error).__name__}: {error}") from error
