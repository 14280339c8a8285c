"""Turning an HTTP request into prediction records, or a 422 that names the field.

Two body shapes:

- JSON ``{"records": [{field: value, ...}, ...]}``. Each field is checked by its registered
  modality (``polymodal.modalities``); binary inputs travel as ``{"base64": "..."}`` objects.
- ``multipart/form-data``: one record; form fields are values, file parts are the bytes of
  binary inputs (the playground and ``curl -F`` send this).

Binary values are only ever bytes from the request: a string in a binary field is refused,
never read as a path on the server.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from polymodal.modalities import Modality, ValueProblem, modality_named
from polymodal.records import Record


@dataclass
class BadRequest(Exception):
    """A request the model cannot take; answered with 422 (or ``status``)."""

    message: str
    field: str | None = None
    status: int = 422


def field_modalities(predictor: Any) -> dict[str, Modality]:
    return {i["name"]: modality_named(i["modality"]) for i in predictor.describe_inputs()}


def _check_value(value: Any, modality: Modality, where: str, from_form: bool = False) -> Any:
    if modality.binary and isinstance(value, dict) and set(value) == {"base64"}:
        try:
            value = base64.b64decode(str(value["base64"]), validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("not valid base64", where) from None
    try:
        return modality.check(value, from_form=from_form)
    except ValueProblem as problem:
        path = problem.path
        at = where if not path else f"{where}{path}" if path.startswith("[") else \
            f"{where}.{path}"
        raise BadRequest(problem.message, at) from None


def _check_upload(upload: Any, modality: Modality, where: str) -> None:
    """A file part whose declared media type the modality does not accept is refused
    (no declared type, or application/octet-stream, leaves it to the decoder)."""
    declared = (getattr(upload, "content_type", None) or "").split(";")[0].strip().lower()
    if declared and declared != "application/octet-stream" and \
            declared not in modality.media_types:
        article = "an" if modality.name[:1] in "aeiou" else "a"
        raise BadRequest(f"{declared} is not accepted for {article} {modality.name} input; send "
                         f"{', '.join(modality.media_types)}", where, 415)


def check_records(body: Any, modalities: dict[str, Modality],
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


async def form_record(form: Any, modalities: dict[str, Modality]) -> list[Record]:
    """One record from a multipart form: files become bytes, other fields are parsed by
    their modality (a number from its text, an object or list from JSON)."""
    record: Record = {}
    for key, value in form.multi_items():
        if key not in modalities:
            continue
        modality = modalities[key]
        if hasattr(value, "read"):  # an UploadFile
            if modality.binary:
                _check_upload(value, modality, key)
            value = await value.read()
        record[key] = _check_value(value, modality, key, from_form=True)
    if not record:
        raise BadRequest(f"none of the model's inputs ({', '.join(modalities)}) is present",
                         "form")
    return [record]
