"""Docs stay in step with the code: every hook documented, every example runs."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest
import yaml

from polymodal import hookspecs
from polymodal.spec import parse_spec
from tests.conftest import ROOT, run_cli

DOCS = ROOT / "docs"


def hook_names() -> list[str]:
    return [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
            if hasattr(fn, "polymodal_spec")]


def test_hooks_exist() -> None:
    assert {"register_encoders", "register_fusions", "register_tasks", "register_readers",
            "register_scenarios", "register_commands", "on_training_event"} <= set(hook_names())


def signature_line(name: str, function: object) -> str:
    """``name(param: Type = default, *, ...) -> Return`` as docs/hooks.md writes it."""
    signature = inspect.signature(function)  # type: ignore[arg-type]
    parts: list[str] = []
    for param in signature.parameters.values():
        if param.name == "self":
            continue
        if param.kind == param.KEYWORD_ONLY and "*" not in parts:
            parts.append("*")
        text = param.name
        if param.annotation is not param.empty:
            text += f": {param.annotation}"
        if param.default is not param.empty:
            text += f" = {param.default!r}"
        parts.append(text)
    return f"{name}({', '.join(parts)}) -> {signature.return_annotation}"


def hook_section(name: str) -> str:
    text = (DOCS / "hooks.md").read_text()
    match = re.search(rf"^## {name}\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    assert match, f"docs/hooks.md has no section for {name}"
    return match.group(1)


# The typed callback each registration hook is given.
CALLBACKS = {"register_modalities": "RegisterModality", "register_encoders": "RegisterEncoder",
             "register_fusions": "RegisterFusion", "register_tasks": "RegisterTask",
             "register_readers": "RegisterReader", "register_scenarios": "RegisterScenario"}


@pytest.mark.parametrize("name", hook_names())
def test_every_hook_is_documented_with_its_real_signature(name: str) -> None:
    hook = getattr(hookspecs, name)
    doc = inspect.getdoc(hook) or ""
    assert "Called" in doc and "Return" in doc, f"{name} docstring lacks when/returns"
    section = hook_section(name)
    assert signature_line(name, hook) in section, \
        f"docs/hooks.md: {name}: write its signature {signature_line(name, hook)}"
    if name in CALLBACKS:
        callback = getattr(hookspecs, CALLBACKS[name]).__call__
        assert signature_line("register", callback) in section, \
            f"docs/hooks.md: {name}: its register is {signature_line('register', callback)}"


def test_the_registrars_accept_every_documented_keyword() -> None:
    from polymodal.registry import Registry, _modality_registrar, _registrar

    for hook, protocol in CALLBACKS.items():
        real = (_modality_registrar(Registry(), "t") if hook == "register_modalities"
                else _registrar(Registry(), "encoder", "t"))
        accepted = set(inspect.signature(real).parameters)
        documented = set(inspect.signature(getattr(hookspecs, protocol).__call__).parameters)
        assert documented - {"self"} <= accepted, (hook, documented - accepted)


def yaml_blocks() -> list[tuple[str, str]]:
    blocks = []
    for path in sorted(DOCS.glob("*.md")):
        for block in re.findall(r"```yaml\n(.*?)```", path.read_text(), flags=re.S):
            blocks.append((path.name, block))
    return blocks


# The scenario whose own spec a docs page's YAML example is (when it is not a core spec).
SCENARIO_OF_DOC = {"recsys.md": "recsys.hybrid"}


@pytest.mark.parametrize("doc,block", yaml_blocks())
def test_yaml_examples_in_docs_are_valid_specs(doc: str, block: str) -> None:
    from polymodal.scenario import load_scenario
    from polymodal.spec import parse_model_spec

    data = yaml.safe_load(block)
    assert isinstance(data, dict), f"{doc}: a YAML example that is not a spec"
    if "inputs" in data:
        parse_spec(data)
        return
    name = data.get("scenario") or SCENARIO_OF_DOC.get(doc)
    assert name, f"{doc}: a YAML example that is neither a core spec nor a scenario's"
    scenario = load_scenario(name)
    assert scenario.spec_model is not None, name
    spec = parse_model_spec(scenario.spec_model, {**scenario.default_spec, **data})
    for key, value in data.items():  # what the example sets is what the spec holds
        held = getattr(spec, key)
        if isinstance(value, dict):
            for inner, expected in value.items():
                assert getattr(held, inner) == expected, (key, inner)


def test_cli_commands_in_docs_exist() -> None:
    from polymodal.cli.main import build_cli

    cli = build_cli()
    text = (DOCS / "cli.md").read_text() + (ROOT / "README.md").read_text()
    for first, second in set(re.findall(r"(?:^|`)polymodal (\w+)(?: ([\w-]+))?", text, flags=re.M)):
        command = cli.commands.get(first)
        assert command is not None, f"documented command 'polymodal {first}' does not exist"
        if second and hasattr(command, "commands") and second not in ("train", "evaluate"):
            assert second in command.commands, f"'polymodal {first} {second}' does not exist"


def test_review_score_example_trains(tmp_path: Path) -> None:
    """docs/examples/review-score.yaml, shrunk to seconds with --set overrides."""
    result = run_cli(
        "train", str(DOCS / "examples" / "review-score.yaml"), "--out", str(tmp_path / "m"),
        "--set", "data.limit=96", "--set", "train.epochs=2", "--set", "inputs.0.frozen=true",
        "--set", "inputs.0.options.max_length=32", "--set", "train.lr=0.005", "--json",
    )
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    rows = body["comparisons"]["modality ablation (held-out)"]
    assert set(rows) == {"all inputs (gated)", "only review", "only product"}
    # Every product id appears once, so the product-only model cannot beat chance much.
    assert rows["only review"]["auroc"] > rows["only product"]["auroc"]
