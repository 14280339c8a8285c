"""Turning an HTTP request into prediction records, or a 422 that names the field.

Two body shapes:

- JSON ``{"records": [{field: value, ...}, ...]}``. Binary inputs (images, audio, DICOM)
  travel as ``{"base64": "..."}`` objects.
- ``multipart/form-data``: one record; form fields are values, file parts are the bytes of
  binary inputs (the playground and ``curl -F`` send this).

Binary values are only ever bytes from the request: a string in a binary field is refused,
never read as a path on the server.
"""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass
from typing import Any

from polymodal.records import Record

# Modalities whose values are files (bytes); every other modality takes JSON scalars.
BINARY_MODALITIES = frozenset({"image", "audio", "dicom"})
# Modalities whose values are JSON lists of ids (a recommender's "liked" items).
LIST_MODALITIES = frozenset({"id-list"})

@dataclass
class BadRequest(Exception):
    """A request the model cannot take; answered with 422 (or ``status``)."""

    message: str
    field: str | None = None
    status: int = 422


def field_modalities(predictor: Any) -> dict[str, str]:
    return {i["name"]: i["modality"] for i in predictor.describe_inputs()}


def _check_value(value: Any, modality: str, where: str) -> Any:
    if modality in BINARY_MODALITIES:
        if isinstance(value, bytes):
            return value
        if isinstance(value, dict) and set(value) == {"base64"}:
            try:
                return base64.b64decode(str(value["base64"]), validate=True)
            except (binascii.Error, ValueError):
                raise BadRequest("not valid base64", where) from None
        if value is None:
            return None
        raise BadRequest(f'a {modality} input is a file: upload it (multipart) or send '
                         '{"base64": "..."}', where)
    if isinstance(value, bytes):
        raise BadRequest(f"a {modality} input takes a value, not a file", where)
    if modality in LIST_MODALITIES:
        if value is None or (isinstance(value, list) and all(
                isinstance(v, str | int) and not isinstance(v, bool) for v in value)):
            return value
        raise BadRequest("expected a list of ids (strings or integers)", where)
    if not isinstance(value, str | int | float | bool | type(None)):
        raise BadRequest("a field value must be a string, number or null", where)
    if isinstance(value, float) and not math.isfinite(value):
        raise BadRequest(f"{value} is not a finite number", where)
    return value


def check_records(body: Any, modalities: dict[str, str],
                  max_records: int | None = None) -> list[Record]:
    """The records of a JSON body, binary fields decoded; BadRequest otherwise."""
    if not isinstance(body, dict) or "records" not in body:
        raise BadRequest('expected a JSON object {"records": [...]}', "records")
    records = body["records"]
    if not isinstance(records, list) or not records:
        raise BadRequest("records must be a non-empty list", "records")
    if max_records is not None and len(records) > max_records:
        raise BadRequest(f"{len(records)} records in one request; the limit is {max_records} "
                         "(send several requests, or raise --max-records)", "records", 413)
    checked = []
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise BadRequest("each record must be an object", f"records[{i}]")
        if not set(modalities) & set(record):
            raise BadRequest(f"none of the model's inputs ({', '.join(modalities)}) is "
                             "present", f"records[{i}]")
        checked.append({key: _check_value(value, modalities[key], f"records[{i}].{key}")
                        if key in modalities else value for key, value in record.items()})
    return checked


async def form_record(form: Any, modalities: dict[str, str]) -> list[Record]:
    """One record from a multipart form: files become bytes, numbers are parsed."""
    record: Record = {}
    for key, value in form.multi_items():
        if key not in modalities:
            continue
        modality = modalities[key]
        if hasattr(value, "read"):  # an UploadFile
            value = await value.read()
        elif modality == "numeric":
            try:
                value = float(value) if value.strip() else None
            except ValueError:
                raise BadRequest(f"{value!r} is not a number", key) from None
        record[key] = _check_value(value, modality, key)
    if not record:
        raise BadRequest(f"none of the model's inputs ({', '.join(modalities)}) is present",
                         "form")
    return [record]
