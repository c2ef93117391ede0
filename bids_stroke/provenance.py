"""Provenance of a run: the exact command line and the container it ran in (if any).

* :func:`command_line` renders ``sys.argv`` as one shell-quoted line with every path argument
  made absolute (``bids_stroke /data/bids /data/out participant -w /scratch/work``), so a
  report or sidecar says exactly what was run and from where it can be re-run.
* :func:`container_info` returns the BIDS ``GeneratedBy.Container`` object, or ``None`` when
  bids_stroke does not run from a container image it can name: ``GeneratedBy.Container`` is
  then left out instead of claiming a container with an empty tag.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["ENV_CONTAINER", "ENV_IMAGE", "command_line", "container_info", "path_arguments"]

ENV_CONTAINER = "BIDS_STROKE_CONTAINER"
"""Set by the Dockerfile (``docker``): this process runs from the bids_stroke image."""
ENV_IMAGE = "BIDS_STROKE_IMAGE"
"""Set by the Dockerfile: the image name and tag, e.g. ``bids_stroke:0.1.0``."""

_PROGRAMS = {"run.py": "bids_stroke", "__main__.py": "bids_stroke"}


def _program(argv0: str) -> str:
    name = os.path.basename(argv0) or "bids_stroke"
    return _PROGRAMS.get(name, name)


def _subcommand_parser(args: Sequence[str]) -> tuple[argparse.ArgumentParser, list[str]]:
    """The parser that reads ``args`` (without the program name) and the arguments it gets."""
    from bids_stroke.cli.run import subcommand

    sub = subcommand(args)
    if sub is not None:
        import importlib

        from bids_stroke.cli.run import SUBCOMMANDS

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
    for action in parser._actions:
        if action.type is not Path and action.dest != "lesion_masks":
            continue
        value = getattr(opts, action.dest, None)
        values = value if isinstance(value, list | tuple) else [value]
        found.update(str(v) for v in values if v is not None and str(v) != "")
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


def container_info(
    environ: Mapping[str, str] | None = None, *, root: str | Path = "/"
) -> dict[str, str] | None:
    """BIDS ``GeneratedBy.Container`` of this process, or ``None`` outside a named image.

    * Apptainer/Singularity (``APPTAINER_CONTAINER`` or ``SINGULARITY_CONTAINER`` set by the
      runtime): ``{"Type": "apptainer" | "singularity", "Tag": <image>}`` where the tag is
      ``BIDS_STROKE_IMAGE`` (inherited from the Docker image) or else the SIF file name.
    * The bids_stroke Docker image (``BIDS_STROKE_CONTAINER``, set by the Dockerfile):
      ``{"Type": "docker", "Tag": "bids_stroke:<version>"}``; ``podman`` when
      ``/run/.containerenv`` exists; ``Tag`` only when ``BIDS_STROKE_IMAGE`` is set.
    * Anything else, including a pip install inside some other container (``/.dockerenv``
      present but not our image, e.g. a CI runner or a development container): ``None``. Its
      image is unknown, so no container is claimed.
    """
    env = os.environ if environ is None else environ
    root = Path(root)
    image = env.get(ENV_IMAGE, "").strip()
    for var, kind in (("APPTAINER_CONTAINER", "apptainer"),
                      ("SINGULARITY_CONTAINER", "singularity")):
        sif = env.get(var, "").strip()
        if sif:
            return {"Type": kind, "Tag": image or os.path.basename(sif.rstrip("/")) or sif}
    kind = env.get(ENV_CONTAINER, "").strip()
    if not kind:
        return None
    if (root / "run" / ".containerenv").exists():
        kind = "podman"
    elif (root / ".dockerenv").exists():
        kind = "docker"
    info = {"Type": kind}
    if image:
        info["Tag"] = image
    return info
