"""SLURM batch scripts for facegen training: one job, or a hyperparameter sweep as a job array.

`write_slurm_job` writes `FOLDER/train.sbatch` (and, for a sweep, `FOLDER/sweep.tsv`); submit it with

    sbatch FOLDER/train.sbatch

Each job (each array task, for a sweep) runs one `torchrun` per node through `srun`, every node meeting at a c10d
rendezvous on the job's first node, and trains with `--resume`: a job that is preempted, or that the script
requeues itself when SLURM warns it (USR1, two minutes before the time limit), reruns the same command and
continues from its run folder's newest checkpoint. A sweep task reads its own line of sweep.tsv, found by
`$SLURM_ARRAY_TASK_ID`, and trains into its own subfolder of the run folder, e.g. `RUN/lr=0.0001,model.lambda_l1=50`.
Logs go to `FOLDER/logs`, appended across requeues.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from facegen.io.atomic import write_bytes_atomic

__all__ = ["SlurmResources", "expand_sweep", "sweep_run_name", "write_slurm_job"]

SCRIPT_NAME = "train.sbatch"
SWEEP_TABLE = "sweep.tsv"
LOG_FOLDER = "logs"
REQUEUE_WARNING_S = 120
"""Seconds before the time limit at which SLURM sends the batch shell USR1, so it can requeue the job."""

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_TIME = re.compile(r"(?:(?P<days>\d+)-(?P<dhours>\d{2})|(?P<hours>\d+)):(?P<minutes>\d{2}):(?P<seconds>\d{2})")
_JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9._,=+-]")
_MAX_RUN_NAME = 200  # below the usual 255-byte limit on one file name


def _has_control(text: str) -> bool:
    """True when `text` holds a control character: one would break a script line or a sweep.tsv field."""
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


@dataclass(frozen=True)
class SlurmResources:
    """What one job asks SLURM for: per-node GPUs, CPUs per GPU and memory, a time limit, and where to run."""

    nodes: int = 1
    gpus_per_node: int = 1
    cpus_per_gpu: int = 8
    mem_gb: int = 64
    time: str = "24:00:00"
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None

    def __post_init__(self) -> None:
        for name in ("nodes", "gpus_per_node", "cpus_per_gpu", "mem_gb"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive whole number, got {value!r}")
        _check_time(self.time)
        for name in ("partition", "account", "qos", "constraint"):
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{name} must be a non-empty string or None, got {value!r}")
            if _has_control(value):
                raise ValueError(f"{name} {value!r} contains a control character")

    @property
    def cpus_per_task(self) -> int:
        """CPUs for the one task (one torchrun) on each node: all its GPUs' worth."""
        return self.gpus_per_node * self.cpus_per_gpu


def _check_time(text: object) -> None:
    """Raise ValueError unless `text` is a positive SLURM time limit written D-HH:MM:SS or HH:MM:SS."""
    match = _TIME.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"time {text!r} must be D-HH:MM:SS or HH:MM:SS, e.g. 1-12:00:00 or 36:00:00")
    hours = int(match["dhours"] if match["days"] is not None else match["hours"])
    minutes, seconds = int(match["minutes"]), int(match["seconds"])
    if match["days"] is not None and hours > 23:
        raise ValueError(f"time {text!r}: hours must be 00-23 after the days")
    if minutes > 59 or seconds > 59:
        raise ValueError(f"time {text!r}: minutes and seconds must be 00-59")
    if int(match["days"] or 0) * 86400 + hours * 3600 + minutes * 60 + seconds == 0:
        raise ValueError(f"time {text!r} must be longer than zero")


def _check_key(key: str, where: str) -> None:
    """Raise ValueError unless `key` is a config key such as `lr` or `model.lambda_l1`."""
    if not _KEY.fullmatch(key):
        raise ValueError(f"{where}: key {key!r} must be dotted identifiers, e.g. lr or model.lambda_l1")


def expand_sweep(axes: list[str]) -> list[dict[str, str]]:
    """The cartesian product of sweep axes `key=v1,v2,...`, first axis slowest: one dict of values per run."""
    if not axes:
        raise ValueError("a sweep needs at least one axis, e.g. lr=1e-4,3e-4")
    keys: list[str] = []
    choices: list[list[str]] = []
    for axis in axes:
        key, sep, rest = axis.partition("=")
        key = key.strip()
        if not sep:
            raise ValueError(f"sweep axis {axis!r} must be key=v1,v2,..., e.g. lr=1e-4,3e-4")
        _check_key(key, f"sweep axis {axis!r}")
        if key in keys:
            raise ValueError(f"sweep axis {axis!r}: key {key!r} is swept twice")
        values = [v.strip() for v in rest.split(",")]
        if any(not v for v in values):
            raise ValueError(f"sweep axis {axis!r} has an empty value")
        if any(_has_control(v) for v in values):
            raise ValueError(f"sweep axis {axis!r} has a value with a tab, newline or other control character")
        if len(set(values)) != len(values):
            raise ValueError(f"sweep axis {axis!r} repeats a value")
        keys.append(key)
        choices.append(values)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*choices)]


def sweep_run_name(values: dict[str, str]) -> str:
    """A run's subfolder name, `k1=v1,k2=v2`, with characters other than letters, digits and `._,=+-` made `_`."""
    raw = ",".join(f"{k}={v}" for k, v in values.items())
    name = _UNSAFE_IN_NAME.sub("_", raw)
    if len(name) > _MAX_RUN_NAME:  # keep it a legal file name, and distinct through a hash of the full text
        name = f"{name[: _MAX_RUN_NAME - 13]}-{hashlib.sha256(raw.encode()).hexdigest()[:12]}"
    return name


def _parse_overrides(overrides: list[str]) -> list[str]:
    """Check `key=value` overrides and return their keys; raise ValueError on a malformed or repeated one."""
    keys: list[str] = []
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"override {item!r} must be key=value, e.g. lr=1e-4")
        _check_key(key, f"override {item!r}")
        if _has_control(value):
            raise ValueError(f"override {item!r} has a tab, newline or other control character")
        if key in keys:
            raise ValueError(f"override {item!r}: key {key!r} is set twice")
        keys.append(key)
    return keys


def _path_arg(path: Path, what: str) -> str:
    """`path` made absolute (the job may start elsewhere) and shell-quoted."""
    text = str(Path(path).expanduser().absolute())
    if _has_control(text):
        raise ValueError(f"{what} path {text!r} contains a control character")
    return shlex.quote(text)


def _log_pattern(folder: Path, array: bool) -> tuple[str, str]:
    """Shell-quoted --output and --error paths; a literal % in the folder is doubled so SLURM keeps it."""
    stem = "%x-%A_%a" if array else "%x-%j"
    logs = str(folder / LOG_FOLDER).replace("%", "%%")
    return shlex.quote(f"{logs}/{stem}.out"), shlex.quote(f"{logs}/{stem}.err")


def write_slurm_job(
    folder: Path,
    *,
    model: str,
    data: Path,
    run: Path,
    config: Path | None,
    overrides: list[str],
    resources: SlurmResources,
    sweep: list[str] | None,
    job_name: str,
    python: str = "python",
    rdzv_port: int = 29500,
) -> Path:
    """Write `folder/train.sbatch` (and `folder/sweep.tsv` for a sweep) atomically; return the script's path.

    `overrides` (`key=value`) go to every run as `--set`; a sweep's values follow them in each task and may not
    repeat their keys. With the default `python` the job runs `torchrun` from its PATH; naming an interpreter runs
    that interpreter's own launcher, `PYTHON -m torch.distributed.run`, so the workers use it too. Each job meets
    at port `rdzv_port + SLURM_JOB_ID % 1000` on its first node, so jobs that share a node do not collide.
    """
    if not model or _has_control(model):
        raise ValueError(f"model name {model!r} must be non-empty, without control characters")
    if not _JOB_NAME.fullmatch(job_name):
        raise ValueError(f"job name {job_name!r} must be letters, digits, '.', '_' or '-'")
    if not python or _has_control(python):
        raise ValueError(f"python {python!r} must be a command or path, without control characters")
    if isinstance(rdzv_port, bool) or not isinstance(rdzv_port, int) or not 1024 <= rdzv_port <= 64535:
        raise ValueError(f"rdzv_port {rdzv_port!r} must be a whole number in 1024-64535")
    override_keys = _parse_overrides(overrides)

    folder = Path(folder).expanduser().absolute()
    runs: list[dict[str, str]] | None = None
    if sweep is not None:
        runs = expand_sweep(sweep)
        clash = sorted(set(runs[0]) & set(override_keys))
        if clash:
            raise ValueError(f"key(s) {', '.join(clash)} are both swept and set by an override")
        names = [sweep_run_name(values) for values in runs]
        if len(set(names)) != len(names):
            raise ValueError("two sweep runs get the same folder name once made filesystem-safe; make values differ")

    launcher = "torchrun" if python == "python" else f"{shlex.quote(python)} -m torch.distributed.run"
    train_args = [
        "-m facegen.cli.main train",
        f"--model {shlex.quote(model)}",
        f"--data {_path_arg(data, 'data')}",
        '--out "$run_dir"',
    ]
    if config is not None:
        train_args.append(f"--config {_path_arg(config, 'config')}")
    train_args += [f"--set {shlex.quote(item)}" for item in overrides]
    if runs is not None:
        train_args.append('"${sweep_set[@]}"')
    train_args.append("--resume")

    out_log, err_log = _log_pattern(folder, runs is not None)
    r = resources
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name={job_name}",
        f"#SBATCH --nodes={r.nodes}",
        "#SBATCH --ntasks-per-node=1",
        f"#SBATCH --gpus-per-node={r.gpus_per_node}",
        f"#SBATCH --cpus-per-task={r.cpus_per_task}",
        f"#SBATCH --mem={r.mem_gb}G",
        f"#SBATCH --time={r.time}",
    ]
    for option in ("partition", "account", "qos", "constraint"):
        value = getattr(r, option)
        if value is not None:
            lines.append(f"#SBATCH --{option}={shlex.quote(value)}")
    lines += [f"#SBATCH --output={out_log}", f"#SBATCH --error={err_log}", "#SBATCH --open-mode=append"]
    if runs is not None:
        lines.append(f"#SBATCH --array=0-{len(runs) - 1}")
    lines += [
        "#SBATCH --requeue",
        f"#SBATCH --signal=B:USR1@{REQUEUE_WARNING_S}",
        "#",
        "# facegen training job, written by facegen.training.slurm. Submit with: "
        f"sbatch {_path_arg(folder / SCRIPT_NAME, 'job')}",
        "# Every (re)start trains with --resume, continuing from the newest checkpoint in its run folder.",
        "set -euo pipefail",
        "",
        f"export OMP_NUM_THREADS={r.cpus_per_gpu}",
        "export PYTHONUNBUFFERED=1",
        "",
        "# The first node hosts the rendezvous (not `| head -n 1`: under pipefail its SIGPIPE fails the job).",
        'hosts=$(scontrol show hostnames "$SLURM_JOB_NODELIST")',
        "head_node=${hosts%%$'\\n'*}",
        'if [[ -z "$head_node" ]]; then echo "facegen: no host in SLURM_JOB_NODELIST" >&2; exit 1; fi',
        f"rdzv_port=$(( {rdzv_port} + SLURM_JOB_ID % 1000 ))",
    ]
    if runs is None:
        lines.append(f"run_dir={_path_arg(run, 'run')}")
    else:
        lines += [
            "",
            "# This array task's line of sweep.tsv: task index, run subfolder, then its key=value overrides.",
            'task="${SLURM_ARRAY_TASK_ID:?not an array task: submit with sbatch}"',
            "fields=()",
            "while IFS=$'\\t' read -r -a fields; do",
            '  if [[ "${fields[0]-}" == "$task" ]]; then break; fi',
            "  fields=()",
            f"done < {_path_arg(folder / SWEEP_TABLE, 'sweep table')}",
            "if (( ${#fields[@]} < 3 )); then",
            f'  echo "facegen: no line for array task $task in {SWEEP_TABLE}" >&2',
            "  exit 1",
            "fi",
            f'run_dir={_path_arg(run, "run")}/"${{fields[1]}}"',
            "sweep_set=()",
            'for item in "${fields[@]:2}"; do sweep_set+=(--set "$item"); done',
        ]
    launch = [
        f"srun --nodes={r.nodes} --ntasks-per-node=1 --cpus-per-task={r.cpus_per_task} --kill-on-bad-exit=1",
        f"{launcher} --nnodes {r.nodes} --nproc_per_node {r.gpus_per_node}",
        '--rdzv_id "$SLURM_JOB_ID" --rdzv_backend c10d --rdzv_endpoint "$head_node:$rdzv_port"',
        *train_args,
    ]
    lines += [
        'echo "facegen: job $SLURM_JOB_ID on $SLURM_JOB_NODELIST, rendezvous $head_node:$rdzv_port, run $run_dir"',
        "",
        "# SLURM sends USR1 to this shell before the time limit: requeue, and the rerun resumes from a checkpoint.",
        "# srun runs in the background because bash only runs a trap once the foreground command is done.",
        "caught=0",
        "on_usr1() {",
        "  caught=1",
        '  echo "facegen: time limit near; requeueing job $SLURM_JOB_ID" >&2',
        '  scontrol requeue "$SLURM_JOB_ID" || echo "facegen: scontrol requeue failed" >&2',
        "}",
        "trap on_usr1 USR1",
        "",
        " \\\n    ".join(launch) + " &",
        "launcher_pid=$!",
        "while :; do  # a trapped signal ends `wait` early: wait again for srun itself",
        "  caught=0",
        '  if wait "$launcher_pid"; then status=0; else status=$?; fi',
        "  (( caught )) || break",
        "done",
        'exit "$status"',
        "",
    ]
    script = "\n".join(lines)

    (folder / LOG_FOLDER).mkdir(parents=True, exist_ok=True)  # SLURM does not create the log folder
    table = folder / SWEEP_TABLE
    if runs is None:
        table.unlink(missing_ok=True)  # a stale table from an earlier sweep would only mislead
    else:
        rows = [
            "\t".join([str(i), sweep_run_name(values), *(f"{k}={v}" for k, v in values.items())])
            for i, values in enumerate(runs)
        ]
        write_bytes_atomic(table, ("\n".join(rows) + "\n").encode())
    path = folder / SCRIPT_NAME
    write_bytes_atomic(path, script.encode())
    return path
