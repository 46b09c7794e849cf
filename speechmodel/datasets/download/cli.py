"""The command line: ``python -m speechmodel.datasets.download NAME --to DIR``
(``--list``, ``--url``, ...); argument parsing and exit statuses over
``download``."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .errors import DownloadError, ManualDownloadRequired
from .install import download
from .status import corpora, hint, load_sources, resolve


PROG = "python -m speechmodel.datasets.download"


def _list_text() -> str:
    table = load_sources()
    rows = [("NAME", "ACCESS", "LICENCE", "TITLE")]
    for key in corpora():
        src = table[key]
        rows.append((key, src["access"], src["licence"], src["title"]))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [
        "  ".join([r[0].ljust(widths[0]), r[1].ljust(widths[1]), r[2].ljust(widths[2]), r[3]]).rstrip()
        for r in rows
    ]
    lines.append("")
    lines.append("download: `python -m speechmodel.datasets.download NAME --to DIR` fetches it.")
    lines.append("manual, licence-gated: the same command prints what to request and where to put the files.")
    return "\n".join(lines)


class _UsageError(Exception):
    """A command-line mistake: one line on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise _UsageError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Download a speech emotion corpus into DIR, or explain how to obtain it. "
        "Options are spelt --download-dir or --download_dir alike.",
        epilog="Exit status: 0 installed or already complete; 1 download failed; "
        "2 manual/licence-gated corpus (instructions printed) or bad arguments.",
    )
    parser.add_argument("name", nargs="?", help="corpus name or alias (see --list)")
    parser.add_argument("--to", metavar="DIR", help="data directory to create")
    parser.add_argument("--list", action="store_true", help="list corpora with licence and access")
    parser.add_argument("--url", help="download from this URL (mirror or your own copy)")
    parser.add_argument("--md5", help="expected md5; replaces the published checksum")
    parser.add_argument("--sha256", help="expected sha256; replaces the published checksum")
    parser.add_argument("--size", type=int, help="expected size in bytes; replaces the published size")
    parser.add_argument("--download-dir", metavar="PATH", help="where archives and .part files are kept")
    parser.add_argument("--keep-archives", action="store_true", help="keep archives after installing")
    parser.add_argument("--retries", type=int, default=3, help="resume attempts after a dropped connection")
    parser.add_argument("--timeout", type=float, default=60.0, help="socket timeout in seconds")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    return parser


def _normalise_argv(argv: Sequence[str], parser: argparse.ArgumentParser) -> list[str]:
    """``--download_dir`` -> ``--download-dir`` for the parser's options, so
    that both spellings work; everything after ``--`` is left alone."""
    known = {o for action in parser._actions for o in action.option_strings}
    out = []
    for n, arg in enumerate(argv):
        if arg == "--":
            return out + list(argv[n:])
        name, sep, value = arg.partition("=")
        dashed = "--" + name[2:].replace("_", "-")
        out.append(dashed + sep + value if name.startswith("--") and dashed in known else arg)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = _parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parser.parse_args(_normalise_argv(argv, parser))
        if not args.list and not args.name:
            raise _UsageError("NAME is required (or use --list)")
        if not args.list and not args.to:
            raise _UsageError(f"--to DIR is required. {hint(args.name) if _known(args.name) else ''}".rstrip())
    except SystemExit as e:  # --help
        return e.code
    except _UsageError as e:
        print(f"{PROG}: error: {str(e).rstrip('.')}. Try --help.", file=sys.stderr)
        return 2
    if args.list:
        print(_list_text())
        return 0
    try:
        download(
            args.name,
            args.to,
            url=args.url,
            md5=args.md5,
            sha256=args.sha256,
            size=args.size,
            keep_archives=args.keep_archives,
            download_dir=args.download_dir,
            retries=args.retries,
            timeout=args.timeout,
            quiet=args.quiet,
        )
    except ManualDownloadRequired as e:
        print(str(e), file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except DownloadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "\ninterrupted: nothing was installed; run the same command again to resume the download.",
            file=sys.stderr,
        )
        return 130
    return 0


def _known(name: str) -> bool:
    try:
        resolve(name, load_sources())
        return True
    except ValueError:
        return False
