"""Write docs/plugin-api.md from ``polymodal.plugin.EXPORTS`` (its sections are the
``# --- section ---`` comments in plugin.py). ``make docs`` runs it; a test fails when the
page is stale."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "plugin-api.md"
INTRO = """# The plugin API (`polymodal.plugin`)

What a plugin imports from polymodal, and all that polymodal promises to plugins: one
module, `polymodal.plugin`, with the names below (`API_VERSION` is its version; a plugin
declares the range it is written for with `POLYMODAL_API`, see [hooks.md](hooks.md)). Every
other module of the core (`polymodal.pipeline`, `polymodal.serving`, `polymodal.cli.*` ...)
is internal and may change without notice. The built-in plugins import polymodal only
through it (a test checks `plugins/`), so what they can do, a third-party plugin can do too.
Tests use `polymodal.testing`, the conformance kit ([testing.md](testing.md)).

Names load on first use: `from polymodal.plugin import Record, json_option` in a plugin's
CLI module imports no torch; a name that needs torch (`BasePredictor`, `fit_steps`) imports
it when it is imported. The [API reference](reference.md) has each one's signature and
docstring; the hooks themselves are in [hooks.md](hooks.md).

<!-- written by tools/plugin_api_doc.py from polymodal.plugin.EXPORTS: edit those -->
"""


def sections() -> list[tuple[str, list[str]]]:
    """(section title, names in it) in the order plugin.py lists them."""
    source = (ROOT / "core" / "polymodal" / "plugin.py").read_text()
    out: list[tuple[str, list[str]]] = []
    for line in source.split("EXPORTS", 2)[1].splitlines():
        title = re.match(r"\s*# --- (.+) ---", line)
        name = re.match(r'\s*"(\w+)": \(', line)
        if title:
            out.append((title.group(1), []))
        elif name and out:
            out[-1][1].append(name.group(1))
    return out


def markdown() -> str:
    sys.path.insert(0, str(ROOT / "core"))
    from polymodal.plugin import EXPORTS

    parts = [INTRO]
    for title, names in sections():
        heading = title[0].upper() + title[1:]
        rows = "\n".join(f"| `{n}` | {EXPORTS[n][2]} |" for n in names)
        parts.append(f"## {heading}\n\n| name | what it is |\n|---|---|\n{rows}\n")
    return "\n".join(parts)


if __name__ == "__main__":
    PAGE.write_text(markdown())
    print(f"wrote {PAGE.relative_to(ROOT)}")
