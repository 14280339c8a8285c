"""``polymodal recsys cf|hybrid train|evaluate|recommend|similar|tune``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from polymodal.cli.commands import json_option, out_dir_option, set_option
from polymodal.cli.output import emit_json, print_metrics

columns_options = [
    click.option("--user-column", default=None, help="User id column (default: user/userId)."),
    click.option("--item-column", default=None, help="Item id column (default: item/movieId)."),
    click.option("--weight-column", default=None, help="Weight/rating column."),
    click.option("--time-column", default=None, help="Timestamp column."),
]


def with_columns(command: Any) -> Any:
    for option in reversed(columns_options):
        command = option(command)
    return command


def _overrides(overrides: tuple[str, ...], user: str | None, item: str | None,
               weight: str | None, time: str | None) -> list[str]:
    extra = [f"data.{key}={value}" for key, value in
             (("user", user), ("item", item), ("weight", weight), ("timestamp", time)) if value]
    return list(overrides) + extra


def _data(spec: Any, path: str | None) -> Any:
    from polymodal_recsys.data import Columns, movielens_demo, read_interactions

    if path is None:
        return movielens_demo()
    columns = Columns(spec.data.user, spec.data.item, spec.data.weight, spec.data.timestamp)
    fields = tuple(spec.hybrid.fields) if spec.hybrid else ()
    return read_interactions(path, columns, content_fields=fields)


def _print(title: str, metrics: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(metrics)
        return
    held_out = metrics.get("test", {})
    shown = {k: v for k, v in held_out.items() if not isinstance(v, dict)}
    shown.update({f"popularity {k}": v for k, v in held_out.get("popularity", {}).items()})
    shown.update({f"cold-start {k}": v for k, v in metrics.get("cold_start", {}).items()})
    print_metrics(title, shown)


def scenario_commands(name: str) -> click.Group:
    verb = name.split(".")[1]

    @click.group(verb, help=f"{name}: train, evaluate, recommend, similar items, tune.")
    def group() -> None:
        pass

    @group.command("train")
    @click.option("--data", "data_path", default=None,
                  help="Interactions: CSV/TSV/Parquet, MovieLens ratings.csv or u.data "
                       "(default: embedded MovieLens).")
    @out_dir_option(f"runs/recsys-{verb}")
    @set_option
    @with_columns
    @click.option("--quick", is_flag=True, help="A few-seconds smoke run.")
    @click.option("--device", default=None, help="Device of the content encoder.")
    @json_option
    def train(data_path: str | None, out_dir: str, overrides: tuple[str, ...],
              user_column: str | None, item_column: str | None, weight_column: str | None,
              time_column: str | None, quick: bool, device: str | None,
              as_json: bool) -> None:
        """Fit on the training split, evaluate on the held-out split, write OUT."""
        from polymodal_recsys.scenarios import spec_for
        from polymodal_recsys.train import train_cf, train_hybrid

        spec = spec_for(name, _overrides(overrides, user_column, item_column, weight_column,
                                         time_column), quick=quick)
        data = _data(spec, data_path)
        metrics = train_hybrid(spec, data, Path(out_dir), device=device) if spec.hybrid \
            else train_cf(spec, data, Path(out_dir))
        _print(f"{name}: {out_dir}", {"out": out_dir, **metrics}, as_json)

    @group.command("evaluate")
    @click.argument("model_dir", type=click.Path())
    @click.option("--data", "data_path", default=None,
                  help="Held-out interactions (default: the embedded test split).")
    @click.option("-k", "k", default=None, type=int, help="Cut-off (default: the spec's).")
    @json_option
    def evaluate(model_dir: str, data_path: str | None, k: int | None,
                 as_json: bool) -> None:
        """Ranking metrics of a trained model beside the popularity baseline."""
        from polymodal_recsys.data import matrix, positives, split
        from polymodal_recsys.metrics import evaluate_cf
        from polymodal_recsys.recommender import load_recommender

        recommender = load_recommender(model_dir)
        spec = recommender.spec
        data = positives(_data(spec, data_path), spec.data)
        if data_path is None:
            _, data = split(data, spec.evaluation.split, spec.evaluation.test_fraction,
                            spec.evaluation.seed)
        test = matrix(data, recommender.users, recommender.items)
        metrics = {"test": evaluate_cf(recommender.model, recommender.seen, test,
                                       k or spec.evaluation.k)}
        _print(f"{name}: {model_dir}", metrics, as_json)

    @group.command("recommend")
    @click.argument("model_dir", type=click.Path())
    @click.option("--user", "users", multiple=True, help="User id (repeatable).")
    @click.option("--liked", multiple=True, help="An item a new user liked (fold-in).")
    @click.option("-k", "k", default=10, show_default=True)
    @json_option
    def recommend(model_dir: str, users: tuple[str, ...], liked: tuple[str, ...], k: int,
                  as_json: bool) -> None:
        """Top-k items for users (seen items filtered), or for a list of liked items."""
        from polymodal.cli.output import emit_jsonl
        from polymodal.errors import DataError
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
    @with_columns
    @json_option
    def tune_cmd(data_path: str | None, out_path: str, trials: int,
                 overrides: tuple[str, ...], user_column: str | None,
                 item_column: str | None, weight_column: str | None,
                 time_column: str | None, as_json: bool) -> None:
        """Search factors, regularisation, iterations and weighting on a validation split
        carved from the training data; write the best spec to OUT."""
        import yaml

        from polymodal_recsys.scenarios import spec_for
        from polymodal_recsys.train import tune

        spec = spec_for(name, _overrides(overrides, user_column, item_column, weight_column,
                                         time_column))
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
    group.add_command(scenario_commands("recsys.cf"))
    group.add_command(scenario_commands("recsys.hybrid"))
    return group
