"""User mistakes through the real CLI: one ``error:`` line, exit 2, no traceback, nothing
left behind; and the defects that lost data or wrote broken models (issue: reliability)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import review_rows, run_cli, write_csv

SPEC = {
    "name": "shops",
    "data": {"train": "train.csv"},
    "inputs": [{"name": "shop", "modality": "categorical", "encoder": "categorical"},
               {"name": "price", "modality": "numeric", "encoder": "numeric"}],
    "fusion": {"name": "concat"},
    "task": {"name": "classification", "target": "label"},
    "train": {"epochs": 2, "lr": 0.01, "batch_size": 32},
}


def write_spec(directory: Path, spec: dict | None = None, rows: list[dict] | None = None
               ) -> Path:
    write_csv(directory / "train.csv", rows or review_rows(120))
    path = directory / "spec.yaml"
    path.write_text(yaml.safe_dump(spec or SPEC))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished model that keeps its checkpoint (for the --resume mistakes)."""
    root = tmp_path_factory.mktemp("mistakes")
    spec = write_spec(root)
    result = run_cli("train", str(spec), "--out", str(root / "model"), "--quiet",
                     "--keep-checkpoint")
    assert result.returncode == 0, result.stderr
    return root / "model"


def one_line_error(result, *words: str) -> str:  # noqa: ANN001
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()
                  if p.name.startswith(("out", ".out")) or p.name.endswith(".partial"))


# -- 7. the table of mistakes -----------------------------------------------------------------

def _tamper(model: Path, root: Path, change: str) -> Path:
    copy = root / f"tampered-{change}"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(model, copy)
    manifest = copy / "polymodal.yaml"
    if change == "spec-not-mapping":
        data = yaml.safe_load(manifest.read_text())
        data["spec"] = ["not", "a", "mapping"]
        manifest.write_text(yaml.safe_dump(data))
    elif change == "manifest-latin1":
        manifest.write_bytes(manifest.read_bytes() + "# caf\xe9\n".encode("latin-1"))
    elif change == "processor-corrupt":
        (copy / "processors" / "price.json").write_text("{oops")
    elif change == "processor-missing":
        (copy / "processors" / "price.json").unlink()
    elif change == "name-escapes":
        data = yaml.safe_load(manifest.read_text())
        data["spec"]["inputs"][1]["name"] = "../../x"
        manifest.write_text(yaml.safe_dump(data))
    elif change == "weights-nan":
        import torch
        from safetensors.torch import load_file, save_file

        state = load_file(str(copy / "model.safetensors"))
        key = next(k for k, v in state.items() if v.is_floating_point())
        state[key] = torch.full_like(state[key], float("nan"))
        save_file(state, str(copy / "model.safetensors"))
    elif change == "weights-dtype":
        from safetensors.torch import load_file, save_file

        state = load_file(str(copy / "model.safetensors"))
        save_file({k: v.double() if v.is_floating_point() else v for k, v in state.items()},
                  str(copy / "model.safetensors"))
    return copy


TRAIN_MISTAKES = [
    (["--set", "inputs.9.name=x"], "out of range"),
    (["--set", "inputs.x.name=x"], "not a list index"),
    (["--set", "name.deeper=1"], "not a mapping or list"),
    (["--set", "name=[unclosed"], "not a plain YAML value"),
    (["--set", "name=!!python/object/apply:os.system [ls]"], "not a plain YAML value"),
    (["--set", "train..epochs=1"], "empty part"),
    (["--set", "inputs.1.options.dim=abc"], "options.dim"),
    (["--set", "inputs.1.options.dim=-5"], "options.dim"),
    (["--set", "inputs.0.name=shop.name"], "not a valid name"),
    (["--set", "inputs.0.name=a/b"], "not a valid name"),
]


@pytest.mark.parametrize("args,words", TRAIN_MISTAKES,
                         ids=[" ".join(a) for a, _ in TRAIN_MISTAKES])
def test_train_mistakes_are_one_line_and_write_nothing(tmp_path: Path, args: list[str],
                                                       words: str) -> None:
    spec = write_spec(tmp_path)
    result = run_cli("train", str(spec), "--out", str(tmp_path / "out"), "--quiet", *args)
    one_line_error(result, words)
    assert leftovers(tmp_path) == []


def test_a_spec_that_is_not_utf8(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    spec.write_bytes(spec.read_bytes() + "# caf\xe9\n".encode("latin-1"))
    one_line_error(run_cli("train", str(spec), "--out", str(tmp_path / "out")), "UTF-8")
    assert leftovers(tmp_path) == []


def test_out_dot_is_refused(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    one_line_error(run_cli("train", str(spec), "--out", ".", cwd=tmp_path), "--out")
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("change,words", [
    ("spec-not-mapping", "not a mapping"), ("manifest-latin1", "UTF-8"),
    ("processor-corrupt", "corrupt"), ("processor-missing", "missing processor file"),
    ("name-escapes", "not a valid name"), ("weights-nan", "NaN"),
    ("weights-dtype", "float64"),
])
def test_tampered_model_directories_are_refused_on_load(trained: Path, tmp_path: Path,
                                                        change: str, words: str) -> None:
    model = _tamper(trained, tmp_path, change)
    (tmp_path / "in.jsonl").write_text('{"shop": "north", "price": 10}\n')
    result = run_cli("predict", str(model), "--input", str(tmp_path / "in.jsonl"))
    one_line_error(result, words)


def test_input_nested_deeper_than_the_recursion_limit(trained: Path, tmp_path: Path) -> None:
    deep = '{"shop": ' + "[" * 100_000 + "]" * 100_000 + "}\n"
    for name in ("deep.jsonl", "deep.json"):
        (tmp_path / name).write_text(deep if name.endswith("l") else f"[{deep}]")
        result = run_cli("predict", str(trained), "--input", str(tmp_path / name))
        one_line_error(result, "nested too deeply")


def test_resume_from_a_corrupt_checkpoint_or_after_a_spec_change(trained: Path,
                                                                 tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    corrupt = tmp_path / "out-corrupt"
    shutil.copytree(trained, corrupt)
    (corrupt / "checkpoints" / "last" / "state.safetensors").write_bytes(b"garbage")
    result = run_cli("train", str(spec), "--out", str(corrupt), "--resume",
                     "--set", "train.epochs=3", "--quiet")
    one_line_error(result, "corrupt")
    changed = tmp_path / "out-changed"
    shutil.copytree(trained, changed)
    result = run_cli("train", str(spec), "--out", str(changed), "--resume", "--quiet",
                     "--set", "train.epochs=3", "--set", "inputs.1.options.dim=8")
    one_line_error(result, "another model")
    assert not (tmp_path / "out-corrupt.partial").exists()
    assert not (tmp_path / "out-changed.partial").exists()
    assert (changed / "model.safetensors").is_file()  # the finished model is untouched


# -- 2. --out never deletes what is not a model ---------------------------------------------

def test_out_refuses_a_directory_that_is_not_a_model(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    thesis = tmp_path / "out"
    thesis.mkdir()
    (thesis / "important.txt").write_text("thesis")
    result = run_cli("train", str(spec), "--out", str(thesis), "--quiet")
    one_line_error(result, "not a polymodal model directory")
    assert (thesis / "important.txt").read_text() == "thesis"
    assert sorted(p.name for p in thesis.iterdir()) == ["important.txt"]
    assert not (tmp_path / "out.partial").exists()


def test_out_replaces_an_earlier_model_and_cleans_stale_old_copies(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    out = tmp_path / "out"
    assert run_cli("train", str(spec), "--out", str(out), "--quiet").returncode == 0
    stale = tmp_path / ".out.old-999999999"  # left by a replace killed half-way
    stale.mkdir()
    (stale / "polymodal.yaml").write_text("spec: {}\n")
    again = run_cli("train", str(spec), "--out", str(out), "--quiet", "--set",
                    "train.epochs=1")
    assert again.returncode == 0, again.stderr
    assert yaml.safe_load((out / "polymodal.yaml").read_text())["spec"]["train"]["epochs"] == 1
    assert not stale.exists()


# -- 5. non-finite numbers and a diverging loss ---------------------------------------------

def test_training_data_with_infinity_is_refused_naming_record_and_field(tmp_path: Path
                                                                        ) -> None:
    rows = review_rows(120)
    rows[7]["price"] = "inf"
    spec = write_spec(tmp_path, rows=rows)
    result = run_cli("train", str(spec), "--out", str(tmp_path / "out"), "--quiet")
    one_line_error(result, "record 7", "'price'")
    assert leftovers(tmp_path) == []


def test_a_nan_loss_stops_training_and_writes_nothing(tmp_path: Path) -> None:
    path = write_spec(tmp_path)
    result = run_cli("train", str(path), "--out", str(tmp_path / "out"), "--quiet",
                     "--set", "train.lr=1e30", "--set", "train.warmup=0")  # diverges
    one_line_error(result, "loss is nan")
    assert leftovers(tmp_path) == []


def test_json_output_never_holds_nan() -> None:
    from polymodal.strict_json import to_json

    text = to_json({"scores": [float("nan"), float("inf"), 1.5]})
    assert json.loads(text, parse_constant=lambda c: pytest.fail(c)) == {
        "scores": [None, None, 1.5]}


# -- 6. a finished artifact holds what loading needs; checkpoints are tensors + JSON ------

def test_finished_models_hold_no_training_state_and_checkpoints_are_not_pickles(
        trained: Path, tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    plain = tmp_path / "plain"
    assert run_cli("train", str(spec), "--out", str(plain), "--quiet").returncode == 0
    assert not (plain / "checkpoints").exists()
    assert not any(p.suffix in (".pt", ".pth", ".pkl") for p in plain.rglob("*"))
    kept = trained / "checkpoints" / "last"
    assert sorted(p.name for p in kept.iterdir()) == [
        "best.safetensors", "complete", "model.safetensors", "state.safetensors",
        "trainer_state.json"]


def test_resume_finds_a_checkpoint_killed_between_its_two_renames(trained: Path,
                                                                  tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    out = tmp_path / "out"
    shutil.copytree(trained, out)
    checkpoints = out / "checkpoints"
    (checkpoints / "last").rename(checkpoints / ".last.old")  # first rename done, not 2nd
    result = run_cli("train", str(spec), "--out", str(out), "--resume", "--quiet", "--json",
                     "--set", "train.epochs=3")
    assert result.returncode == 0, result.stderr
    history = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in history] == [1, 2, 3]
