"""The command as run, one shell-quoted line with every path made absolute, for provenance.

:func:`command_line` renders ``sys.argv`` as one shell-quoted line with every path argument made
absolute (``bids_stroke /data/bids /data/out participant -w /scratch/work``), so a report or
sidecar says exactly what was run and from where it can be re-run. The entry point renders it
once and passes it on in :class:`~bids_stroke.core.settings.ExecutionSettings`.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["command_line", "path_arguments"]

#: options whose text is a path pattern rather than a :class:`~pathlib.Path` (a glob)
_PATH_TEXT = frozenset({"lesion_masks"})
_PROGRAMS = {"run.py": "bids_stroke", "__main__.py": "bids_stroke"}


def _program(argv0: str) -> str:
    name = os.path.basename(argv0) or "bids_stroke"
    return _PROGRAMS.get(name, name)


def _subcommand_parser(args: Sequence[str]) -> tuple[argparse.ArgumentParser, list[str]]:
    """The parser that reads ``args`` (without the program name) and the arguments it gets."""
    from bids_stroke.cli.subcommands import SUBCOMMANDS, subcommand

    sub = subcommand(args)
    if sub is not None:
        import importlib

        module = importlib.import_module(SUBCOMMANDS[sub])
        factory = getattr(module, "build_parser", None)
        if factory is not None:
            return factory(), list(args[1:])
    from bids_stroke.cli.parser import build_parser

    rest = list(args[1:]) if args[:1] == ["--"] else list(args)
    return build_parser(), rest


def path_arguments(parser: argparse.ArgumentParser, args: Sequence[str]) -> set[str]:
    """Strings of ``args`` that ``parser`` reads into a :class:`~pathlib.Path` argument."""
    import contextlib
    import io

    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            opts, _ = parser.parse_known_args(list(args))
    except SystemExit:  # unparsable command line: only existing paths are recognised
        return set()
    found: set[str] = set()
    for dest, value in vars(opts).items():
        values = value if isinstance(value, list | tuple) else [value]
        found.update(str(v) for v in values
                     if (isinstance(v, Path) or (dest in _PATH_TEXT and v is not None))
                     and str(v) != "")
    return found


def _absolute(token: str, cwd: Path) -> str:
    return str((cwd / Path(token).expanduser()).resolve(strict=False))


def command_line(argv: Sequence[str] | None = None, *, cwd: str | Path | None = None) -> str:
    """The command as run, with resolved (absolute) paths, as one shell-quoted line.

    Parameters
    ----------
    argv : sequence of str, optional
        The full command, program name first (default ``sys.argv``).
    cwd : path, optional
        Folder relative paths are resolved against (default: the current directory).

    An argument is taken as a path when the command's parser reads it into a path argument
    (``BIDS_DIR``, ``OUTPUT_DIR``, ``-w``, ``--model``, ``--derivatives``, ...; also in
    ``--opt=value`` form) or, for an unparsable command line, when it names an existing file.
    The program name is shortened to ``bids_stroke`` (or the console script's name).
    """
    argv = list(sys.argv if argv is None else argv)
    if not argv:
        return "bids_stroke"
    base = Path.cwd() if cwd is None else Path(cwd)
    args = [str(a) for a in argv[1:]]
    try:
        parser, parsed = _subcommand_parser(args)
        paths = path_arguments(parser, parsed)
    except Exception:  # provenance must never stop a run
        paths = set()
    out = [_program(str(argv[0]))]
    for token in args:
        if token.startswith("-") and "=" in token:
            opt, value = token.split("=", 1)
            if value in paths or (not paths and Path(base, value).exists()):
                token = f"{opt}={_absolute(value, base)}"
        elif token in paths or (not paths and not token.startswith("-")
                                and Path(base, token).exists()):
            token = _absolute(token, base)
        out.append(token)
    return shlex.join(out)
