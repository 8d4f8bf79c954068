"""The one guarded writer of output folders: facegen never removes or replaces a file it did not write.

Every folder facegen writes carries a marker file (`.facegen-output.json`) naming what kind of output it is
and which files and sub-folders facegen owns in it. A folder may be written when it does not exist, and an
earlier facegen output of the same kind replaced only with `overwrite` and only while it holds nothing but
facegen's own files; any other folder, and the current folder, the home folder, a filesystem root or a parent of the
working folder, never. A staged folder appears whole under its final name, or not at all.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from facegen import __version__
from facegen.io.atomic import write_json_atomic

MARKER = ".facegen-output.json"
"""The file that marks a folder as facegen's output and lists what facegen owns in it."""
_SHOWN = 5
"""How many foreign files an error message names."""


class OutputFolderError(FileExistsError, ValueError):
    """A folder facegen may not write or replace; the message says why and what to do instead."""


def read_marker(folder: Path) -> dict | None:
    """The marker of a facegen output folder, or None when `folder` is not one (or its marker is unreadable)."""
    try:
        marker = json.loads((Path(folder) / MARKER).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or marker.get("written_by") != "facegen":
        return None
    return marker


def foreign_files(folder: Path) -> list[str]:
    """Files under `folder` that facegen did not write (relative paths, sorted); every file if it is unmarked."""
    folder = Path(folder)
    marker = read_marker(folder)
    if marker is None:
        return sorted(p.relative_to(folder).as_posix() for p in _entries(folder))
    files = set(marker.get("files", []))
    owned = tuple(f"{name}/" for name in marker.get("folders", []))
    foreign = []
    for entry in sorted(folder.iterdir()):
        rel = entry.name
        if rel == MARKER or rel in files or f"{rel}/".startswith(owned):
            continue
        if entry.is_dir() and not entry.is_symlink():
            if read_marker(entry) is not None:  # a facegen output nested in this one judges its own files
                foreign += [f"{rel}/{p}" for p in foreign_files(entry)]
            else:
                foreign += [f"{rel}/{p}" for p in _nested_foreign(entry, files, rel)]
        else:
            foreign.append(rel)
    return foreign


def _nested_foreign(folder: Path, files: set[str], prefix: str) -> list[str]:
    """Files under `folder` (at `prefix` inside a marked output) that its marker does not list."""
    return [
        p.relative_to(folder).as_posix()
        for p in _entries(folder)
        if f"{prefix}/{p.relative_to(folder).as_posix()}" not in files
    ]


def _entries(folder: Path) -> list[Path]:
    """Every file and link under `folder` (not following links)."""
    out = []
    for root, dirs, names in os.walk(folder):
        out += [Path(root) / n for n in names]
        out += [Path(root) / d for d in dirs if (Path(root) / d).is_symlink()]
    return sorted(out)


def _refuse_protected(final: Path) -> None:
    """Refuse the current folder, the home folder, a filesystem root and any parent of the working folder."""
    target = final.expanduser().resolve()
    cwd = Path.cwd().resolve()
    reasons = {
        target == cwd: "is the current folder",
        target == Path.home().resolve(): "is your home folder",
        target.parent == target: "is a filesystem root",
        target in cwd.parents: "is a parent of the current folder",
    }
    if True in reasons:
        raise OutputFolderError(
            f"{final} {reasons[True]}; facegen never writes an output there. Name a new folder, e.g. --out case-001"
        )


def check_output_folder(final: Path, *, overwrite: bool, kind: str | None = None) -> None:
    """Refuse to write `final` unless it is new or (with `overwrite`) an earlier facegen output of the same
    `kind` (any kind when None) that holds only facegen's files."""
    final = Path(final)
    _refuse_protected(final)
    if final.is_symlink():
        raise OutputFolderError(f"{final} is a link; name a real new folder for the output")
    if not final.exists():
        return
    if not final.is_dir():
        raise OutputFolderError(f"{final} is a file, not a folder; name a new folder for the output")
    foreign = foreign_files(final)
    if read_marker(final) is None:
        held = f"holds files facegen did not write ({_names(foreign)})" if foreign else "was not made by facegen"
        raise OutputFolderError(
            f"{final} already exists and {held}; facegen writes only new folders or its own earlier outputs. "
            "Name a new folder for the output"
        )
    if foreign:
        raise OutputFolderError(
            f"{final} is an earlier facegen output but also holds files facegen did not write ({_names(foreign)}); "
            "move them out or name a new folder"
        )
    earlier = read_marker(final).get("kind", "output")
    if kind is not None and earlier != kind:
        raise OutputFolderError(f"{final} holds a facegen {earlier}, not a {kind}; name a new folder for the {kind}")
    if not overwrite:
        raise OutputFolderError(
            f"{final} already exists (an earlier facegen {earlier}); choose another --out or pass --overwrite to "
            "replace it"
        )


def _names(paths: list[str]) -> str:
    shown = ", ".join(paths[:_SHOWN])
    return shown + (f" and {len(paths) - _SHOWN} more" if len(paths) > _SHOWN else "")


def write_marker(folder: Path, *, kind: str, files: Sequence[str] = (), folders: Sequence[str] = ()) -> None:
    """Mark `folder` as facegen's `kind` output owning `files` (relative paths) and whole `folders`."""
    marker = {"written_by": "facegen", "kind": kind, "software_version": __version__,
              "files": sorted(set(files)), "folders": sorted(set(folders))}  # fmt: skip
    write_json_atomic(Path(folder) / MARKER, marker)


def _all_files(folder: Path) -> list[str]:
    return [p.relative_to(folder).as_posix() for p in _entries(folder) if p.name != MARKER]


@contextlib.contextmanager
def staged_directory(final: Path, *, overwrite: bool = False, kind: str = "output") -> Iterator[Path]:
    """Yield a staging folder beside `final`; on success it takes `final`'s place (checked again first), on
    error it is removed. `final` must pass `check_output_folder` before and after the work."""
    final = Path(final)
    check_output_folder(final, overwrite=overwrite, kind=kind)
    final.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".partial"))
    try:
        yield stage
        write_marker(stage, kind=kind, files=_all_files(stage))
        check_output_folder(final, overwrite=overwrite, kind=kind)  # nothing foreign appeared while we worked
        _swap_in(stage, final)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def _swap_in(stage: Path, final: Path) -> None:
    """Put `stage` at `final`; an earlier folder there is moved aside first and removed only once replaced."""
    if not final.exists():
        os.replace(stage, final)
        return
    old = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".replaced"))
    os.replace(final, old / "old")
    try:
        os.replace(stage, final)
    except BaseException:
        os.replace(old / "old", final)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


def claim_output_folder(
    folder: Path, *, kind: str, files: Sequence[str] = (), folders: Sequence[str] = (),
    overwrite: bool = False, keep: bool = False,
) -> None:  # fmt: skip
    """Make `folder` facegen's `kind` output that fills over time (a training run, the demo): a new folder is
    made and marked; an earlier one of the same kind is kept (`keep`, to resume) or replaced (`overwrite`)."""
    folder = Path(folder)
    marker = read_marker(folder) if folder.is_dir() and not folder.is_symlink() else None
    if marker is not None and keep:
        check_output_folder(folder, overwrite=True, kind=kind)  # refuses foreign files, keeps the earlier output
    else:
        check_output_folder(folder, overwrite=overwrite, kind=kind)
        if folder.exists():
            remove_output_folder(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_marker(folder, kind=kind, files=files, folders=folders)


def remove_output_folder(folder: Path) -> None:
    """Remove an output folder facegen wrote; refused if it holds anything facegen did not write."""
    folder = Path(folder)
    _refuse_protected(folder)
    if read_marker(folder) is None or foreign_files(folder):
        raise OutputFolderError(f"{folder} holds files facegen did not write ({_names(foreign_files(folder))}); "
                                "facegen will not remove it")  # fmt: skip
    shutil.rmtree(folder)
