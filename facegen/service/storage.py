"""Case files under DATA: uploads while queued, a staging folder while running, the finished case folder after.

DATA/uploads/<case>/          the upload (scan, landmarks, hirisplex.json) until the job has read it
DATA/staging/<case>/attempt-<n>/case   what `reconstruct` writes in a case's n-th run (whole there, or not at all)
DATA/cases/<tenant>/<case>/   the finished case, moved in by one rename: never partial

A genotype file is never stored: an upload keeps only its HIrisPlex dosages (hirisplex.json).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from facegen.io.output_folder import MARKER

HIRISPLEX_FILE = "hirisplex.json"
"""The upload's record of a genotype file: HIrisPlex dosages, format, missing reasons, notes, skin probabilities."""


@dataclass(frozen=True)
class CaseStore:
    """Where a case's files live; the one module that builds paths under DATA from ids."""

    data: Path

    def upload_dir(self, case_id: str) -> Path:
        return self.data / "uploads" / _safe(case_id)

    def staging_dir(self, case_id: str) -> Path:
        return self.data / "staging" / _safe(case_id)

    def case_dir(self, tenant_id: int, case_id: str) -> Path:
        return self.data / "cases" / str(int(tenant_id)) / _safe(case_id)

    def publish(self, tenant_id: int, case_id: str, finished: Path) -> list[str]:
        """Move a finished case folder into place with one rename; its files (relative paths, sorted)."""
        final = self.case_dir(tenant_id, case_id)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():  # an earlier attempt got this far before it was stopped
            shutil.rmtree(final)
        os.replace(finished, final)
        return case_files(final)

    def remove(self, tenant_id: int, case_id: str) -> None:
        """Remove every file of a case: upload, staging and the finished folder."""
        for folder in (self.upload_dir(case_id), self.staging_dir(case_id), self.case_dir(tenant_id, case_id)):
            shutil.rmtree(folder, ignore_errors=True)

    def file(self, tenant_id: int, case_id: str, name: str, listed: list[str]) -> Path:
        """A finished case's file by its listed name; FileNotFoundError for anything not in the listing."""
        if name not in listed:
            raise FileNotFoundError(f"case {case_id} has no file {name!r}")
        path = self.case_dir(tenant_id, case_id) / name
        if not path.is_file():
            raise FileNotFoundError(f"case {case_id}: file {name!r} is missing from the store")
        return path


def case_files(folder: Path) -> list[str]:
    """The files of a case folder, as relative POSIX paths (the output marker left out)."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != MARKER)


def _safe(case_id: str) -> str:
    """A case id as a single path component (ids are UUIDs; anything else is refused)."""
    if not case_id or "/" in case_id or "\\" in case_id or case_id in {".", ".."}:
        raise ValueError(f"case id {case_id!r} is not a valid id")
    return case_id
