"""``medical.fusion``: a DICOM image and an EHR record learn an outcome neither carries
alone; the model is served with a DICOM upload beside a JSON EHR record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polymodal.testing import run_cli

pytest.importorskip("pydicom")


@pytest.fixture(scope="module")
def fusion_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("fusion") / "model"
    result = run_cli("medical", "fusion", "train", "--quick",
                     "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    return out, json.loads(result.stdout)["metrics"]


def test_image_and_ehr_learn_the_outcome(fusion_model: tuple[Path, dict]) -> None:
    _, metrics = fusion_model
    test = metrics["test"]
    assert test["n"] == 200
    assert test["accuracy"] > metrics["baselines"]["majority"]["accuracy"] + 0.05
    assert test["auroc"] > 0.75


def test_the_cohort_is_synthetic_dicom_with_half_the_signal_in_each_modality() -> None:
    import pydicom

    from polymodal_medical.cohort import cohort

    cases = cohort(800)
    assert len(cases) == 800
    first = pydicom.dcmread(cases[0]["image"])
    assert str(first.PatientName).startswith("Synthetic^") and first.Modality == "CT"
    positives = [c for c in cases if c["outcome"] == "positive"]
    # Positive needs a lesion and a high marker: about a quarter of the cases, and their
    # observed marker is high (the EHR half of the signal).
    assert 0.18 < len(positives) / len(cases) < 0.32
    assert sum(c["ehr"]["marker:last"] > 0 for c in positives) > 0.85 * len(positives)


def test_a_dicom_upload_is_served_beside_a_json_ehr_record(fusion_model: tuple[Path, dict]
                                                           ) -> None:
    from fastapi.testclient import TestClient

    from polymodal.serving.app import ServeSettings, create_app
    from polymodal_medical.cohort import cohort

    model, _ = fusion_model
    case = cohort(800)[-1]
    dicom = Path(case["image"]).read_bytes()
    with TestClient(create_app([model], ServeSettings(), device="cpu")) as http:
        name = http.get("/v1/models").json()["models"][0]["name"]
        url = f"/v1/models/{name}/predict"
        inputs = {i["name"]: i for i in http.get("/v1/models").json()["models"][0]["inputs"]}
        assert inputs["image"]["wire"] == "binary"
        assert inputs["image"]["media_types"] == ["application/dicom"]
        served = http.post(url, files={"image": ("case.dcm", dicom, "application/dicom")},
                           data={"ehr": json.dumps(case["ehr"])})
        assert served.status_code == 200, served.text
        assert served.json()["predictions"][0]["label"] in {"positive", "negative"}
        wrong_type = http.post(url, files={"image": ("case.png", dicom, "image/png")},
                               data={"ehr": json.dumps(case["ehr"])})
        assert wrong_type.status_code == 415
        not_dicom = http.post(url, files={"image": ("case.dcm", b"not a dicom file" * 20,
                                                    "application/dicom")},
                              data={"ehr": json.dumps(case["ehr"])})
        assert not_dicom.status_code == 422 and "DICOM" in not_dicom.json()["error"]
        cut = http.post(url, files={"image": ("case.dcm", dicom[:-1000], "application/dicom")},
                        data={"ehr": json.dumps(case["ehr"])})
        assert cut.status_code == 422 and "truncated" in cut.json()["error"]
        # Patient attributes of the upload never appear in an answer.
        assert "Synthetic" not in not_dicom.text and "Synthetic" not in served.text
        again = http.post(url, files={"image": ("case.dcm", dicom, "application/dicom")},
                          data={"ehr": json.dumps(case["ehr"])})
        assert again.status_code == 200
