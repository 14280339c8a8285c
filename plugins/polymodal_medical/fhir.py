"""FHIR R4 Bundles (JSON) and NDJSON -> longitudinal events per patient.

Every resource is validated with fhir.resources (its R4B models, pydantic 2) before it is
read; an invalid one is refused naming its type, its index in the file and the field, never
a value. What is read, per patient (by the Patient's ``fullUrl`` or ``Patient/id``):

- Patient: ``birthDate`` (age at the index date) and ``gender``;
- Observation with a ``valueQuantity``: an event ``loinc:CODE`` (or ``SYSTEM:CODE``) at its
  ``effectiveDateTime``;
- Condition: ``condition:SYSTEM:CODE`` = 1 from its onset (or recorded) date;
- MedicationRequest with status active: ``rxnorm:CODE`` = 1 from ``authoredOn``.

Times are days since 1970-01-01, so ``features_at`` gives ``loinc:718-7:last``,
``...:days_since`` and ``...:trend_per_year``; conditions and medications add counts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from polymodal.plugin import DataError
from polymodal_medical.ehr import DAYS_PER_YEAR, Event, features_at

EPOCH = date(1970, 1, 1)
SYSTEMS = {"http://loinc.org": "loinc", "http://snomed.info/sct": "snomed",
           "http://hl7.org/fhir/sid/icd-10-cm": "icd10cm", "http://hl7.org/fhir/sid/icd-10":
           "icd10", "http://www.nlm.nih.gov/research/umls/rxnorm": "rxnorm"}


@dataclass
class PatientRecord:
    """What the resources say of one patient."""

    key: str
    birth: date | None = None
    sex: str | None = None
    events: list[Event] = field(default_factory=list)


def day_number(text: str) -> float:
    """A FHIR date or dateTime -> days since 1970-01-01 (fractional for a dateTime)."""
    try:
        if len(text) <= 10:
            parts = [int(p) for p in text.split("-")] + [1, 1]
            return float((date(parts[0], parts[1], parts[2]) - EPOCH).days)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise DataError(f"not a date: {text!r} (YYYY-MM-DD, or a FHIR dateTime)") from None
    midnight = datetime(moment.year, moment.month, moment.day, tzinfo=moment.tzinfo)
    return (moment.date() - EPOCH).days + (moment - midnight).total_seconds() / 86400


def _code(concept: dict[str, Any] | None) -> str | None:
    for coding in (concept or {}).get("coding", []):
        if coding.get("code"):
            system = SYSTEMS.get(coding.get("system", ""), "code")
            return f"{system}:{coding['code']}"
    return None


def resources_of(path: str | Path) -> list[dict[str, Any]]:
    """The resources of a Bundle (.json) or an NDJSON file (one resource a line), each
    validated against its FHIR model."""
    from fhir.resources.R4B import get_fhir_model_class
    from pydantic import ValidationError

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read ({type(exc).__name__})") from None
    try:
        if path.suffix == ".ndjson":
            resources = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            document = json.loads(text)
            if not isinstance(document, dict) or document.get("resourceType") != "Bundle":
                raise DataError(f"{path}: not a FHIR Bundle (resourceType is not Bundle)")
            resources = [e.get("resource") for e in document.get("entry", [])]
            for index, entry in enumerate(document.get("entry", [])):
                if isinstance(resources[index], dict) and entry.get("fullUrl"):
                    resources[index] = {**resources[index], "_fullUrl": entry["fullUrl"]}
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not JSON (line {exc.lineno})") from None
    checked = []
    for index, resource in enumerate(resources):
        if not isinstance(resource, dict) or "resourceType" not in resource:
            raise DataError(f"{path}: entry {index} has no resource with a resourceType")
        kind = str(resource["resourceType"])
        try:
            model = get_fhir_model_class(kind)
        except (KeyError, ValueError):
            raise DataError(f"{path}: entry {index}: {kind!r} is not a FHIR resource type") \
                from None
        body = {k: v for k, v in resource.items() if k != "_fullUrl"}
        try:
            model.model_validate(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(resource)"
            raise DataError(f"{path}: entry {index} ({kind}): invalid field {where}: "
                            f"{first['msg']}") from None
        checked.append(resource)
    return checked


def _subject(resource: dict[str, Any]) -> str | None:
    reference = (resource.get("subject") or {}).get("reference")
    return str(reference) if reference else None


def patients_of(resources: list[dict[str, Any]]) -> dict[str, PatientRecord]:
    """Events per patient; a resource whose subject is no Patient of the file is skipped."""
    patients: dict[str, PatientRecord] = {}
    aliases: dict[str, str] = {}
    for resource in resources:
        if resource["resourceType"] == "Patient":
            key = resource.get("_fullUrl") or f"Patient/{resource.get('id', len(patients))}"
            record = PatientRecord(key=str(key))
            if resource.get("birthDate"):
                record.birth = date.fromisoformat(str(resource["birthDate"])[:10]) \
                    if len(str(resource["birthDate"])) >= 10 else None
            record.sex = resource.get("gender")
            patients[record.key] = record
            aliases[record.key] = record.key
            if resource.get("id"):
                aliases[f"Patient/{resource['id']}"] = record.key
    for resource in resources:
        kind = resource["resourceType"]
        owner = aliases.get(_subject(resource) or "")
        if owner is None:
            continue
        events = patients[owner].events
        if kind == "Observation":
            quantity = resource.get("valueQuantity") or {}
            code, when = _code(resource.get("code")), resource.get("effectiveDateTime")
            if code and when and quantity.get("value") is not None:
                events.append(Event(owner, day_number(when), code, float(quantity["value"])))
        elif kind == "Condition":
            code = _code(resource.get("code"))
            when = resource.get("onsetDateTime") or resource.get("recordedDate")
            if code and when:
                events.append(Event(owner, day_number(when), f"condition:{code}", 1.0))
        elif kind == "MedicationRequest" and resource.get("status") == "active":
            code = _code(resource.get("medicationCodeableConcept"))
            when = resource.get("authoredOn")
            if code and when:
                events.append(Event(owner, day_number(when), f"medication:{code}", 1.0))
    return patients


def is_flag(variable: str) -> bool:
    """A condition or medication (a 0/1 fact), not a measured value."""
    return variable.startswith(("condition:", "medication:"))


def bundle_features(patient: PatientRecord, index_date: str,
                    window_days: float = 730.0) -> dict[str, float]:
    """A patient's named features at ``index_date`` (YYYY-MM-DD): ``age``, ``sex_female``,
    labs (last, days since, trend), each condition and active medication (as 1), and
    their counts."""
    index = day_number(index_date)
    static: dict[str, float] = {}
    if patient.birth is not None:
        static["age"] = (index - (patient.birth - EPOCH).days) / DAYS_PER_YEAR
    if patient.sex in ("female", "male"):
        static["sex_female"] = 1.0 if patient.sex == "female" else 0.0
    labs = [e for e in patient.events if not is_flag(e.variable)]
    features = features_at(labs, index, window_days=window_days, static=static)
    flags = {e.variable for e in patient.events if e.time <= index
             and (e.end is None or e.end >= index) and is_flag(e.variable)}
    for flag in sorted(flags):
        features[flag] = 1.0
    features["conditions:count"] = float(sum(f.startswith("condition:") for f in flags))
    features["medications:active"] = float(sum(f.startswith("medication:") for f in flags))
    return features
