"""``python -m speechmodel.serve``: see ``speechmodel.serve``."""

import sys

from speechmodel.serve import main

if __name__ == "__main__":
    sys.exit(main())
