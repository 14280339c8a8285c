"""Plugin discovery through the entry-point group, env switches, failures, duplicates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polymodal.errors import PluginError
from polymodal.registry import Entry, Registry
from polymodal.testing import make_distribution, run_cli


def plugins_json(env: dict[str, str] | None = None) -> dict[str, dict]:
    result = run_cli("plugins", "--json", env=env)
    assert result.returncode == 0, result.stderr
    return {p["name"]: p for p in json.loads(result.stdout)}


def test_builtin_plugins_load_through_entry_points() -> None:
    plugins = plugins_json()
    assert plugins["core"]["status"] == "loaded"
    assert "register_fusions" in plugins["core"]["hooks"]
    assert plugins["nlp"]["status"] == "loaded"
    assert plugins["nlp"]["version"] == "0.1.0"


def test_allow_and_deny_lists() -> None:
    only_core = plugins_json({"POLYMODAL_PLUGINS": "core"})
    assert only_core["core"]["status"] == "loaded"
    assert only_core["nlp"]["status"] == "disabled"
    no_nlp = plugins_json({"POLYMODAL_DISABLE_PLUGINS": "nlp"})
    assert no_nlp["nlp"]["status"] == "disabled"
    result = run_cli("components", "--kind", "encoder", "--json",
                     env={"POLYMODAL_DISABLE_PLUGINS": "nlp"})
    names = {c["name"] for c in json.loads(result.stdout)}
    assert "numeric" in names and "minilm" not in names


def test_broken_plugin_is_reported_and_the_rest_works(tmp_path: Path) -> None:
    make_distribution(tmp_path, "broken_plugin", "import no_such_module_xyz\n")
    env = {"PYTHONPATH": str(tmp_path)}
    plugins = plugins_json(env)
    assert plugins["broken_plugin"]["status"] == "failed"
    assert "no_such_module_xyz" in plugins["broken_plugin"]["error"]
    assert plugins["core"]["status"] == "loaded"
    result = run_cli("components", "--kind", "fusion", "--json", env=env)
    assert result.returncode == 0
    assert {"concat", "gated", "attention", "late"} <= {c["name"] for c in
                                                        json.loads(result.stdout)}


def test_duplicate_name_names_both_plugins() -> None:
    registry = Registry()
    registry.add(Entry("fusion", "concat", "a:b", plugin="core"))
    with pytest.raises(PluginError, match="'core'.*'thirdparty'"):
        registry.add(Entry("fusion", "concat", "c:d", plugin="thirdparty"))


def test_duplicate_from_a_third_party_plugin_is_a_clear_cli_error(tmp_path: Path) -> None:
    source = (
        "from polymodal import hookimpl\n"
        "@hookimpl\n"
        "def register_fusions(register):\n"
        "    register('gated', 'polymodal.fusions:ConcatFusion')\n"
    )
    make_distribution(tmp_path, "dupe_plugin", source)
    result = run_cli("components", "--json", env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 2
    assert "'gated'" in result.stderr and "'core'" in result.stderr
    assert "'dupe_plugin'" in result.stderr
    assert "Traceback" not in result.stderr


def test_registry_list_by_pattern() -> None:
    from polymodal.registry import get_registry

    names = [e.name for e in get_registry().list("encoder", "ca*")]
    assert names == ["categorical"]
