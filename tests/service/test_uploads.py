"""Bad uploads against a running `facegen serve`: each answered 4xx with a message, nothing stored, never 5xx."""

from __future__ import annotations

import gzip
import io
import stat
import struct
import zipfile

import numpy as np
import pytest

from tests.service.conftest import FORM, Server

MB = 1024 * 1024


def _zip(members: dict[str, bytes], *, link: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        if link is not None:
            info = zipfile.ZipInfo(link)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data)


NIFTI_LIKE = struct.pack("<i", 348) + bytes(348) + np.random.default_rng(0).bytes(20000)
"""A NIfTI-1 header size and incompressible data: its gzip cut in half is a truncated file."""

BAD_SCANS = {
    "unknown suffix": (("skull.exe", b"MZ\x90\x00", "application/octet-stream"), 415, "unsupported file type"),
    "image content type": (("skull.ply", b"ply\nformat", "image/png"), 415, "content type"),
    "empty file": (("skull.ply", b"", "application/octet-stream"), 422, "empty"),
    "not a ply": (("skull.ply", b"<html>hello</html>", "application/octet-stream"), 422, "PLY"),
    "not a zip": (("scan.zip", b"just text, not an archive", "application/zip"), 422, "zip header"),
    "zip path traversal": (("scan.zip", _zip({"../../etc/evil.dcm": b"x"}), "application/zip"), 422, "unsafe path"),
    "zip absolute path": (("scan.zip", _zip({"/etc/evil.dcm": b"x"}), "application/zip"), 422, "unsafe path"),
    "zip link": (("scan.zip", _zip({"a.dcm": b"x"}, link="b.dcm"), "application/zip"), 422, "symbolic link"),
    "zip bomb ratio": (("scan.zip", _zip({"a.dcm": bytes(3 * MB)}), "application/zip"), 413, "unpacks"),
    "zip too many members": (("scan.zip", _zip({f"{i}.dcm": b"x" for i in range(21)}), "application/zip"), 413,
                             "members"),
    "gzip bomb": (("scan.nii.gz", _gzip(bytes(5 * MB)), "application/gzip"), 413, "unpacks"),
    "truncated nii.gz": (("scan.nii.gz", _gzip(NIFTI_LIKE)[: len(NIFTI_LIKE) // 2], "application/gzip"), 422,
                         "truncated"),
    "not a nifti": (("scan.nii", bytes(400), "application/octet-stream"), 422, "header size"),
    "detached mhd": (("scan.mhd", b"ObjectType = Image", "application/octet-stream"), 415, "unsupported"),
    "not nrrd": (("scan.nrrd", b"hello", "application/octet-stream"), 422, "NRRD"),
    "not stl": (("skull.stl", b"\x00" * 100, "model/stl"), 422, "STL"),
}  # fmt: skip

BAD_FORMS = {
    "age 500": ({"age": "500"}, 422, "age"),
    "age not a number": ({"age": "forty"}, 422, None),
    "age nan": ({"age": "nan"}, 422, "age"),
    "sex X": ({"sex": "X"}, 422, "sex"),
    "bmi fat": ({"bmi": "fat"}, 422, "BMI"),
    "bmi 400": ({"bmi": "400"}, 422, "BMI"),
}


def _stored_nothing(server: Server, cases_before: int) -> None:
    uploads = server.data / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir()), list(uploads.iterdir())
    with server.client("a-viewer") as client:
        assert len(client.get("/v1/cases").json()["cases"]) == cases_before


def _case_count(server: Server) -> int:
    with server.client("a-viewer") as client:
        return len(client.get("/v1/cases").json()["cases"])


@pytest.mark.parametrize("name", sorted(BAD_SCANS))
def test_a_bad_scan_is_refused_with_a_message_and_nothing_stored(server: Server, name: str):
    upload, status, words = BAD_SCANS[name]
    before = _case_count(server)
    with server.client("a-examiner") as client:
        answer = client.post("/v1/cases", files={"scan": upload}, data=FORM)
    assert answer.status_code == status, answer.text
    assert words.lower() in answer.json()["detail"].lower()
    _stored_nothing(server, before)


@pytest.mark.parametrize("name", sorted(BAD_FORMS))
def test_absurd_metadata_is_refused_before_anything_is_stored(server: Server, skull_upload, name: str):
    fields, status, words = BAD_FORMS[name]
    before = _case_count(server)
    with server.client("a-examiner") as client:
        answer = client.post("/v1/cases", files=skull_upload, data=FORM | fields)
    assert answer.status_code == status, answer.text
    if words is not None:
        assert words.lower() in answer.json()["detail"].lower()
    _stored_nothing(server, before)


def test_bad_landmarks_are_refused(server: Server, skull_upload):
    before = _case_count(server)
    with server.client("a-examiner") as client:
        wrong_type = client.post("/v1/cases", data=FORM, files={"scan": skull_upload["scan"],
                                 "landmarks": ("points.exe", b"{}", "application/octet-stream")})  # fmt: skip
        not_json = client.post("/v1/cases", data=FORM, files={"scan": skull_upload["scan"],
                               "landmarks": ("points.json", b"{not json", "application/json")})  # fmt: skip
    assert wrong_type.status_code == 415 and "landmarks" in wrong_type.json()["detail"]
    assert not_json.status_code == 422 and "JSON" in not_json.json()["detail"]
    _stored_nothing(server, before)


def test_an_upload_over_the_size_limit_is_refused_while_it_streams(server: Server):
    before = _case_count(server)
    big = b"ply\n" + bytes(10 * MB)  # the test server's limit is 8 MB

    head = b'--x\r\nContent-Disposition: form-data; name="scan"; filename="skull.ply"\r\n\r\n'
    body = head + big + b"\r\n--x--\r\n"

    def chunks():  # no Content-Length: the limit must hold as the body streams in
        for start in range(0, len(body), MB):
            yield body[start : start + MB]

    with server.client("a-examiner") as client:
        declared = client.post("/v1/cases", files={"scan": ("skull.ply", big, "application/octet-stream")}, data=FORM)
        streamed = client.post("/v1/cases", content=chunks(),
                               headers={"Content-Type": "multipart/form-data; boundary=x"})  # fmt: skip
    assert declared.status_code == 413 and "limit" in declared.json()["detail"]
    assert streamed.status_code == 413
    _stored_nothing(server, before)


def test_malformed_requests_give_4xx_never_5xx(server: Server):
    with server.client("a-examiner") as client:
        answers = [
            client.post("/v1/cases", data=FORM),  # no scan
            client.post("/v1/cases", content=b"garbage", headers={"Content-Type": "multipart/form-data; boundary=z"}),
            client.post("/v1/cases", content=b"{}", headers={"Content-Type": "application/json"}),
            client.get("/v1/cases/" + "x" * 5000),
            client.get("/v1/cases/%00/files/case.json"),
            client.delete("/v1/cases/..%2F..%2Fsecret.key"),
        ]
    assert all(400 <= a.status_code < 500 for a in answers), [(a.status_code, a.text[:200]) for a in answers]
