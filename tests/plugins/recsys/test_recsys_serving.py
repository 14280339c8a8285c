"""A recommender behind ``polymodal serve``: users, fold-in, batches, refusals."""

from __future__ import annotations

from fastapi.testclient import TestClient

from polymodal.serving.app import ServeSettings, create_app


def test_serve_recommendations(cf_model) -> None:  # type: ignore[no-untyped-def]
    out, _ = cf_model
    url = f"/v1/models/{out.name}/predict"
    with TestClient(create_app([out], ServeSettings())) as http:
        listed = http.get("/v1/models").json()["models"][0]
        assert listed["scenario"] == "recsys.cf"
        assert {i["name"]: i["modality"] for i in listed["inputs"]} == {
            "user": "id", "liked": "id-list", "k": "numeric"}
        many = http.post(url, json={"records": [{"user": "1"}, {"user": 2, "k": 3}]})
        assert many.status_code == 200, many.text
        first, second = many.json()["predictions"]
        assert len(first["items"]) == 10 and len(second["items"]) == 3
        folded = http.post(url, json={"records": [{"liked": ["1", 2355], "k": 5}]})
        assert folded.status_code == 200
        assert not {"1", "2355"} & set(folded.json()["predictions"][0]["items"])

        unknown = http.post(url, json={"records": [{"user": "nobody"}]})
        assert unknown.status_code == 422
        assert "unknown user 'nobody'" in unknown.json()["error"]
        wrong = http.post(url, json={"records": [{"liked": "1"}]})
        assert wrong.status_code == 422 and wrong.json()["field"] == "records[0].liked"
        assert http.get("/health").status_code == 200
        assert http.post(url, json={"records": [{"user": "1"}]}).status_code == 200


def test_a_bad_request_does_not_fail_the_ones_batched_with_it(cf_model) -> None:  # type: ignore[no-untyped-def]
    from concurrent.futures import ThreadPoolExecutor

    out, _ = cf_model
    url = f"/v1/models/{out.name}/predict"
    users = ["1", "2", "nobody", "3", "4", "5"]
    with TestClient(create_app([out], ServeSettings(max_delay_ms=300))) as http:
        with ThreadPoolExecutor(len(users)) as pool:
            statuses = list(pool.map(
                lambda u: http.post(url, json={"records": [{"user": u}]}).status_code, users))
        metrics = http.get("/metrics").text.splitlines()
    passes = next(float(line.split()[-1]) for line in metrics
                  if line.startswith("polymodal_batch_size_count"))
    single = next(float(line.split()[-1]) for line in metrics
                  if line.startswith('polymodal_batch_size_bucket{le="1.0"'))
    assert statuses == [200, 200, 422, 200, 200, 200]
    assert single < passes  # a forward pass held several of them (then retried one by one)
