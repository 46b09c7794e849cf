"""Serve a speech emotion model over HTTP, with a web page.

    python serve.py                                  # the default model on http://127.0.0.1:8000
    python serve.py --model fast --port 8080
    python serve.py --help

The same command as ``python -m speechmodel.serve`` (see that module).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from speechmodel.serve import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
