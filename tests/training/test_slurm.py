"""SLURM job scripts: sweeps, resources, and the written script run by bash against fake scontrol/srun/torchrun."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from facegen.training.slurm import SlurmResources, expand_sweep, sweep_run_name, write_slurm_job

BASH = shutil.which("bash")
pytestmark = pytest.mark.skipif(BASH is None, reason="needs bash")

HEAD = "gpu-node-07"
JOB_ID = "4242"

# Fakes for the SLURM and PyTorch commands; each records what it was given under $FAKE_LOG.
FAKE_SCONTROL = f"""#!/bin/bash
if [[ "$1" == show && "$2" == hostnames ]]; then
  [[ "$3" == "$SLURM_JOB_NODELIST" ]] || exit 3
  printf '%s\\n' {HEAD} gpu-node-08
elif [[ "$1" == requeue ]]; then
  echo "$@" >> "$FAKE_LOG/requeue"
else
  exit 2
fi
"""
FAKE_SRUN = """#!/bin/bash
printf '%s\\n' "$@" > "$FAKE_LOG/srun.args"
while [[ "$1" == -* ]]; do shift; done
exec "$@"
"""
FAKE_TORCHRUN = """#!/bin/bash
printf '%s\\n' "$@" > "$FAKE_LOG/torchrun.args.partial"
echo "$OMP_NUM_THREADS" > "$FAKE_LOG/omp"
mv "$FAKE_LOG/torchrun.args.partial" "$FAKE_LOG/torchrun.args"
if [[ -n "${FAKE_HOLD-}" ]]; then
  for _ in $(seq 3000); do [[ -e "$FAKE_HOLD" ]] && break; sleep 0.01; done
fi
exit "${FAKE_EXIT:-0}"
"""


@pytest.fixture
def fakes(tmp_path: Path) -> tuple[Path, Path]:
    """A bin folder of fake commands and the folder they log to."""
    bin_dir, log = tmp_path / "bin", tmp_path / "fake-log"
    bin_dir.mkdir()
    log.mkdir()
    for name, text in [("scontrol", FAKE_SCONTROL), ("srun", FAKE_SRUN), ("torchrun", FAKE_TORCHRUN)]:
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return bin_dir, log


def _env(fakes: tuple[Path, Path], task: int | None = None, **extra: str) -> dict[str, str]:
    bin_dir, log = fakes
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        FAKE_LOG=str(log),
        SLURM_JOB_ID=JOB_ID,
        SLURM_JOB_NODELIST="gpu-node-[07-08]",
        SLURM_NNODES="2",
    )
    env.update(extra)
    if task is not None:
        env["SLURM_ARRAY_TASK_ID"] = str(task)
    return env


def _run(script: Path, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BASH, str(script)], env=env, cwd=cwd, capture_output=True, text=True, timeout=30)


def _torchrun_args(fakes: tuple[Path, Path]) -> list[str]:
    return (fakes[1] / "torchrun.args").read_text().splitlines()


def _job(folder: Path, tmp_path: Path, **changes) -> Path:
    kwargs = dict(
        model="pix2pix3d",
        data=tmp_path / "data",
        run=tmp_path / "runs" / "exp",
        config=None,
        overrides=[],
        resources=SlurmResources(nodes=2, gpus_per_node=4, cpus_per_gpu=6),
        sweep=None,
        job_name="facegen-train",
    )
    kwargs.update(changes)
    return write_slurm_job(folder, **kwargs)


def _directives(script: Path) -> list[str]:
    """The #SBATCH options as sbatch reads them (it splits and unquotes each directive like a shell)."""
    out = []
    for line in script.read_text().splitlines():
        if line.startswith("#SBATCH "):
            out += shlex.split(line[len("#SBATCH ") :])
    return out


# --- sweeps -----------------------------------------------------------------------------------------------------


def test_expand_sweep_is_the_product_with_the_first_axis_slowest():
    runs = expand_sweep(["lr=1e-4, 3e-4", "model.lambda_l1=10,50,100"])
    assert runs == [{"lr": lr, "model.lambda_l1": l1} for lr in ("1e-4", "3e-4") for l1 in ("10", "50", "100")]
    assert [list(r) for r in runs] == [["lr", "model.lambda_l1"]] * 6
    assert expand_sweep(["seed=1"]) == [{"seed": "1"}]


@pytest.mark.parametrize(
    ("axes", "message"),
    [
        ([], "at least one axis"),
        (["lr"], "must be key=v1,v2"),
        (["=1,2"], "key ''"),
        (["1lr=1,2"], "key '1lr'"),
        (["model..l1=1"], "key 'model..l1'"),
        (["lr="], "empty value"),
        (["lr=1,,2"], "empty value"),
        (["lr=1,2,"], "empty value"),
        (["lr=1,1"], "repeats a value"),
        (["lr=1,2", "seed=1", "lr=3"], "swept twice"),
        (["note=a\tb"], "control character"),
    ],
)
def test_expand_sweep_rejects_malformed_axes(axes, message):
    with pytest.raises(ValueError, match=message):
        expand_sweep(axes)


def test_sweep_run_name_is_filesystem_safe():
    assert sweep_run_name({"lr": "0.0001", "model.lambda_l1": "50"}) == "lr=0.0001,model.lambda_l1=50"
    assert sweep_run_name({"data.dir": "../a b/c"}) == "data.dir=.._a_b_c"
    long = sweep_run_name({"note": "x" * 300})
    assert len(long) <= 200 and long != sweep_run_name({"note": "x" * 301})


# --- resources --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("time_limit", ["24:00:00", "1-00:00:00", "0-00:30:00", "72:00:00", "7-23:59:59"])
def test_resources_accept_slurm_times(time_limit):
    assert SlurmResources(time=time_limit).time == time_limit


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"nodes": 0}, "nodes must be a positive"),
        ({"gpus_per_node": -1}, "gpus_per_node must be a positive"),
        ({"cpus_per_gpu": 2.5}, "cpus_per_gpu must be a positive"),
        ({"mem_gb": True}, "mem_gb must be a positive"),
        ({"time": "24h"}, "D-HH:MM:SS or HH:MM:SS"),
        ({"time": "1:00"}, "D-HH:MM:SS or HH:MM:SS"),
        ({"time": "1-2:00:00"}, "D-HH:MM:SS or HH:MM:SS"),
        ({"time": "1-24:00:00"}, "hours must be 00-23"),
        ({"time": "10:60:00"}, "minutes and seconds"),
        ({"time": "00:00:00"}, "longer than zero"),
        ({"partition": ""}, "partition must be a non-empty"),
        ({"account": "a\nb"}, "account .* control character"),
    ],
)
def test_resources_reject_bad_values(changes, message):
    with pytest.raises(ValueError, match=message):
        SlurmResources(**changes)


# --- the written script -----------------------------------------------------------------------------------------


def test_sweep_script_directives_and_table(tmp_path):
    folder = tmp_path / "job"
    resources = SlurmResources(
        nodes=2, gpus_per_node=4, cpus_per_gpu=6, mem_gb=200, time="2-00:00:00", partition="gpu", qos="long"
    )
    script = _job(folder, tmp_path, resources=resources, sweep=["lr=1e-4,3e-4", "model.lambda_l1=10,50"])
    assert script == folder / "train.sbatch"
    assert script.read_text().startswith("#!/bin/bash\n")
    subprocess.run([BASH, "-n", str(script)], check=True)
    options = _directives(script)
    for expected in [
        "--job-name=facegen-train",
        "--nodes=2",
        "--ntasks-per-node=1",
        "--gpus-per-node=4",
        "--cpus-per-task=24",
        "--mem=200G",
        "--time=2-00:00:00",
        "--partition=gpu",
        "--qos=long",
        "--array=0-3",
        "--requeue",
        "--signal=B:USR1@120",
        f"--output={folder}/logs/%x-%A_%a.out",
        f"--error={folder}/logs/%x-%A_%a.err",
    ]:
        assert expected in options
    assert not any(o.startswith(("--account", "--constraint")) for o in options)
    assert (folder / "logs").is_dir()
    assert (folder / "sweep.tsv").read_text().splitlines() == [
        "0\tlr=1e-4,model.lambda_l1=10\tlr=1e-4\tmodel.lambda_l1=10",
        "1\tlr=1e-4,model.lambda_l1=50\tlr=1e-4\tmodel.lambda_l1=50",
        "2\tlr=3e-4,model.lambda_l1=10\tlr=3e-4\tmodel.lambda_l1=10",
        "3\tlr=3e-4,model.lambda_l1=50\tlr=3e-4\tmodel.lambda_l1=50",
    ]
    assert sorted(p.name for p in folder.iterdir()) == ["logs", "sweep.tsv", "train.sbatch"]  # no temp files left


def test_sweep_task_runs_its_own_overrides_and_run_folder(tmp_path, fakes):
    folder = tmp_path / "job"
    config = tmp_path / "base.yaml"
    script = _job(
        folder,
        tmp_path,
        config=config,
        overrides=["train.epochs=200"],
        sweep=["lr=1e-4,3e-4", "model.lambda_l1=10,50"],
    )
    result = _run(script, _env(fakes, task=3), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    port = str(29500 + int(JOB_ID) % 1000)
    assert _torchrun_args(fakes) == [
        "--nnodes", "2", "--nproc_per_node", "4",
        "--rdzv_id", JOB_ID, "--rdzv_backend", "c10d", "--rdzv_endpoint", f"{HEAD}:{port}",
        "-m", "facegen.cli.main", "train",
        "--model", "pix2pix3d",
        "--data", str(tmp_path / "data"),
        "--out", str(tmp_path / "runs" / "exp" / "lr=3e-4,model.lambda_l1=50"),
        "--config", str(config),
        "--set", "train.epochs=200",
        "--set", "lr=3e-4",
        "--set", "model.lambda_l1=50",
        "--resume",
    ]  # fmt: skip
    srun_args = (fakes[1] / "srun.args").read_text().splitlines()
    assert srun_args[: srun_args.index("torchrun")] == [
        "--nodes=2",
        "--ntasks-per-node=1",
        "--cpus-per-task=24",
        "--kill-on-bad-exit=1",
    ]
    assert (fakes[1] / "omp").read_text().strip() == "6"
    assert not (fakes[1] / "requeue").exists()


def test_every_array_task_gets_a_distinct_run(tmp_path, fakes):
    sweep = ["lr=1e-4,3e-4", "seed=1,2"]
    script = _job(tmp_path / "job", tmp_path, sweep=sweep)
    outs = []
    for task, values in enumerate(expand_sweep(sweep)):
        assert _run(script, _env(fakes, task=task), cwd=tmp_path).returncode == 0
        args = _torchrun_args(fakes)
        outs.append(args[args.index("--out") + 1])
        sets = [args[i + 1] for i, a in enumerate(args) if a == "--set"]
        assert sets == [f"{k}={v}" for k, v in values.items()]
    assert outs == [str(tmp_path / "runs" / "exp" / sweep_run_name(v)) for v in expand_sweep(sweep)]


def test_sweep_script_refuses_a_missing_or_unknown_task(tmp_path, fakes):
    script = _job(tmp_path / "job", tmp_path, sweep=["lr=1,2"])
    missing = _run(script, _env(fakes), cwd=tmp_path)
    assert missing.returncode != 0 and "not an array task" in missing.stderr
    unknown = _run(script, _env(fakes, task=7), cwd=tmp_path)
    assert unknown.returncode != 0 and "no line for array task 7" in unknown.stderr
    assert not (fakes[1] / "torchrun.args").exists()


def test_single_job_script(tmp_path, fakes):
    folder = tmp_path / "job"
    (folder).mkdir()
    (folder / "sweep.tsv").write_text("stale\n")
    resources = SlurmResources(gpus_per_node=2, account="proj-42", constraint="a100&ib")
    script = _job(folder, tmp_path, resources=resources, overrides=["lr=1e-4", "model.lambda_l1=50"])
    assert not (folder / "sweep.tsv").exists()
    options = _directives(script)
    assert "--account=proj-42" in options and "--constraint=a100&ib" in options
    assert f"--output={folder}/logs/%x-%j.out" in options
    assert not any(o.startswith("--array") for o in options)
    result = _run(script, _env(fakes, SLURM_NNODES="1"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    args = _torchrun_args(fakes)
    assert args[:4] == ["--nnodes", "1", "--nproc_per_node", "2"]
    assert args[args.index("--out") + 1] == str(tmp_path / "runs" / "exp")
    assert args[-5:] == ["--set", "lr=1e-4", "--set", "model.lambda_l1=50", "--resume"]
    assert "--config" not in args


def test_script_passes_the_trainers_exit_status(tmp_path, fakes):
    script = _job(tmp_path / "job", tmp_path)
    assert _run(script, _env(fakes, FAKE_EXIT="3"), cwd=tmp_path).returncode == 3


def test_paths_with_spaces_and_quotes_reach_torchrun_whole(tmp_path, fakes):
    base = tmp_path / "it's a $HOME `x`"
    folder, data, run, config = base / "job dir", base / "my data", base / "run dir", base / "conf 1.yaml"
    script = _job(folder, tmp_path, data=data, run=run, config=config, sweep=["note=a b,c d"], job_name="x")
    subprocess.run([BASH, "-n", str(script)], check=True)
    assert f"--output={folder}/logs/%x-%A_%a.out" in _directives(script)
    result = _run(script, _env(fakes, task=1), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    args = _torchrun_args(fakes)
    assert args[args.index("--data") + 1] == str(data)
    assert args[args.index("--config") + 1] == str(config)
    assert args[args.index("--out") + 1] == str(run / "note=c_d")
    assert args[args.index("--set") + 1] == "note=c d"


def test_relative_paths_are_made_absolute(tmp_path, fakes, monkeypatch):
    monkeypatch.chdir(tmp_path)
    script = write_slurm_job(
        Path("job"),
        model="pix2pix3d",
        data=Path("data"),
        run=Path("runs/a"),
        config=Path("a.yaml"),
        overrides=[],
        resources=SlurmResources(),
        sweep=None,
        job_name="rel",
    )
    assert script == tmp_path / "job" / "train.sbatch"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert _run(script, _env(fakes), cwd=elsewhere).returncode == 0
    args = _torchrun_args(fakes)
    assert args[args.index("--data") + 1] == str(tmp_path / "data")
    assert args[args.index("--out") + 1] == str(tmp_path / "runs" / "a")
    assert args[args.index("--config") + 1] == str(tmp_path / "a.yaml")


def test_named_python_runs_its_own_launcher(tmp_path, fakes):
    python = fakes[0] / "my python"
    python.write_text(
        '#!/bin/bash\n[[ "$1 $2" == "-m torch.distributed.run" ]] || exit 9\nshift 2\nexec torchrun "$@"\n'
    )
    python.chmod(0o755)
    script = _job(tmp_path / "job", tmp_path, python=str(python))
    assert _run(script, _env(fakes), cwd=tmp_path).returncode == 0
    assert _torchrun_args(fakes)[:4] == ["--nnodes", "2", "--nproc_per_node", "4"]


def test_usr1_requeues_the_job_and_the_script_waits_for_the_trainer(tmp_path, fakes):
    script = _job(tmp_path / "job", tmp_path)
    release = tmp_path / "release"
    proc = subprocess.Popen(
        [BASH, str(script)],
        env=_env(fakes, FAKE_HOLD=str(release)),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not (fakes[1] / "torchrun.args").exists():  # the trainer is running
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.01)
        proc.send_signal(signal.SIGUSR1)  # what --signal=B:USR1@120 sends the batch shell
        while not (fakes[1] / "requeue").exists():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.01)
        assert (fakes[1] / "requeue").read_text() == f"requeue {JOB_ID}\n"
        time.sleep(0.05)
        assert proc.poll() is None  # still waiting for srun, not exited on the signal
        release.touch()
        _, err = proc.communicate(timeout=20)
    finally:
        release.touch()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "requeueing job" in err


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"overrides": ["lr"]}, "must be key=value"),
        ({"overrides": ["lr=1", "lr=2"]}, "set twice"),
        ({"overrides": ["1x=2"]}, "key '1x'"),
        ({"overrides": ["lr=1"], "sweep": ["lr=1,2"]}, "both swept and set"),
        ({"sweep": ["note=a/b,a_b"]}, "same folder name"),
        ({"sweep": []}, "at least one axis"),
        ({"job_name": "my job"}, "job name"),
        ({"model": ""}, "model name"),
        ({"data": Path("/tmp/a\nb")}, "control character"),
        ({"rdzv_port": 80}, "rdzv_port"),
    ],
)
def test_write_slurm_job_rejects_bad_input(tmp_path, changes, message):
    with pytest.raises(ValueError, match=message):
        _job(tmp_path / "job", tmp_path, **changes)
    assert not (tmp_path / "job" / "train.sbatch").exists()
