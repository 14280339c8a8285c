"""The FastAPI app behind ``polymodal serve``.

Models are loaded once at start from directories named on the command line; no endpoint
loads anything from a URL or a path given at run time. Errors are JSON
``{"error": ..., "field": ...}`` with a 4xx/5xx status; the server keeps serving.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from polymodal.errors import PolymodalError
from polymodal.serving.batcher import DynamicBatcher, QueueFull
from polymodal.serving.requests import (
    BINARY_MODALITIES,
    LIST_MODALITIES,
    BadRequest,
    check_records,
    field_modalities,
    form_record,
)
from polymodal.serving.telemetry import ServerMetrics

# The playground page itself holds no data: it asks for the key and sends it with requests.
PUBLIC_PATHS = {"/", "/health", "/ready", "/metrics", "/openapi.json", "/docs"}


@dataclass
class ServeSettings:
    max_batch_size: int = 32
    max_delay_ms: float = 5.0
    max_queue: int = 256
    timeout_s: float = 30.0
    max_body_bytes: int = 16 * 1024 * 1024
    api_key: str | None = None
    precision: str = "fp32"


def _error(status: int, message: str, field: str | None = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": message}
    if field is not None:
        body["field"] = field
    return JSONResponse(body, status_code=status, headers=headers)


def describe(name: str, predictor: Any) -> dict[str, Any]:
    return {"name": name, "scenario": predictor.scenario,
            "inputs": predictor.describe_inputs(), "outputs": predictor.describe_outputs()}


def create_app(model_dirs: list[str | Path], settings: ServeSettings | None = None,
               device: str | None = None) -> FastAPI:
    """Load the models, then build the app (loading errors surface before serving)."""
    import polymodal

    settings = settings or ServeSettings()
    # One thread loads the models and runs every forward pass. When several threads drive
    # torch, each gets its own OpenMP team and they slow each other down (measured: 62 vs 47
    # reviews/s one at a time on 2 cores); the event loop never runs torch.
    torch_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="torch")
    predictors: dict[str, Any] = {}
    for directory in model_dirs:
        name = Path(directory).resolve().name
        if name in predictors:
            raise PolymodalError(f"two served models are named {name!r}; rename a directory")
        predictors[name] = torch_thread.submit(polymodal.load, directory, device=device,
                                               precision=settings.precision).result()
    metrics = ServerMetrics()
    batchers: dict[str, DynamicBatcher] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        for name, predictor in predictors.items():
            batcher = DynamicBatcher(
                predictor.predict, max_batch_size=settings.max_batch_size,
                max_delay_s=settings.max_delay_ms / 1000, max_queue=settings.max_queue,
                on_batch=metrics.batch_size.labels(model=name).observe, executor=torch_thread)
            batcher.start()
            batchers[name] = batcher
        yield
        await asyncio.gather(*(b.drain() for b in batchers.values()))
        torch_thread.shutdown(wait=True)

    app = FastAPI(title="polymodal", lifespan=lifespan)

    app.add_middleware(LimitsAndAuth, settings=settings)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        ok = len(batchers) == len(predictors)
        return JSONResponse({"ready": ok, "models": sorted(batchers)},
                            status_code=200 if ok else 503)

    @app.get("/metrics")
    async def prometheus() -> Response:
        for name, batcher in batchers.items():
            metrics.queue_depth.labels(model=name).set(batcher.depth)
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        return {"models": [describe(n, p) for n, p in predictors.items()]}

    async def predict(name: str, request: Request) -> JSONResponse:
        started = time.perf_counter()
        status, response = await _predict(name, request)
        metrics.requests.labels(model=name, status=str(status)).inc()
        metrics.latency.labels(model=name).observe(time.perf_counter() - started)
        return response

    async def _predict(name: str, request: Request) -> tuple[int, JSONResponse]:
        raw = await request.body()
        if len(raw) > settings.max_body_bytes:
            return 413, _error(413, f"request body over {settings.max_body_bytes} bytes")
        modalities = field_modalities(predictors[name])
        try:
            records = await _records(request, raw, modalities)
        except BadRequest as bad:
            return bad.status, _error(bad.status, bad.message, bad.field)
        try:
            results = await asyncio.wait_for(batchers[name].submit(records),
                                             settings.timeout_s)
        except QueueFull:
            return 503, _error(503, "the model's queue is full; retry shortly",
                               headers={"Retry-After": "1"})
        except TimeoutError:
            return 504, _error(504, f"no prediction within {settings.timeout_s} s")
        except PolymodalError as exc:
            return 422, _error(422, str(exc))
        return 200, JSONResponse({"predictions": results})

    for name, predictor in predictors.items():
        app.add_api_route(f"/v1/models/{name}/predict", _endpoint(predict, name),
                          methods=["POST"], name=f"predict {name}",
                          summary=f"Predict with {name}",
                          openapi_extra=request_schema(predictor))

    @app.get("/", include_in_schema=False)
    async def playground() -> HTMLResponse:
        return HTMLResponse(PLAYGROUND.read_text(encoding="utf-8"))

    @app.post("/v1/models/{name}/predict", include_in_schema=False)
    async def unknown_model(name: str) -> JSONResponse:
        return _error(404, f"no model named {name!r}", "name")

    return app


PLAYGROUND = Path(__file__).with_name("playground.html")


async def _records(request: Request, raw: bytes, modalities: dict[str, str]) -> list[Any]:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        try:
            form = await request.form()
        except Exception as exc:  # starlette raises several types for broken multipart
            raise BadRequest(f"malformed multipart body: {exc}", "body") from None
        return await form_record(form, modalities)
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        raise BadRequest("request body is not valid JSON", "body") from None
    return check_records(body, modalities)


class LimitsAndAuth:
    """Body-size limit (413), API key (401) and the ``X-Worker-Pid`` header, as plain ASGI
    middleware (Starlette's ``BaseHTTPMiddleware`` costs about a millisecond a request)."""

    def __init__(self, app: Any, settings: ServeSettings) -> None:
        self.app = app
        self.settings = settings
        self.pid = str(os.getpid()).encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        limit = self.settings.max_body_bytes
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            await _error(413, f"request body over {limit} bytes")(scope, receive, send)
            return
        key = self.settings.api_key
        if key and scope["path"] not in PUBLIC_PATHS:
            given = headers.get("x-api-key") or headers.get(
                "authorization", "").removeprefix("Bearer ").strip()
            if not given or not hmac.compare_digest(given, key):
                await _error(401, "missing or wrong API key")(scope, receive, send)
                return

        async def send_with_pid(message: Any) -> None:
            if message["type"] == "http.response.start":  # which replica answered
                message["headers"] = [*message.get("headers", []),
                                      (b"x-worker-pid", self.pid)]
            await send(message)

        await self.app(scope, receive, send_with_pid)


def _endpoint(handler: Any, name: str) -> Any:
    async def endpoint(request: Request) -> JSONResponse:
        return await handler(name, request)

    return endpoint


_JSON_TYPES: dict[str, Any] = {
    "text": ["string", "null"], "numeric": ["number", "null"],
    "categorical": ["string", "integer", "null"], "id": ["string", "integer", "null"]}


def _json_property(modality: str, encoder: str) -> dict[str, Any]:
    description = f"{modality} input, encoder {encoder}"
    if modality in BINARY_MODALITIES:
        return {"type": "object", "required": ["base64"], "description": description,
                "properties": {"base64": {"type": "string", "format": "byte"}}}
    if modality in LIST_MODALITIES:
        return {"type": ["array", "null"], "description": description,
                "items": {"type": ["string", "integer"]}}
    return {"type": _JSON_TYPES.get(modality, ["string", "null"]), "description": description}


def request_schema(predictor: Any) -> dict[str, Any]:
    """The OpenAPI request body of one model: JSON ``records`` with that model's input
    fields, or one multipart record (files for binary inputs)."""
    inputs = predictor.describe_inputs()
    properties = {i["name"]: _json_property(i["modality"], i["encoder"]) for i in inputs}
    record = {"type": "object", "properties": properties, "additionalProperties": True}
    body = {"type": "object", "required": ["records"],
            "properties": {"records": {"type": "array", "minItems": 1, "items": record}}}
    form = {"type": "object", "properties": {
        i["name"]: {"type": "string", "format": "binary"}
        if i["modality"] in BINARY_MODALITIES else {"type": "string"} for i in inputs}}
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": body}, "multipart/form-data": {"schema": form}}}}
