"""The declared plugin API: ``polymodal.plugin`` is what the built-in plugins import polymodal
through, each of its names resolves and is described in docs/plugin-api.md, and importing it
(or a name that needs no torch) imports no torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = {"polymodal", "polymodal.plugin"}


def test_built_in_plugins_import_polymodal_only_through_the_plugin_api() -> None:
    offences = []
    for path in sorted((ROOT / "plugins").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules = [node.module]
                if node.module == "polymodal":
                    modules = [f"polymodal.{a.name}" for a in node.names
                               if a.name not in ("hookimpl", "PolymodalError", "load",
                                                 "plugin")]
            elif isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            else:
                continue
            for module in modules:
                if module.split(".")[0] == "polymodal" and module not in ALLOWED:
                    offences.append(f"{path.relative_to(ROOT)}:{node.lineno}: {module}")
    assert not offences, "import polymodal through polymodal.plugin:\n" + "\n".join(offences)


def test_every_public_name_resolves_and_is_documented() -> None:
    import polymodal.plugin as api
    from tools.plugin_api_doc import markdown

    docs = (ROOT / "docs" / "plugin-api.md").read_text()
    assert docs == markdown(), "docs/plugin-api.md is stale: run `make docs`"
    for name in api.__all__:
        assert getattr(api, name) is not None, name
        assert f"`{name}`" in docs, f"docs/plugin-api.md does not describe {name}"
    assert sorted(dir(api)) == sorted(api.__all__) == sorted(api.EXPORTS)


def test_a_misspelled_name_is_an_attribute_error_naming_it() -> None:
    import pytest

    import polymodal.plugin as api

    with pytest.raises(AttributeError, match="'Recrod'"):
        api.Recrod  # noqa: B018


def test_importing_light_names_imports_no_torch() -> None:
    probe = ("import sys\nfrom polymodal.plugin import Record, DataError, json_option, "
             "Scenario, DemoData\nprint('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=120)
    assert result.stdout.strip() == "False", result.stderr


def test_type_checkers_see_every_public_name_where_it_lives() -> None:
    """The ``if TYPE_CHECKING`` imports (for mypy, editors and the API reference) are
    EXPORTS exactly: a name added to one and not the other fails here."""
    import polymodal.plugin as api

    tree = ast.parse((ROOT / "core" / "polymodal" / "plugin.py").read_text())
    block = next(node for node in tree.body if isinstance(node, ast.If)
                 and getattr(node.test, "id", None) == "TYPE_CHECKING")
    seen = {alias.asname or alias.name: (node.module, alias.name)
            for node in block.body if isinstance(node, ast.ImportFrom)
            for alias in node.names}
    assert seen == {name: (module, attr) for name, (module, attr, _) in api.EXPORTS.items()}
