import pytest

from speechmodel.training import config as C
from speechmodel.training import defaults as D
from speechmodel.training import paths as P


def test_files_and_folders_are_checked(tmp_path):
    config = C.resolve({}, deep=False)
    P.check_paths(config, output_dir=str(tmp_path / "new" / "run"))
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(D.ConfigError, match="is a file, not a folder"):
        P.check_paths(config, output_dir=str(afile / "run"))
    with pytest.raises(D.ConfigError, match="model.weights .*no such file"):
        P.check_paths(C.resolve({"model": {"backbone": "cnn4", "weights": str(tmp_path / "w.h5")}}))
    for init, why in [(tmp_path / "missing.keras", "no such file"), (tmp_path, "a folder without model.keras"),
                      (afile, "not a .keras file")]:
        with pytest.raises(D.ConfigError, match=f"training.init_from .*{why}"):
            P.check_paths(C.resolve({"training": {"init_from": str(init)}}, deep=False))
    P.check_paths(C.resolve({"training": {"init_from": "fast"}}, deep=False))
    manifest = tmp_path / "latin1.csv"
    manifest.write_bytes("path,emotion,speaker\nété.wav,happy,s1\n".encode("latin-1"))
    with pytest.raises(D.ConfigError, match="is not UTF-8 text"):
        P.check_paths(C.resolve({"dataset": {"name": "csv", "data_dir": str(manifest)}}, deep=False))


def test_cache_and_run_folders_are_tried_not_guessed(tmp_path):
    # /proc refuses new folders even to root (whom os.access lets through).
    for key, value in (("embedding_cache", "/proc/forbidden"), ("cache", "/proc/forbidden/cache")):
        config = C.resolve({"training": {key: value}}, deep=False)
        with pytest.raises(D.ConfigError, match=f"training.{key}: .* cannot be created: /proc is not writable"):
            P.check_paths(config, output_dir=str(tmp_path / "run"))
    with pytest.raises(D.ConfigError, match="output_dir .*: /proc/run cannot be created"):
        P.check_paths(C.resolve({}, deep=False), output_dir="/proc/run")
    P.check_writable(str(tmp_path), "output_dir")
    assert list(tmp_path.iterdir()) == []  # The probe leaves nothing.
