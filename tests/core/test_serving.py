"""The HTTP server: endpoints, dynamic batching, limits and errors (FastAPI TestClient)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.core.conftest import GOOD, client


def test_endpoints_and_predictions(model_dir: Path) -> None:
    with client(model_dir) as http:
        assert http.get("/health").json() == {"status": "ok"}
        assert http.get("/ready").json() == {"ready": True, "models": ["shops"]}
        models = http.get("/v1/models").json()["models"]
        assert models[0]["name"] == "shops"
        assert {i["name"]: i["modality"] for i in models[0]["inputs"]} == {
            "shop": "categorical", "price": "numeric"}
        assert models[0]["outputs"]["labels"] == ["neg", "pos"]
        response = http.post("/v1/models/shops/predict", json=GOOD)
        assert response.status_code == 200
        labels = [p["label"] for p in response.json()["predictions"]]
        assert labels == ["pos", "neg"]


def test_concurrent_requests_are_batched(model_dir: Path) -> None:
    with client(model_dir, max_delay_ms=200, max_batch_size=64) as http:
        def one(i: int) -> str:
            record = {"shop": "north", "price": 10} if i % 2 else {"shop": "west", "price": 14}
            response = http.post("/v1/models/shops/predict", json={"records": [record]})
            return response.json()["predictions"][0]["label"]

        with ThreadPoolExecutor(8) as pool:
            labels = list(pool.map(one, range(16)))
        assert labels == ["neg" if i % 2 == 0 else "pos" for i in range(16)]
        text = http.get("/metrics").text
        count = float(next(line.split()[-1] for line in text.splitlines()
                           if line.startswith('polymodal_batch_size_count{model="shops"}')))
        assert count < 16  # fewer forward passes than requests
        assert 'polymodal_requests_total{model="shops",status="200"} 16.0' in text


@pytest.mark.parametrize("body,status,field", [
    ({"records": []}, 422, "records"),
    ({"rows": []}, 422, "records"),
    ({"records": [{"colour": "red"}]}, 422, "records[0]"),
    ({"records": [{"shop": {"nested": 1}}]}, 422, "records[0].shop"),
])
def test_bad_requests_name_the_field_and_the_server_keeps_serving(
        model_dir: Path, body: dict, status: int, field: str) -> None:
    with client(model_dir) as http:
        response = http.post("/v1/models/shops/predict", json=body)
        assert response.status_code == status
        assert response.json()["field"] == field
        assert http.post("/v1/models/shops/predict", json=GOOD).status_code == 200


def test_limits(model_dir: Path) -> None:
    with client(model_dir, max_body_bytes=200) as http:
        big = {"records": [{"shop": "north", "price": 1}] * 50}
        assert http.post("/v1/models/shops/predict", json=big).status_code == 413
        assert http.post("/v1/models/nope/predict", json=GOOD).status_code == 404
        bad_json = http.post("/v1/models/shops/predict", content=b"{oops",
                             headers={"content-type": "application/json"})
        assert bad_json.status_code == 422
    with client(model_dir, timeout_s=1e-9) as http:
        assert http.post("/v1/models/shops/predict", json=GOOD).status_code == 504


def test_api_key(model_dir: Path) -> None:
    with client(model_dir, api_key="s3cret") as http:
        assert http.post("/v1/models/shops/predict", json=GOOD).status_code == 401
        assert http.post("/v1/models/shops/predict", json=GOOD,
                         headers={"X-API-Key": "wrong"}).status_code == 401
        ok = http.post("/v1/models/shops/predict", json=GOOD,
                       headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        assert http.get("/health").status_code == 200  # probes need no key
        assert json.loads(http.get("/ready").text)["ready"] is True


def test_serve_command_runs_uvicorn_and_shuts_down_cleanly(model_dir: Path) -> None:
    import signal
    import subprocess
    import sys

    import httpx

    from tests.conftest import free_port, wait_ready

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "polymodal.cli.main", "serve",
                               str(model_dir), "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(server, base)
        response = httpx.post(f"{base}/v1/models/shops/predict", json=GOOD)
        assert [p["label"] for p in response.json()["predictions"]] == ["pos", "neg"]
        server.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert server.wait(timeout=30) in (0, -signal.SIGTERM)
        assert "Traceback" not in server.stderr.read()
    finally:
        if server.poll() is None:
            server.kill()


def test_serve_refuses_a_missing_model_directory(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    result = run_cli("serve", str(tmp_path / "nope"))
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: model directory not found")


def test_openapi_describes_each_models_inputs(model_dir: Path) -> None:
    with client(model_dir) as http:
        schema = http.get("/openapi.json").json()
        body = schema["paths"]["/v1/models/shops/predict"]["post"]["requestBody"]
        record = body["content"]["application/json"]["schema"]["properties"]["records"]["items"]
        assert record["properties"]["price"]["type"] == ["number", "null"]
        assert set(record["properties"]) == {"shop", "price"}


def test_multipart_form_is_one_record(model_dir: Path) -> None:
    with client(model_dir) as http:
        url = "/v1/models/shops/predict"
        form = {"shop": (None, "north"), "price": (None, "10")}
        response = http.post(url, files=form)
        assert response.status_code == 200, response.text
        assert [p["label"] for p in response.json()["predictions"]] == ["pos"]
        bad_number = http.post(url, files={"shop": (None, "north"), "price": (None, "ten")})
        assert bad_number.status_code == 422
        assert bad_number.json()["field"] == "price"
        a_file = http.post(url, files={"shop": ("shop.txt", b"north", "text/plain")})
        assert a_file.status_code == 422
        assert a_file.json() == {"error": "categorical inputs take a value, not a file",
                                 "field": "shop"}
        assert http.get("/health").status_code == 200


def test_binary_fields_take_bytes_never_a_path() -> None:
    from polymodal.modalities import modality_named
    from polymodal.serving.requests import BadRequest, check_records

    modalities = {"scan": modality_named("image"), "note": modality_named("text")}
    records = check_records({"records": [{"scan": {"base64": "iVBORw0KGgo="}, "note": "x"}]},
                            modalities)
    assert records == [{"scan": b"\x89PNG\r\n\x1a\n", "note": "x"}]
    for value, message in (("/etc/passwd", "image inputs are files"),
                           ({"base64": "@@not base64@@"}, "not valid base64")):
        with pytest.raises(BadRequest) as caught:
            check_records({"records": [{"scan": value}]}, modalities)
        assert caught.value.message.startswith(message)
        assert caught.value.field == "records[0].scan"


def test_openapi_offers_multipart(model_dir: Path) -> None:
    with client(model_dir) as http:
        schema = http.get("/openapi.json").json()
        content = schema["paths"]["/v1/models/shops/predict"]["post"]["requestBody"]["content"]
        assert set(content["multipart/form-data"]["schema"]["properties"]) == {"shop", "price"}


def test_workers_serve_from_several_processes(model_dir: Path) -> None:
    import httpx

    from tests.conftest import serving

    with serving([model_dir], "--workers", "2") as base:
        # /ready answered by one worker; wait until both have loaded and answered.
        import time

        pids: set[int] = set()
        deadline = time.time() + 90  # the second worker may still be loading its models
        with httpx.Client() as http:
            while len(pids) < 2 and time.time() < deadline:
                response = http.post(f"{base}/v1/models/shops/predict", json=GOOD,
                                     headers={"Connection": "close"})
                assert response.status_code == 200
                assert [p["label"] for p in response.json()["predictions"]] == ["pos", "neg"]
                pids.add(int(response.headers["x-worker-pid"]))
                time.sleep(0.05)
        assert len(pids) == 2
