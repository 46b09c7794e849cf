"""Recognise the emotion of speech recordings: ``python infer.py --help``.

The command lives in ``speechmodel.cli.infer`` (installed as
``speechmodel-infer``); this script runs it from a source checkout.
"""

from speechmodel.cli import infer as _command

__doc__ = _command.__doc__

if __name__ == "__main__":
    _command.run()
