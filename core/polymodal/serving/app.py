"""The FastAPI app behind ``polymodal serve``.

Models are loaded once at start from directories named on the command line; no endpoint
loads anything from a URL or a path given at run time. Errors are JSON
``{"error": ..., "field": ...}`` with a 4xx/5xx status; the server keeps serving.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from polymodal.errors import PolymodalError
from polymodal.serving.batcher import DynamicBatcher, QueueFull
from polymodal.serving.telemetry import ServerMetrics

PUBLIC_PATHS = {"/health", "/ready", "/metrics", "/openapi.json", "/docs"}


@dataclass
class ServeSettings:
    max_batch_size: int = 32
    max_delay_ms: float = 5.0
    max_queue: int = 256
    timeout_s: float = 30.0
    max_body_bytes: int = 16 * 1024 * 1024
    api_key: str | None = None


def _error(status: int, message: str, field: str | None = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": message}
    if field is not None:
        body["field"] = field
    return JSONResponse(body, status_code=status, headers=headers)


def describe(name: str, predictor: Any) -> dict[str, Any]:
    spec = predictor.spec
    task = predictor.model.task
    outputs: dict[str, Any] = {"task": spec.task.name, "target": spec.task.target}
    if hasattr(task, "labels"):
        outputs["labels"] = task.labels
    return {
        "name": name,
        "scenario": spec.scenario,
        "inputs": [{"name": f, "modality": i.modality, "encoder": i.encoder}
                   for i in spec.inputs for f in i.fields],
        "outputs": outputs,
    }


def validate_records(body: Any, inputs: list[str]) -> tuple[list[dict[str, Any]] | None,
                                                           JSONResponse | None]:
    """The request's records, or a 422 naming the offending field."""
    if not isinstance(body, dict) or "records" not in body:
        return None, _error(422, 'expected a JSON object {"records": [...]}', "records")
    records = body["records"]
    if not isinstance(records, list) or not records:
        return None, _error(422, "records must be a non-empty list", "records")
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            return None, _error(422, "each record must be an object", f"records[{i}]")
        if not set(inputs) & set(record):
            return None, _error(422, f"none of the model's inputs ({', '.join(inputs)}) is "
                                     "present", f"records[{i}]")
        for key, value in record.items():
            if key in inputs and not isinstance(value, str | int | float | bool | type(None)):
                return None, _error(422, "a field value must be a string, number or null",
                                    f"records[{i}].{key}")
    return records, None


def create_app(model_dirs: list[str | Path], settings: ServeSettings | None = None,
               device: str | None = None) -> FastAPI:
    """Load the models, then build the app (loading errors surface before serving)."""
    import polymodal

    settings = settings or ServeSettings()
    predictors: dict[str, Any] = {}
    for directory in model_dirs:
        name = Path(directory).resolve().name
        if name in predictors:
            raise PolymodalError(f"two served models are named {name!r}; rename a directory")
        predictors[name] = polymodal.load(directory, device=device)
    metrics = ServerMetrics()
    batchers: dict[str, DynamicBatcher] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        for name, predictor in predictors.items():
            batcher = DynamicBatcher(
                predictor.predict, max_batch_size=settings.max_batch_size,
                max_delay_s=settings.max_delay_ms / 1000, max_queue=settings.max_queue,
                on_batch=metrics.batch_size.labels(model=name).observe)
            batcher.start()
            batchers[name] = batcher
        yield
        await asyncio.gather(*(b.drain() for b in batchers.values()))

    app = FastAPI(title="polymodal", lifespan=lifespan)

    @app.middleware("http")
    async def limits_and_auth(request: Request, call_next):  # type: ignore[no-untyped-def]
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > settings.max_body_bytes:
            return _error(413, f"request body over {settings.max_body_bytes} bytes")
        if settings.api_key and request.url.path not in PUBLIC_PATHS:
            given = request.headers.get("x-api-key") or request.headers.get(
                "authorization", "").removeprefix("Bearer ").strip()
            if not given or not hmac.compare_digest(given, settings.api_key):
                return _error(401, "missing or wrong API key")
        return await call_next(request)

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
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            return 422, _error(422, "request body is not valid JSON", "body")
        records, problem = validate_records(body, predictors[name].input_names)
        if problem is not None:
            return problem.status_code, problem
        assert records is not None
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

    @app.post("/v1/models/{name}/predict", include_in_schema=False)
    async def unknown_model(name: str) -> JSONResponse:
        return _error(404, f"no model named {name!r}", "name")

    return app


def _endpoint(handler: Any, name: str) -> Any:
    async def endpoint(request: Request) -> JSONResponse:
        return await handler(name, request)

    return endpoint


_JSON_TYPES = {"text": ["string", "null"], "numeric": ["number", "null"],
               "categorical": ["string", "integer", "null"]}


def request_schema(predictor: Any) -> dict[str, Any]:
    """The OpenAPI request body of one model: ``records`` with that model's input fields."""
    properties = {f: {"type": _JSON_TYPES.get(i.modality, ["string", "null"]),
                      "description": f"{i.modality} input, encoder {i.encoder}"}
                  for i in predictor.spec.inputs for f in i.fields}
    record = {"type": "object", "properties": properties, "additionalProperties": True}
    body = {"type": "object", "required": ["records"],
            "properties": {"records": {"type": "array", "minItems": 1, "items": record}}}
    return {"requestBody": {"required": True,
                            "content": {"application/json": {"schema": body}}}}
