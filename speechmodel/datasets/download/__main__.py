"""``python -m speechmodel.datasets.download``: see ``cli``."""

import sys

from .cli import main

sys.exit(main())
