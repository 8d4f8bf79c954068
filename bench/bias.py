"""Bias mitigation, before and after: the same GAN trained with plain and with BMI-balanced sampling.

Both runs use configs/gan2d-cpu-128.toml (shortened with --steps) on the same dataset and seed; only
`balance` differs. The report compares mean absolute error per BMI band (bootstrap 95% intervals), the
worst-to-best ratio and the tests of whether the gap is real, before and after; on the test split of --data,
or on every subject of --test-data (a separate set, with more subjects in the extreme bands).

    .venv/bin/python bench/bias.py --data DIR [--test-data DIR] [--out bench-output/bias] [--steps 1000] [--by bmi]
    .venv/bin/python bench/bias.py --data DIR --test-data DIR --reuse   # score runs already trained in --out
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from report import print_summary

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, default=ROOT / "bench-output" / "bias")
    p.add_argument("--test-data", type=Path, help="a separate test set, scored whole (default: --data's test split)")
    p.add_argument("--reuse", action="store_true", help="score the runs already in --out instead of training")
    p.add_argument("--steps", type=int, default=1000, help="training steps (1000: the full benchmark config)")
    p.add_argument("--by", default="bmi", choices=["sex", "age", "bmi", "group"])
    args = p.parse_args(argv)
    facegen = [sys.executable, "-m", "facegen.cli.main"]
    runs = {}
    for balance in ("none", args.by):
        run = args.out / f"gan2d-balance-{balance}"
        runs[balance] = run
        if args.reuse:
            continue
        subprocess.run([*facegen, "train", "--model", "gan2d", "--data", str(args.data), "--out", str(run),
                        "--overwrite", "--config", str(ROOT / "configs" / "gan2d-cpu-128.toml"),
                        "--set", f"steps={args.steps}", "--set", f"balance={balance}"], check=True)  # fmt: skip
    report = args.out / ("report" if args.test_data is None else f"report-{args.test_data.name}")
    test = ["--data", str(args.data)] if args.test_data is None else ["--data", str(args.test_data), "--split", "all"]
    command = [*facegen, "evaluate", *test, "--out", str(report), "--overwrite"]
    for run in runs.values():
        command += ["--run", str(run)]
    subprocess.run(command, check=True)
    record = json.loads((report / "report.json").read_text())
    rows, figures = [], {}
    for model in record["models"]:
        table = model["bias"]["mae_mm"][args.by]
        for group, g in table["groups"].items():
            rows.append((f"{model['name']}: MAE {args.by} {group} (n={g['n']})",
                         f"{g['mean']:.2f} mm [{g['ci_low']:.2f}, {g['ci_high']:.2f}]"))  # fmt: skip
        rows.append((f"{model['name']}: worst/best {args.by} group",
                     f"{table['worst_to_best_ratio']:.2f} ({table['worst']} vs {table['best']}), "
                     f"Kruskal p {table['kruskal_p']:.3g}, permutation p {table['permutation_p']:.3g}"))  # fmt: skip
        rows.append((f"{model['name']}: overall MAE", f"{model['metrics']['mae_mm']['mean']:.2f} mm"))
        figures[model["name"]] = {"bias": table, "mae_mm": model["metrics"]["mae_mm"]["mean"]}
    print_summary(rows, figures)


if __name__ == "__main__":
    main()
