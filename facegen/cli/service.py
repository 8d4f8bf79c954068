"""The service commands: `facegen serve`, `facegen worker` and `facegen admin` (tenants, keys, webhooks)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

admin_app = typer.Typer(help="Manage the service's tenants, API keys and webhooks.", no_args_is_help=True)
tenant_app = typer.Typer(help="Tenants: institutions whose cases, keys and audit log are their own.",
                         no_args_is_help=True)  # fmt: skip
key_app = typer.Typer(help="API keys: each belongs to one tenant and has one role.", no_args_is_help=True)
admin_app.add_typer(tenant_app, name="tenant")
webhook_app = typer.Typer(help="Webhooks: a tenant's URL told of every finished case (signed, retried).",
                          no_args_is_help=True)  # fmt: skip
admin_app.add_typer(key_app, name="key")
admin_app.add_typer(webhook_app, name="webhook")
console = Console(soft_wrap=True)

DataOption = Annotated[Path, typer.Option("--data", help="The service's data folder (database, queue, case files).")]


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code=2)


def _settings(data: Path):  # noqa: ANN202 (facegen.service.settings.Settings, imported late)
    from facegen.service.settings import load_settings

    try:
        return load_settings(data)
    except ValueError as exc:
        _fail(str(exc))


def _requeue(settings, queue) -> None:  # noqa: ANN001 (service types, imported late)
    """Queue again the cases a stopped server or worker left unfinished."""
    from facegen.service.jobs import requeue_interrupted

    ids = requeue_interrupted(settings, queue.submit)
    if ids:
        console.print(f"queued again {len(ids)} unfinished case(s)")


def serve(
    data: DataOption,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=0, help="Queue worker processes started with the server (0: none).")] = 1,
) -> None:
    """Run the web service (API v1) and `workers` queue worker processes (children that stop with it)."""
    import uvicorn

    from facegen.service.app import create_app
    from facegen.service.queue import build_queue
    from facegen.service.sweep import Sweeper
    from facegen.service.workers import WorkerProcesses

    settings = _settings(data)
    queue = build_queue(settings)
    app = create_app(settings, queue)
    _requeue(settings, queue)
    children = WorkerProcesses(settings.data, workers).start()  # from the main thread: they die with it
    sweeper = Sweeper(settings, queue.submit, also=children.revive).start()  # dead workers' cases, dead children
    console.print(f"facegen serving {settings.data} on http://{host}:{port} with {workers} queue worker(s)")
    try:
        uvicorn.run(app, host=host, port=port, log_level=os.environ.get("FACEGEN_LOG_LEVEL", "warning"))
    finally:
        sweeper.stop()
        children.stop()


def worker(
    data: DataOption,
    workers: Annotated[int, typer.Option(min=1, help="Consumer threads.")] = 1,
) -> None:
    """Run queue consumers only (more workers for a running service; same --data and configuration)."""
    from facegen.service.database import migrate
    from facegen.service.queue import build_queue
    from facegen.service.sweep import Sweeper
    from facegen.service.workers import die_with_parent

    child = die_with_parent()  # a worker of `facegen serve`, which re-queues and sweeps for it
    settings = _settings(data)
    migrate(settings)
    console.print(f"facegen worker on {settings.data} with {workers} consumer thread(s)")
    queue = build_queue(settings)
    if not child:
        _requeue(settings, queue)
    sweeper = None if child else Sweeper(settings, queue.submit).start()
    try:
        queue.consumer(workers).run()
    finally:
        if sweeper is not None:
            sweeper.stop()


@tenant_app.command("create")
def tenant_create(name: Annotated[str, typer.Argument(help="The tenant's name.")], data: DataOption) -> None:
    """Create a tenant."""
    from facegen.service.admin import create_tenant

    try:
        create_tenant(_settings(data), name)
    except ValueError as exc:
        _fail(str(exc))
    console.print(f"created tenant {escape(name)}")


@key_app.command("create")
def key_create(
    tenant: Annotated[str, typer.Option(help="The tenant the key belongs to.")],
    role: Annotated[str, typer.Option(help="admin, examiner or viewer.")],
    data: DataOption,
) -> None:
    """Create an API key and print it once (only its keyed hash is stored)."""
    from facegen.service.admin import create_key

    try:
        key = create_key(_settings(data), tenant, role)
    except ValueError as exc:
        _fail(str(exc))
    typer.echo(key)  # alone on stdout, for scripts; it cannot be shown again


@tenant_app.command("keep-uploads")
def tenant_keep_uploads(
    name: Annotated[str, typer.Argument(help="The tenant's name.")],
    data: DataOption,
    keep: Annotated[bool, typer.Option("--on/--off", help="Keep original uploads after the job, or not.")] = True,
) -> None:
    """Keep (--on) or drop (--off, the default for a new tenant) a tenant's original uploads after each job."""
    from facegen.service.admin import set_keep_uploads

    try:
        set_keep_uploads(_settings(data), name, keep)
    except ValueError as exc:
        _fail(str(exc))
    console.print(f"tenant {escape(name)}: original uploads are {'kept' if keep else 'not kept'} after each job")


@webhook_app.command("set")
def webhook_set(
    tenant: Annotated[str, typer.Option(help="The tenant whose finished cases are announced.")],
    url: Annotated[str, typer.Option(help="The http(s) URL the case summaries are POSTed to.")],
    data: DataOption,
) -> None:
    """Register a tenant's webhook and print its new signing secret once (X-Facegen-Signature: sha256=HMAC)."""
    from facegen.service.admin import set_webhook

    try:
        secret = set_webhook(_settings(data), tenant, url)
    except ValueError as exc:
        _fail(str(exc))
    typer.echo(secret)  # alone on stdout, for scripts; it cannot be shown again


@webhook_app.command("clear")
def webhook_clear(
    tenant: Annotated[str, typer.Option(help="The tenant.")],
    data: DataOption,
) -> None:
    """Remove a tenant's webhook."""
    from facegen.service.admin import set_webhook

    try:
        set_webhook(_settings(data), tenant, None)
    except ValueError as exc:
        _fail(str(exc))
    console.print(f"tenant {escape(tenant)}: no webhook")
