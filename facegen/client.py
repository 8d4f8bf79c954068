"""A Python client of the facegen web service (API v1): submit a skull, wait for the case, download its files.

It needs only the standard library and httpx (plus facegen's guarded folder writer), so it runs beside a service
on any machine that can reach it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import httpx

from facegen.io.output_folder import check_output_folder, staged_directory

CASE_KIND = "case"
"""The output kind of a downloaded case: the same as `facegen reconstruct` writes (facegen.use.reconstruct)."""
FINAL = frozenset({"done", "failed"})


class FacegenAPIError(RuntimeError):
    """The service refused a request (4xx) or failed (5xx); the message carries its status and reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"the facegen service answered {status}: {message}")
        self.status, self.message = status, message


class CaseTimeoutError(TimeoutError):
    """A case was not finished within the time given to `Client.wait`."""


def _reason(answer: httpx.Response) -> str:
    """The server's own message of an error answer (FastAPI's `detail`), else its text."""
    try:
        detail = answer.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, list):  # a validation error: the fields and what is wrong with them
        detail = "; ".join(f"{'.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}" for d in detail)
    return str(detail) if detail else (answer.text.strip()[:500] or answer.reason_phrase)


class Client:
    """One service and one API key; use it as a context manager (or call `close`)."""

    def __init__(self, server_url: str, key: str, *, timeout: float = 60.0) -> None:
        if not server_url.startswith(("http://", "https://")):
            raise ValueError(f"server URL {server_url!r} must start with http:// or https://")
        if not key:
            raise ValueError("no API key: make one with `facegen admin key create` on the server")
        self.http = httpx.Client(base_url=server_url.rstrip("/"), headers={"Authorization": f"Bearer {key}"},
                                 timeout=timeout)  # fmt: skip

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self.http.close()

    def _call(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        """One request; FacegenAPIError on an error answer, ConnectionError when the server cannot be reached."""
        try:
            answer = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ConnectionError(f"cannot reach the facegen service at {self.http.base_url}: {exc}") from exc
        if answer.status_code >= 400:
            raise FacegenAPIError(answer.status_code, _reason(answer))
        return answer

    def submit(self, scan_path: Path | str, *, sex: str = "unknown", age: float | None = None,
               bmi: str | float = "unknown", landmarks: Path | str | None = None,
               genotypes: Path | str | None = None, genotype_sample: str | None = None,
               skin_probabilities: Path | str | None = None) -> str:  # fmt: skip
        """Upload a skull (CT or mesh) and what is known of the person; the new case's id. `genotypes` (VCF,
        23andMe/AncestryDNA raw file, HIrisPlex-S web-tool CSV; `genotype_sample` picks one of several) adds eye and
        hair colour, `skin_probabilities` the web tool's skin colour: the service keeps only the HIrisPlex dosages,
        and their file names are not sent (they can name the person)."""
        scan_path = Path(scan_path)
        if not scan_path.is_file():
            raise FileNotFoundError(f"{scan_path} is not a file; a DICOM folder must be zipped first")
        extra = {"genotypes": genotypes, "skin_probabilities": skin_probabilities}
        for field, path in extra.items():
            if path is not None and not Path(path).is_file():
                raise FileNotFoundError(f"{field}: {path} is not a file")
        form = {"sex": sex, "bmi": str(bmi)} | ({} if age is None else {"age": str(age)})
        form |= {} if genotype_sample is None else {"genotype_sample": genotype_sample}
        with scan_path.open("rb") as scan, contextlib.ExitStack() as stack:
            files: dict = {"scan": (scan_path.name, scan, "application/octet-stream")}
            if landmarks is not None:
                files["landmarks"] = (Path(landmarks).name, Path(landmarks).read_bytes(), "application/octet-stream")
            for field, path in extra.items():
                if path is not None:
                    files[field] = (field, stack.enter_context(Path(path).open("rb")), "application/octet-stream")
            return self._call("POST", "/v1/cases", files=files, data=form).json()["id"]

    def status(self, case_id: str) -> dict:
        """The case: id, status (queued, running, done, failed), progress 0..1, files, error."""
        return self._call("GET", f"/v1/cases/{case_id}").json()

    def cases(self) -> list[dict]:
        """The tenant's cases, newest first."""
        return self._call("GET", "/v1/cases").json()["cases"]

    def wait(self, case_id: str, *, timeout: float = 600.0, poll: float = 1.0,
             on_status: Callable[[dict], None] | None = None) -> dict:  # fmt: skip
        """Poll the case until it is done or failed (calling `on_status` with each state); its final state."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.status(case_id)
            if on_status is not None:
                on_status(state)
            if state["status"] in FINAL:
                return state
            if time.monotonic() >= deadline:
                raise CaseTimeoutError(f"case {case_id} is still {state['status']} after {timeout:g} s")
            time.sleep(poll)

    def files(self, case_id: str) -> list[str]:
        """The names of a case's files (empty until it is done)."""
        return list(self.status(case_id)["files"])

    def download(self, case_id: str, out_dir: Path | str, *, overwrite: bool = False) -> Path:
        """Write the case's files into the new folder `out_dir` (whole, or not at all; an earlier facegen case
        there is replaced only with `overwrite`, a folder facegen did not write never); the folder."""
        out = Path(out_dir)
        check_output_folder(out, overwrite=overwrite, kind=CASE_KIND)  # before any download
        state = self.status(case_id)
        if state["status"] != "done":
            raise ValueError(f"case {case_id} is {state['status']}, not done; nothing to download"
                             + (f" ({state['error']})" if state.get("error") else ""))  # fmt: skip
        with staged_directory(out, overwrite=overwrite, kind=CASE_KIND) as stage:
            for name in state["files"]:
                target = stage / _relative(name)
                target.parent.mkdir(parents=True, exist_ok=True)
                with target.open("wb") as handle, self.http.stream("GET", f"/v1/cases/{case_id}/files/{name}") as r:
                    if r.status_code >= 400:
                        r.read()
                        raise FacegenAPIError(r.status_code, _reason(r))
                    for chunk in r.iter_bytes(1024 * 1024):
                        handle.write(chunk)
        return out

    def delete(self, case_id: str) -> None:
        """Delete the case and every file of it on the server."""
        self._call("DELETE", f"/v1/cases/{case_id}")


def _relative(name: str) -> Path:
    """A file name from the server as a path inside the case folder; a name that would leave it is refused."""
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts or "\\" in name:
        raise ValueError(f"the server listed a file name {name!r} that is not a path inside the case; refused")
    return Path(*path.parts)
