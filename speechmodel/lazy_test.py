import subprocess
import sys

import pytest

from tests.paths import REPO


def test_lazy_packages_import_a_name_on_first_use_and_refuse_others():
    code = (
        "import sys\n"
        "import speechmodel.models as m, speechmodel.models.whisper as w\n"
        "assert 'tensorflow' not in sys.modules and 'build_model' in dir(m) and 'WhisperEncoder' in dir(w)\n"
        "from speechmodel.models import MODEL_NAMES\n"
        "assert 'tensorflow' not in sys.modules and 'speechmodel' in MODEL_NAMES\n"
        "from speechmodel.models.registry import MODEL_NAMES as names\n"
        "assert names is MODEL_NAMES\n"
        "try:\n"
        "    m.nonesuch\n"
        "except AttributeError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "module 'speechmodel.models' has no attribute 'nonesuch'"


def test_a_lazy_name_is_its_modules_object():
    from speechmodel.models import SpeechModel, whisper
    from speechmodel.models.speech_model import SpeechModel as defined
    from speechmodel.models.whisper.whisper_encoder import WhisperEncoder

    assert SpeechModel is defined and whisper.WhisperEncoder is WhisperEncoder
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        whisper.Nope  # noqa: B018
