"""DICOM through the CLI as a user would: reading series, windows, views and
de-identification to the Basic Profile, on pydicom's bundled CT and MR files and a series
built from them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polymodal.testing import run_cli

pydicom = pytest.importorskip("pydicom")
from pydicom.data import get_testdata_file  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402

PATIENT_NAME = "Rossi^Maria^Grazia"
PATIENT_ID = "ID-4417-XK"


def _ct_series(root: Path, *, slices: int = 3, patient: str = PATIENT_NAME,
               patient_id: str = PATIENT_ID, burned_in: bool = False) -> list[Path]:
    """``slices`` CT images of one series, 2.5 mm apart, written with InstanceNumber against
    the position order, a private tag and a PE header hidden in the preamble."""
    root.mkdir(parents=True, exist_ok=True)
    study, series = generate_uid(), generate_uid()
    paths = []
    for index in range(slices):
        dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        dataset.PatientName, dataset.PatientID = patient, patient_id
        dataset.PatientBirthDate = "19610304"
        dataset.StudyInstanceUID, dataset.SeriesInstanceUID = study, series
        dataset.SOPInstanceUID = generate_uid()
        dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
        dataset.InstanceNumber = slices - index  # against the position order
        dataset.ImagePositionPatient = [-158.1, -179.0, -75.7 + 2.5 * index]
        dataset.StudyDescription = f"follow-up of {patient}"
        dataset.ImageComments = "called the patient at home"
        block = dataset.private_block(0x0099, "POLYMODAL TEST", create=True)
        block.add_new(0x01, "LO", patient_id)
        if burned_in:
            dataset.BurnedInAnnotation = "YES"
        dataset.preamble = b"MZ\x90\x00" + b"\x00" * 124
        path = root / f"scan-{patient.split('^')[0].lower()}-{index}.dcm"
        dataset.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def test_info_shows_acquisition_facts_and_no_patient_attribute(tmp_path: Path) -> None:
    _ct_series(tmp_path / "series")
    mr = get_testdata_file("MR_small.dcm")
    result = run_cli("medical", "dicom", "info", str(tmp_path / "series"), mr, "--json")
    assert result.returncode == 0, result.stderr
    ct, mr_info = json.loads(result.stdout)
    assert (ct["modality"], ct["slices"], ct["rows"], ct["columns"]) == ("CT", 3, 128, 128)
    assert ct["spacing_mm"]["slice"] == pytest.approx(2.5)
    assert ct["units"] == "HU" and ct["value_range"][0] < -800  # air, after the rescale
    assert mr_info["modality"] == "MR" and mr_info["window"] == {"center": 600.0,
                                                                 "width": 1600.0}
    human = run_cli("medical", "dicom", "info", str(tmp_path / "series"))
    for output in (result.stdout, human.stdout, human.stderr):
        assert "Rossi" not in output and PATIENT_ID not in output
    with_phi = run_cli("medical", "dicom", "info", str(tmp_path / "series"), "--phi", "--json")
    assert json.loads(with_phi.stdout)[0]["patient"]["PatientName"] == PATIENT_NAME


def test_a_series_is_ordered_by_position_not_instance_number(tmp_path: Path) -> None:
    from polymodal_medical.dicom import read_series

    _ct_series(tmp_path / "s")
    (series,) = read_series([tmp_path / "s"])
    positions = [float(d.ImagePositionPatient[2]) for d in series.datasets]
    assert positions == sorted(positions)
    assert [d.InstanceNumber for d in series.datasets] == [3, 2, 1]


def test_view_writes_a_windowed_grid(tmp_path: Path) -> None:
    from matplotlib import image as mpimg

    _ct_series(tmp_path / "series", slices=4)
    out = tmp_path / "grid.png"
    result = run_cli("medical", "dicom", "view", str(tmp_path / "series"), "--out", str(out),
                     "--window", "lung", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["slices_shown"] == 4
    pixels = mpimg.imread(out)
    assert pixels.shape[:2] == (256, 256)  # 2x2 slices of 128 px
    # The lung window (centre -600, width 1500) maps the darkest value of the scan, -896 HU,
    # to (-896 + 1350) / 1500; the bone window (400, 1800) clips it to black.
    assert pixels[..., 0].min() == pytest.approx(454 / 1500, abs=1 / 255)
    assert pixels[..., 0].max() == 1.0
    bone = tmp_path / "bone.png"
    assert run_cli("medical", "dicom", "view", str(tmp_path / "series"), "--out", str(bone),
                   "--window", "bone").returncode == 0
    assert mpimg.imread(bone)[..., 0].min() == 0.0
    slices = tmp_path / "slices"
    converted = run_cli("medical", "dicom", "convert", str(tmp_path / "series"), "--out",
                        str(slices), "--window", "soft-tissue", "--json")
    assert converted.returncode == 0 and json.loads(converted.stdout)["slices"] == 4
    assert sorted(p.name for p in slices.iterdir()) == [f"slice-{i:04d}.png" for i in range(1, 5)]
    assert mpimg.imread(slices / "slice-0001.png").shape[:2] == (128, 128)
    typo = run_cli("medical", "dicom", "view", str(tmp_path / "series"), "--out",
                   str(tmp_path / "x.png"), "--window", "lungs")
    assert typo.returncode == 2 and "lung" in typo.stderr and not (tmp_path / "x.png").exists()


def _table_tags_present(dataset: object) -> dict[tuple[int, int], str]:
    from polymodal_medical.deid import profile_actions

    actions = profile_actions()
    found: dict[tuple[int, int], str] = {}

    def visit(_: object, element: object) -> None:
        key = (element.tag.group, element.tag.element)  # type: ignore[attr-defined]
        if key in actions and element.VR != "SQ":  # type: ignore[attr-defined]
            found[key] = repr(element.value)  # type: ignore[attr-defined]

    dataset.walk(visit)  # type: ignore[attr-defined]
    return found


def test_anonymize_applies_the_basic_profile(tmp_path: Path) -> None:
    first = _ct_series(tmp_path / "in" / "a", slices=3)
    second = _ct_series(tmp_path / "in" / "b", slices=1, patient="Bianchi^Luca",
                        patient_id="ID-0001-ZZ")
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    result = run_cli("medical", "dicom", "anonymize", str(tmp_path / "in"), "--out", str(out),
                     "--seed", "s3cret", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["files"], report["patients"], report["studies"], report["series"],
            report["skipped_not_dicom"]) == (4, 2, 2, 2, 1)

    written = sorted(out.glob("*.dcm"))
    assert len(written) == 4
    originals = {str(pydicom.dcmread(p).SOPInstanceUID): pydicom.dcmread(p)
                 for p in first + second}
    outputs = [pydicom.dcmread(p) for p in written]
    for path in written:  # no identity survives anywhere in the bytes
        raw = path.read_bytes()
        for secret in (b"Rossi", b"Bianchi", b"ID-4417-XK", b"ID-0001-ZZ", b"19610304",
                       b"called the patient", b"follow-up"):
            assert secret not in raw, (path.name, secret)
        assert raw[:128] == b"\x00" * 128 and raw[128:132] == b"DICM"
    for dataset in outputs:
        assert dataset.PatientIdentityRemoved == "YES"
        assert [i.CodeValue for i in dataset.DeidentificationMethodCodeSequence] == [
            "113100", "113107"]
        assert not any(e.tag.is_private for e in dataset.iterall())
        assert "StudyDescription" not in dataset and "ImageComments" not in dataset
    # Every Table E.1-1 attribute of an input is gone, emptied or replaced in its output;
    # pixels are untouched. Outputs are in input order (directory a, then b).
    inputs = [pydicom.dcmread(p) for p in sorted(first) + second]
    for before, after in zip(inputs, outputs, strict=True):
        kept = _table_tags_present(after)
        for key, value in _table_tags_present(before).items():
            assert key not in kept or kept[key] != value or value in ("''", "None"), key
        assert before.PixelData == after.PixelData
    # UIDs: one mapping for the run; a series stays one series.
    series_a = outputs[:3]
    assert len({d.SeriesInstanceUID for d in series_a}) == 1
    assert len({d.StudyInstanceUID for d in series_a}) == 1
    assert len({d.SOPInstanceUID for d in outputs}) == 4
    assert not set(originals) & {str(d.SOPInstanceUID) for d in outputs}
    assert all(d.file_meta.MediaStorageSOPInstanceUID == d.SOPInstanceUID for d in outputs)
    # Dates and times move by one offset per patient, so intervals within a patient are kept
    # (to the second) and the two patients move by different offsets.
    from datetime import datetime

    def moment(dataset: object, kind: str) -> datetime:
        date, time = getattr(dataset, f"{kind}Date"), getattr(dataset, f"{kind}Time")
        return datetime.strptime(date + time.split(".")[0].ljust(6, "0"), "%Y%m%d%H%M%S")

    for before, after in zip(inputs, outputs, strict=True):
        assert after.StudyDate != before.StudyDate
        assert moment(after, "Study") - moment(after, "Series") == (
            moment(before, "Study") - moment(before, "Series"))
    offsets = {moment(a, "Study") - moment(b, "Study")
               for b, a in zip(inputs, outputs, strict=True)}
    assert len(offsets) == 2
    # The report holds counts only.
    text = (out / "deidentification.json").read_text()
    assert "Rossi" not in text and "4417" not in text

    again = run_cli("medical", "dicom", "anonymize", str(tmp_path / "in"), "--out",
                    str(tmp_path / "again"), "--seed", "s3cret")
    assert again.returncode == 0, again.stderr
    assert [p.read_bytes() for p in sorted((tmp_path / "again").glob("*.dcm"))] == [
        p.read_bytes() for p in written]  # deterministic with --seed


def test_anonymize_refuses_bad_input_and_writes_nothing(tmp_path: Path) -> None:
    text = tmp_path / "report.dcm"
    text.write_text("Rossi Maria, not DICOM")
    truncated = tmp_path / "truncated.dcm"
    truncated.write_bytes(Path(_ct_series(tmp_path / "ok", slices=1)[0]).read_bytes()[:-1000])
    burned = _ct_series(tmp_path / "burned", slices=1, burned_in=True)
    for bad, expected in ((text, "not a DICOM file"), (truncated, "unreadable DICOM"),
                          (burned[0], "burned-in annotation")):
        out = tmp_path / f"out-{bad.stem}"
        result = run_cli("medical", "dicom", "anonymize", str(bad), "--out", str(out))
        assert result.returncode == 2, (bad, result.stderr)
        assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert "Rossi" not in result.stderr and PATIENT_ID not in result.stderr
        assert not out.exists() and not Path(f"{out}.partial").exists()
    allowed = run_cli("medical", "dicom", "anonymize", str(burned[0]), "--out",
                      str(tmp_path / "allowed"), "--allow-burned-in", "--json")
    assert allowed.returncode == 0 and json.loads(allowed.stdout)["burned_in_written"] == 1
    # A user's folder is never replaced.
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    refused = run_cli("medical", "dicom", "anonymize", str(tmp_path / "ok"), "--out", str(mine))
    assert refused.returncode == 2 and (mine / "keep.txt").read_text() == "mine"
