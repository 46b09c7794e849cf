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
MAX_UPLOADS = 14  # Bodies arriving at once, apart from MAX_PENDING.
GRACE = 5  # Seconds before a body must arrive at the minimum rate.
MAX_WINDOWS = 50
TIMEOUT = 8  # The server's request time limit (s).
PROB_TOL = 1e-4  # The service against infer.py on the same file.


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("model") / "tiny.keras", CLASSES)


@pytest.fixture(scope="module")
def server(model, tmp_path_factory):
    work = tmp_path_factory.mktemp("serve")
    with running_server(model, work, "--max_pending", MAX_PENDING, "--max_upload_mb", 1, "--max_duration", 30,
                        "--request_timeout", TIMEOUT, "--max_uploads", MAX_UPLOADS, "--upload_grace", GRACE,
                        "--max_windows", MAX_WINDOWS) as (url, process, tmp):
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
    # The model by its file name: never the server's path.
    assert info["class_names"] == CLASSES and info["model"]["path"] == model.name and str(model.parent) not in r.text
    assert info["settings"]["max_pending"] == MAX_PENDING and info["settings"]["max_duration"] == 30
    assert info["settings"]["segmentations"] == ["windows", "vad"]
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html") and "<canvas" in r.text
    assert_error(client.get("/v1/nothing"), 404)
    assert_error(client.put("/v1/classify", content=b"x"), 405)


def test_the_api_is_described_at_docs_and_openapi_json(client):
    from speechmodel.serve.service import OPTIONS

    r = client.get("/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    for route, many in (("/v1/classify", False), ("/v1/classify_speaker", True)):
        post = paths[route]["post"]
        form = post["requestBody"]["content"]["multipart/form-data"]["schema"]
        assert form["required"] == ["file"] and set(form["properties"]) == {"file", *OPTIONS}
        assert (form["properties"]["file"]["type"] == "array") == many
        assert {p["name"] for p in post["parameters"]} >= set(OPTIONS)
        assert {"400", "413", "422", "503"} <= set(post["responses"])
    assert {"/health", "/v1/model"} <= set(paths)
    r = client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in r.text


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
        ({"top_k": 10**21}, ["top_k must be between 1 and the model's 3 classes"]),
        ({"top_k": "9" * 100}, ["top_k must be a number"]),
        ({"hop": "nan"}, ["hop must be finite"]),
        ({"window": 0.1, "hop": 0.0001}, ["hop at least 0.05 s", "hop=0.0001"]),
        ({"window": 0.05}, ["window must be 0.1-60 s"]),
    ):
        assert_error(post_file(client, clip, **fields), 400, *words)
    r = client.post("/v1/classify", content=b'--x\r\nContent-Disposition: form-data; name="top_k"\r\n\r\n1\r\n--x--\r\n',
                    headers={"content-type": "multipart/form-data; boundary=x"})
    assert_error(r, 400, "exactly one audio file")
    assert_error(client.post("/v1/classify", content=b"--x\r\ngarbage", headers={"content-type": "multipart/form-data"}),
                 400, "boundary")
    # The model is still the one the server started with.
    assert client.get("/v1/model").json()["model"]["path"] == model.name


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
    # Errors name the upload as the client sent it, never a path of the server.
    for name, content in (("sub dir/x.flac", data[:300]), ("z.ogg", b"OggS" + bytes(200)),
                          ("m.mp3", b"ID3\x03\x00\x00\x00\x00\x00\x10" + bytes(100))):
        r = post_file(client, clip, name=name, data=content)
        assert r.status_code == 422 and r.json()["error"].startswith(name + ": "), r.text
        assert "/tmp" not in r.text and ".audio" not in r.text and "speechmodel-serve" not in r.text, r.text


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
    """A request whose body never finishes arriving (4 bytes of 100000)."""
    parsed = urlparse(url)
    sock = socket.create_connection((parsed.hostname, parsed.port))
    sock.sendall(b"POST /v1/classify?filename=slow.wav HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Type: audio/wav\r\nContent-Length: 100000\r\n\r\nRIFF")
    return sock


def answer_of(sock, timeout):
    sock.settimeout(timeout)
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
        piece = sock.recv(65536)
        if not piece:
            break
        answer += piece
    head, _, payload = answer.partition(b"\r\n\r\n")
    return head, payload


def wait_for_health(client, key, value, seconds=10):
    deadline = time.monotonic() + seconds
    while client.get("/health").json()[key] != value and time.monotonic() < deadline:
        time.sleep(0.05)
    return client.get("/health").json()


def test_slow_uploads_hold_no_model_place_and_are_let_go(client, server):
    url = server[0]
    clip = ravdess_files("Actor_13/*.wav")[2]
    started = time.monotonic()
    # More trickling clients than the model has places: none takes one.
    holders = [slow_upload(url) for _ in range(MAX_PENDING + 2)]
    try:
        health = wait_for_health(client, "uploading", MAX_PENDING + 2)
        assert health["uploading"] == MAX_PENDING + 2 and health["pending"] == 0, health
        assert post_file(client, clip).status_code == 200  # Others are served meanwhile.
        # Past --max_uploads bodies arriving at once: 503 with Retry-After.
        holders += [slow_upload(url) for _ in range(MAX_UPLOADS - len(holders))]
        assert wait_for_health(client, "uploading", MAX_UPLOADS)["uploading"] == MAX_UPLOADS
        r = post_file(client, clip)
        body = assert_error(r, 503, "busy", "uploads arriving")
        assert int(r.headers["retry-after"]) >= 1 and body["kind"] == "busy"
        assert time.monotonic() - started < GRACE  # All of the above within the grace period.
        # Each trickling client is let go after the grace period: a JSON 408.
        for sock in holders:
            head, payload = answer_of(sock, GRACE + 30)
            assert head.startswith(b"HTTP/1.1 408"), head[:200]
            body = json.loads(payload)
            assert body["kind"] == "slow_upload" and "arrived too slowly (4 bytes in" in body["error"]
        assert time.monotonic() - started < GRACE + TIMEOUT
    finally:
        for sock in holders:
            sock.close()
    assert wait_for_health(client, "uploading", 0)["uploading"] == 0
    assert post_file(client, clip).status_code == 200


def test_a_full_model_is_503_with_retry_after():
    from speechmodel.serve.service import EmotionService, Limits, ServiceError

    class Model:
        class_names, sample_rate, path = ["a", "b"], 16000, "/srv/models/secret/m.keras"

        def describe(self):
            return {"path": self.path, "kind": "keras", "class_names": self.class_names}

    service = EmotionService(Model(), limits=Limits(max_pending=2, max_uploads=1))
    try:
        tickets = [service.admit(), service.admit()]
        with pytest.raises(ServiceError) as info:
            service.admit()
        assert info.value.status == 503 and info.value.headers["Retry-After"] == "1"
        tickets[0].release()
        tickets[0].release()  # Once only.
        service.admit()
        upload = service.admit_upload()  # Counted apart.
        with pytest.raises(ServiceError, match="1 uploads arriving"):
            service.admit_upload()
        upload.release()
        assert service.health()["pending"] == 2 and service.health()["uploading"] == 0
        assert service.describe()["model"]["path"] == "m.keras"
    finally:
        service.close()


def test_work_per_request_is_bounded(client, tmp_path):
    long = tmp_path / "long.wav"
    sf.write(long, np.zeros(16000 * 25, np.float32), 16000, subtype="PCM_16")  # 25 s, 800 kB
    # 1 + ceil((25 - 4) / 0.3) = 71 windows > 50.
    body = assert_error(post_file(client, long, name="my talk.wav", window=4, hop=0.3), 400,
                        "my talk.wav: windows of 4 s every 0.3 s over 25.0 s of audio make 71 windows",
                        f"at most {MAX_WINDOWS} per request")
    assert body["kind"] == "too_many_windows"
    assert post_file(client, long, window=4, hop=2).status_code == 200


def test_a_one_sample_file_is_refused_as_infer_py_refuses_it(client, reference, tmp_path):
    one = tmp_path / "one.wav"
    sf.write(one, np.array([0.25]), 16000, subtype="PCM_16")
    [want] = reference([one])["results"]
    assert want["error"].startswith("too short to analyse: 1 sample")
    body = assert_error(post_file(client, one), 422, f"one.wav: {want['error']}")
    assert body["kind"] == "too_short"


def test_a_file_cut_short_is_analysed_with_a_warning(client, tmp_path):
    from speechmodel.audio import load_audio

    whole = tmp_path / "whole.ogg"
    sf.write(whole, load_audio(ravdess_files("Actor_13/*.wav")[3]), 16000, format="OGG", subtype="OPUS")
    data = whole.read_bytes()
    r = post_file(client, whole, name="call.ogg", data=data[: len(data) * 6 // 10])
    assert r.status_code == 200, r.text
    [result] = r.json()["results"]
    assert result["file"] == "call.ogg" and result["warning"].startswith("cut short: the Ogg stream ends")
    assert "warning" not in post_file(client, whole).json()["results"][0]


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

