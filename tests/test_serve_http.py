"""The HTTP API of ``python -m speechmodel.serve``, through an HTTP client
against a running server on 127.0.0.1: every status code it answers, a bad
upload among good ones, and its temporary files."""

import concurrent.futures
import json
import os
import signal
import socket
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import numpy as np
import pytest
import soundfile as sf

from speechmodel import inference as I
from tests.paths import ravdess_files
from tests.serving import running_server, tiny_model

CLASSES = ["neutral", "happy", "sad"]
MAX_PENDING = 10
TIMEOUT = 8  # The server's request time limit (s).
PROB_TOL = 1e-4  # The service against infer.py on the same file.


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("model") / "tiny.keras", CLASSES)


@pytest.fixture(scope="module")
def server(model, tmp_path_factory):
    work = tmp_path_factory.mktemp("serve")
    with running_server(model, work, "--max_pending", MAX_PENDING, "--max_upload_mb", 1, "--max_duration", 30,
                        "--request_timeout", TIMEOUT) as (url, process, tmp):
        yield url, process, tmp, work


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server[0], timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def reference(model):
    """What infer.py --format json says (the same Predictor, in process)."""
    loaded = I.load_model(model)

    def predict(paths, **options):
        report = I.Predictor(loaded, **options).predict([str(p) for p in paths])
        return json.loads(I.format_json(report, top_k=2, model=loaded.describe()))

    return predict


def post_file(client, path, name=None, data=None, **fields):
    content = Path(path).read_bytes() if data is None else data
    files = {"file": (name or Path(path).name, content, "audio/wav")}
    return client.post("/v1/classify", files=files, data={k: str(v) for k, v in fields.items()})


def assert_error(response, status, *words):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status and isinstance(body["error"], str)
    for word in words:
        assert word in body["error"], body
    return body


def test_model_health_page_and_unknown_routes(client, model):
    r = client.get("/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    r = client.get("/v1/model")
    assert r.status_code == 200
    info = r.json()
    assert info["class_names"] == CLASSES and info["model"]["path"] == str(model)
    assert info["settings"]["max_pending"] == MAX_PENDING and info["settings"]["max_duration"] == 30
    assert info["settings"]["segmentations"] == ["windows", "vad"]
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html") and "<canvas" in r.text
    assert_error(client.get("/v1/nothing"), 404)
    assert_error(client.put("/v1/classify", content=b"x"), 405)


def test_good_uploads_with_a_bad_one_among_them(client, reference, tmp_path):
    clips = ravdess_files("Actor_13/*.wav")[:8]
    bad = tmp_path / "notes.wav"
    bad.write_bytes(np.random.default_rng(0).bytes(5000))
    expected = {Path(c).name: r for c, r in zip(clips, reference(clips)["results"])}
    uploads = [*clips[:4], bad, *clips[4:]]
    with concurrent.futures.ThreadPoolExecutor(len(uploads)) as pool:
        responses = list(pool.map(lambda p: post_file(client, p, top_k=2), uploads))
    for path, r in zip(uploads, responses):
        if path == bad:
            body = assert_error(r, 422, "notes.wav", "not an audio file")
            assert body["kind"] == "not_audio"
            continue
        assert r.status_code == 200, r.text
        payload = r.json()
        assert set(payload) == {"model", "class_names", "settings", "results"}
        assert payload["class_names"] == CLASSES
        [result] = payload["results"]
        want = expected[Path(path).name]
        assert set(result) == set(want) and result["file"] == Path(path).name
        for c in CLASSES:
            assert result["probabilities"][c] == pytest.approx(want["probabilities"][c], abs=PROB_TOL)
        # Labels follow the probabilities (compared above; exact label ties
        # between two classes of the random model are not asserted).
        probs = result["probabilities"]
        assert result["label"] == max(probs, key=probs.get)
        assert [t["label"] for t in result["top_k"]] == sorted(probs, key=probs.get, reverse=True)[:2]
        assert result["duration"] == want["duration"] and result["windowed"] is False


def test_long_audio_as_a_raw_body_in_windows_and_utterances(client, reference, tmp_path):
    from speechmodel.audio import load_audio

    parts = []
    for f in ravdess_files("Actor_14/*.wav")[:7]:
        parts += [load_audio(f), np.zeros(12000, np.float32)]
    path = tmp_path / "talk.flac"
    sf.write(path, np.concatenate(parts), 16000, subtype="PCM_16")
    body = path.read_bytes()
    r = client.post("/v1/classify", content=body, params={"filename": "talk.flac", "window": 3, "hop": 1.5})
    assert r.status_code == 200, r.text
    [want] = reference([path], window=3.0, hop=1.5)["results"]
    [got] = r.json()["results"]
    assert r.json()["settings"]["window"] == 3.0
    assert got["windowed"] is True and got["weighting"] == want["weighting"] == "voiced"
    assert [(w["start"], w["end"], w["voiced"]) for w in got["timeline"]] == [
        (w["start"], w["end"], w["voiced"]) for w in want["timeline"]
    ]
    for g, w in zip(got["timeline"] + [got], want["timeline"] + [want]):
        for c in CLASSES:
            assert g["probabilities"][c] == pytest.approx(w["probabilities"][c], abs=PROB_TOL)

    r = client.post("/v1/classify", content=body, params={"segment": "vad", "filename": "talk.flac"})
    assert r.status_code == 200, r.text
    [want] = reference([path], segment="vad")["results"]
    [got] = r.json()["results"]
    assert r.json()["settings"]["segment"] == "vad" and got["segmentation"] == "vad"
    assert [(u["start"], u["end"]) for u in got["timeline"]] == [(u["start"], u["end"]) for u in want["timeline"]]
    assert len(got["timeline"]) >= 7
    for c in CLASSES:
        assert got["probabilities"][c] == pytest.approx(want["probabilities"][c], abs=PROB_TOL)


def test_min_confidence_marks_uncertain_and_silence_is_no_speech(client, reference, tmp_path):
    clip = ravdess_files("Actor_05/*.wav")[0]
    plain = post_file(client, clip).json()["results"][0]
    above = plain["confidence"] + 1e-3
    unsure = post_file(client, clip, min_confidence=above)
    assert unsure.status_code == 200, unsure.text
    result = unsure.json()["results"][0]
    assert result["label"] == "uncertain" and result["probabilities"] == plain["probabilities"]
    assert unsure.json()["settings"]["min_confidence"] == pytest.approx(above)
    assert post_file(client, clip, min_confidence=0).json()["results"][0]["label"] == plain["label"]
    assert_error(post_file(client, clip, min_confidence=1.5), 400, "min_confidence")
    silence = tmp_path / "silence.wav"
    sf.write(silence, np.zeros(3 * 16000, np.float32), 16000)
    answer = post_file(client, silence).json()["results"][0]
    expected = reference([silence])["results"][0]
    assert answer["label"] == expected["label"] == "no speech"
    for name, p in expected["probabilities"].items():
        assert answer["probabilities"][name] == pytest.approx(p, abs=PROB_TOL)


def test_bad_parameters_and_forms_are_400(client, model):
    clip = ravdess_files("Actor_13/*.wav")[0]
    for fields, words in (
        ({"top_k": 9}, ["top_k"]),
        ({"window": "long"}, ["window must be a number"]),
        ({"window": 2, "hop": 3}, ["hop"]),
        ({"segment": "sentences"}, ["segment"]),
        ({"model": "/etc/passwd"}, ["unknown parameter(s) model", "only the model it was started with"]),
    ):
        assert_error(post_file(client, clip, **fields), 400, *words)
    r = client.post("/v1/classify", content=b'--x\r\nContent-Disposition: form-data; name="top_k"\r\n\r\n1\r\n--x--\r\n',
                    headers={"content-type": "multipart/form-data; boundary=x"})
    assert_error(r, 400, "exactly one audio file")
    assert_error(client.post("/v1/classify", content=b"--x\r\ngarbage", headers={"content-type": "multipart/form-data"}),
                 400, "boundary")
    # The model is still the one the server started with.
    assert client.get("/v1/model").json()["model"]["path"] == str(model)


def test_unreadable_uploads_are_422_naming_the_problem(client, tmp_path):
    clip = Path(ravdess_files("Actor_13/*.wav")[1])
    data = clip.read_bytes()
    for name, content, kind, words in (
        ("empty.wav", b"", "empty", ["empty.wav", "empty"]),
        ("cut.wav", data[: len(data) // 3], "truncated", ["cut.wav", "truncated"]),
        ("readme.txt", b"# not audio at all\n" * 50, "not_audio", ["readme.txt", "not an audio file"]),
    ):
        body = assert_error(post_file(client, clip, name=name, data=content), 422, *words)
        assert body["kind"] == kind


def test_size_and_duration_limits_are_413(client, tmp_path):
    big = tmp_path / "big.wav"
    sf.write(big, np.zeros(16000 * 40, np.float32), 16000, subtype="PCM_16")  # 1.28 MB > 1 MB.
    assert_error(post_file(client, big), 413, "at most 1048576 bytes")

    def chunks():  # No Content-Length: counted while it arrives.
        for _ in range(40):
            yield bytes(64 * 1024)

    assert_error(client.post("/v1/classify", content=chunks()), 413, "exceeds 1048576 bytes")
    long = tmp_path / "long.wav"
    sf.write(long, np.zeros(8000 * 40, np.float32), 8000, subtype="PCM_U8")  # 40 s in 320 kB.
    body = assert_error(post_file(client, long), 413, "long.wav", "40.0 s", "at most 30 s")
    assert body["kind"] == "too_long"


def slow_upload(url):
    """A request whose body never finishes arriving: it holds a place in
    the queue until the server's time limit."""
    parsed = urlparse(url)
    sock = socket.create_connection((parsed.hostname, parsed.port))
    sock.sendall(b"POST /v1/classify?filename=slow.wav HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Type: audio/wav\r\nContent-Length: 100000\r\n\r\nRIFF")
    return sock


def test_a_full_queue_is_503_with_retry_after_and_slow_requests_408(client, server):
    url = server[0]
    started = time.monotonic()
    holders = [slow_upload(url) for _ in range(MAX_PENDING)]
    try:
        deadline = time.monotonic() + 10
        while client.get("/health").json()["pending"] < MAX_PENDING and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.get("/health").json()["pending"] == MAX_PENDING
        clip = ravdess_files("Actor_13/*.wav")[2]
        r = post_file(client, clip)
        body = assert_error(r, 503, "busy")
        assert int(r.headers["retry-after"]) >= 1 and body["kind"] == "busy"
        # The held requests time out with a JSON 408.
        for sock in holders:
            sock.settimeout(TIMEOUT + 30)
            answer = b""
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                piece = sock.recv(65536)
                if not piece:
                    break
                answer += piece
            head, _, payload = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 408"), answer[:200]
            assert json.loads(payload)["status"] == 408
        assert time.monotonic() - started >= TIMEOUT - 0.5
    finally:
        for sock in holders:
            sock.close()
    # Places are free again.
    deadline = time.monotonic() + 10
    while client.get("/health").json()["pending"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert post_file(client, ravdess_files("Actor_13/*.wav")[2]).status_code == 200


def test_nothing_is_written_outside_its_temporary_directory(server, client):
    url, process, tmp, work = server
    assert client.get("/health").status_code == 200
    assert os.listdir(work / "cwd") == []
    [private] = os.listdir(tmp)  # Its own directory; no upload left in it.
    assert private.startswith("speechmodel-serve-") and os.listdir(tmp / private / "uploads") == []


def test_stopping_removes_the_temporary_directory(server):
    # Last in this module: it stops the module's server.
    url, process, tmp, work = server
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0
    assert os.listdir(tmp) == [] and os.listdir(work / "cwd") == []

