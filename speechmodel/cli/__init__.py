"""The command lines: ``speechmodel-train`` (``train.py``),
``speechmodel-infer`` (``infer.py``) and ``speechmodel-serve``
(``python -m speechmodel.serve``), console scripts of the installed
package. ``train.py`` and ``infer.py`` at the root of a source checkout run
the same modules.
"""

import os
import sys

HELP_FLAGS = ("-h", "--help", "-help", "--helpshort", "--helpfull", "-?")


def adopt_main_module(module_name, doc):
    """Lets absl's help show a command whose flags are defined in
    ``module_name`` rather than in ``__main__``: the main module gets
    ``doc`` when it has no docstring (a console script), and the module's
    flags become key flags of the main program (absl's ``--help`` lists
    the main program's key flags)."""
    from absl import flags

    main = sys.modules.get("__main__")
    if main is not None and not getattr(main, "__doc__", None):
        main.__doc__ = doc
    if not sys.argv or module_name == "__main__":
        return
    main_name = sys.argv[0]
    for flag in flags.FLAGS.get_flags_for_module(module_name):
        flags.FLAGS.register_key_flag_for_module(main_name, flag)


def prog(default):
    """The command's name as the user typed it (``train.py``,
    ``speechmodel-train``), for messages."""
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else default


def flags_parser(default_prog):
    """absl's ``flags_parser`` for the commands: ``-h``/``--help`` print the
    help and exit 0; ``--flag-name`` and ``--flag_name`` both work; a
    usage error is one line on stderr and exit 2 (no traceback)."""
    from absl import app, flags

    def parse(argv):
        if any(a in HELP_FLAGS for a in argv[1:]):
            app.usage(shorthelp=True, writeto_stdout=True)
            sys.exit(0)
        from speechmodel.cli.flag_names import normalize_flag_names

        try:
            return flags.FLAGS(normalize_flag_names(argv, flags.FLAGS))
        except flags.Error as exc:
            message = " ".join(str(exc).split())  # one line, whatever absl wrote
            print(f"{prog(default_prog)}: error: {message} (Try --help.)", file=sys.stderr)
            sys.exit(2)

    return parse
