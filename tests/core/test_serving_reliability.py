"""The server under faults, bad input and hostile clients (issue: reliability and safety).

Each test reproduces a defect found against a live server and checks that it stays fixed:
the batcher survives failures, limits answer with JSON, slow clients are cut off, and the
server keeps serving good requests throughout.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import httpx
import pytest

from polymodal.serving.batcher import DynamicBatcher
from tests.conftest import serving
from tests.core.conftest import GOOD, client

PREDICT = "/v1/models/shops/predict"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


# -- 1. the batcher survives any failure, and /ready tells when it is gone ----------------

def test_batcher_survives_a_request_cancelled_during_the_one_by_one_retry() -> None:
    """A batch fails; while its requests are retried one at a time, the first one's client
    times out. Before the fix, setting its result raised InvalidStateError inside the
    batcher task, and every later request to the model hung."""

    def predict(records: list[dict]) -> list[dict]:
        if len(records) > 1:
            raise ValueError("this batch fails as a whole")
        time.sleep(0.3)
        return [{"x": r["x"]} for r in records]

    async def scenario() -> None:
        batcher = DynamicBatcher(predict, max_batch_size=8, max_delay_s=0.05)
        batcher.start()
        batcher._mean_gap_s = 0.0  # arrivals are close: the two requests batch together
        first = asyncio.ensure_future(asyncio.wait_for(batcher.submit([{"x": 1}]), 0.2))
        second = asyncio.ensure_future(batcher.submit([{"x": 2}]))
        with pytest.raises(TimeoutError):
            await first
        assert await asyncio.wait_for(second, 3) == [{"x": 2}]
        assert await asyncio.wait_for(batcher.submit([{"x": 3}]), 3) == [{"x": 3}]
        assert batcher.alive
        await batcher.drain(1)

    asyncio.run(scenario())


def test_ready_is_503_for_a_model_whose_worker_is_gone_and_it_is_restarted(
        model_dir: Path) -> None:
    with client(model_dir) as http:
        batcher = http.app.state.batchers["shops"]
        http.portal.call(_cancel, batcher)
        down = http.get("/ready")
        assert down.status_code == 503
        assert down.json() == {"ready": False, "models": ["shops"], "restarted": ["shops"]}
        assert http.get("/ready").status_code == 200
        assert http.post(PREDICT, json=GOOD).status_code == 200


async def _cancel(batcher: DynamicBatcher) -> None:
    assert batcher._task is not None
    batcher._task.cancel()
    await asyncio.sleep(0.01)


# -- 3. per-request budget ------------------------------------------------------------------

def test_too_many_records_is_a_413_with_a_json_body(model_dir: Path) -> None:
    with client(model_dir, max_records=50) as http:
        response = http.post(PREDICT, json={"records": [{"price": 1}] * 51})
        assert response.status_code == 413
        assert response.json()["field"] == "records"
        assert "limit is 50" in response.json()["error"]
        huge = http.post(PREDICT, json={"records": [{"price": 1}] * 200000})
        assert huge.status_code == 413 and huge.json()["field"] == "records"
        assert http.post(PREDICT, json={"records": [{"price": 1}] * 50}).status_code == 200


def test_big_requests_run_in_chunks_that_let_other_models_through_and_stop_when_dropped(
        ) -> None:
    calls: list[tuple[str, int]] = []

    def model(name: str):  # noqa: ANN202
        def predict(records: list[dict]) -> list[dict]:
            calls.append((name, len(records)))
            time.sleep(0.02)
            return [{"ok": True} for _ in records]
        return predict

    async def scenario() -> None:
        from concurrent.futures import ThreadPoolExecutor

        shared = ThreadPoolExecutor(max_workers=1)
        big = DynamicBatcher(model("big"), max_batch_size=10, executor=shared)
        small = DynamicBatcher(model("small"), max_batch_size=10, executor=shared)
        big.start()
        small.start()
        big_request = asyncio.ensure_future(big.submit([{}] * 400))  # 40 chunks, ~0.8 s
        await asyncio.sleep(0.1)
        started = time.perf_counter()
        assert len(await small.submit([{}])) == 1
        assert time.perf_counter() - started < 0.3  # did not wait for the 40 chunks
        big_request.cancel()  # the client went away
        await asyncio.sleep(0.2)
        ran = sum(1 for name, _ in calls if name == "big")
        await asyncio.sleep(0.3)
        assert sum(1 for name, _ in calls if name == "big") == ran < 40  # dropped
        assert max(n for _, n in calls) <= 10
        await big.drain(1)
        await small.drain(1)
        shared.shutdown()

    asyncio.run(scenario())


# -- 4. body limits: chunked bodies counted while streaming; a readable 413 ----------------

def test_chunked_body_over_the_limit_is_refused_without_buffering_it(model_dir: Path) -> None:
    with serving([model_dir], "--max-body-mb", "1") as base:
        port = int(base.rsplit(":", 1)[1])
        pid = int(httpx.get(f"{base}/health").headers["x-worker-pid"])
        before = rss_mb(pid)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        chunk = b"[" * (1 << 20)

        def body():  # noqa: ANN202
            for _ in range(64):  # 64 MiB
                yield chunk

        try:
            connection.request("POST", PREDICT, body=body(), encode_chunked=True,
                               headers={"Content-Type": "application/json",
                                        "Transfer-Encoding": "chunked"})
            response = connection.getresponse()
            status, payload = response.status, json.loads(response.read())
        except (BrokenPipeError, ConnectionResetError):  # closed after the drain bound
            status, payload = 413, {"error": "(closed while sending)"}
        assert status == 413, payload
        assert rss_mb(pid) - before < 40  # the body was not kept
        assert httpx.post(f"{base}{PREDICT}", json=GOOD).status_code == 200


def test_an_oversized_body_with_content_length_gets_a_413_the_client_can_read(
        model_dir: Path) -> None:
    with serving([model_dir], "--max-body-mb", "1") as base:
        request = urllib.request.Request(f"{base}{PREDICT}", data=b"x" * (20 << 20),
                                         headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as answered:
            urllib.request.urlopen(request, timeout=30)
        assert answered.value.code == 413
        assert json.loads(answered.value.read())["field"] == "body"


# -- 5. non-finite numbers ------------------------------------------------------------------

@pytest.mark.parametrize("raw,field", [
    (b'{"records": [{"shop": "north", "price": Infinity}]}', "records[0].price"),
    (b'{"records": [{"shop": "north", "price": NaN}]}', "records[0].price"),
    (b'{"records": [{"shop": "north", "price": 1e999}]}', "records[0].price"),
    (b'{"records": [{"shop": "north", "price": 1}, {"shop": "x", "price": 1e308}]}',
     "records[1].price"),
    (b'{"records": [{"shop": "north", "price": "inf"}]}', "records[0].price"),
])
def test_non_finite_numbers_are_a_422_naming_the_field(model_dir: Path, raw: bytes,
                                                      field: str) -> None:
    with client(model_dir) as http:
        response = http.post(PREDICT, content=raw,
                             headers={"content-type": "application/json"})
        assert response.status_code == 422, response.text
        assert response.json()["field"] == field
        assert http.post(PREDICT, json=GOOD).status_code == 200


# -- 8. every error is JSON {"error", "field"?} ---------------------------------------------

def test_http_errors_have_the_json_shape(model_dir: Path) -> None:
    with client(model_dir) as http:
        for response in (http.get("/nope"), http.get(PREDICT), http.post(PREDICT + "/"),
                         http.get("/v1/models/")):
            assert response.status_code in (404, 405), response.text
            assert set(response.json()) <= {"error", "field"} and response.json()["error"]
        assert http.post(PREDICT + "/", json=GOOD, follow_redirects=False).status_code == 404
        for depth in (950, 100_000):
            deep = b'{"records": ' + b"[" * depth + b"]" * depth + b"}"
            response = http.post(PREDICT, content=deep,
                                 headers={"content-type": "application/json"})
            assert 400 <= response.status_code < 500, response.text
            assert "error" in response.json()


def test_non_ascii_api_keys_are_401_or_accepted_never_500(model_dir: Path) -> None:
    with client(model_dir, api_key="s3cret") as http:
        response = http.post(PREDICT, json=GOOD, headers={"X-API-Key": "clé".encode()})
        assert response.status_code == 401 and response.json()["field"] == "api_key"
        bearer = http.post(PREDICT, json=GOOD, headers={"Authorization": "Bearer é".encode()})
        assert bearer.status_code == 401
    with client(model_dir, api_key="clé-ü") as http:
        assert http.post(PREDICT, json=GOOD).status_code == 401
        ok = http.post(PREDICT, json=GOOD, headers={"X-API-Key": "clé-ü".encode()})
        assert ok.status_code == 200


# -- 9. slow clients ------------------------------------------------------------------------

def _closed_within(sock: socket.socket, seconds: float, trickle: bytes = b"") -> float:
    """Seconds until the server closes ``sock``, sending ``trickle`` a byte every 0.3 s."""
    started = time.perf_counter()
    sock.settimeout(0.3)
    sent = 0
    while time.perf_counter() - started < seconds:
        try:
            if sock.recv(65536) == b"":
                return time.perf_counter() - started
        except TimeoutError:
            pass
        except ConnectionResetError:
            return time.perf_counter() - started
        if sent < len(trickle):
            try:
                sock.send(trickle[sent:sent + 1])
            except (BrokenPipeError, ConnectionResetError):
                return time.perf_counter() - started
            sent += 1
    raise AssertionError(f"connection still open after {seconds} s")


def test_slow_clients_are_cut_off_while_others_are_served(model_dir: Path) -> None:
    with serving([model_dir], "--header-timeout-s", "1", "--body-timeout-s", "1") as base:
        port = int(base.rsplit(":", 1)[1])
        headers = (f"POST {PREDICT} HTTP/1.1\r\nHost: localhost\r\n"
                   "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n").encode()
        results: dict[str, float] = {}

        def slow(name: str, first: bytes, trickle: bytes) -> None:
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(first)
                results[name] = _closed_within(sock, 6, trickle)

        threads = [threading.Thread(target=slow, args=args) for args in (
            ("headers trickle", b"", headers),
            ("body trickle", headers, b"x" * 100),
            ("no body", headers, b""),
            ("idle", b"", b""))]
        for thread in threads:
            thread.start()
        good = [httpx.post(f"{base}{PREDICT}", json=GOOD).status_code for _ in range(5)]
        for thread in threads:
            thread.join()
        assert good == [200] * 5
        assert set(results) == {"headers trickle", "body trickle", "no body", "idle"}
        assert all(seconds < 3 for seconds in results.values()), results


# -- 10. parsing does not stall the event loop ----------------------------------------------

def test_json_parsing_and_validation_run_off_the_event_loop(
        model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 15 MB body parsed on the loop stalled /health for seconds; the latency under load
    is measured by benchmarks/serve_load.py (docs/benchmarks.md)."""
    from polymodal.serving import app as app_module

    seen: list[object] = []
    real = app_module.check_records

    def recording(*args: object, **kwargs: object) -> object:
        seen.append(asyncio._get_running_loop())  # None in a worker thread
        return real(*args, **kwargs)

    monkeypatch.setattr(app_module, "check_records", recording)
    with client(model_dir) as http:
        body = {"records": [{"shop": "north", "price": 1, "note": "tasty " * 500_000}]}
        assert http.post(PREDICT, json=body).status_code == 200
    assert seen == [None]


# -- 12./13. localhost exposure and the docs page -------------------------------------------

def test_predict_needs_a_json_or_multipart_content_type(model_dir: Path) -> None:
    with client(model_dir) as http:
        simple = http.post(PREDICT, content=json.dumps(GOOD),
                           headers={"content-type": "text/plain"})
        assert simple.status_code == 415 and simple.json()["field"] == "content-type"


def test_host_header_is_checked_on_a_loopback_server(model_dir: Path) -> None:
    with serving([model_dir], "--api-key-env", "POLYMODAL_TEST_KEY") as base:
        key = {"X-API-Key": "k3y"}
        rebound = httpx.post(f"{base}{PREDICT}", json=GOOD,
                             headers={"Host": "attacker.example", **key})
        assert rebound.status_code == 403 and rebound.json()["field"] == "host"
        ok = httpx.post(f"{base}{PREDICT}", json=GOOD, headers={"Host": "localhost:1", **key})
        assert ok.status_code == 200
        assert httpx.get(f"{base}/openapi.json").status_code == 401
        assert httpx.get(f"{base}/openapi.json", headers=key).status_code == 200
        assert httpx.get(f"{base}/docs").status_code == 401
        bare = httpx.post(f"{base}{PREDICT}", json=GOOD, headers={"Authorization": "k3y"})
        assert bare.status_code == 401
        docs = httpx.get(f"{base}/docs", headers=key).text
        assert "cdn" not in docs.lower() and "<script" not in docs and 'href="/"' in docs


@pytest.fixture(autouse=True)
def _test_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYMODAL_TEST_KEY", "k3y")


# -- 14. SIGTERM: the drain deadline covers the whole shutdown ------------------------------

def test_sigterm_with_requests_in_flight_stops_within_the_drain_deadline(
        model_dir: Path) -> None:
    import signal
    import subprocess
    import sys

    from tests.conftest import free_port, wait_ready

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "polymodal.cli.main", "serve",
                               str(model_dir), "--port", str(port), "--drain-s", "2",
                               "--max-batch-size", "1", "--max-records", "100000",
                               "--max-queue", "100000"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(server, base)
        big = {"records": [{"shop": "north", "price": 10}] * 60000}  # minutes of batches of 1

        def send() -> None:
            try:
                httpx.post(f"{base}{PREDICT}", json=big, timeout=120)
            except httpx.TransportError:
                pass

        senders = [threading.Thread(target=send) for _ in range(3)]
        for sender in senders:
            sender.start()
        time.sleep(1.5)
        started = time.perf_counter()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        took = time.perf_counter() - started
        assert took < 2 + 3, took  # the drain deadline plus at most one batch and exit
        for sender in senders:
            sender.join()
    finally:
        if server.poll() is None:
            server.kill()


# -- 16. server settings --------------------------------------------------------------------

@pytest.mark.parametrize("option,value", [("--max-body-mb", "-1"), ("--max-queue", "0"),
                                          ("--timeout-s", "0"), ("--max-records", "0"),
                                          ("--port", "99999")])
def test_bad_server_settings_are_refused(model_dir: Path, option: str, value: str) -> None:
    from tests.conftest import run_cli

    result = run_cli("serve", str(model_dir), option, value)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and option in lines[0]
