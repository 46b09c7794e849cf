"""``POST /v1/classify_speaker`` of ``python -m speechmodel.serve``: one
speaker's recordings in one request, as ``infer.py --same_speaker``."""

import json
from pathlib import Path

import httpx
import numpy as np
import pytest

from speechmodel import inference as I
from speechmodel.tests.inference_fixtures import tiny_speaker_model
from tests.paths import ravdess_files
from tests.serving import running_server, tiny_model

CLASSES = ["neutral", "happy", "sad"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_speaker_model(tmp_path_factory.mktemp("model") / "speaker.keras", CLASSES)


@pytest.fixture(scope="module")
def client(model, tmp_path_factory):
    work = tmp_path_factory.mktemp("serve")
    with running_server(model, work, "--max_duration", 30, "--max_upload_mb", 2) as (url, _, tmp):
        with httpx.Client(base_url=url, timeout=120) as c:
            yield c
        assert list(Path(tmp).rglob("*.audio")) == []  # every upload removed


def post(client, paths, names=None, data=None, **fields):
    files = [("file", (name, Path(p).read_bytes() if p else data, "audio/wav"))
             for p, name in zip(paths, names or [Path(p).name for p in paths])]
    return client.post("/v1/classify_speaker", files=files, data={k: str(v) for k, v in fields.items()})


def test_one_speakers_files_as_infer_same_speaker_with_a_bad_one_among_them(client, model):
    files = ravdess_files("Actor_13/*.wav")[:4]
    response = post(client, files + [None], names=[f"clip{i}.wav" for i in range(4)] + ["broken.wav"],
                    data=b"RIFF....WAVEjunk", top_k=2)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["file"] for r in body["results"]] == [f"clip{i}.wav" for i in range(4)] + ["broken.wav"]
    assert "error" in body["results"][-1] and "broken.wav" == body["results"][-1]["file"]
    assert body["settings"]["speaker_normalization"].startswith("the statistics of the 4 readable inputs, as one")
    # The same figures as infer.py --same_speaker on those four files.
    loaded = I.load_model(model)
    expected = json.loads(I.format_json(I.Predictor(loaded, same_speaker=True).predict(files), top_k=2))
    for got, want in zip(body["results"], expected["results"]):
        np.testing.assert_allclose(
            [got["probabilities"][c] for c in CLASSES], [want["probabilities"][c] for c in CLASSES], atol=1e-4
        )
        assert [t["label"] for t in got["top_k"]] == [t["label"] for t in want["top_k"]]
    # ... and not what /v1/classify says of one of them alone.
    alone = client.post("/v1/classify", files={"file": ("a.wav", Path(files[0]).read_bytes())}).json()
    assert not np.allclose([alone["results"][0]["probabilities"][c] for c in CLASSES],
                           [body["results"][0]["probabilities"][c] for c in CLASSES], atol=1e-4)
    assert client.get("/v1/model").json()["settings"]["same_speaker"] is True


def test_limits_and_mistakes(client):
    files = ravdess_files("Actor_13/*.wav")[:12]
    response = post(client, [])
    assert response.status_code == 400, response.text
    # 30 s at most in all: twelve clips of about 3.5 s are too long.
    response = post(client, files)
    assert response.status_code == 413 and "in all" in response.json()["error"], response.text
    response = post(client, files[:2], top_k=9)
    assert response.status_code == 400 and "top_k" in response.json()["error"]
    # /v1/classify still takes exactly one file (two under the same name
    # were once read as one).
    two = [("file", ("a.wav", Path(f).read_bytes())) for f in files[:2]]
    response = client.post("/v1/classify", files=two)
    assert response.status_code == 400 and "received 2" in response.json()["error"]


def test_a_model_without_speaker_normalisation_says_so(tmp_path):
    model = tiny_model(tmp_path / "tiny.keras", CLASSES)
    with running_server(model, tmp_path / "serve") as (url, _, _):
        with httpx.Client(base_url=url, timeout=60) as c:
            response = post(c, ravdess_files("Actor_13/*.wav")[:2])
            assert c.get("/v1/model").json()["settings"]["same_speaker"] is False
    assert response.status_code == 400 and "speaker normalisation" in response.json()["error"]
    assert response.json()["kind"] == "unsupported"
