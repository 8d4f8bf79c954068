"""Benchmark of the evaluation report: seconds for a full report on 1,000 test subjects, gallery of 1,000.

A synthetic set of N subjects at 128^2 (written once into OUT/dataset) is the test set, all of it (the
gallery is its 1,000 true faces). The models are the runs given with --run (trained elsewhere, e.g. by
bench/models.py); by default a statistical model fitted on a separate 200-subject set. The full report is
`evaluate_models` (reconstruction, metrics, regions, heat maps, identification, bias with bootstrap and
permutation tests) and `write_report` (figures, HTML, JSON), timed by stage.

    .venv/bin/python bench/evaluate.py [--n 1000] [--out bench-output/evaluate] [--run RUN ...]

Target: under 2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from report import print_summary

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 120.0


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--out", type=Path, default=ROOT / "bench-output" / "evaluate")
    p.add_argument("--run", type=Path, action="append", help="trained run folders to report on")
    args = p.parse_args(argv)
    facegen = [sys.executable, "-m", "facegen.cli.main"]
    test = args.out / "dataset"
    if not (test / "dataset.json").exists():
        subprocess.run([*facegen, "synth", "--n", str(args.n), "--seed", "1000", "--size", "128", "--grid", "16",
                        "--out", str(test), "--overwrite"], check=True)  # fmt: skip
    runs = args.run
    if not runs:
        train = args.out / "train-200"
        if not (train / "dataset.json").exists():
            subprocess.run([*facegen, "synth", "--n", "200", "--seed", "7", "--size", "128", "--grid", "16",
                            "--out", str(train), "--overwrite"], check=True)  # fmt: skip
        subprocess.run([*facegen, "train", "--model", "pca", "--data", str(train), "--out", str(args.out / "pca"),
                        "--resume"], check=True)  # fmt: skip
        runs = [args.out / "pca"]

    from facegen.evaluation.html_report import write_report
    from facegen.evaluation.report import evaluate_models

    evaluation = evaluate_models(runs, test, None)
    stages = {"reconstruction, every model": evaluation.seconds["reconstruction"],
              "scoring: metrics, regions, identification, bias": evaluation.seconds["scoring"]}  # fmt: skip
    start = time.perf_counter()
    write_report(evaluation, args.out / "report")
    stages["figures + HTML + JSON"] = time.perf_counter() - start
    total = sum(stages.values())
    record = evaluation.record
    rows = [("test subjects", str(record["n_subjects"])), ("gallery size", str(record["gallery"]["size"])),
            ("models", ", ".join(m["name"] for m in record["models"]) + " + floor")]  # fmt: skip
    rows += [(stage, f"{seconds:.1f} s") for stage, seconds in stages.items()]
    rows.append(("full report", f"{total:.1f} s ({total / TARGET_S:.2f}x the {TARGET_S:.0f} s target)"))
    print_summary(rows, {"stages_s": stages, "total_s": total, "n": record["n_subjects"]})


if __name__ == "__main__":
    main()
