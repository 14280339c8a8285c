"""De-identification of DICOM files to the Basic Application Level Confidentiality Profile
(DICOM PS3.15 Annex E, Table E.1-1).

Two maintained libraries, each for what it does well:

- **dicognito** replaces identities: person names, IDs, addresses, equipment, UIDs and
  dates/times, deterministically from a seed. One dicognito ``Anonymizer`` per patient, so
  each patient's dates move by that patient's own offset (intervals within a patient are
  kept); UIDs go through one run-wide UID handler, so the same input UID gives the same
  output UID in every file of a run and studies and series stay together.
- **dicom-anonymizer** ships Table E.1-1 as data (its ``dicomfields_2026c`` database: every
  attribute with its action code). After dicognito, every attribute of the table that is
  still present is dealt with by its code: X removed; Z emptied unless dicognito already
  replaced it with a dummy; D given a dummy if dicognito did not replace it; X/Z, X/D,
  X/Z/D removed unless replaced; U remapped (by dicognito).

Then private tags are removed, PatientIdentityRemoved is YES, DeidentificationMethod and its
code sequence name the profile and the modified-dates option, and the 128-byte preamble is
zeroed (a PE or ELF header hidden there makes a DICOM polyglot, CVE-2019-11687). Pixel data
are written back unchanged. A file marked BurnedInAnnotation=YES is refused unless allowed:
text in the pixels is not something attribute rules can remove.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polymodal.plugin import DataError, building_directory

if TYPE_CHECKING:
    from pydicom.dataelem import DataElement
    from pydicom.dataset import Dataset

PROFILE_CODES = [("113100", "Basic Application Confidentiality Profile"),
                 ("113107", "Retain Longitudinal Temporal Information Modified Dates Option")]
METHOD = "PS3.15 E.1-1 Basic Profile (dicognito, table 2026c)"  # LO: at most 64
REPORT = "deidentification.json"


def profile_actions() -> dict[tuple[int, int], str]:
    """Table E.1-1 as ``{(group, element): action}``, action one of X, Z, D, U, Z/D, X/Z,
    X/D, X/Z/D, X/Z/U*."""
    from dicomanonymizer.dicom_anonymization_databases import dicomfields_2026c as table

    categories = {"X_TAGS": "X", "Z_TAGS": "Z", "D_TAGS": "D", "U_TAGS": "U",
                  "Z_D_TAGS": "Z/D", "X_Z_TAGS": "X/Z", "X_D_TAGS": "X/D",
                  "X_Z_D_TAGS": "X/Z/D", "X_Z_U_STAR_TAGS": "X/Z/U*"}
    actions: dict[tuple[int, int], str] = {}
    for attribute, code in categories.items():
        for tag in getattr(table, attribute):
            if len(tag) == 2:  # some entries are group masks (curve, overlay data): skipped
                actions[(int(tag[0]), int(tag[1]))] = code
    return actions


def _key(element: DataElement) -> tuple[int, int]:
    return int(element.tag.group), int(element.tag.element)


def _dummy(element: DataElement) -> Any:
    """A value consistent with the element's VR that carries nothing."""
    vr = element.VR
    if vr in ("DA",):
        return "19000101"
    if vr in ("TM",):
        return "000000"
    if vr in ("DT",):
        return "19000101000000"
    if vr in ("US", "SS", "UL", "SL", "FL", "FD", "IS", "DS", "UV", "SV"):
        return 0
    if vr in ("OB", "OW", "OD", "OF", "OL", "OV", "UN"):
        return b""
    if vr == "SQ":
        return []
    return "ANONYMIZED" if vr not in ("AS", "CS", "AE") else ""


def _snapshot(dataset: Dataset) -> dict[tuple[int, tuple[int, int]], str]:
    """The value of every table attribute before dicognito, by (dataset, tag)."""
    values: dict[tuple[int, tuple[int, int]], str] = {}

    def record(parent: Dataset, element: DataElement) -> None:
        if element.VR != "SQ":
            values[(id(parent), _key(element))] = repr(element.value)

    dataset.walk(record)
    return values


def _apply_profile(dataset: Dataset, before: dict[tuple[int, tuple[int, int]], str],
                   actions: dict[tuple[int, int], str], counts: Counter[str]) -> None:
    """Deal with every table attribute still present, by its action code."""
    removals: list[tuple[Dataset, Any]] = []

    def visit(parent: Dataset, element: DataElement) -> None:
        code = actions.get(_key(element))
        if code is None:
            return
        if element.VR == "SQ":
            # A sequence is removed where X is allowed (unless its items hold references,
            # X/Z/U*); otherwise kept, and its items are handled element by element.
            if "X" in code and code != "X/Z/U*":
                removals.append((parent, element.tag))
            return
        replaced = before.get((id(parent), _key(element))) != repr(element.value)
        if code == "X" or (code.startswith("X") and not replaced):
            removals.append((parent, element.tag))
        elif code in ("Z", "Z/D") and not replaced:
            element.value = "" if element.VR not in ("US", "SS", "UL", "SL", "FL", "FD") \
                else None
            counts["emptied"] += 1
        elif code == "D" and not replaced:
            element.value = _dummy(element)
            counts["dummy"] += 1
        elif replaced:
            counts["replaced"] += 1

    dataset.walk(visit)
    for parent, tag in removals:
        if tag in parent:
            del parent[tag]
            counts["removed"] += 1


def _mark(dataset: Dataset) -> None:
    from pydicom.dataset import Dataset as PydicomDataset

    dataset.PatientIdentityRemoved = "YES"
    dataset.DeidentificationMethod = METHOD
    items = []
    for value, meaning in PROFILE_CODES:
        item = PydicomDataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
        items.append(item)
    dataset.DeidentificationMethodCodeSequence = items


def _patient_seed(run_seed: str, dataset: Dataset) -> str:
    """A per-patient seed: the run's seed keyed with the patient's identity (never kept)."""
    identity = f"{dataset.get('PatientID', '')}\x00{dataset.get('PatientName', '')}"
    return hmac.new(run_seed.encode(), identity.encode(), hashlib.sha256).hexdigest()


def burned_in(dataset: Dataset) -> bool:
    return str(dataset.get("BurnedInAnnotation", "")).upper() == "YES"


def deidentify(paths: list[str | Path], out_dir: str | Path, *, seed: str | None = None,
               allow_burned_in: bool = False) -> dict[str, Any]:
    """De-identify the DICOM files of ``paths`` (files, or directories read recursively;
    non-DICOM files in a directory are skipped) into ``out_dir`` as ``00001.dcm`` ...,
    atomically. Returns the run's report (counts only: no attribute values)."""
    from dicognito.anonymizer import Anonymizer
    from dicognito.randomizer import Randomizer
    from dicognito.uianonymizer import UIAnonymizer

    from polymodal_medical.dicom import dicom_files, read_dataset

    files = dicom_files(paths)
    named = {Path(p) for p in paths if Path(p).is_file()}
    datasets: list[tuple[Path, Dataset]] = []
    skipped = 0
    for path in files:
        try:
            datasets.append((path, read_dataset(path, pixels=False)))
        except DataError:
            if path in named:
                raise
            skipped += 1
    if not datasets:
        raise DataError("no DICOM file among the files given")
    flagged = [path for path, d in datasets if burned_in(d)]
    if flagged and not allow_burned_in:
        raise DataError(f"{len(flagged)} file(s) have burned-in annotation (BurnedInAnnotation "
                        f"YES), e.g. {flagged[0]}: text in the pixels survives attribute "
                        "de-identification; pass --allow-burned-in to write them anyway")
    run_seed = seed if seed is not None else secrets.token_hex(16)
    uids = UIAnonymizer(Randomizer(f"{run_seed}:uids"))  # one mapping for the whole run
    actions = profile_actions()
    anonymizers: dict[str, Any] = {}
    counts: Counter[str] = Counter()
    studies, series = set(), set()
    with building_directory(out_dir) as work:
        for index, (path, _) in enumerate(datasets, start=1):
            dataset = read_dataset(path, require_pixels=False)
            patient = _patient_seed(run_seed, dataset)
            if patient not in anonymizers:
                anonymizer = Anonymizer(seed=patient)
                anonymizer.add_element_handler(uids)
                anonymizers[patient] = anonymizer
            pixels = dataset.PixelData if "PixelData" in dataset else None
            before = _snapshot(dataset)
            counts["private_removed"] += sum(1 for e in dataset.iterall() if e.tag.is_private)
            dataset.remove_private_tags()
            anonymizers[patient].anonymize(dataset)
            _apply_profile(dataset, before, actions, counts)
            _mark(dataset)
            if pixels is not None and dataset.PixelData != pixels:
                raise DataError(f"{path}: pixel data changed during de-identification")
            dataset.preamble = b"\x00" * 128
            studies.add(str(dataset.get("StudyInstanceUID", "")))
            series.add(str(dataset.get("SeriesInstanceUID", "")))
            dataset.save_as(work / f"{index:05d}.dcm", enforce_file_format=True)
        report = {"files": len(datasets), "skipped_not_dicom": skipped,
                  "patients": len(anonymizers), "studies": len(studies - {""}),
                  "series": len(series - {""}), "burned_in_written": len(flagged),
                  "seeded": seed is not None, "profile": [c for c, _ in PROFILE_CODES],
                  "actions": dict(sorted(counts.items()))}
        (work / REPORT).write_text(json.dumps(report, indent=2) + "\n")
    return report
