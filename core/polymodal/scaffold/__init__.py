"""``polymodal plugin new NAME``: a working plugin package from the template beside this
module (``template/``, a real plugin whose name is ``pluginname``: the command writes a copy
with that word replaced by NAME)."""

from __future__ import annotations

import keyword
import re
from pathlib import Path

from polymodal.errors import PolymodalError

TEMPLATE = Path(__file__).with_name("template")
PLACEHOLDER = "pluginname"
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,39}")
SKIPPED = {"__pycache__", ".pytest_cache"}


def check_name(name: str) -> None:
    """Refuse a NAME that cannot be a Python package and a scenario domain, or that an
    installed plugin already uses."""
    if not NAME_PATTERN.fullmatch(name) or keyword.iskeyword(name):
        raise PolymodalError(f"{name!r} is not a valid plugin name: use lower-case letters, "
                             "digits and underscores, starting with a letter (e.g. 'shapes')")
    from importlib import metadata

    from polymodal.plugins import ENTRY_POINT_GROUP

    taken = {ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    if name in taken:
        raise PolymodalError(f"a plugin named {name!r} is already installed; choose another "
                             "name")


def template_files() -> list[Path]:
    return sorted(path for path in TEMPLATE.rglob("*")
                  if path.is_file() and not SKIPPED & set(path.relative_to(TEMPLATE).parts))


def new_plugin(name: str, out_dir: str | Path | None = None) -> Path:
    """Write the plugin package ``polymodal-NAME`` into ``out_dir`` (default
    ``./polymodal-NAME``), which must not exist or be empty; returns the directory."""
    check_name(name)
    target = Path(out_dir) if out_dir is not None else Path(f"polymodal-{name}")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise PolymodalError(f"{target} exists and is not empty; give a new directory "
                             "with --out")
    files = {path.relative_to(TEMPLATE): path.read_text(encoding="utf-8")
             for path in template_files()}
    target.mkdir(parents=True, exist_ok=True)
    for relative, text in files.items():
        destination = target / str(relative).replace(PLACEHOLDER, name)
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(text.replace(PLACEHOLDER, name), encoding="utf-8")
    return target
