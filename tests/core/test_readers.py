from __future__ import annotations

from pathlib import Path

import pytest

from polymodal.data.readers import read_records
from polymodal.errors import DataError


def test_csv_empty_fields_become_none(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("a,b\n1,\n,x\n")
    assert read_records(path) == [{"a": "1", "b": None}, {"a": None, "b": "x"}]


def test_jsonl_and_json(tmp_path: Path) -> None:
    (tmp_path / "d.jsonl").write_text('{"a": 1}\n\n{"a": ""}\n')
    assert read_records(tmp_path / "d.jsonl") == [{"a": 1}, {"a": None}]
    (tmp_path / "d.json").write_text('[{"a": 2}]')
    assert read_records(tmp_path / "d.json") == [{"a": 2}]


@pytest.mark.parametrize("name,content,message", [
    ("empty.csv", "", "empty"),
    ("header.csv", "a,b\n", "no records"),
    ("ragged.csv", "a,b\n1,2,3\n", "3 fields where the header has 2"),
    ("bad.jsonl", '{"a": 1}\n{oops\n', "not valid JSON"),
    ("list.jsonl", "[1, 2]\n", "must be a JSON object"),
    ("data.xyz", "a\n", "no reader"),
])
def test_bad_files_are_refused(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        read_records(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        read_records(tmp_path / "nope.csv")
