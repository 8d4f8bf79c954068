"""/v1/cases: upload a skull, follow the case, download its files, delete it."""

from __future__ import annotations

import mimetypes
import shutil
import uuid
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Request, Response, UploadFile
from fastapi.responses import FileResponse
from sqlalchemy.orm import Session

from facegen.service import audit
from facegen.service.deps import AUTH_RESPONSES, Examiner, SessionDep, Viewer, scope_of
from facegen.service.models import Case
from facegen.service.schemas import CaseCreated, CaseList, CaseOut
from facegen.service.storage import HIRISPLEX_FILE, CaseStore
from facegen.service.tenancy import Caller, CaseNotFoundError
from facegen.service.uploads import (
    UploadError,
    check_content_type,
    check_genotype_content_type,
    check_landmarks,
    check_scan,
    landmark_suffix,
    read_hirisplex,
    scan_suffix,
)

router = APIRouter(prefix="/v1/cases", tags=["cases"], responses=AUTH_RESPONSES)
_NOT_FOUND = {404: {"description": "No such case for this tenant (another tenant's case is not found either)."}}


def case_out(case: Case) -> CaseOut:
    """The API form of a case row."""
    return CaseOut(id=case.id, status=case.status, progress=case.progress, files=list(case.files or []),
                   error=case.error, sex=case.sex, age=case.age, bmi=case.bmi, created_at=case.created_at.isoformat(),
                   finished_at=case.finished_at.isoformat() if case.finished_at else None)  # fmt: skip


def _metadata(sex: str, age: float | None, bmi: str) -> None:
    """Refuse absurd metadata (422) with reconstruct's own checks, before anything is stored."""
    from facegen.use.reconstruct import CaseMetadata

    try:
        CaseMetadata.parse(sex, age, bmi)
    except ValueError as exc:
        raise UploadError(422, str(exc)) from None


def _given(upload: UploadFile | None) -> UploadFile | None:
    """An optional file field, None when left empty (a form without a file chosen sends no name)."""
    return upload if upload is not None and upload.filename else None


def _hirisplex(request: Request, genotypes: UploadFile | None, skin: UploadFile | None,
               sample: str | None) -> bytes | None:  # fmt: skip
    """What the upload keeps of the genotypes (see `read_hirisplex`), read in this process; None without them."""
    if genotypes is None:
        if skin is not None or sample:
            raise UploadError(422, "skin_probabilities and genotype_sample go with a genotypes file; send it too")
        return None
    check_genotype_content_type("genotypes", genotypes.content_type)
    if skin is not None:
        check_genotype_content_type("skin_probabilities", skin.content_type)
    return read_hirisplex(genotypes.file, sample=sample or None, skin=None if skin is None else skin.file,
                          settings=request.app.state.settings)  # fmt: skip


def _store_upload(request: Request, case_id: str, scan: UploadFile, landmarks: UploadFile | None,
                  hirisplex: bytes | None) -> str:  # fmt: skip
    """Check and store the upload under DATA/uploads/<case> (with the genotypes' HIrisPlex record, never the genotype
    file); the scan's type. It appears whole, by one rename, or not at all: nothing stays when a check fails."""
    settings = request.app.state.settings
    suffix = scan_suffix(scan.filename)
    check_content_type("scan", scan.content_type)
    lm_suffix = None
    if landmarks is not None and landmarks.filename:
        lm_suffix = landmark_suffix(landmarks.filename)
        check_content_type("landmarks", landmarks.content_type)
    final = CaseStore(settings.data).upload_dir(case_id)
    incoming = final.with_name(f".{case_id}.incoming")
    incoming.mkdir(parents=True)
    try:
        with (incoming / f"scan{suffix}").open("wb") as handle:  # a neutral name: file names can be personal data
            shutil.copyfileobj(scan.file, handle, 1024 * 1024)
        check_scan(incoming / f"scan{suffix}", suffix, settings)
        if lm_suffix is not None:
            data = landmarks.file.read()
            check_landmarks(data, lm_suffix)
            (incoming / f"landmarks{lm_suffix}").write_bytes(data)
        if hirisplex is not None:
            (incoming / HIRISPLEX_FILE).write_bytes(hirisplex)
        incoming.rename(final)
    except BaseException:
        shutil.rmtree(incoming, ignore_errors=True)
        raise
    return suffix


@router.post("", status_code=202, response_model=CaseCreated, responses={413: {}, 415: {}, 422: {}})
def create_case(
    request: Request,
    scan: Annotated[UploadFile, File(description="CT (zip of DICOM, .nii/.nii.gz, .mha, .nrrd) or skull mesh.")],
    caller: Examiner,
    session: SessionDep,
    sex: Annotated[str, Form(description="F, M or unknown.")] = "unknown",
    age: Annotated[float | None, Form(description="Age in years; empty when unknown.")] = None,
    bmi: Annotated[str, Form(description="A BMI value, low, normal, high or unknown.")] = "unknown",
    landmarks: Annotated[UploadFile | None, File(description="Landmarks that set the pose (as --landmarks).")] = None,
    genotypes: Annotated[UploadFile | None, File(
        description="Genotypes for eye and hair colour (HIrisPlex): VCF (plain or gzipped), 23andMe or AncestryDNA "
                    "raw data, or the HIrisPlex-S web tool's input CSV. Read on arrival and never stored: the case "
                    "keeps only the 24 HIrisPlex dosages.")] = None,
    skin_probabilities: Annotated[UploadFile | None, File(
        description="The HIrisPlex-S web tool's output CSV: its skin-colour probabilities (with genotypes).")] = None,
    genotype_sample: Annotated[str | None, Form(
        description="The sample in the genotypes (and skin) file when it holds several.", max_length=200)] = None,
) -> CaseCreated:  # fmt: skip
    """Accept a skull and what is known of the person; the case is reconstructed on the queue."""
    case_id = str(uuid.uuid4())
    try:
        _metadata(sex, age, bmi)
        hirisplex = _hirisplex(request, _given(genotypes), _given(skin_probabilities), genotype_sample)
        suffix = _store_upload(request, case_id, scan, landmarks, hirisplex)
    except UploadError as exc:
        raise HTTPException(exc.status, exc.message) from None
    try:
        with session.begin():
            scope_of(caller, session).add(Case(id=case_id, sex=sex, age=age, bmi=bmi, input_name=f"scan{suffix}",
                                               status="queued", progress=0.0, files=[], attempts=0))  # fmt: skip
            audit.record(session, tenant_id=caller.tenant_id, actor=caller.actor, action="case.create", case_id=case_id)
    except BaseException:
        shutil.rmtree(CaseStore(request.app.state.settings.data).upload_dir(case_id), ignore_errors=True)
        raise
    request.app.state.queue.submit(case_id)
    return CaseCreated(id=case_id, status="queued")


@router.get("", response_model=CaseList)
def list_cases(caller: Viewer, session: SessionDep) -> CaseList:
    """The caller's tenant's cases, newest first."""
    with session.begin():
        cases = scope_of(caller, session).cases()
        audit.record(session, tenant_id=caller.tenant_id, actor=caller.actor, action="case.list")
    return CaseList(cases=[case_out(c) for c in cases])


@router.get("/{case_id}", response_model=CaseOut, responses=_NOT_FOUND)
def read_case(case_id: str, caller: Viewer, session: SessionDep) -> CaseOut:
    """One case: status, progress, files, error."""
    with session.begin():
        case = _case(caller, session, case_id)
        audit.record(session, tenant_id=caller.tenant_id, actor=caller.actor, action="case.read", case_id=case_id)
    return case_out(case)


@router.get("/{case_id}/files/{name:path}", responses=_NOT_FOUND, response_class=FileResponse)
def download_file(request: Request, case_id: str, name: str, caller: Viewer, session: SessionDep) -> FileResponse:
    """One file of a finished case, by a name from its `files` list."""
    with session.begin():
        case = _case(caller, session, case_id)
        try:
            path = CaseStore(request.app.state.settings.data).file(case.tenant_id, case.id, name, list(case.files))
        except FileNotFoundError as exc:
            raise HTTPException(404, str(exc)) from None
        audit.record(session, tenant_id=caller.tenant_id, actor=caller.actor, action="file.download",
                     case_id=case_id, detail=name)  # fmt: skip
    media = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media, filename=Path(name).name, content_disposition_type="attachment")


@router.delete("/{case_id}", status_code=204, responses=_NOT_FOUND)
def delete_case(request: Request, case_id: str, caller: Examiner, session: SessionDep) -> Response:
    """Delete a case and every file of it (a running job finds it gone and discards its work)."""
    with session.begin():
        case = _case(caller, session, case_id)
        tenant_id = case.tenant_id
        session.delete(case)
        audit.record(session, tenant_id=caller.tenant_id, actor=caller.actor, action="case.delete", case_id=case_id)
    CaseStore(request.app.state.settings.data).remove(tenant_id, case_id)
    return Response(status_code=204)


def _case(caller: Caller, session: Session, case_id: str) -> Case:
    """The caller's case or 404."""
    try:
        return scope_of(caller, session).case(case_id)
    except CaseNotFoundError:
        raise HTTPException(404, f"no case {case_id[:40]!r} for this key's tenant") from None
