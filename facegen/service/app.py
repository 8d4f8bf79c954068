"""The FastAPI application: settings, database, queue and routers put together (OpenAPI at /openapi.json)."""

from __future__ import annotations

from fastapi import FastAPI

from facegen import __version__
from facegen.service.database import migrate, session_factory
from facegen.service.keys import server_secret
from facegen.service.middleware import BodyLimit, SecurityHeaders
from facegen.service.queue import JobQueue, build_queue
from facegen.service.routers import audit, cases, health, me, web
from facegen.service.settings import Settings

DESCRIPTION = "Forensic craniofacial reconstruction as a service: upload a skull, get the face."
MULTIPART_OVERHEAD = 1024 * 1024
"""Room for the form fields and the landmarks file beside the scan within one request."""


def create_app(settings: Settings, queue: JobQueue | None = None) -> FastAPI:
    """The service on `settings`' database, queue and files; migrates the database first."""
    settings.data.mkdir(parents=True, exist_ok=True)
    migrate(settings)
    app = FastAPI(title="facegen", version=__version__, docs_url=None, redoc_url=None, description=DESCRIPTION)
    app.state.settings = settings
    app.state.sessions = session_factory(settings)
    app.state.secret = server_secret(settings.secret_file)
    app.state.queue = queue or build_queue(settings)
    for module in (health, cases, audit, me, web):
        app.include_router(module.router)
    app.add_middleware(BodyLimit, max_bytes=settings.max_upload_bytes + MULTIPART_OVERHEAD)
    app.add_middleware(SecurityHeaders)  # outermost: the 413 of the body limit carries the headers too
    return app
