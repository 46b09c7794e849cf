import json
import os

import pytest

from speechmodel.batch.output import OutputDir, OutputError, identity

RUN = {"task": "predict", "model_sha256": "abc", "model": {"name": "fast"}, "settings": {"top_k": 1}}


def _record(path, **extra):
    ident = identity(path)
    return {"file": ident[0], "label": "calm", "file_size": ident[1], "file_mtime_ns": ident[2], **extra}


def _audio(tmp_path, name, data=b"RIFF...."):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_refuses_a_folder_of_other_files(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="not a batch run's"):
        OutputDir(tmp_path, task="predict").check()
    file = tmp_path / "notes.txt"
    with pytest.raises(OutputError, match="not a directory"):
        OutputDir(file, task="predict").check()


def test_shards_skip_done_files_and_drop_changed_ones(tmp_path):
    a, b, c = (_audio(tmp_path, n) for n in ("a.wav", "b.wav", "c.wav"))
    out = OutputDir(tmp_path / "out", task="predict")
    out.check()
    out.load()
    done, todo = out.pending([(p, identity(p)) for p in (a, b)])
    assert done == [] and [p for p, _ in todo] == [a, b]
    assert out.write_shard([_record(a), _record(b)]) == "results-00000.jsonl"
    out.write_manifest(RUN, {"id": "1"})

    os.utime(b, ns=(1, 1))  # b changed since its line was written.
    again = OutputDir(tmp_path / "out", task="predict")
    again.check()
    again.load()
    again.check_same_run(RUN)
    done, todo = again.pending([(p, identity(p)) for p in (a, b, c)])
    assert [r["file"] for r in done] == [a]
    assert [p for p, _ in todo] == [b, c]
    # b's stale line is gone from its shard: it will have one line, the new one.
    lines = (tmp_path / "out" / "results-00000.jsonl").read_text().splitlines()
    assert [json.loads(line)["file"] for line in lines] == [a]
    assert again.write_shard([_record(b), _record(c)]) == "results-00001.jsonl"
    again.write_manifest(RUN, {"id": "2"})
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["counts"] == {"files": 3, "analysed": 3, "failed": 0}
    assert manifest["shards"] == ["results-00000.jsonl", "results-00001.jsonl"]
    assert [r["id"] for r in manifest["runs"]] == ["1", "2"]


def test_refuses_the_results_of_another_model_or_task(tmp_path):
    a = _audio(tmp_path, "a.wav")
    out = OutputDir(tmp_path / "out", task="predict")
    out.check()
    out.load()
    out.write_shard([_record(a)])
    out.write_manifest(RUN, {"id": "1"})
    other = OutputDir(tmp_path / "out", task="predict")
    other.load()
    with pytest.raises(OutputError, match="another model sha256"):
        other.check_same_run({**RUN, "model_sha256": "def"})
    with pytest.raises(OutputError, match="results of another task"):
        OutputDir(tmp_path / "out", task="embed").load()


def test_a_file_that_cannot_be_read_is_analysed_again(tmp_path):
    out = OutputDir(tmp_path / "out", task="predict")
    out.check()
    out.load()
    missing = str(tmp_path / "gone.wav")
    out.write_shard([{"file": missing, "error": "file not found"}])
    out.load()
    done, todo = out.pending([(missing, identity(missing))])
    assert done == [] and todo == [(missing, None)]
    assert not (tmp_path / "out" / "results-00000.jsonl").exists()  # Its only line was stale.
