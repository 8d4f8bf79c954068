"""Genotypes through the service's upload, against a running `facegen serve` on each backend: the case gets the
HIrisPlex phenotype and the coloured head as on the command line, while nothing of the genotype file but the
HIrisPlex dosages reaches any byte the service keeps (genetic privacy); a bad genotype file is refused, nothing
stored."""

from __future__ import annotations

import gzip
import io
import json
import tempfile
from collections.abc import Iterator

import httpx
import pytest
from typer.testing import CliRunner

from facegen.cli.main import app
from facegen.client import Client
from facegen.data.synthetic.genotypes import random_dosages, twenty_three_and_me_text, vcf_text, webtool_output_text
from facegen.models.appearance.hirisplex import HAIR_COLOUR_MODEL, predict_phenotype
from facegen.service.settings import Settings
from facegen.service.uploads import MAX_GENOTYPE_LINE_BYTES, UploadError, load_hirisplex, read_hirisplex
from tests.service.conftest import BACKENDS, FORM, REDIS, Server, running_server
from tests.use.test_phenotype_case import _readable_bytes

PERSON = random_dosages(21, missing={"rs312262906"}, rare=False)
PLANTED_MARKER = "rs999999999"  # not an HIrisPlex marker
PLANTED_POSITION = "987654321"
PLANTED_NAME = "Quillon-Marbury-7731"
PLANTED_HEADER = f"# Personal genome of {PLANTED_NAME}, born 1969-04-12, customer 55501234"
PLANTED_FILE = "Quillon-Marbury-genome.txt"
SKIN = {"very_pale": 0.1, "pale": 0.6, "intermediate": 0.2, "dark": 0.07, "dark_black": 0.03}
NEEDLES = (PLANTED_MARKER, PLANTED_POSITION, PLANTED_NAME, "Quillon", "Marbury", "customer 55501234", PLANTED_FILE)


def _genotype_file() -> bytes:
    """A made-up 23andMe raw file of PERSON with a personal header line and a planted marker outside HIrisPlex."""
    text = twenty_three_and_me_text(PERSON, extra_lines=[f"{PLANTED_MARKER}\t7\t{PLANTED_POSITION}\tAG"])
    return f"{PLANTED_HEADER}\n{text}".encode()


GENOTYPES = _genotype_file()


@pytest.fixture(scope="module", params=BACKENDS)
def server(request, case_model_run, tmp_path_factory) -> Iterator[Server]:
    """One `facegen serve` per backend for this module: tenant lab, its examiner and admin keys."""
    folder = tmp_path_factory.mktemp(f"genotypes-{request.param.replace('+', '-')}")
    with running_server(request.param, folder, {"lab": ("examiner", "admin")}, FACEGEN_MODEL=str(case_model_run),
                        FACEGEN_MAX_UPLOAD_MB="8") as server:  # fmt: skip
        yield server


@pytest.fixture(scope="module")
def genotype_case(server: Server, skull_upload) -> dict:
    """A case of a skull mesh with the 23andMe file and the web tool's skin probabilities, finished."""
    files = skull_upload | {
        "genotypes": (PLANTED_FILE, GENOTYPES, "text/plain"),
        "skin_probabilities": (f"{PLANTED_NAME}.csv", webtool_output_text({PLANTED_NAME: SKIN}).encode(), "text/csv"),
    }
    with server.client("lab-examiner") as client:
        answer = client.post("/v1/cases", files=files, data=FORM)
    assert answer.status_code == 202, answer.text
    state = server.wait_for("lab-examiner", answer.json()["id"])
    assert state["status"] == "done", state
    return state


def test_the_case_has_the_phenotype_and_the_coloured_head(server: Server, genotype_case):
    with server.client("lab-examiner") as client:
        case = client.get(f"/v1/cases/{genotype_case['id']}/files/case.json").json()
        report = client.get(f"/v1/cases/{genotype_case['id']}/files/report.html").text
    record = case["phenotype"]
    assert record["dosages"] == PERSON and record["input_format"] == "23andMe"
    assert record["missing"] == ["rs312262906"] and record["missing_reasons"] == {"rs312262906": "no call"}
    assert record["predictions"]["hair_colour"] == HAIR_COLOUR_MODEL.probabilities(PERSON)
    assert record["predictions"]["skin"] == pytest.approx(SKIN)
    for text in ("Appearance from DNA (HIrisPlex)", "admixed populations", "rs312262906: no call"):
        assert text in report, text
    heads = [name for name in genotype_case["files"] if "/head/head_" in name and name.endswith(".glb")]
    assert heads and all("_skin-" in name for name in heads), heads  # coloured from what DNA says, skin included


def _stored_bytes(server: Server) -> dict[str, bytes]:
    """Everything the service keeps: every file under its data folder (PDF text read out), its log, and on
    PostgreSQL + Redis every table row and queue key."""
    stored = {p.relative_to(server.data).as_posix(): _readable_bytes(p) for p in server.data.rglob("*") if p.is_file()}
    stored["serve.log"] = server.log.read_bytes()
    if "FACEGEN_DATABASE_URL" in server.env:
        import psycopg
        import redis

        url = server.env["FACEGEN_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(url) as conn:
            tables = [row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
            for table in tables:
                stored[f"postgres:{table}"] = repr(conn.execute(f'SELECT * FROM "{table}"').fetchall()).encode()
        queue = redis.Redis(host=REDIS[0], port=REDIS[1])
        for key in queue.scan_iter(f"*{server.env['FACEGEN_QUEUE_NAME']}*"):
            stored[f"redis:{key!r}"] = queue.dump(key) or b""
    return stored


def test_nothing_of_the_genotype_file_but_the_dosages_is_kept(server: Server, genotype_case):
    stored = _stored_bytes(server)
    assert {"facegen.db", "queue.db"} <= set(stored) or "postgres:audit_events" in stored  # the audit log too
    pdf = next(name for name in stored if name.endswith("report.pdf"))
    assert b"rs12913832" in stored[pdf]  # the search reads the report's PDF text, where the kept dosages are
    for needle in NEEDLES:
        leaks = [name for name, data in stored.items() if needle.encode() in data]
        assert not leaks, (needle, leaks)
    everything = b"".join(stored.values())
    assert GENOTYPES not in everything and GENOTYPES.splitlines()[1] not in everything
    assert not any((server.data / "uploads").iterdir()), "the upload (its genotype record too) was kept after the job"


BAD_GENOTYPES = {
    "not a genotype file": ({"genotypes": ("notes.txt", b"hello\nworld\n", "text/plain")}, {}, 422,
                            "not a genotype file"),
    "binary": ({"genotypes": ("g.txt", bytes(range(256)) * 8, "application/octet-stream")}, {}, 422, "not a text file"),
    "empty": ({"genotypes": ("g.txt", b"", "application/octet-stream")}, {}, 422, "empty"),
    "damaged gzip": ({"genotypes": ("g.vcf.gz", gzip.compress(GENOTYPES)[:60], "application/gzip")}, {}, 422,
                     "damaged"),
    "one endless line": ({"genotypes": ("g.txt", b"#" * (MAX_GENOTYPE_LINE_BYTES + 10), "text/plain")}, {}, 413,
                         "line longer"),
    "unknown sample": ({"genotypes": ("g.vcf", vcf_text({"S1": PERSON, "S2": PERSON}).encode(), "text/x-vcard")},
                       {"genotype_sample": "S3"}, 422, "no sample 'S3'"),
    "a sample in a 23andMe file": ({"genotypes": ("g.txt", GENOTYPES, "text/plain")}, {"genotype_sample": "S1"}, 422,
                                   "one person"),
    "image content type": ({"genotypes": ("g.txt", GENOTYPES, "image/png")}, {}, 415, "content type"),
    "skin without genotypes": ({"skin_probabilities": ("s.csv", webtool_output_text({"x": SKIN}).encode(),
                                                       "text/csv")}, {}, 422, "go with a genotypes file"),
    "genotypes as skin": ({"genotypes": ("g.txt", GENOTYPES, "text/plain"),
                           "skin_probabilities": ("s.csv", GENOTYPES, "text/csv")}, {}, 422, "sampleid"),
    "too large": ({"genotypes": ("g.txt", b"rs1\t1\t1\tAA\n" * (9 * 1024 * 1024 // 12), "text/plain")}, {}, 413,
                  "limit"),
}  # fmt: skip


def _audit_creates(server: Server) -> int:
    with server.client("lab-admin") as client:
        return sum(e["action"] == "case.create" for e in client.get("/v1/audit").json()["events"])


@pytest.mark.parametrize("name", list(BAD_GENOTYPES))
def test_a_bad_genotype_file_is_refused_and_nothing_stored(server: Server, skull_upload, name):
    extra_files, extra_form, status, message = BAD_GENOTYPES[name]
    uploads = set((server.data / "uploads").iterdir()) if (server.data / "uploads").exists() else set()
    with server.client("lab-examiner") as client:
        before, creates = len(client.get("/v1/cases").json()["cases"]), _audit_creates(server)
        answer = client.post("/v1/cases", files=skull_upload | extra_files, data=FORM | extra_form)
        assert answer.status_code == status, answer.text
        assert message in answer.json()["detail"], answer.text
        assert PLANTED_FILE not in answer.text and str(server.data) not in answer.text
        assert len(client.get("/v1/cases").json()["cases"]) == before and _audit_creates(server) == creates
    assert set((server.data / "uploads").iterdir()) == uploads  # no upload folder, no .incoming left


def test_the_upload_keeps_only_the_hirisplex_record_and_the_worker_reads_it_back(tmp_path):
    settings = Settings(data=tmp_path / "data")
    skin = webtool_output_text({PLANTED_NAME: SKIN}).encode()
    with tempfile.SpooledTemporaryFile(max_size=1024) as spooled:  # as the request hands an upload over: on disk
        spooled.write(gzip.compress(GENOTYPES))
        kept = read_hirisplex(spooled, sample=None, skin=io.BytesIO(skin), settings=settings)
        assert not spooled.closed
    record = json.loads(kept)
    assert set(record) == {"genotypes", "skin"}
    assert set(record["genotypes"]) == {"dosages", "file_format", "missing_reasons", "notes"}
    assert not any(needle.encode() in kept for needle in NEEDLES)
    (tmp_path / "hirisplex.json").write_bytes(kept)
    genotypes, skin_back = load_hirisplex(tmp_path / "hirisplex.json")
    assert genotypes.dosages == PERSON and genotypes.sample is None and skin_back == pytest.approx(SKIN)
    assert predict_phenotype(genotypes, skin=skin_back).summary()["dosages"] == PERSON
    (tmp_path / "hirisplex.json").write_text('{"genotypes": {"dosages": {"rs1": 1}}, "skin": null}')
    with pytest.raises(ValueError, match="genotype record is damaged"):
        load_hirisplex(tmp_path / "hirisplex.json")
    with pytest.raises(UploadError, match="genotypes: not a genotype file"):
        read_hirisplex(io.BytesIO(b"hello\n"), sample=None, skin=None, settings=settings)



def test_the_client_sends_the_genotype_fields_under_neutral_names(skull_upload, tmp_path):
    scan, genotypes, skin = tmp_path / "skull.ply", tmp_path / PLANTED_FILE, tmp_path / f"{PLANTED_NAME}.csv"
    scan.write_bytes(skull_upload["scan"][1])
    genotypes.write_bytes(GENOTYPES)
    skin.write_text(webtool_output_text({PLANTED_NAME: SKIN}))
    sent: list[bytes] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.read())
        return httpx.Response(202, json={"id": "case-1", "status": "queued"})

    with Client("http://facegen.test", "fgk_test") as client:
        client.http = httpx.Client(base_url="http://facegen.test", transport=httpx.MockTransport(answer))
        assert client.submit(scan, genotypes=genotypes, genotype_sample="S1", skin_probabilities=skin) == "case-1"
        with pytest.raises(FileNotFoundError, match="genotypes"):
            client.submit(scan, genotypes=tmp_path / "nope.vcf")
    body = sent[0]
    assert b'name="genotypes"; filename="genotypes"' in body and GENOTYPES in body
    assert b'name="skin_probabilities"; filename="skin_probabilities"' in body
    assert b'name="genotype_sample"\r\n\r\nS1\r\n' in body and PLANTED_FILE.encode() not in body


def test_facegen_submit_sends_genotypes_and_shows_the_refusal(server: Server, skull_upload, tmp_path):
    scan, notes = tmp_path / "skull.ply", tmp_path / "notes.txt"
    scan.write_bytes(skull_upload["scan"][1])
    notes.write_text("hello\nworld\n")
    args = ["submit", str(scan), "--server", server.url, "--key", server.keys["lab-examiner"], "--out",
            str(tmp_path / "case"), "--genotypes", str(notes)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "422" in result.output and "not a genotype file" in result.output, result.output
    assert not (tmp_path / "case").exists()
