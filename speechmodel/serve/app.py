"""The FastAPI application: routes, limits and errors over ``EmotionService``.

Routes:
    ``POST /v1/classify``: the audio as a multipart upload (field ``file``;
        ``top_k``, ``window``, ``hop``, ``segment``, ``vad``, ``min_confidence`` as form fields
        or query parameters) or as the raw request body (options as query
        parameters). Answers the JSON of ``infer.py --format json`` for
        one file.
    ``POST /v1/classify_speaker``: several recordings of one speaker as
        one multipart upload (each in a ``file`` field; the options as for
        ``/v1/classify``). Answers the JSON of ``infer.py --same_speaker
        --format json``: a model trained with speaker normalisation
        standardises them with their own statistics (400 for another
        model); a file that cannot be analysed is a result with an
        ``error``, and the others are analysed.
    ``GET /v1/model``: the model, its classes and settings.
    ``GET /health``: liveness and load.
    ``GET /``: the web page (``static/index.html``).
    ``GET /docs``, ``GET /openapi.json``: the API described for people
        (Swagger UI) and for programs (OpenAPI).

Every error is JSON ``{"error": message, "status": code[, "kind"]}``: 400
(bad parameters or form, or more windows than ``max_windows``), 404, 405,
408 (an upload too slow, or the analysis past the request time), 413
(upload size or audio duration), 422 (not readable audio or too short,
naming the problem and the upload as the client named it), 503 with
``Retry-After`` (too many uploads arriving or requests in progress).

A body is read in full before the request takes one of the model's
places (``max_pending``): uploads have their own count (``max_uploads``),
time (``upload_timeout``) and minimum rate (``min_upload_rate``), so
clients that trickle their body are let go within seconds and never lock
the others out.
"""

import asyncio
import concurrent.futures
import os
import threading
import time

from speechmodel.serve.service import MAX_WINDOW, MIN_HOP, MIN_WINDOW, OPTIONS, ServiceError, upload_name

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")


def _parse_multipart(body, content_type, max_fields=16):
    """(fields, files) of a multipart/form-data body held in memory:
    ``fields`` name -> str, ``files`` a list of (field name, filename,
    bytes) in order (a field name may repeat there, never among
    ``fields``)."""
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, params = parse_options_header(content_type.encode("latin-1"))
    boundary = params.get(b"boundary")
    if not boundary:
        raise ServiceError(400, "multipart/form-data without a boundary", kind="bad_form")
    parts, current = [], {}

    def on_part_begin():
        current.clear()
        current.update(headers={}, data=[], field=b"", value=b"")

    def on_header_field(data, start, end):
        current["field"] += data[start:end]

    def on_header_value(data, start, end):
        current["value"] += data[start:end]

    def on_header_end():
        current["headers"][current["field"].decode("latin-1").lower()] = current["value"].decode("utf-8", "replace")
        current["field"], current["value"] = b"", b""

    def on_part_data(data, start, end):
        current["data"].append(bytes(data[start:end]))

    def on_part_end():
        if len(parts) >= max_fields:
            raise ServiceError(400, f"too many form fields (at most {max_fields})", kind="bad_form")
        parts.append((dict(current["headers"]), b"".join(current["data"])))

    parser = MultipartParser(
        boundary,
        {"on_part_begin": on_part_begin, "on_header_field": on_header_field,
         "on_header_value": on_header_value, "on_header_end": on_header_end,
         "on_part_data": on_part_data, "on_part_end": on_part_end},
    )
    try:
        parser.write(body)
        parser.finalize()
    except ServiceError:
        raise
    except Exception as exc:
        raise ServiceError(400, f"malformed multipart body ({exc})", kind="bad_form") from None
    fields, files = {}, []
    for headers, data in parts:
        _, disposition = parse_options_header(headers.get("content-disposition", "").encode("utf-8"))
        name = disposition.get(b"name", b"").decode("utf-8", "replace")
        if not name:
            raise ServiceError(400, "a form part without a name", kind="bad_form")
        if b"filename" in disposition:
            files.append((name, disposition[b"filename"].decode("utf-8", "replace"), data))
        elif name in fields:
            raise ServiceError(400, f"the form field {name!r} is given twice", kind="bad_form")
        else:
            fields[name] = data.decode("utf-8", "replace")
    return fields, files


# What /openapi.json (and /docs) say of the options: the same names as
# service.OPTIONS, which service._parse_options checks.
_OPTION_SCHEMAS = {
    "top_k": ({"type": "integer", "minimum": 1, "default": 1},
              "how many of the most probable emotions to list"),
    "window": ({"type": "number", "minimum": MIN_WINDOW, "maximum": MAX_WINDOW},
               "window length in seconds for recordings longer than the model's utterance length"),
    "hop": ({"type": "number", "minimum": MIN_HOP}, "hop between windows in seconds (at most window)"),
    "segment": ({"type": "string", "enum": ["windows", "vad"], "default": "windows"},
                "fixed windows, or utterances found by a voice activity detector"),
    "vad": ({"type": "string", "enum": ["auto", "silero", "voicing"], "default": "auto"},
            "the voice activity detector for segment=vad"),
    "min_confidence": ({"type": "number", "minimum": 0, "maximum": 1},
                       "a result below this probability is marked uncertain (its probabilities are kept)"),
}
assert tuple(_OPTION_SCHEMAS) == OPTIONS


def _openapi_upload(*, many):
    """The hand-written request description of a classify endpoint: a
    multipart form with the audio in ``file`` (several for a speaker), the
    options as form fields or query parameters."""
    options = {name: dict(schema, description=text) for name, (schema, text) in _OPTION_SCHEMAS.items()}
    audio = {"type": "string", "format": "binary",
             "description": "an audio file (WAV, FLAC, Ogg/Opus, MP3, ...)"}
    file = {"type": "array", "items": audio} if many else audio
    content = {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"], "properties": {"file": file, **options}}}}
    parameters = [{"name": name, "in": "query", "required": False, "schema": schema}
                  for name, schema in options.items()]
    if not many:
        content["application/octet-stream"] = {"schema": audio}
        parameters.append({"name": "filename", "in": "query", "required": False, "schema": {
            "type": "string", "description": "the name of a raw-body upload, used in the answer"}})
    return {"requestBody": {"required": True, "content": content}, "parameters": parameters,
            "responses": {"400": {"description": "a bad option or form"},
                          "408": {"description": "the upload or the analysis took too long"},
                          "413": {"description": "the upload is too large or too long"},
                          "422": {"description": "the upload is not readable audio, or too short"},
                          "503": {"description": "the service is full; retry after Retry-After seconds"}}}


def create_app(service, *, executor_workers=64):
    """The FastAPI app serving ``service`` (an EmotionService). Closing
    the app (its lifespan's end) closes the service: the batching thread
    stops and the temporary directory is removed."""
    import contextlib

    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    executor = concurrent.futures.ThreadPoolExecutor(max_workers=executor_workers,
                                                     thread_name_prefix="classify")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        try:
            yield
        finally:
            executor.shutdown(wait=False, cancel_futures=True)
            service.close()

    from speechmodel import __version__

    app = FastAPI(title="speechmodel", version=__version__, lifespan=lifespan, docs_url="/docs",
                  redoc_url=None, openapi_url="/openapi.json",
                  description="Speech emotion recognition. The endpoints read their upload and options "
                              "themselves (under the service's limits), so the schema below is written "
                              "out by hand: `GET /v1/model` lists the model's classes and limits.")
    app.state.service = service

    def error_response(exc):
        return JSONResponse(exc.to_dict(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(ServiceError)
    async def service_error(request, exc):
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc):
        return JSONResponse({"error": str(exc.detail), "status": exc.status_code},
                            status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, exc):
        return JSONResponse({"error": str(exc), "status": 400}, status_code=400)

    @app.get("/health")
    async def health():
        return service.health()

    @app.get("/v1/model")
    async def model():
        return service.describe()

    @app.get("/")
    async def index():
        return FileResponse(os.path.join(STATIC, "index.html"), media_type="text/html")

    async def read_body(request, limit, shown):
        """The body, at most ``limit`` bytes (413), arriving within
        ``upload_timeout`` and, after ``upload_grace`` seconds, at
        ``min_upload_rate`` bytes/s on average (408 otherwise)."""
        limits = service.limits
        declared = request.headers.get("content-length")
        if declared is not None:
            try:
                declared = int(declared)
            except ValueError:
                raise ServiceError(400, "bad Content-Length", kind="bad_request") from None
            if declared > limit:
                raise ServiceError(413, f"the upload is {declared} bytes; this service takes at most "
                                   f"{shown} bytes", kind="too_large")
        chunks, size = [], 0
        start = time.monotonic()
        stream = request.stream().__aiter__()
        while True:
            # The moment this body falls behind: the time limit, or the
            # minimum average rate once the grace period is over.
            behind = start + max(limits.upload_grace, size / limits.min_upload_rate)
            wait = min(start + limits.upload_timeout, behind) - time.monotonic()
            try:
                chunk = await asyncio.wait_for(stream.__anext__(), max(0.0, wait))
            except StopAsyncIteration:
                break
            except asyncio.TimeoutError:
                seconds = time.monotonic() - start
                raise ServiceError(
                    408, f"the upload arrived too slowly ({size} bytes in {seconds:.1f} s); this service "
                    f"takes a body within {limits.upload_timeout:g} s, at {limits.min_upload_rate:g} "
                    f"bytes/s or faster after the first {limits.upload_grace:g} s", kind="slow_upload",
                ) from None
            size += len(chunk)
            if size > limit:
                raise ServiceError(413, f"the upload exceeds {shown} bytes, the most this service takes",
                                   kind="too_large")
            chunks.append(chunk)
        return b"".join(chunks)

    async def read_form(request):
        """The request's options (query parameters, and form fields for a
        multipart body) and its uploads: ``(raw options, [(filename,
        bytes)], multipart)``; a raw body is one upload (``filename`` a
        query parameter)."""
        limits = service.limits
        # Multipart framing adds a little to the audio's own limit.
        body = await read_body(request, limits.max_upload_bytes + 64 * 1024, limits.max_upload_bytes)
        content_type = request.headers.get("content-type", "")
        raw = dict(request.query_params)
        multipart = content_type.lower().startswith("multipart/form-data")
        if multipart:
            fields, files = _parse_multipart(body, content_type, max_fields=limits.max_files + 16)
            raw.update(fields)
            uploads = [(filename, data) for _, filename, data in files]
            size = sum(len(data) for _, data in uploads)
        else:
            uploads, size = [(raw.pop("filename", None), body)], len(body)
        if size > limits.max_upload_bytes:
            raise ServiceError(413, f"the upload is {size} bytes; this service takes at most "
                               f"{limits.max_upload_bytes} bytes", kind="too_large")
        return raw, uploads, multipart

    async def prepare(request):
        """Reads and checks the request: (audio bytes, filename, options)."""
        raw, uploads, _ = await read_form(request)
        if len(uploads) != 1:
            raise ServiceError(
                400, f"send exactly one audio file in the form (field 'file'); received {len(uploads)}",
                kind="bad_form",
            )
        ((filename, data),) = uploads
        options = service.options(raw)
        if not data:
            raise ServiceError(422, f"{upload_name(filename, 'upload')}: the upload is empty (0 bytes)", kind="empty")
        return data, filename, options

    def timeout_error():
        return ServiceError(408, f"the request took longer than {service.limits.request_timeout:g} s",
                            kind="timeout")

    async def served(request, read, analyze):
        """Reads ``request`` (``read``: its body arrives under the upload
        limits, holding no place of the model), then admits it and runs
        ``analyze(*read's result, deadline=, cancelled=)`` on the executor;
        408 when ``request_timeout`` runs out (the analysis is told, and
        what it answers then is dropped)."""
        upload = service.admit_upload()
        try:
            arguments = await read(request)
        finally:
            upload.release()
        ticket = service.admit()
        timeout = service.limits.request_timeout
        deadline = time.monotonic() + timeout
        cancelled = threading.Event()
        try:
            def work():
                try:
                    if cancelled.is_set():
                        raise timeout_error()
                    return analyze(*arguments, deadline=deadline, cancelled=cancelled)
                finally:
                    ticket.release()

            future = asyncio.get_running_loop().run_in_executor(executor, work)
            ticket.handed_off = True
            # Retrieved here so that a result after a 408 is not reported.
            future.add_done_callback(lambda f: f.cancelled() or f.exception())
            try:
                result = await asyncio.wait_for(asyncio.shield(future), max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                cancelled.set()
                raise timeout_error() from None
            return JSONResponse(result)
        finally:
            if not ticket.handed_off:
                ticket.release()

    async def prepare_speaker(request):
        """(uploads, options) of a same-speaker request."""
        raw, uploads, multipart = await read_form(request)
        if not multipart:
            raise ServiceError(
                400, "send one speaker's recordings as a multipart/form-data upload, each in a 'file' field",
                kind="bad_form",
            )
        return uploads, service.options(raw)

    @app.post("/v1/classify", openapi_extra=_openapi_upload(many=False),
              summary="The emotion of one recording (a timeline for long ones)")
    async def classify(request: Request):
        return await served(request, prepare, service.analyze)

    @app.post("/v1/classify_speaker", openapi_extra=_openapi_upload(many=True),
              summary="Several recordings of one speaker, standardised with the speaker's own statistics")
    async def classify_speaker(request: Request):
        return await served(request, prepare_speaker, service.analyze_speaker)

    return app
