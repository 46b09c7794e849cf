import hashlib
import json
import os

from speechmodel.inference import onnx_cache


def test_a_checksum_is_read_once_per_path_size_and_mtime(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"weights" * 1000)
    root = tmp_path / "cache"
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    assert onnx_cache.file_sha256(path, root=str(root)) == expected
    # The record is used while the file is unchanged: a planted value comes back.
    (record,) = (root / "checksums").iterdir()
    stored = json.loads(record.read_text())
    stored["sha256"] = "0" * 64
    record.write_text(json.dumps(stored))
    assert onnx_cache.file_sha256(path, root=str(root)) == "0" * 64
    # A new modification time (same size, same bytes) means: read again.
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert onnx_cache.file_sha256(path, root=str(root)) == expected
    # Another content of the same size: another checksum.
    path.write_bytes(b"WEIGHTS" * 1000)
    assert onnx_cache.file_sha256(path, root=str(root)) == hashlib.sha256(b"WEIGHTS" * 1000).hexdigest()


def test_the_folder_is_keyed_by_checksum_format_and_runtime(tmp_path):
    import onnxruntime

    folder = onnx_cache.directory_for("ab" * 32, root=str(tmp_path))
    assert folder == os.path.join(
        tmp_path, "models", f"{'ab' * 32}-v{onnx_cache.onnx_export.FORMAT_VERSION}-ort{onnxruntime.__version__}"
    )
    meta = {"embedder": "cd" * 32 + "-v1-ort1"}
    assert onnx_cache.embedder_directory(folder, meta) == os.path.join(tmp_path, "embedders", meta["embedder"])


def test_a_failed_build_leaves_nothing(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"not really a model")

    def load_keras(p):
        raise RuntimeError("conversion failed")

    root = tmp_path / "cache"
    try:
        onnx_cache.model_directory(path, load_keras=load_keras, root=str(root))
    except RuntimeError:
        pass
    else:
        raise AssertionError("the build error was swallowed")
    # No model folder and no temporary build folder: only the checksum record.
    assert not [p for p in (root / "models").iterdir() if p.is_dir()]
    assert not (root / "embedders").exists()
