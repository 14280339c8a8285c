"""``polymodal medical dicom info|view|convert|anonymize``: extra verbs of the medical plugin
(reading and de-identifying files; no model is trained by them)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click

from polymodal.plugin import emit_json, json_option

WINDOW_CHOICES = ["file", "lung", "mediastinum", "soft-tissue", "bone", "brain"]


@click.group("medical")
def medical_group() -> None:
    """Medical: DICOM reading, viewing, conversion and de-identification; longitudinal EHR."""


def _ehr_group() -> click.Group:
    from polymodal.plugin import scenario_group

    return scenario_group("medical.ehr", "death within two years from longitudinal labs")


ehr_group = _ehr_group()
medical_group.add_command(ehr_group)
TABLE_COLUMNS = ("patient", "time", "variable", "value")


@ehr_group.command("features")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--index-date", required=True,
              help="The date the features are taken at (YYYY-MM-DD; for a table whose "
                   "times are numbers, a number on the same scale).")
@click.option("--window-days", default=730.0, show_default=True,
              help="How far back a lab's trend is fitted.")
@click.option("--visits", "with_visits", is_flag=True,
              help="Add each patient's visits up to the index date (the ehr-visits "
                   "modality: labs by date, with days_before).")
@json_option
def features_command(paths: tuple[str, ...], index_date: str, window_days: float,
                     with_visits: bool, as_json: bool) -> None:
    """Per-patient EHR features at an index date from FHIR Bundles (.json), NDJSON
    resources (.ndjson), a longitudinal table (CSV/TSV/Parquet with columns patient,
    time, variable, value) or OMOP-CDM tables (a DuckDB database, a directory of their
    CSV files, or `eunomia`: OHDSI's example database): one object per patient."""
    rows = []
    for path in paths:
        rows.extend(_features_of(path, index_date, window_days, with_visits))
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        visits = f", {len(row['visits'])} visits" if with_visits else ""
        click.echo(f"{row['patient_id']}: {len(row['features'])} features{visits}")


def _features_of(source: str, index_date: str, window_days: float,
                 with_visits: bool) -> list[dict[str, Any]]:
    from polymodal.plugin import DataError
    from polymodal_medical.omop import EUNOMIA

    path = Path(source)
    if source == EUNOMIA or path.is_dir() or path.suffix in (".duckdb", ".db"):
        from polymodal_medical.omop import omop_patients

        return _patient_rows(omop_patients(source), index_date, window_days, with_visits)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.suffix in (".json", ".ndjson"):
        from polymodal_medical.fhir import patients_of, resources_of

        return _patient_rows(patients_of(resources_of(path)), index_date, window_days,
                             with_visits)
    return _table_features(path, index_date, window_days, with_visits)


def _patient_rows(patients: dict[str, Any], index_date: str, window_days: float,
                  with_visits: bool) -> list[dict[str, Any]]:
    """FHIR or OMOP patients -> ``{"patient_id", "features"[, "visits"]}``."""
    from polymodal_medical.ehr import visits_at
    from polymodal_medical.fhir import bundle_features, day_number, is_flag

    rows = []
    for key, patient in patients.items():
        row: dict[str, Any] = {"patient_id": key,
                               "features": bundle_features(patient, index_date, window_days)}
        if with_visits:
            labs = [e for e in patient.events if not is_flag(e.variable)]
            row["visits"] = visits_at(labs, day_number(index_date))
        rows.append(row)
    return rows


def _table_features(path: Path, index_date: str, window_days: float, with_visits: bool
                    ) -> list[dict[str, Any]]:
    from collections import defaultdict

    from polymodal.plugin import DataError, read_records
    from polymodal_medical.ehr import Event, features_at, visits_at
    from polymodal_medical.fhir import day_number

    def moment(value: Any) -> float:
        if isinstance(value, int | float):
            return float(value)
        return float(value) if _is_number(str(value)) else day_number(str(value))

    records = read_records(path)
    events: dict[str, list[Event]] = defaultdict(list)
    for index, record in enumerate(records):
        unknown = sorted(set(record) - set(TABLE_COLUMNS))
        if unknown:
            raise DataError(f"{path}: unknown column {unknown[0]!r}: a longitudinal table "
                            f"has the columns {', '.join(TABLE_COLUMNS)}")
        missing = [c for c in TABLE_COLUMNS if record.get(c) is None]
        if missing:
            raise DataError(f"{path}: row {index + 1} has no {missing[0]!r}")
        try:
            value = float(record["value"])
        except (TypeError, ValueError):
            raise DataError(f"{path}: row {index + 1}: 'value' is not a number") from None
        patient = str(record["patient"])
        events[patient].append(Event(patient, moment(record["time"]), str(record["variable"]),
                                     value))
    at = moment(index_date)
    return [{"patient_id": patient, "features": features_at(rows, at, window_days=window_days),
             **({"visits": visits_at(rows, at)} if with_visits else {})}
            for patient, rows in sorted(events.items())]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@medical_group.group("dicom")
def dicom_group() -> None:
    """DICOM files and series (pydicom)."""


@dicom_group.command("info")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--phi", is_flag=True,
              help="Also show patient attributes (name, ID, dates). Off by default.")
@json_option
def info_command(paths: tuple[str, ...], phi: bool, as_json: bool) -> None:
    """Modality, size, spacing, value range and window of each series in PATHS (files or
    directories). No patient attribute is shown unless --phi is given."""
    from polymodal_medical.dicom import read_series, summary

    summaries = [summary(series, phi=phi) for series in read_series(list(paths))]
    if as_json:
        emit_json(summaries)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="DICOM series")
    for header in ("modality", "slices", "size", "spacing mm (slice, row, col)", "values",
                   "window", "photometric"):
        table.add_column(header)
    for s in summaries:
        spacing = s["spacing_mm"]
        window = s["window"]
        table.add_row(s["modality"], str(s["slices"]), f"{s['rows']}x{s['columns']}",
                      ", ".join("-" if v is None else f"{v:g}" for v in spacing.values()),
                      f"{s['value_range'][0]:g} .. {s['value_range'][1]:g} {s['units']}",
                      "-" if window is None else f"C {window['center']:g} / W {window['width']:g}",
                      s["photometric"])
    Console().print(table)
    if phi:
        for s in summaries:
            click.echo(", ".join(f"{k}={v}" for k, v in s.get("patient", {}).items()))


def _frames(paths: tuple[str, ...], window: str | None) -> tuple[list[Any], int]:
    """Windowed [0, 1] slices of the first series in PATHS, and how many series there were."""
    from polymodal_medical.dicom import apply_window, is_monochrome1, read_series, window_of

    series = read_series(list(paths))
    first = series[0]
    volume = first.volume()
    chosen = window_of(first.datasets[0], volume, window)
    shown = apply_window(volume, chosen, invert=is_monochrome1(first.datasets[0]))
    return list(shown), len(series)


@dicom_group.command("view")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="PNG to write.")
@click.option("--window", type=click.Choice(WINDOW_CHOICES), default=None,
              help="A window preset, or 'file' for the file's own (default: the file's "
                   "window, else the value range).")
@click.option("--max-slices", default=16, show_default=True,
              help="A series is shown as a grid of at most this many evenly spaced slices.")
@json_option
def view_command(paths: tuple[str, ...], out: str, window: str | None, max_slices: int,
                 as_json: bool) -> None:
    """Write the first series of PATHS as a PNG: one image, or a grid of slices."""
    import numpy as np

    frames, count = _frames(paths, window)
    step = max(1, math.ceil(len(frames) / max(1, max_slices)))
    chosen = frames[::step]
    columns = math.ceil(math.sqrt(len(chosen)))
    rows = math.ceil(len(chosen) / columns)
    height, width = chosen[0].shape
    grid = np.zeros((rows * height, columns * width), dtype=np.float32)
    for i, frame in enumerate(chosen):
        r, c = divmod(i, columns)
        grid[r * height:(r + 1) * height, c * width:(c + 1) * width] = frame
    _write_png(grid, Path(out))
    result = {"out": out, "slices_shown": len(chosen), "series_found": count,
              "size": [int(grid.shape[0]), int(grid.shape[1])]}
    if as_json:
        emit_json(result)
    else:
        click.echo(f"wrote {out} ({len(chosen)} slice(s), {grid.shape[1]}x{grid.shape[0]} px)")


@dicom_group.command("convert")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Directory to write (new or empty).")
@click.option("--format", "fmt", type=click.Choice(["png", "nifti"]), default="png",
              show_default=True, help="png: one windowed 8-bit PNG per slice; nifti: one "
              "volume.nii.gz per series with its modality values (HU) and geometry.")
@click.option("--window", type=click.Choice(WINDOW_CHOICES), default=None,
              help="The window of the PNGs (NIfTI keeps the values).")
@json_option
def convert_command(paths: tuple[str, ...], out: str, fmt: str, window: str | None,
                    as_json: bool) -> None:
    """Write the first series of PATHS as PNG slices, or every series as NIfTI."""
    from polymodal.plugin import building_directory

    if fmt == "nifti":
        from polymodal_medical.dicom import read_series, write_nifti

        series = read_series(list(paths))
        for s in series:
            s.volume()  # a series of mixed sizes is refused before anything is written
        with building_directory(out) as work:
            names = ["volume.nii.gz"] if len(series) == 1 else [
                f"series-{i:03d}.nii.gz" for i in range(1, len(series) + 1)]
            shapes = [write_nifti(s, work / name) for s, name in zip(series, names,
                                                                      strict=True)]
        result: dict[str, Any] = {"out": out, "format": "nifti", "files": [
            {"file": name, "shape": list(shape)} for name, shape in zip(names, shapes,
                                                                        strict=True)]}
        if as_json:
            emit_json(result)
        else:
            for item in result["files"]:
                click.echo(f"wrote {out}/{item['file']} "
                           f"({'x'.join(map(str, item['shape']))} voxels)")
        return
    frames, _ = _frames(paths, window)
    with building_directory(out) as work:
        for index, frame in enumerate(frames, start=1):
            _write_png(frame, work / f"slice-{index:04d}.png")
    if as_json:
        emit_json({"out": out, "format": "png", "slices": len(frames)})
    else:
        click.echo(f"wrote {len(frames)} PNG slice(s) to {out}")


def _write_png(image: Any, path: Path) -> None:
    """[0, 1] grey values -> an 8-bit PNG, written atomically."""
    import os
    import tempfile

    import numpy as np
    from matplotlib import image as mpimg

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
    os.close(handle)
    try:
        mpimg.imsave(temp, np.round(image * 255).astype(np.uint8), cmap="gray", vmin=0,
                     vmax=255)
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


@dicom_group.command("anonymize")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Directory to write (new or empty): 00001.dcm, ... and "
                   "deidentification.json.")
@click.option("--seed", default=None,
              help="Makes the replacement values reproducible (keep it secret: with the seed "
                   "and a guess, a value can be checked).")
@click.option("--allow-burned-in", is_flag=True,
              help="Write files marked BurnedInAnnotation=YES too (text in their pixels is "
                   "not removed).")
@json_option
def anonymize_command(paths: tuple[str, ...], out: str, seed: str | None,
                      allow_burned_in: bool, as_json: bool) -> None:
    """De-identify the DICOM files in PATHS to the Basic Confidentiality Profile (PS3.15
    Annex E): identities, UIDs and dates replaced consistently, Table E.1-1 attributes
    removed or emptied, private tags removed, the preamble zeroed; pixels unchanged."""
    from polymodal_medical.deid import deidentify

    report = deidentify(list(paths), out, seed=seed, allow_burned_in=allow_burned_in)
    if as_json:
        emit_json({"out": out, **report})
    else:
        click.echo(f"wrote {report['files']} de-identified file(s) to {out} "
                   f"({report['patients']} patient(s), {report['studies']} study(ies), "
                   f"{report['series']} series); skipped {report['skipped_not_dicom']} "
                   "non-DICOM file(s)")
