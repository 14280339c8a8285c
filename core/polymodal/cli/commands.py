"""``polymodal train | evaluate | predict | demo``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from polymodal.cli.output import emit_json, emit_jsonl, print_metrics, print_table

set_option = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                          help="Override a spec value, e.g. --set train.epochs=1 (repeatable).")
device_option = click.option("--device", default=None,
                             help="cuda, cuda:1, mps or cpu (default: best available).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
precision_option = click.option(
    "--precision", type=click.Choice(["fp32", "auto", "bf16", "fp16"]), default="fp32",
    show_default=True, help="Autocast precision of the forward pass (fp32 is exact).")


def checked_out_dir(ctx: click.Context, param: click.Parameter, value: str | None
                    ) -> str | None:
    """Click callback of every ``--out DIR`` that writes a model: refuse, before any work
    starts, a directory that replacing would destroy (see ``check_output_dir``)."""
    if value is not None and not ctx.resilient_parsing:
        from polymodal.artifacts import check_output_dir

        check_output_dir(value)
    return value


def out_dir_option(default: str | None = None, *, required: bool = False,
                   help: str = "Model directory to write.") -> Any:
    """``--out DIR`` of a command that writes a model directory (checked up front)."""
    return click.option("--out", "out_dir", type=click.Path(file_okay=False),
                        default=default, required=required, show_default=default is not None,
                        callback=checked_out_dir, help=help)


def _held_out(metrics: dict[str, Any]) -> dict[str, Any]:
    return metrics.get("test") or metrics.get("validation") or {}


@click.command("train")
@click.argument("spec_path", metavar="SPEC.yaml")
@out_dir_option(help="Model directory to write (default runs/<spec name>).")
@set_option
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint of OUT.")
@click.option("--ablate/--no-ablate", default=None,
              help="Also train one model per input and report them side by side.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
              default=None, help="Autocast precision (spec train.precision).")
@click.option("--grad-accum", type=int, default=None,
              help="Gradient accumulation steps (spec train.grad_accum).")
@click.option("--keep-checkpoint", is_flag=True, default=None,
              help="Keep the resumable state in OUT/checkpoints (spec train.keep_checkpoint).")
@click.option("--nproc-per-node", type=int, default=1, show_default=True,
              help="Processes per machine (torch.distributed, one per GPU).")
@click.option("--nnodes", default="1", show_default=True, help="Machines (or MIN:MAX).")
@click.option("--node-rank", type=int, default=0, show_default=True)
@click.option("--rdzv-endpoint", default=None, help="HOST:PORT of the rendezvous (multi-node).")
@click.option("--max-restarts", type=int, default=0, show_default=True,
              help="Restarts of the worker group after a failure (resumes from checkpoint).")
@device_option
@click.option("--quiet", is_flag=True, help="No progress bars.")
@json_option
def train_cmd(spec_path: str, out_dir: str | None, overrides: tuple[str, ...], resume: bool,
              ablate: bool | None, precision: str | None, grad_accum: int | None,
              keep_checkpoint: bool | None, nproc_per_node: int, nnodes: str, node_rank: int,
              rdzv_endpoint: str | None,
              max_restarts: int, device: str | None, quiet: bool, as_json: bool) -> None:
    """Train a model from a YAML spec and write a model directory.

    With --nproc-per-node N (and --nnodes/--rdzv-endpoint for several machines) the same
    training runs under torch.distributed's elastic launcher, one process per GPU, or N CPU
    processes with gloo; train.batch_size is then the global batch.
    """
    from polymodal.pipeline import run_training
    from polymodal.spec import load_spec

    overrides = overrides + tuple(
        f"train.{key}={value}" for key, value in
        (("precision", precision), ("grad_accum", grad_accum),
         ("keep_checkpoint", "true" if keep_checkpoint else None)) if value is not None)
    spec = load_spec(spec_path, list(overrides))  # validate before starting any process
    out = Path(out_dir or Path("runs") / spec.name)
    if nproc_per_node > 1 or nnodes != "1":
        from polymodal.distributed import launch

        worker = [spec_path, "--out", str(out), *[f"--set={o}" for o in overrides],
                  *(["--resume"] if resume else []), *(["--quiet"] if quiet else []),
                  *(["--json"] if as_json else []),
                  *([f"--device={device}"] if device else []),
                  *(["--ablate" if ablate else "--no-ablate"] if ablate is not None else [])]
        launch(worker, nproc_per_node=nproc_per_node, nnodes=nnodes, node_rank=node_rank,
               rdzv_endpoint=rdzv_endpoint, max_restarts=max_restarts)
        return
    result = run_training(spec, out, resume=resume, device=device,
                          progress=not (quiet or as_json), ablate=ablate)
    if not result.metrics:  # a non-zero rank under torchrun: rank 0 reports
        return
    if as_json:
        emit_json({"out": str(result.out_dir), "metrics": result.metrics,
                   "comparisons": result.comparisons})
        return
    print_metrics(f"held-out metrics ({result.out_dir})", _held_out(result.metrics))
    for heading, rows in result.comparisons.items():
        from polymodal.reporting import comparison_table

        headers, table = comparison_table(rows)
        print_table(heading, headers, table)


@click.command("evaluate")
@click.argument("model_dir", type=click.Path())
@click.option("--data", "data_path", required=True, help="Labelled data (CSV, JSONL, ...).")
@device_option
@precision_option
@json_option
def evaluate_cmd(model_dir: str, data_path: str, device: str | None, precision: str,
                 as_json: bool) -> None:
    """Evaluate a trained model on labelled data."""
    evaluate_and_print(model_dir, read_for_model(model_dir, data_path), device, as_json,
                       f"{model_dir} on {data_path}", precision)


def read_for_model(model_dir: str, data_path: str) -> list[dict[str, Any]]:
    """Records of ``data_path`` as the model's scenario reads its data (a detector reads
    COCO JSON, say), or by extension."""
    from polymodal.artifacts import read_manifest
    from polymodal.data.readers import read_records
    from polymodal.registry import get_registry

    name = read_manifest(model_dir)["spec"].get("scenario")
    if name and name in get_registry().names("scenario"):
        from polymodal.scenario import load_scenario

        reader = load_scenario(name).read_data
        if reader is not None:
            return reader(data_path)
    return read_records(data_path)


def evaluate_and_print(model_dir: str, records: list[dict[str, Any]], device: str | None,
                       as_json: bool, title: str, precision: str = "fp32") -> None:
    import polymodal

    metrics = polymodal.load(model_dir, device=device, precision=precision).evaluate(records)
    if as_json:
        emit_json(metrics)
    else:
        print_metrics(title, metrics)


def predict_and_print(model_dir: str, records: list[dict[str, Any]], device: str | None,
                      batch_size: int = 64, precision: str = "fp32",
                      out_dir: str | None = None, grid: bool = False,
                      draw_dir: str | None = None) -> None:
    """Predictions as JSON lines; with ``out_dir``, for a model whose predictions are files
    (a generator), the files are written there (a new or empty directory, complete or not
    at all) and the lines name them; ``grid``: also one ``grid.png`` of them all;
    ``draw_dir``: for a model that draws its predictions (boxes, masks), one PNG per record
    there, named in its line as ``drawn``."""
    import polymodal
    from polymodal.errors import DataError

    if grid and out_dir is None:
        raise DataError("--grid needs --out DIR (the grid is written there)")
    model = polymodal.load(model_dir, device=device, precision=precision)
    if hasattr(model, "progress"):  # a bar over the batches for a person watching stderr
        model.progress = sys.stderr.isatty()
    if draw_dir is not None and not getattr(model, "draws", False):
        raise DataError(f"--draw: {model_dir} has nothing to draw over its inputs; leave "
                        "--draw out")
    if draw_dir is not None:
        from polymodal.artifacts import check_output_dir

        check_output_dir(draw_dir, "--draw")  # refused before anything is predicted or written
    if out_dir is None:
        predictions = model.predict(records, batch_size=batch_size)
    else:
        from polymodal.artifacts import building_directory

        if not getattr(model, "writes_files", False):
            raise DataError(f"--out: {model_dir} predicts values, not files; leave --out out")
        writer: Any = model
        writer.validate(records)  # refused before the directory is made
        with building_directory(out_dir) as work:
            writer.write_files_to(work, shown_as=Path(out_dir), grid=grid)
            predictions = model.predict(records, batch_size=batch_size)
            writer.finish_files()
    if draw_dir is not None:  # after --out's files are in place: a drawing may read them
        draw_predictions(model, records, predictions, draw_dir)
    emit_jsonl(predictions)


def draw_predictions(model: Any, records: list[dict[str, Any]],
                     predictions: list[dict[str, Any]], draw_dir: str) -> None:
    """``model.draw`` of each (record, prediction) as ``DIR/NNNNN.png`` (a new or empty
    directory, complete or not at all); each prediction gets ``drawn``: its path."""
    from polymodal.artifacts import building_directory

    with building_directory(draw_dir, "--draw") as work:
        for index, (record, prediction) in enumerate(zip(records, predictions, strict=True)):
            name = f"{index:05d}.png"
            model.draw(record, prediction).save(work / name)
            prediction["drawn"] = str(Path(draw_dir) / name)


draw_option = click.option(
    "--draw", "draw_dir", default=None, type=click.Path(file_okay=False),
    help="For a model that draws its predictions over its inputs (detected boxes, masks): "
         "a new or empty directory for one PNG per record.")


grid_option = click.option(
    "--grid", is_flag=True,
    help="With --out: also write grid.png of every image written, in file-name order.")


@click.command("predict")
@click.argument("model_dir", type=click.Path())
@click.option("--input", "input_path", required=True, help="Records to predict (JSONL, CSV).")
@click.option("--batch-size", default=64, show_default=True)
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
              help="For a model whose predictions are files (generated images): the "
                   "directory to write them to (new or empty).")
@grid_option
@draw_option
@device_option
@precision_option
@json_option
def predict_cmd(model_dir: str, input_path: str, batch_size: int, out_dir: str | None,
                grid: bool, draw_dir: str | None, device: str | None, precision: str,
                as_json: bool) -> None:
    """Predict for each input record; one JSON object per record."""
    from polymodal.data.readers import read_records

    predict_and_print(model_dir, read_records(input_path), device, batch_size, precision,
                      out_dir, grid, draw_dir)


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


@click.command("serve")
@click.argument("model_dirs", nargs=-1, required=True, type=click.Path())
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--max-batch-size", default=32, show_default=True,
              help="Records per forward pass (dynamic batching).")
@click.option("--max-delay-ms", default=5.0, show_default=True,
              help="How long a batch waits for more requests.")
@click.option("--max-queue", default=256, show_default=True,
              help="Queued requests per model before 503.")
@click.option("--max-records", default=1024, show_default=True,
              help="Records in one request before 413.")
@click.option("--timeout-s", default=30.0, show_default=True, help="Per-request limit (504).")
@click.option("--max-body-mb", default=16.0, show_default=True, help="Body size limit (413).")
@click.option("--header-timeout-s", default=10.0, show_default=True,
              help="Time a connection has to send complete request headers (then closed).")
@click.option("--body-timeout-s", default=30.0, show_default=True,
              help="Time a request has to send its whole body (408).")
@click.option("--max-connections", default=256, show_default=True,
              help="Open connections and requests at once before 503.")
@click.option("--drain-s", default=30.0, show_default=True,
              help="On SIGTERM/SIGINT: time open requests get to finish.")
@click.option("--api-key-env", default=None, metavar="VAR",
              help="Require the API key held in this environment variable.")
@click.option("--allow-host", "allow_hosts", multiple=True, metavar="NAME",
              help="Host header value to accept besides the bound address (repeatable); on "
              "a loopback address only localhost names are accepted by default.")
@click.option("--precision", type=click.Choice(["fp32", "auto", "bf16", "fp16"]),
              default="fp32", show_default=True,
              help="Inference autocast; auto = bf16 where the CPU/GPU has it (faster).")
@click.option("--workers", default=1, show_default=True,
              help="Server processes on the port; each loads its own copy of the models.")
@device_option
def serve_cmd(model_dirs: tuple[str, ...], host: str, port: int, max_batch_size: int,
              max_delay_ms: float, max_queue: int, max_records: int, timeout_s: float,
              max_body_mb: float, header_timeout_s: float, body_timeout_s: float,
              max_connections: int, drain_s: float, api_key_env: str | None,
              allow_hosts: tuple[str, ...], precision: str, workers: int,
              device: str | None) -> None:
    """Serve trained models over HTTP (FastAPI + uvicorn) with dynamic batching."""
    import os

    import uvicorn

    from polymodal.errors import PolymodalError
    from polymodal.serving.app import ServeSettings, create_app
    from polymodal.serving.protocol import protocol_with

    api_key = None
    if api_key_env:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise PolymodalError(f"--api-key-env {api_key_env}: the variable is not set")
    if host in LOOPBACK_HOSTS or host.startswith("127."):
        allowed: list[str] | None = [*LOOPBACK_HOSTS, host, *allow_hosts]
    else:  # bound to a network address: the Host check is the user's choice
        allowed = [host, *allow_hosts] if allow_hosts else None
    settings = ServeSettings(max_batch_size=max_batch_size, max_delay_ms=max_delay_ms,
                             max_queue=max_queue, max_records=max_records,
                             timeout_s=timeout_s, max_body_bytes=int(max_body_mb * 1024 * 1024),
                             header_timeout_s=header_timeout_s, body_timeout_s=body_timeout_s,
                             max_connections=max_connections, drain_s=drain_s,
                             api_key=api_key, precision=precision, allowed_hosts=allowed)
    if workers < 1:
        raise PolymodalError("--workers must be at least 1")
    server_options: dict[str, Any] = {
        "host": host, "port": port, "log_level": "warning",
        "http": protocol_with(header_timeout_s), "limit_concurrency": max_connections,
        "timeout_graceful_shutdown": drain_s}
    if workers == 1:
        app = create_app(list(model_dirs), settings, device=device)
        uvicorn.run(app, **server_options)
        return
    from polymodal.serving.workers import WORKER_CONFIG_ENV, check_model_dirs, worker_config

    check_model_dirs(list(model_dirs))  # fail here, once, not in every worker
    os.environ[WORKER_CONFIG_ENV] = worker_config(list(model_dirs), settings, device)
    uvicorn.run("polymodal.serving.workers:app_from_env", factory=True, workers=workers,
                **server_options)


@click.command("demo")
@click.argument("scenario_names", nargs=-1, metavar="[SCENARIO...]")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="runs/demo",
              show_default=True)
@click.option("--quick", is_flag=True, help="A few-seconds smoke run on a sliver of the data.")
@device_option
@json_option
def demo_cmd(scenario_names: tuple[str, ...], out_dir: str, quick: bool, device: str | None,
             as_json: bool) -> None:
    """Run the embedded default of each scenario end to end: train, evaluate on held-out
    data, predict a few examples."""
    from polymodal.demo import run_demos

    summary = run_demos(list(scenario_names), Path(out_dir), quick=quick, device=device,
                        progress=not as_json)
    if as_json:
        emit_json({name: item.to_dict() for name, item in summary.items()})
        return
    def shown(metrics: dict[str, Any]) -> str:
        return ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()
                         if isinstance(v, float) and k != "loss")

    rows = []
    for name, item in summary.items():
        rows.append([name, shown(item.metrics), f"{item.seconds:.0f} s", item.out])
        for baseline, metrics in item.extra.get("baselines", {}).items():
            rows.append([f"  baseline: {baseline}", shown(metrics), "", ""])
        for test, metrics in item.extra.get("extra_tests", {}).items():
            rows.append([f"  on {test}", shown(metrics), "", ""])
    print_table("demo: held-out metrics", ["scenario", "metrics", "time", "model"], rows)
    for name, item in summary.items():
        if item.examples:
            print_table(f"{name}: example predictions", ["input", "prediction"],
                        [[str(ex)[:80], str(pred)[:80]] for ex, pred in item.examples])


@click.command("export")
@click.argument("model_dir", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["onnx", "torchscript"]), required=True)
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="The exported file; PATH.json beside it names inputs and labels.")
@click.option("--data", "data_path", default=None,
              help="Example records (JSONL, CSV) to trace and verify with (else samples).")
@click.option("--atol", default=1e-4, show_default=True,
              help="Largest difference from the PyTorch model allowed.")
@json_option
def export_cmd(model_dir: str, fmt: str, out_path: str, data_path: str | None, atol: float,
               as_json: bool) -> None:
    """Export a trained model to ONNX or TorchScript, verified against the original."""
    from polymodal.export import export_model

    records = read_for_model(model_dir, data_path)[:8] if data_path else None
    summary = export_model(model_dir, fmt, out_path, records=records, atol=atol)
    if as_json:
        emit_json(summary)
    else:
        click.echo(f"wrote {summary['path']} ({fmt}); max difference from the model "
                   f"{summary['verified_max_abs_diff']:.1e}")
