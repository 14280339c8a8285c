"""The FastAPI app behind ``polymodal serve``.

Models are loaded once at start from directories named on the command line; no endpoint
loads anything from a URL or a path given at run time. Every error is JSON
``{"error": ..., "field"?: ...}`` with a 4xx/5xx status; the server keeps serving.
docs/serving.md lists each limit, its default and its status code.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException

from polymodal.errors import FieldError, PolymodalError, RequestTooLarge
from polymodal.modalities import Modality, modality_named
from polymodal.serving.batcher import DynamicBatcher, QueueFull, ShuttingDown
from polymodal.serving.guard import Guard
from polymodal.serving.requests import (
    BadRequest,
    check_records,
    field_modalities,
    form_record,
)
from polymodal.serving.telemetry import ServerMetrics
from polymodal.strict_json import to_json

log = logging.getLogger("polymodal.serving")
PREDICT_MEDIA_TYPES = ("application/json", "multipart/form-data")
# JSON values (fields, list items) one request may hold per record it is allowed.
VALUES_PER_RECORD = 256
# Bodies up to this size are parsed on the event loop (well under a millisecond); larger
# ones in a worker thread, so that a big body never holds up other requests.
INLINE_PARSE_BYTES = 64 * 1024


@dataclass
class ServeSettings:
    max_batch_size: int = 32
    max_delay_ms: float = 5.0
    max_queue: int = 256
    timeout_s: float = 30.0
    max_body_bytes: int = 16 * 1024 * 1024
    max_records: int = 1024
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_connections: int = 256
    drain_s: float = 30.0
    api_key: str | None = None
    precision: str = "fp32"
    # Host header values accepted (DNS-rebinding guard); None accepts any.
    allowed_hosts: list[str] | None = field(default=None)

    def __post_init__(self) -> None:
        positive = {"--max-batch-size": self.max_batch_size, "--max-queue": self.max_queue,
                    "--timeout-s": self.timeout_s,
                    "--max-body-mb": self.max_body_bytes / (1024 * 1024),
                    "--max-records": self.max_records,
                    "--header-timeout-s": self.header_timeout_s,
                    "--body-timeout-s": self.body_timeout_s,
                    "--max-connections": self.max_connections}
        for flag, value in positive.items():
            if not value > 0:
                raise PolymodalError(f"{flag} must be greater than 0 (got {value})")
        for flag, value in {"--max-delay-ms": self.max_delay_ms,
                            "--drain-s": self.drain_s}.items():
            if not value >= 0:
                raise PolymodalError(f"{flag} must be 0 or more (got {value})")


class StrictJSONResponse(JSONResponse):
    """JSON with no NaN/Infinity in it (they are not JSON): non-finite numbers are null."""

    def render(self, content: Any) -> bytes:
        return to_json(content).encode("utf-8")


def _error(status: int, message: str, field: str | None = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": message}
    if field is not None:
        body["field"] = field
    return JSONResponse(body, status_code=status, headers=headers)


def describe(name: str, predictor: Any) -> dict[str, Any]:
    """A served model: its inputs (with each modality's wire format, which the playground
    builds its form from) and outputs."""
    inputs = []
    for item in predictor.describe_inputs():
        modality = modality_named(item["modality"])
        wire: dict[str, Any] = {"wire": modality.wire}
        if modality.media_types:
            wire["media_types"] = list(modality.media_types)
        inputs.append({**item, **wire})
    return {"name": name, "scenario": predictor.scenario, "inputs": inputs,
            "outputs": predictor.describe_outputs()}


def _parse_json(raw: bytes, modalities: dict[str, Modality], predictor: Any,
                max_records: int) -> list[Any]:
    """Body -> checked records (runs in a thread: big bodies must not stall the loop)."""
    # json.loads holds the GIL: a body of a million small values would stall every other
    # request for a second. Values are counted first (a C-speed scan) and a body with far
    # more than ``max_records`` records can hold is refused unparsed.
    values = raw.count(b",") + raw.count(b":")
    if values > max_records * VALUES_PER_RECORD:
        raise BadRequest(f"the body holds about {values:,} JSON values; the limit is "
                         f"{max_records * VALUES_PER_RECORD:,} ({VALUES_PER_RECORD} per record "
                         "of --max-records)", "records", 413)
    try:
        body = json.loads(raw or b"null")
    except RecursionError:
        raise BadRequest("request body is nested too deeply", "body") from None
    except ValueError:
        raise BadRequest("request body is not valid JSON", "body") from None
    records = check_records(body, modalities, max_records)
    _validate(predictor, records)
    return records


def _validate(predictor: Any, records: list[Any]) -> None:
    """The model's own checks of one request (non-finite numbers, image budgets ...)."""
    check = getattr(predictor, "check_request", None) or getattr(predictor, "validate", None)
    if check is None:
        return
    try:
        check(records)
    except FieldError as exc:
        raise BadRequest(str(exc), f"records[{exc.index}].{exc.field}") from None
    except RequestTooLarge as exc:
        raise BadRequest(str(exc), "records", 413) from None
    except PolymodalError as exc:
        raise BadRequest(str(exc), "records") from None


async def _wait_for_disconnect(request: Request) -> None:
    """Returns when the client has gone (its body is already read)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


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
    async def lifespan(app: FastAPI):
        for name, predictor in predictors.items():
            batcher = DynamicBatcher(
                predictor.predict, max_batch_size=settings.max_batch_size,
                max_delay_s=settings.max_delay_ms / 1000, max_queue=settings.max_queue,
                on_batch=metrics.batch_size.labels(model=name).observe, executor=torch_thread,
                name=name)
            batcher.start()
            batchers[name] = batcher
        yield
        # uvicorn has already given open requests ``drain_s`` to finish; what is still
        # queued is answered 503 here, and a forward pass in flight is not waited for.
        await asyncio.gather(*(b.drain(timeout_s=0.0) for b in batchers.values()))
        torch_thread.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="polymodal", lifespan=lifespan, docs_url=None, redoc_url=None,
                  default_response_class=StrictJSONResponse)
    app.router.redirect_slashes = False
    app.add_middleware(Guard, settings=settings)
    app.state.batchers = batchers

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = (exc.errors() or [{}])[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        return _error(422, str(first.get("msg", "invalid request")), where)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error on %s: %s", request.url.path, type(exc).__name__)
        return _error(500, f"internal error ({type(exc).__name__}); see the server log")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        down = sorted(n for n, b in batchers.items() if not b.alive)
        for name in down:  # answer not ready now; the restarted worker serves the next
            batchers[name].ensure_running()
        ok = len(batchers) == len(predictors) and not down
        body: dict[str, Any] = {"ready": ok, "models": sorted(batchers)}
        if down:
            body["restarted"] = down
        return JSONResponse(body, status_code=200 if ok else 503)

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
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type not in PREDICT_MEDIA_TYPES:
            return 415, _error(415, "send the records as application/json (or one record "
                               "as multipart/form-data)", "content-type")
        predictor = predictors[name]
        modalities = field_modalities(predictor)
        try:
            if media_type == "multipart/form-data":
                records = await _form_records(request, modalities)
                await asyncio.to_thread(_validate, predictor, records)
            else:
                raw = await request.body()
                if len(raw) <= INLINE_PARSE_BYTES:  # microseconds: a thread hop costs more
                    records = _parse_json(raw, modalities, predictor, settings.max_records)
                else:
                    records = await asyncio.to_thread(_parse_json, raw, modalities, predictor,
                                                      settings.max_records)
        except BadRequest as bad:
            return bad.status, _error(bad.status, bad.message, bad.field)
        work = asyncio.ensure_future(batchers[name].submit(records))
        gone = asyncio.ensure_future(_wait_for_disconnect(request))
        try:
            done, _ = await asyncio.wait({work, gone}, timeout=settings.timeout_s,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if work not in done:
            work.cancel()  # the batcher skips it (or stops between its chunks)
            if gone in done:
                return 499, _error(499, "client closed the request")
            return 504, _error(504, f"no prediction within {settings.timeout_s:g} s")
        try:
            results = work.result()
        except QueueFull:
            return 503, _error(503, "the model's queue is full; retry shortly",
                               headers={"Retry-After": "1"})
        except ShuttingDown:
            return 503, _error(503, "the server is shutting down")
        except FieldError as exc:
            return 422, _error(422, str(exc), f"records[{exc.index}].{exc.field}")
        except PolymodalError as exc:
            return 422, _error(422, str(exc), "records")
        except Exception as exc:  # a model failure answers this request, not the server
            log.error("model %s failed on a request: %s", name, type(exc).__name__)
            return 500, _error(500, f"the model failed ({type(exc).__name__}); see the "
                               "server log")
        return 200, StrictJSONResponse({"predictions": results})

    async def _form_records(request: Request, modalities: dict[str, Modality]) -> list[Any]:
        try:
            form = await request.form()
        except Exception as exc:  # starlette raises several types for broken multipart
            raise BadRequest(f"malformed multipart body: {exc}", "body") from None
        return await form_record(form, modalities)

    for name, predictor in predictors.items():
        app.add_api_route(f"/v1/models/{name}/predict", _endpoint(predict, name),
                          methods=["POST"], name=f"predict {name}",
                          summary=f"Predict with {name}",
                          openapi_extra=request_schema(predictor))

    @app.get("/", include_in_schema=False)
    async def playground() -> HTMLResponse:
        return HTMLResponse(PLAYGROUND.read_text(encoding="utf-8"))

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        # Swagger UI would load its scripts from a CDN (a blank page offline).
        return HTMLResponse(DOCS_PAGE)

    @app.post("/v1/models/{name}/predict", include_in_schema=False)
    async def unknown_model(name: str) -> JSONResponse:
        return _error(404, f"no model named {name!r}", "name")

    return app


PLAYGROUND = Path(__file__).with_name("playground.html")
DOCS_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>polymodal API</title></head><body>
<h1>polymodal API</h1>
<p>Try the models in the <a href="/">playground</a>. The OpenAPI description is at
<a href="/openapi.json">/openapi.json</a> (send the API key if the server has one).</p>
</body></html>"""


def _endpoint(handler: Any, name: str) -> Any:
    async def endpoint(request: Request) -> JSONResponse:
        return await handler(name, request)

    return endpoint


def _json_property(modality_name: str, encoder: str) -> dict[str, Any]:
    schema = dict(modality_named(modality_name).schema())
    described = f"{modality_name} input, encoder {encoder}"
    schema["description"] = (f"{described}: {schema['description']}"
                             if schema.get("description") else described)
    return schema


def request_schema(predictor: Any) -> dict[str, Any]:
    """The OpenAPI request body of one model: JSON ``records`` with that model's input
    fields (each its modality's schema), or one multipart record (files for binary
    inputs)."""
    inputs = predictor.describe_inputs()
    properties = {i["name"]: _json_property(i["modality"], i["encoder"]) for i in inputs}
    record = {"type": "object", "properties": properties, "additionalProperties": True}
    body = {"type": "object", "required": ["records"],
            "properties": {"records": {"type": "array", "minItems": 1, "items": record}}}
    form = {"type": "object", "properties": {
        i["name"]: {"type": "string", "format": "binary"}
        if modality_named(i["modality"]).binary else {"type": "string"} for i in inputs}}
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": body}, "multipart/form-data": {"schema": form}}}}
