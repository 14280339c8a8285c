"""``polymodal recsys cf|hybrid recommend|similar|tune`` beside the core's
train/evaluate/predict (with the interaction column options)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from polymodal.plugin import emit_json, json_option, set_option

# ``train`` options -> spec overrides (the core builds train/evaluate/predict with them).
COLUMN_OPTIONS = {"user-column": "data.user={}", "item-column": "data.item={}",
                  "weight-column": "data.weight={}", "time-column": "data.timestamp={}"}


def _data(spec: Any, path: str | None) -> Any:
    from polymodal_recsys.data import Columns, movielens_demo, read_interactions

    if path is None:
        return movielens_demo()
    columns = Columns(spec.data.user, spec.data.item, spec.data.weight, spec.data.timestamp)
    fields = tuple(spec.hybrid.fields) if spec.hybrid else ()
    return read_interactions(path, columns, content_fields=fields)


def scenario_commands(name: str, description: str) -> click.Group:
    """The core's train (with the column options)/evaluate/predict, and the extra verbs:
    recommend, similar, tune."""
    from polymodal.plugin import option_overrides, scenario_group, with_train_options

    verb = name.split(".")[1]
    group = scenario_group(name, description, train_options=COLUMN_OPTIONS)

    @group.command("recommend")
    @click.argument("model_dir", type=click.Path())
    @click.option("--user", "users", multiple=True, help="User id (repeatable).")
    @click.option("--liked", multiple=True, help="An item a new user liked (fold-in).")
    @click.option("-k", "k", default=10, show_default=True)
    @json_option
    def recommend(model_dir: str, users: tuple[str, ...], liked: tuple[str, ...], k: int,
                  as_json: bool) -> None:
        """Top-k items for users (seen items filtered), or for a list of liked items."""
        from polymodal.plugin import DataError, emit_jsonl
        from polymodal_recsys.recommender import load_recommender

        records: list[dict[str, Any]] = [{"user": u, "k": k} for u in users]
        if liked:
            records.append({"liked": list(liked), "k": k})
        if not records:
            raise DataError("give --user ID or --liked ITEM")
        emit_jsonl(load_recommender(model_dir).predict(records))

    @group.command("similar")
    @click.argument("model_dir", type=click.Path())
    @click.argument("item")
    @click.option("-k", "k", default=10, show_default=True)
    @json_option
    def similar(model_dir: str, item: str, k: int, as_json: bool) -> None:
        """Items closest to ITEM in the factor space."""
        from polymodal_recsys.recommender import load_recommender

        emit_json(load_recommender(model_dir).similar(item, k))

    @group.command("tune")
    @click.option("--data", "data_path", default=None)
    @click.option("--out", "out_path", default=f"runs/recsys-{verb}-tuned.yaml",
                  show_default=True, type=click.Path(dir_okay=False))
    @click.option("--trials", default=24, show_default=True)
    @set_option
    @with_train_options(COLUMN_OPTIONS)
    @json_option
    def tune_cmd(data_path: str | None, out_path: str, trials: int,
                 overrides: tuple[str, ...], as_json: bool, **columns: Any) -> None:
        """Search factors, regularisation, iterations and weighting on a validation split
        carved from the training data; write the best spec to OUT."""
        import yaml

        from polymodal_recsys.scenarios import spec_for
        from polymodal_recsys.train import tune

        spec = spec_for(name, list(overrides) + option_overrides(COLUMN_OPTIONS, columns))
        best, trials_run = tune(spec, _data(spec, data_path), max_trials=trials)
        Path(out_path).parent.mkdir(parents=True, exist_ok=True)
        Path(out_path).write_text(yaml.safe_dump(best.model_dump(mode="json"),
                                                 sort_keys=False))
        if as_json:
            emit_json({"out": out_path, "best": best.model.model_dump(), "trials": trials_run})
        else:
            for trial in sorted(trials_run, key=lambda t: -list(t.values())[-1]):
                click.echo("  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                                     for k, v in trial.items()))
            click.echo(f"best spec written to {out_path}")

    return group


def recsys_group() -> click.Group:
    group = click.Group("recsys", help="Recommendation: collaborative filtering (implicit) "
                                       "and content-based cold start.")
    group.add_command(scenario_commands("recsys.cf", "collaborative filtering (implicit "
                                        "ALS) on interactions"))
    group.add_command(scenario_commands("recsys.hybrid", "CF plus item content for "
                                        "cold-start items"))
    return group
