"""An HTTP service and a web page for the emotion of speech recordings.

    python -m speechmodel.serve                         # the default model, http://127.0.0.1:8000
    python -m speechmodel.serve --model fast --port 8080
    python -m speechmodel.serve --model runs/my-run/model.keras --host 0.0.0.0
    python serve.py ...                                 # the same command

The model (the default, another shipped model of ``speechmodel.presets``
such as ``fast``, a run directory or a path) is loaded once at start; requests can never name another.
FastAPI on uvicorn, bound to 127.0.0.1 unless ``--host`` says otherwise.
See ``speechmodel.serve.app`` for the routes, ``speechmodel.serve.service``
for the limits and ``speechmodel.serve.batching`` for how concurrent
requests share the model.
"""

import argparse
import math
import os
import shutil
import signal
import socket
import sys
import tempfile

def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m speechmodel.serve",
        description="Serve a speech emotion model over HTTP, with a web page.",
    )
    p.add_argument("--model", default=None, help="default, fast (a shipped model of speechmodel.presets), a run directory or a model file")
    p.add_argument("--runtime", default=None, choices=["auto", "onnx", "keras"],
                   help="what runs a .keras model: onnx (ONNX Runtime), keras, or auto (onnx for a model on a "
                   "pretrained speech front end, keras for a CNN on log-mel segments; the default, or "
                   "$SPEECHMODEL_RUNTIME)")
    p.add_argument("--precision", default="float32", choices=["float32", "int8"],
                   help="ONNX Runtime: int8 encoder matrix multiplications (see docs/onnx.md)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (0: any free port; the address is printed)")
    p.add_argument("--max_batch", type=int, default=32, help="waveforms per model call")
    p.add_argument("--max_wait_ms", type=float, default=5.0, help="how long a batch waits for more requests")
    p.add_argument("--max_pending", type=int, default=64,
                   help="requests in progress at once; more get 503 with Retry-After")
    p.add_argument("--max_upload_mb", type=float, default=25.0, help="largest upload (413 past it)")
    p.add_argument("--max_duration", type=float, default=600.0, help="longest audio in seconds (413 past it)")
    p.add_argument("--request_timeout", type=float, default=60.0,
                   help="seconds from a request's admission (its body received) to its answer (408 past it)")
    p.add_argument("--max_windows", type=int, default=2000,
                   help="windows one request may ask for (duration / hop; 400 past it)")
    p.add_argument("--max_uploads", type=int, default=256,
                   help="bodies being received at once, apart from --max_pending (503 past it)")
    p.add_argument("--upload_timeout", type=float, default=30.0, help="seconds for a body to arrive (408 past it)")
    p.add_argument("--min_upload_rate", type=float, default=16384.0,
                   help="bytes/s a body must average once --upload_grace has passed (408 below it)")
    p.add_argument("--upload_grace", type=float, default=2.0,
                   help="seconds a body may take before --min_upload_rate applies")
    p.add_argument("--window", type=float, default=4.0, help="default window (s) for long audio")
    p.add_argument("--hop", type=float, default=2.0, help="default hop (s) between windows")
    p.add_argument("--max_utterance", type=float, default=20.0, help="audio longer than this is windowed")
    p.add_argument("--vad", default="auto", choices=["auto", "silero", "voicing"],
                   help="speech detector for segment=vad")
    p.add_argument("--threads", type=int, default=64,
                   help="threads decoding requests and waiting for the model (at most --max_pending are busy)")
    p.add_argument("--log_level", default="warning", help="uvicorn's log level")
    return p


def main(argv=None):
    """The command line: returns the exit status (2 for a usage error or a
    model that cannot be used)."""
    from speechmodel.cli.flag_names import normalize_flag_names

    parser = build_parser()
    known = [a.dest for a in parser._actions]
    args = parser.parse_args(normalize_flag_names(list(sys.argv[1:] if argv is None else argv), known))
    prog = parser.prog
    for name in ("max_batch", "max_pending", "threads", "max_windows", "max_uploads"):
        if getattr(args, name) < 1:
            print(f"{prog}: error: --{name} must be at least 1", file=sys.stderr)
            return 2
    for name in ("max_upload_mb", "max_duration", "request_timeout", "upload_timeout", "min_upload_rate", "upload_grace"):
        value = getattr(args, name)
        if not (math.isfinite(value) and value > 0):
            print(f"{prog}: error: --{name} must be a positive number. Received: --{name}={value}",
                  file=sys.stderr)
            return 2
    # Everything this process writes goes to one private temporary
    # directory, removed when it stops: the uploads, and what libraries put
    # in the temporary directory (TensorFlow's autograph sources).
    # SIGTERM and Ctrl-C stop it cleanly, whenever they come: uvicorn shuts
    # down gracefully, then re-raises the signal, which lands here.
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    tmpdir = tempfile.mkdtemp(prefix="speechmodel-serve-")
    tempfile.tempdir = tmpdir
    os.environ["TMPDIR"] = tmpdir
    try:
        return _serve(args, prog, tmpdir)
    except _Stopped:
        return 0
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _Stopped(Exception):
    pass


def _stop(signum, frame):
    raise _Stopped()


def _serve(args, prog, tmpdir):
    from speechmodel import presets
    from speechmodel.inference import load_model

    try:
        model = load_model(args.model, runtime=args.runtime, precision=args.precision)
    except ValueError as exc:  # ModelError, ParameterError
        print(f"{prog}: error: cannot use the model: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    from speechmodel.serve.app import create_app
    from speechmodel.serve.service import Defaults, EmotionService, Limits

    limits = Limits(
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024), max_duration=args.max_duration,
        request_timeout=args.request_timeout, max_pending=args.max_pending, max_windows=args.max_windows,
        max_uploads=args.max_uploads, upload_timeout=args.upload_timeout, min_upload_rate=args.min_upload_rate,
        upload_grace=args.upload_grace,
    )
    defaults = Defaults(window=args.window, hop=args.hop, max_utterance=args.max_utterance, vad=args.vad)
    name = args.model or presets.DEFAULT
    try:
        uploads = os.path.join(tmpdir, "uploads")
        os.makedirs(uploads, mode=0o700)
        service = EmotionService(model, limits=limits, defaults=defaults, max_batch=args.max_batch,
                                 max_wait=args.max_wait_ms / 1000, tmpdir=uploads,
                                 model_name=name if presets.is_preset(name) else None)
        service.options({})  # Checks the defaults.
    except Exception as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    app = create_app(service, executor_workers=args.threads)
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        print(f"{prog}: error: cannot listen on {args.host}:{args.port} ({exc})", file=sys.stderr)
        service.close()
        return 2
    sock.listen(2048)  # Connections wait in the backlog until uvicorn runs.
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    # Warm the model up (the first call traces it) before taking requests.
    import numpy as np

    service.batcher.classify([np.zeros(model.sample_rate, np.float32)])
    print(f"serving {model.path} ({len(model.class_names)} classes) on http://{shown}:{port}", flush=True)
    config = uvicorn.Config(app, log_level=args.log_level, lifespan="on", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    finally:
        service.close()
    return 0
