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
