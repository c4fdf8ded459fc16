"""The generated blocks of ``docs/RELIABILITY.md``: each test that measures something renders its
block; the block in the committed file must equal it (so the document cannot go stale).

Run ``RECXBENCH_WRITE_DOCS=1 pytest tests/test_reliability*.py`` to rewrite the blocks after a change.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "RELIABILITY.md"


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- BEGIN generated:{name} -->", f"<!-- END generated:{name} -->"


def check_block(name: str, body: str) -> None:
    """Assert the committed block ``name`` equals ``body`` (or write it with RECXBENCH_WRITE_DOCS=1)."""
    begin, end = _markers(name)
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    pattern = re.compile(re.escape(begin) + r"\n.*?" + re.escape(end), re.S)
    block = f"{begin}\n{body.rstrip()}\n{end}"
    if os.environ.get("RECXBENCH_WRITE_DOCS") == "1":
        if pattern.search(text):
            text = pattern.sub(lambda _m: block, text)
        else:
            text = text.rstrip() + f"\n\n{block}\n"
        DOC.write_text(text, encoding="utf-8")
        return
    found = pattern.search(text)
    assert found, f"{DOC} has no block {name!r}: run RECXBENCH_WRITE_DOCS=1 pytest {name} tests"
    assert found.group(0) == block, (
        f"{DOC} block {name!r} is stale: rerun its tests with RECXBENCH_WRITE_DOCS=1 and commit the file"
    )


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
