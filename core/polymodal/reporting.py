"""Run reports: metrics.jsonl, curves, confusion-matrix and reliability PNGs (matplotlib),
report.html and the model card."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

SCALAR = (int, float)


def write_history(directory: Path, history: list[dict[str, Any]]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "metrics.jsonl").open("w") as handle:
        for row in history:
            handle.write(json.dumps(row) + "\n")


def plot_curves(directory: Path, history: list[dict[str, Any]]) -> list[str]:
    """One PNG for losses, one for the other validation metrics; returns file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not history:
        return []
    plots = directory / "plots"
    plots.mkdir(exist_ok=True)
    epochs = [row["epoch"] for row in history]
    written = []
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for key in ("train_loss", "val_loss"):
        if key in history[0]:
            ax.plot(epochs, [row[key] for row in history], marker="o", label=key)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(plots / "loss.png", dpi=100)
    plt.close(fig)
    written.append("plots/loss.png")
    keys = [k for k in history[0] if k.startswith("val_") and k not in ("val_loss", "val_n")]
    if keys:
        fig, ax = plt.subplots(figsize=(5, 3.2))
        for key in keys:
            values = [math.nan if row.get(key) is None else float(row[key]) for row in history]
            ax.plot(epochs, values, marker="o", label=key[4:])
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation metric")
        ax.legend()
        fig.tight_layout()
        fig.savefig(plots / "metrics.png", dpi=100)
        plt.close(fig)
        written.append("plots/metrics.png")
    return written


def plot_confusion(directory: Path, confusion: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, matrix = confusion["labels"], confusion["matrix"]
    plots = directory / "plots"
    plots.mkdir(exist_ok=True)
    size = max(3.5, 0.5 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    peak = max(max(row) for row in matrix) or 1
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            ax.text(j, i, str(value), ha="center", va="center",
                    color="white" if value > peak / 2 else "black")
    fig.tight_layout()
    fig.savefig(plots / "confusion_matrix.png", dpi=100)
    plt.close(fig)
    return "plots/confusion_matrix.png"


def plot_reliability(directory: Path, calibration: dict[str, Any]) -> str:
    """The reliability diagram of a two-label classifier: per probability bin, the observed
    rate of the positive label against the mean predicted probability (the diagonal is a
    calibrated model), with each bin's count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bins = calibration["bins"]
    plots = directory / "plots"
    plots.mkdir(exist_ok=True)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="calibrated")
    ax.plot([b["mean_probability"] for b in bins], [b["observed_rate"] for b in bins],
            marker="o", label="model")
    for b in bins:
        ax.annotate(str(b["n"]), (b["mean_probability"], b["observed_rate"]),
                    textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel(f"predicted probability of {calibration['positive']!r}")
    ax.set_ylabel("observed rate")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(plots / "reliability.png", dpi=100)
    plt.close(fig)
    return "plots/reliability.png"


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if isinstance(v, SCALAR) and k != "n"}


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4f}"
        return html.escape(str(value))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def comparison_table(rows: dict[str, dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """Headers and rows for named metric dicts side by side (ablation, baselines); a row's
    ``note`` (why it has no metrics) is a column of its own."""
    keys: list[str] = []
    for metrics in rows.values():
        keys.extend(k for k in scalar_metrics(metrics) if k not in keys)
    if any("note" in metrics for metrics in rows.values()):
        keys.append("note")
    return ["model", *keys], [[name, *[m.get(k, "") for k in keys]] for name, m in rows.items()]


def write_report(directory: Path, *, title: str, spec: dict[str, Any],
                 metrics: dict[str, Any], history: list[dict[str, Any]],
                 images: list[str], comparisons: dict[str, dict[str, dict[str, Any]]],
                 notes: list[str]) -> None:
    """A self-contained HTML report of a run."""
    parts = [f"<h1>{html.escape(title)}</h1>"]
    parts += [f"<p>{html.escape(note)}</p>" for note in notes]
    for split, values in metrics.items():
        if isinstance(values, dict) and scalar_metrics(values):
            parts.append(f"<h2>{html.escape(split)} metrics</h2>")
            parts.append(_table(["metric", "value"],
                                [[k, v] for k, v in scalar_metrics(values).items()]))
    for heading, rows in comparisons.items():
        headers, table_rows = comparison_table(rows)
        parts.append(f"<h2>{html.escape(heading)}</h2>" + _table(headers, table_rows))
    if history:
        keys = list(history[0])
        parts.append("<h2>training history</h2>")
        parts.append(_table(keys, [[row.get(k, "") for k in keys] for row in history]))
    for image in images:
        parts.append(f'<h3>{html.escape(image)}</h3><img src="{html.escape(image)}">')
    parts.append("<h2>spec</h2><pre>" + html.escape(json.dumps(spec, indent=2)) + "</pre>")
    style = ("body{font-family:sans-serif;max-width:960px;margin:2em auto}"
             "table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}")
    (directory / "report.html").write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{style}</style></head><body>{''.join(parts)}</body></html>"
    )


def write_card(directory: Path, *, spec: dict[str, Any], metrics: dict[str, Any],
               fingerprint: str, versions: dict[str, str], kind: str | None = None) -> None:
    """``card.md``: what the model is, what it was trained on, how well it did, and with
    which package versions. ``spec`` is a core spec (inputs, fusion, task) or a scenario's
    own (its encoder sections are found by their ``encoder`` key)."""
    title = spec.get("name") or spec.get("scenario") or kind or "model"
    if "task" in spec and "fusion" in spec:
        lines = [f"# {title}", "", f"Task: {spec['task']['name']} of "
                 f"`{spec['task']['target']}`; fusion: {spec['fusion']['name']}."]
        inputs = list(spec["inputs"])
    else:
        lines = [f"# {title}", "", f"A {kind or 'scenario'} model"
                 + (f" of scenario `{spec['scenario']}`." if spec.get("scenario") else ".")]
        inputs = [{"name": key, **v} for key, v in spec.items()
                  if isinstance(v, dict) and "encoder" in v]
    lines += ["", "## Inputs", ""]
    for inp in inputs:
        source = f", source `{inp['source']}`" if inp.get("source") else ""
        frozen = ", frozen" if inp.get("frozen") else ""
        modality = f"{inp['modality']} " if inp.get("modality") else ""
        lines.append(f"- `{inp['name']}`: {modality}via `{inp['encoder']}`{source}{frozen}")
    lines += ["", "## Metrics", ""]
    for split, values in metrics.items():
        if isinstance(values, dict):
            shown = ", ".join(f"{k} {v:.4f}" for k, v in scalar_metrics(values).items())
            lines.append(f"- {split}: {shown}")
    lines += ["", "## Provenance", "", f"- training data: {fingerprint}"]
    lines += [f"- {name} {version}" for name, version in versions.items()]
    lines += ["", "Load with `polymodal.load(PATH)`; weights are safetensors, metadata YAML/JSON.",
              ""]
    (directory / "card.md").write_text("\n".join(lines))
