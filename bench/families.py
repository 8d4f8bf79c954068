"""Every model family trained and scored on 1,000 synthetic heads (800 train + val / 200 held out), the table
written into docs/benchmarks.md (issue 18: the whole command in under 90 minutes on 2 CPU cores).

1. `facegen synth --n 1000 --seed 18 --size 128 --grid 64 --split 0.75,0.05,0.2`: 750 train, 50 val (what
   training validates on), 200 test subjects; kept while its card matches (n, seed, split).
2. template, pca, gan2d, diffusion2d, gan3d, each by `facegen train` in its own process (timed, peak RSS), with
   configs/*-bench-*.toml. With --reuse a finished run is kept and an interrupted one resumes from its newest
   checkpoint (`facegen train --resume`); --steps-factor F trains the neural families F times as long, and with
   --reuse a finished shorter run continues from its last checkpoint (a longer GPU run on top of the CPU one).
3. `facegen evaluate` on the 200 test subjects beside the floor; the table (mean error, x floor, within 2.5 mm,
   rank-1 in the gallery of 200, mean error per face region, training minutes, date and machine) goes between
   the families markers of docs/benchmarks.md, and the ranking `facegen demo` shows into
   facegen/assets/benchmark_families.json; --quick writes the table to OUT/families.md only.

    .venv/bin/python bench/families.py [--out bench-output/families] [--reuse] [--device auto|cpu|cuda]
        [--steps-factor F] [--only template pca ...] [--quick] [--docs docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from report import family_configs, print_summary, run_timed

from facegen.cli.ranking import RANKING_FILE
from facegen.training.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = family_configs("bench")
ENSEMBLE_MEMBERS = ("gan2d", "pca")
"""The ensemble family's members: the mean of their faces (the two that err least, and differently)."""
FAMILIES = (*CONFIGS, "ensemble")
FULL = {"n": 1000, "seed": 18, "split": "0.75,0.05,0.2"}
QUICK = {"n": 60, "seed": 18, "split": "0.6,0.2,0.2"}
QUICK_SETS = {
    "gan2d": ["steps=12", "eval_every=6", "checkpoint_every=6", "log_every=3"],
    "diffusion2d": [
        "steps=12",
        "eval_every=6",
        "checkpoint_every=6",
        "log_every=3",
        "model.sampling_steps=5",
        "model.samples=2",
    ],
    "gan3d": ["steps=8", "eval_every=4", "checkpoint_every=4", "log_every=2"],
}
"""--quick: a few steps of each neural family (checkpoints and validation included), to check the command."""
NEURAL = ("gan2d", "diffusion2d", "gan3d")
BEGIN, END = "<!-- families:begin -->", "<!-- families:end -->"
SECTION = "## All families on 1,000 synthetic heads (bench/families.py)"
TARGET_MIN = 90.0
STEP_SECONDS = {"gan2d": 1.95, "diffusion2d": 1.35, "gan3d": 2.0}
"""CPU seconds per step, one thread, both cores busy, on the slower of two machines (2026-12-03, see the configs;
diffusion2d at batch 8 scaled from batch 16's 2.6 s): estimates and job order. The other machine, the same day:
gan2d 1.05 s, diffusion2d 0.71 s, gan3d 1.4 s."""
FIT_SECONDS = 60.0
"""A closed-form fit (template, pca) of 750 heads, process start included."""
REUSED: dict[bool | str, str] = {False: "", True: ", reused", "partly": ", partly reused"}
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
"""Set per training process when several run at once (configs keep threads = 0: a run resumes anywhere)."""


def machine() -> dict[str, Any]:
    """Cores, CPU model, memory and the GPU (if torch sees one) of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        names = [
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ]
        cpu = names[0] if names else cpu
        mem_kib = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
    except (OSError, StopIteration, ValueError):
        mem_kib = 0
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cores": len(os.sched_getaffinity(0)), "cpu": cpu, "memory_gib": round(mem_kib / 2**20), "gpu": gpu}


def train_sets(family: str, *, quick: bool, device: str, steps_factor: float) -> list[str]:
    """The `--set` overrides of one family's training: quick sizes, the device, longer training."""
    sets = list(QUICK_SETS.get(family, [])) if quick else []
    if device != "auto":
        sets.append(f"device={device}")
    if steps_factor != 1.0 and family in NEURAL:
        steps = next((int(s.split("=")[1]) for s in sets if s.startswith("steps=")), None)
        if steps is None:
            steps = tomllib.loads(CONFIGS[family].read_text())["steps"]  # type: ignore[union-attr]
        sets.append(f"steps={max(1, round(steps * steps_factor))}")
    return sets


def estimate_seconds(family: str, config: dict[str, Any]) -> float:
    """A family's training wall on one idle core, from the measured cost per step (or per fit)."""
    return config["steps"] * STEP_SECONDS[family] + 60.0 if family in STEP_SECONDS else FIT_SECONDS


def lane_estimate(seconds: list[float], lanes: int) -> float:
    """The wall of jobs run `lanes` at a time, longest first, each started as a lane frees."""
    ends = [0.0] * lanes
    for s in sorted(seconds, reverse=True):
        ends[ends.index(min(ends))] += s
    return max(ends)


def run_lanes(
    jobs: list[tuple[str, list[str], float]],
    lanes: int,
    env: dict[str, str],
    logs: Path,
    done: Callable[[str, float, float], None],
) -> float:
    """Run (name, command, estimate) jobs `lanes` at a time, longest first, logging to LOGS/name.log; wall seconds."""
    # done(name, wall seconds, peak RSS MiB) as each ends; a failed job stops none of the others (their runs stay
    # reusable), and the function then exits naming it
    logs.mkdir(parents=True, exist_ok=True)
    pending = sorted(jobs, key=lambda job: -job[2])
    running: dict[int, tuple[str, float, IO[bytes]]] = {}
    failed: list[str] = []
    started = time.perf_counter()
    while pending or running:
        while pending and len(running) < lanes:
            name, command, estimate = pending.pop(0)
            log = (logs / f"{name}.log").open("wb")
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
            running[process.pid] = (name, time.perf_counter(), log)
            print(f"  {name}: started (about {estimate / 60:.0f} min on an idle core; log {logs / name}.log)")
        pid, status, usage = os.wait4(-1, 0)
        name, began, log = running.pop(pid)
        log.close()
        seconds = time.perf_counter() - began
        if os.waitstatus_to_exitcode(status):
            failed.append(name)
            print(f"  {name}: FAILED after {seconds / 60:.1f} min (see {logs / name}.log)")
            continue
        print(f"  {name}: done in {seconds / 60:.1f} min")
        done(name, seconds, usage.ru_maxrss / 1024.0)
    if failed:
        raise SystemExit(f"training failed: {', '.join(failed)} (logs in {logs}); --reuse keeps the finished runs")
    return time.perf_counter() - started


def run_state(run: Path, config: dict[str, Any], data_hash: str) -> str:
    """'finished' (run.json of this config and data), 'resume' (fewer steps, or checkpoints only) or 'new'."""
    # checkpoints without run.json: the trainer itself refuses them if made with another config or data
    record = run / "run.json"
    if record.exists():
        earlier = json.loads(record.read_text())
        done = earlier["config"]
        if TrainConfig.resume_key(done) != TrainConfig.resume_key(config) or earlier["data"]["hash"] != data_hash:
            return "new"
        return "finished" if done["steps"] >= config["steps"] else "resume"
    return "resume" if any((run / "checkpoints").glob("step-*.pt")) else "new"


def train_ensemble(
    runs: Path, data: Path, facegen: list[str], training: dict[str, Any], rows: list[tuple[str, str]]
) -> None:
    """Train the ensemble from its members' finished runs (seconds: nothing is learned), unless its run is newer
    than theirs; its time is added to the training stage (`training`, that stage's record)."""
    run, members = runs / "ensemble", [runs / m for m in ENSEMBLE_MEMBERS]
    missing = [str(m) for m in members if not (m / "run.json").exists()]
    if missing:
        raise SystemExit(f"the ensemble needs its members trained first: {', '.join(missing)} (run them with --only)")
    record = run / "run.json"
    if record.exists() and record.stat().st_mtime > max((m / "run.json").stat().st_mtime for m in members):
        rows.append(("ensemble: training", "reused (newer than its members)"))
        return
    command = [*facegen, "train", "--model", "ensemble", "--data", str(data), "--out", str(run), "--overwrite",
               "--set", "model.members=" + json.dumps([str(m.resolve()) for m in members])]  # fmt: skip
    seconds, peak = run_timed(command)
    earlier = training.setdefault("families", {}).get("ensemble", {}).get("seconds", 0.0)  # a refit replaces it
    training["families"]["ensemble"] = {"seconds": seconds, "peak_rss_mib": peak, "threads": 0}
    training["seconds"] += seconds - earlier
    training["peak_rss_mib"] = max(training["peak_rss_mib"], peak)
    if training.get("reused") is True:
        training["reused"] = "partly"
    rows.append(("ensemble: training (process wall)", f"{seconds / 60:.1f} min, peak {peak:.0f} MiB"))


def dataset_matches(data: Path, spec: dict[str, Any]) -> bool:
    """Whether DATA is a finished dataset of spec's size, seed and split."""
    card_path = data / "dataset.json"
    if not card_path.exists():
        return False
    card = json.loads(card_path.read_text())
    fractions = [float(f) for f in spec["split"].split(",")]
    wanted = dict(zip(("train", "val", "test"), fractions, strict=True))
    return card["n_subjects"] == spec["n"] and card["seed"] == spec["seed"] and card.get("split_fractions") == wanted


def report_is_current(report: Path, runs: list[Path]) -> bool:
    """Whether REPORT scored exactly these runs, after each of them last finished."""
    record = report / "report.json"
    if not record.exists():
        return False
    scored = [m["run"] for m in json.loads(record.read_text())["models"]]
    newest = max((run / "run.json").stat().st_mtime for run in runs)
    return scored == [str(run) for run in runs] and record.stat().st_mtime > newest


def _mm(value: float) -> str:
    """Millimetres to two decimals, a dash for NaN (a region without pixels)."""
    return f"{value:.2f}" if value == value else "-"


def ensemble_members(runs: dict[str, dict[str, Any]]) -> str:
    """The ensemble's members with the weights its run fitted on the val split: '0.65 gan2d + 0.35 pca'."""
    figures = runs.get("ensemble", {}).get("figures", {})
    weights = [figures.get(f"weight_{i}") for i in range(len(ENSEMBLE_MEMBERS))]
    if None in weights:
        return " + ".join(ENSEMBLE_MEMBERS)
    return " + ".join(f"{w:.2f} {m}" for w, m in zip(weights, ENSEMBLE_MEMBERS, strict=True))


def family_table(record: dict[str, Any], stages: dict[str, Any], runs: dict[str, dict[str, Any]]) -> list[str]:
    """Markdown table lines: one row per family and the floor, figures, regions and training minutes."""
    rows = [*record["models"], *([record["floor"]] if record.get("floor") else [])]
    from facegen.evaluation.regions import FACIAL_REGIONS  # top to bottom (the record's keys are sorted)

    regions = [r for r in FACIAL_REGIONS if r in rows[0]["regions"]] + sorted(
        set(rows[0]["regions"]) - set(FACIAL_REGIONS)
    )
    floor = record["floor"]["metrics"]["mae_mm"]["mean"] if record.get("floor") else float("nan")
    gallery = record["gallery"]["size"]
    head = [
        "family",
        "mean error (SD) mm",
        "x floor",
        "within 2.5 mm",
        f"rank-1 (gallery {gallery})",
        "95% band coverage",
        *(r.replace("_", " ") for r in regions),
        "training min (steps x batch)",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        m, name = row["metrics"], row["name"]
        mae = m["mae_mm"]
        cells = [
            f"{mae['mean']:.2f} ({mae['sd']:.2f})",
            f"{mae['mean'] / floor:.2f}x",
            f"{m['within_2_5mm']['mean']:.0%}",
            f"{row['identification']['rank_1']:.0%}",
            f"{row['calibration']['coverage']:.1%}" if "calibration" in row else "-",  # the default rule reads it
            *(_mm(row["regions"][r]["mae_mm"]["mean"]) for r in regions),
        ]
        train = stages.get("train", {}).get("families", {}).get(name)
        config = runs.get(name, {}).get("config", {})
        if train is None:
            cells.append("-")
        elif name in NEURAL:
            cells.append(f"{train['seconds'] / 60:.1f} ({config.get('steps')} x {config.get('batch_size')})")
        else:
            cells.append(f"{train['seconds'] / 60:.1f}")
        label = name if name in FAMILIES else "floor (noise-free face)"
        label += f" ({ensemble_members(runs)})" if name == "ensemble" else ""
        if name in NEURAL and row.get("samples", 1) > 1:
            label += f" (mean of {row['samples']} samples)"
        lines.append("| " + " | ".join([label, *cells]) + " |")
    return lines


def compact(record: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per model and the floor: mean error, its SD, within 2.5 mm, rank-1 and the mean error per region."""
    out = {}
    for row in [*record["models"], *([record["floor"]] if record.get("floor") else [])]:
        m = row["metrics"]
        out[row["name"]] = {
            "mae_mm": m["mae_mm"]["mean"],
            "mae_sd_mm": m["mae_mm"]["sd"],
            "within_2_5mm": m["within_2_5mm"]["mean"],
            "rank_1": row["identification"]["rank_1"],
        } | {f"region_{k}_mae_mm": v["mae_mm"]["mean"] for k, v in row["regions"].items()}
    return out


def acceptance(record: dict[str, Any]) -> str:
    """The issue-18 acceptance figures of the best family (lowest mean error) against the floor."""
    if not record.get("floor"):
        return ""
    best = min(record["models"], key=lambda m: m["metrics"]["mae_mm"]["mean"])
    f, b = record["floor"], best
    ratio = b["metrics"]["mae_mm"]["mean"] / f["metrics"]["mae_mm"]["mean"]
    within = b["metrics"]["within_2_5mm"]["mean"] / f["metrics"]["within_2_5mm"]["mean"]
    rank = b["identification"]["rank_1"] / max(f["identification"]["rank_1"], 1e-9)
    return (
        f"Best family by mean error: **{b['name']}**, {ratio:.2f}x the floor (target <= 1.3x); within 2.5 mm "
        f"{within:.0%} of the floor's (target >= 90%); rank-1 {rank:.0%} of the floor's (target >= 80%)."
    )


COVERAGE_RANGE = (0.85, 0.98)
"""A stated 95% band is calibrated when it holds the truth at this share of face points (the evaluation's target)."""


def rule_order(record: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The families by mean error, and those the default rule qualifies (a calibrated stated 95% band), in order."""
    low, high = COVERAGE_RANGE
    by_error = sorted(record["models"], key=lambda m: m["metrics"]["mae_mm"]["mean"])
    return by_error, [m for m in by_error if "calibration" in m and low <= m["calibration"]["coverage"] <= high]


def default_by_rule(record: dict[str, Any]) -> str:
    """The stated rule for the case default, applied to the held-out figures: a case states its uncertainty, so
    only families whose stated 95% band holds the truth at COVERAGE_RANGE of face points qualify; among them the
    lowest mean error. The real skull's plausibility (the rule's third part) is measured by `facegen reconstruct` on
    the headsq CT (README)."""
    low, high = COVERAGE_RANGE
    by_error, qualified = rule_order(record)

    def described(m: dict[str, Any]) -> str:
        spread = (f"band coverage {m['calibration']['coverage']:.1%}" if "calibration" in m
                  else "no stated uncertainty")  # fmt: skip
        return f"{m['name']} {m['metrics']['mae_mm']['mean']:.2f} mm, {spread}"

    ahead = by_error[: by_error.index(qualified[0])] if qualified else by_error
    if not qualified:
        return f"Default by the rule: no family states a calibrated uncertainty ({'; '.join(map(described, ahead))})."
    given_up = "".join(f"; more accurate but not qualified: {described(m)}" for m in ahead)
    return (f"Default by the rule (calibrated {low:.0%}-{high:.0%}, then the lowest mean error): "
            f"**{qualified[0]['name']}** ({described(qualified[0])}{given_up}).")


def markdown(
    record: dict[str, Any], stages: dict[str, Any], runs: dict[str, dict[str, Any]], context: dict[str, Any]
) -> str:
    """The whole block that goes between the markers: how it was run, the table, the stage times."""
    m = context["machine"]
    where = f"{m['cores']} CPU cores ({m['cpu']}, {m['memory_gib']} GiB)" + (f", GPU {m['gpu']}" if m["gpu"] else "")
    total = sum(s["seconds"] for s in stages.values())
    stage_text = "; ".join(
        f"{k} {v['seconds'] / 60:.1f} min (peak {v['peak_rss_mib']:.0f} MiB{REUSED[v.get('reused', False)]})"
        for k, v in stages.items()
    )
    train = stages.get("train", {})
    lanes = (
        f"{train['lanes']} at a time, {train['threads']} thread(s) each"
        if train.get("lanes", 1) > 1
        else "one at a time"
    )
    spec = context["data"]
    lines = [
        f"`{context['command']}`, {context['date']}, {where}; load average at the start "
        f"{context['load_start']:.2f}, at the end {context['load_end']:.2f}.",
        "",
        f"{spec['n']} synthetic heads (`facegen synth --n {spec['n']} --seed {spec['seed']} --size 128 --grid 64 "
        f"--split {spec['split']}`): {context['counts']}. Scored by `facegen evaluate` on the "
        f"{record['n_subjects']} test subjects over each true face's facial region; rank-1 by depth difference "
        "against the true faces of all test subjects. Regions: mean error in mm. Training: `facegen train` with "
        f"configs/*-bench-*.toml, {lanes}; its minutes are each process's wall.",
        "",
        *family_table(record, stages, runs),
        "",
        acceptance(record),
        "",
        default_by_rule(record),
        "",
        f"Whole command: **{total / 60:.1f} min** ({total / 60 / TARGET_MIN:.2f}x the {TARGET_MIN:.0f} min target; "
        f"stages as run this time, reused ones at their first run's time): {stage_text}.",
    ]
    return "\n".join(lines)


def ranking_record(
    record: dict[str, Any], stages: dict[str, Any], runs: dict[str, dict[str, Any]], context: dict[str, Any]
) -> dict[str, Any]:
    """What `facegen demo` shows of this run (facegen/cli/ranking.py): per family and the floor, the headline
    figures, how long each trained, where and when."""
    m = context["machine"]
    train = stages.get("train", {}).get("families", {})

    def figures(row: dict[str, Any]) -> dict[str, float]:
        return {"mae_mm": row["metrics"]["mae_mm"]["mean"], "within_2_5mm": row["metrics"]["within_2_5mm"]["mean"],
                "rank_1": row["identification"]["rank_1"]}  # fmt: skip

    families = []
    for row in record["models"]:
        name, config = row["name"], runs.get(row["name"], {}).get("config", {})
        minutes = train.get(name, {}).get("seconds", float("nan")) / 60
        steps = f", {config.get('steps')} steps x {config.get('batch_size')}" if name in NEURAL else ""
        families.append({"name": name, **figures(row), "training": f"{minutes:.1f} min{steps}"})
    return {
        "command": context["command"],
        "date": context["date"],
        "machine": f"{m['cores']} CPU cores" + (f", GPU {m['gpu']}" if m["gpu"] else ""),
        "heads": context["data"]["n"],
        "test_subjects": record["n_subjects"],
        "floor": figures(record["floor"]),
        "families": families,
        "default_by_rule": next((m["name"] for m in rule_order(record)[1]), None),
    }


def write_between_markers(path: Path, block: str) -> None:
    """Replace what lies between the families markers of PATH (a new section at its end when they are absent)."""
    text = path.read_text() if path.exists() else ""
    if BEGIN in text and END in text and text.index(BEGIN) < text.index(END):
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = f"{head}{BEGIN}\n{block}\n{END}{tail}"
    else:
        text = f"{text.rstrip()}\n\n{SECTION}\n\n{BEGIN}\n{block}\n{END}\n"
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, help="output folder (default bench-output/families, or families-quick)")
    p.add_argument("--only", nargs="+", choices=FAMILIES, default=list(FAMILIES))
    p.add_argument(
        "--reuse",
        action="store_true",
        help="keep the dataset, finished runs and a current report; resume interrupted runs",
    )
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="training device (auto: the configs' own, a GPU when torch sees one)",
    )
    p.add_argument("--jobs", type=int, help="trainings at once (default: 2 on a CPU, one thread each; 1 with a GPU)")
    p.add_argument("--steps-factor", type=float, default=1.0, help="train the neural families this many times longer")
    p.add_argument("--quick", action="store_true", help="60 heads and a few steps: checks the command in minutes")
    p.add_argument(
        "--docs",
        type=Path,
        default=ROOT / "docs" / "benchmarks.md",
        help="markdown file whose families markers receive the table (never in --quick)",
    )
    args = p.parse_args(argv)
    out = args.out or ROOT / "bench-output" / ("families-quick" if args.quick else "families")
    out.mkdir(parents=True, exist_ok=True)
    spec = QUICK if args.quick else FULL
    context: dict[str, Any] = {
        "machine": machine(),
        "data": spec,
        "load_start": os.getloadavg()[0],
        "command": " ".join(["python bench/families.py", *(argv or sys.argv[1:])]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    stages_path = out / "stages.json"
    stages: dict[str, Any] = json.loads(stages_path.read_text()) if args.reuse and stages_path.exists() else {}
    facegen = [sys.executable, "-m", "facegen.cli.main"]
    data = out / "dataset"

    def record_stage(name: str, seconds: float, peak: float, **extra: Any) -> None:
        stages[name] = {"seconds": seconds, "peak_rss_mib": peak} | extra
        stages_path.write_text(json.dumps(stages, indent=1))

    rows: list[tuple[str, str]] = []
    reuse = args.reuse and dataset_matches(data, spec)  # a new dataset: every run and the report start afresh
    if reuse:
        stages.setdefault("synth", {"seconds": 0.0, "peak_rss_mib": 0.0})["reused"] = True
    else:
        stages.clear()
        options = f"--n {spec['n']} --seed {spec['seed']} --size 128 --grid 64 --split {spec['split']}".split()
        seconds, peak = run_timed([*facegen, "synth", *options, "--out", str(data), "--overwrite"])
        record_stage("synth", seconds, peak)
    card = json.loads((data / "dataset.json").read_text())
    context["counts"] = ", ".join(f"{card['counts']['split'][s]} {s}" for s in ("train", "val", "test"))

    from facegen.training.checkpoint import data_fingerprint
    from facegen.training.config import load_config

    data_hash = data_fingerprint(data)

    runs: dict[str, dict[str, Any]] = {}
    jobs: list[tuple[str, list[str], float]] = []
    states: dict[str, str] = {}
    trained = [f for f in args.only if f in CONFIGS]  # by `facegen train` from a config; the ensemble after them
    for family in trained:
        run = out / "runs" / family
        sets = train_sets(family, quick=args.quick, device=args.device, steps_factor=args.steps_factor)
        config = json.loads(json.dumps(load_config(CONFIGS[family], sets, model=family).to_dict()))  # as run.json
        states[family] = run_state(run, config, data_hash) if reuse else "new"
        if states[family] == "finished":
            rows.append((f"{family}: training", "reused (finished earlier)"))
            continue
        command = [*facegen, "train", "--model", family, "--data", str(data), "--out", str(run)]
        command += ["--resume"] if states[family] == "resume" else ["--overwrite"]
        if CONFIGS[family] is not None:
            command += ["--config", str(CONFIGS[family])]
        for item in sets:
            command += ["--set", item]
        jobs.append((family, command, estimate_seconds(family, config)))
    gpu = context["machine"]["gpu"] is not None and args.device != "cpu"
    lanes = args.jobs or (1 if gpu else max(1, min(2, context["machine"]["cores"])))
    threads = max(1, context["machine"]["cores"] // lanes)
    training = stages.setdefault("train", {"seconds": 0.0, "peak_rss_mib": 0.0, "families": {}})
    if jobs:
        print(
            f"training {', '.join(j[0] for j in jobs)}: {lanes} at a time, {threads} thread(s) each; estimated "
            f"{lane_estimate([j[2] for j in jobs], lanes) / 60:.0f} min on idle cores"
        )

        def done(family: str, seconds: float, peak: float) -> None:
            earlier = training["families"].get(family, {}).get("seconds", 0.0) if states[family] == "resume" else 0.0
            training["families"][family] = {
                "seconds": earlier + seconds,
                "peak_rss_mib": peak,
                "threads": threads,
                "resumed": states[family] == "resume",
            }
            stages_path.write_text(json.dumps(stages, indent=1))
            rows.append((f"{family}: training (process wall)", f"{seconds / 60:.1f} min, peak {peak:.0f} MiB"))

        env = os.environ | ({} if lanes == 1 else {k: str(threads) for k in THREAD_VARIABLES})
        wall = run_lanes(jobs, lanes, env, out / "logs", done)
        record_stage(
            "train",
            wall,
            max(f["peak_rss_mib"] for f in training["families"].values()),
            families=training["families"],
            lanes=lanes,
            threads=threads,
            reused="partly" if len(jobs) < len(trained) else False,
        )
    else:
        training["reused"] = True
    if "ensemble" in args.only:
        train_ensemble(out / "runs", data, facegen, stages["train"], rows)
        stages_path.write_text(json.dumps(stages, indent=1))
    for family in args.only:
        runs[family] = json.loads((out / "runs" / family / "run.json").read_text())

    run_paths = [out / "runs" / family for family in args.only]
    report = out / "report"
    if reuse and "evaluate" in stages and report_is_current(report, run_paths):
        stages["evaluate"]["reused"] = True
    else:
        command = [*facegen, "evaluate", "--data", str(data), "--out", str(report), "--overwrite"]
        for run in run_paths:
            command += ["--run", str(run)]
        seconds, peak = run_timed(command)
        record_stage("evaluate", seconds, peak)
    record = json.loads((report / "report.json").read_text())
    context["load_end"] = os.getloadavg()[0]
    block = markdown(record, stages, runs, context)
    (out / "families.md").write_text(block + "\n")
    whole = args.only == list(FAMILIES) and not args.quick
    if whole:
        write_between_markers(args.docs, block)
        ranking = ranking_record(record, stages, runs, context)
        (ROOT / "facegen" / "assets" / RANKING_FILE).write_text(json.dumps(ranking, indent=1) + "\n")
    print(block)

    floor = record["floor"]["metrics"]["mae_mm"]["mean"] if record.get("floor") else float("nan")
    for m in record["models"]:
        mae = m["metrics"]["mae_mm"]
        rows.append(
            (f"{m['name']}: test MAE", f"{mae['mean']:.2f} +- {mae['sd']:.2f} mm ({mae['mean'] / floor:.2f}x floor)")
        )
    rows.append(("floor (noise-free face): test MAE", f"{floor:.2f} mm"))
    for name, stage in stages.items():
        rows.append((f"stage {name}", f"{stage['seconds'] / 60:.1f} min{REUSED[stage.get('reused', False)]}"))
    total = sum(s["seconds"] for s in stages.values())
    rows.append(
        ("whole command", f"{total / 60:.1f} min ({total / 60 / TARGET_MIN:.2f}x the {TARGET_MIN:.0f} min target)")
    )
    rows.append(("table written to", str(args.docs if whole else out / "families.md")))
    print_summary(rows, {"stages": stages, "machine": context["machine"], "models": compact(record)})


if __name__ == "__main__":
    main()
