"""The benchmark's ranking as the demo shows it: best first, the floor last, and a clear line where none is recorded."""

from rich.console import Console

from facegen.cli import ranking as ranking_module
from facegen.cli.ranking import ranking_table

RECORD = {
    "command": "python bench/families.py", "date": "2026-12-03 13:00 UTC", "machine": "2 CPU cores", "heads": 1000,
    "test_subjects": 200, "floor": {"mae_mm": 1.8, "within_2_5mm": 0.8, "rank_1": 0.9},
    "default_by_rule": "pca",
    "families": [
        {"name": "gan2d", "mae_mm": 3.1, "within_2_5mm": 0.5, "rank_1": 0.4, "training": "22 min, 900 steps x 8"},
        {"name": "pca", "mae_mm": 2.3, "within_2_5mm": 0.7, "rank_1": 0.8, "training": "1 min"},
        {"name": "template", "mae_mm": 3.9, "within_2_5mm": 0.4, "rank_1": 0.1, "training": "1 min"},
    ],
}  # fmt: skip


def test_the_ranking_lists_the_best_family_first_and_the_floor_last():
    console = Console(width=160, record=True)
    console.print(ranking_table(RECORD))
    text = console.export_text()
    rows = [line for line in text.splitlines() if line.startswith("│")]  # the table's rows, not its caption
    lines = [line for line in rows if any(n in line for n in ("pca", "gan2d", "template", "floor ("))]
    assert [next(n for n in ("pca", "gan2d", "template", "floor (") if n in line) for line in lines] == [
        "pca", "gan2d", "template", "floor ("]  # fmt: skip
    assert "1.28x" in text and "1,000 synthetic heads" in text and "2026-12-03" in text  # 2.3 / 1.8
    words = " ".join(text.split())  # the caption wraps
    assert "first by its held-out parts" in words and words.endswith("pca")


def test_without_a_recorded_run_there_is_no_ranking(monkeypatch):
    monkeypatch.setattr(ranking_module, "RANKING_FILE", "no-such-file.json")
    assert ranking_module.recorded_ranking() is None
