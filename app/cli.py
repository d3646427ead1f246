"""`firstcontact`: serve, migrate, manage staff, run the demo.

Commands that print a token print it alone on the last line, so scripts can read it with
`tail -n 1`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
import uvicorn
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app import migrate
from app.auth import service as auth
from app.auth.models import Role
from app.config import Settings, get_settings
from app.db import create_engine, create_sessionmaker
from app.errors import AppError
from app.logs import configure_logging, uvicorn_log_config

app = typer.Typer(
    help="Call-taker assist service for police contact centres.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
staff_app = typer.Typer(help="Staff accounts and their API tokens.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(staff_app, name="staff")

CLI_ACTOR = "cli"
T = TypeVar("T")


def _settings() -> Settings:
    try:
        return get_settings()
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _in_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one committed transaction; AppErrors become a clean exit 1."""

    async def run() -> T:
        engine = create_engine(settings)
        try:
            async with create_sessionmaker(engine)() as session, session.begin():
                return await work(session)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except AppError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    except (DBAPIError, OSError) as exc:
        typer.echo(
            f"database error ({type(exc).__name__}): is it reachable, and has "
            "`firstcontact db upgrade` been run?",
            err=True,
        )
        raise typer.Exit(1) from exc


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Run the service with uvicorn."""
    settings = _settings()
    if workers > 1 and settings.is_sqlite:
        typer.echo(
            "note: several workers on SQLite share one file; the in-process broker does not "
            "cross processes. Set DATABASE_URL and REDIS_URL for a multi-worker deployment.",
            err=True,
        )
    configure_logging(settings.log_level, settings.log_json)
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=uvicorn_log_config(settings.log_level, settings.log_json),
        proxy_headers=True,
        timeout_graceful_shutdown=10,
    )


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations up to REVISION (default: head)."""
    migrate.upgrade(_settings(), revision)
    typer.echo(f"database at {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument()]) -> None:
    """Revert migrations down to REVISION ('base' removes everything)."""
    migrate.downgrade(_settings(), revision)
    typer.echo(f"database at {revision}")


@staff_app.command("create")
def staff_create(
    staff_id: Annotated[str, typer.Option("--id", help="Staff id, e.g. H1042.")],
    name: Annotated[str, typer.Option(help="Display name.")],
    role: Annotated[Role, typer.Option(help="handler, supervisor, qa, admin or integration.")],
) -> None:
    """Create a staff member and print a new token once, alone on the last line."""

    async def work(session: AsyncSession) -> str:
        await auth.create_staff(session, staff_id=staff_id, name=name, role=role, actor=CLI_ACTOR)
        return await auth.issue_token(session, staff_id, actor=CLI_ACTOR)

    token = _in_session(_settings(), work)
    typer.echo(f"created {role.value} {staff_id}; the token below is shown once only:")
    typer.echo(token)


@staff_app.command("token")
def staff_token(staff_id: Annotated[str, typer.Option("--id")]) -> None:
    """Issue another token for an existing staff member (printed on the last line)."""

    async def work(session: AsyncSession) -> str:
        return await auth.issue_token(session, staff_id, actor=CLI_ACTOR)

    token = _in_session(_settings(), work)
    typer.echo(f"new token for {staff_id}; shown once only:")
    typer.echo(token)


@staff_app.command("list")
def staff_list() -> None:
    """List staff: id, role, active, name."""

    async def work(session: AsyncSession) -> list[tuple[str, str, bool, str]]:
        return [(s.id, s.role, s.active, s.name) for s in await auth.list_staff(session)]

    for staff_id, role, active, name in _in_session(_settings(), work):
        typer.echo(f"{staff_id}\t{role}\t{'active' if active else 'inactive'}\t{name}")


@staff_app.command("revoke")
def staff_revoke(
    staff_id: Annotated[str, typer.Option("--id")],
    deactivate: Annotated[bool, typer.Option(help="Also deactivate the account.")] = False,
) -> None:
    """Revoke every token of a staff member."""

    async def work(session: AsyncSession) -> int:
        return await auth.revoke(session, staff_id, actor=CLI_ACTOR, deactivate=deactivate)

    count = _in_session(_settings(), work)
    typer.echo(f"revoked {count} token(s) of {staff_id}" + (", deactivated" if deactivate else ""))


DEMO_STAFF: list[tuple[str, str, Role]] = [
    ("H1001", "Demo Handler One", Role.handler),
    ("H1002", "Demo Handler Two", Role.handler),
    ("S2001", "Demo Supervisor", Role.supervisor),
    ("Q3001", "Demo QA Reviewer", Role.qa),
    ("A4001", "Demo Administrator", Role.admin),
    ("T9001", "Demo Telephony Connector", Role.integration),
]


@app.command()
def demo(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    serve_after: Annotated[bool, typer.Option("--serve/--no-serve")] = True,
) -> None:
    """Migrate the database, create demo staff with fresh tokens, and serve."""
    settings = _settings()
    migrate.upgrade(settings)

    async def work(session: AsyncSession) -> list[tuple[str, Role, str]]:
        issued = []
        existing = {s.id for s in await auth.list_staff(session)}
        for staff_id, name, role in DEMO_STAFF:
            if staff_id not in existing:
                await auth.create_staff(
                    session, staff_id=staff_id, name=name, role=role, actor=CLI_ACTOR
                )
            issued.append((staff_id, role, await auth.issue_token(session, staff_id, actor="demo")))
        return issued

    typer.echo(f"demo database ready ({settings.database_url})")
    typer.echo(f"service: http://{host}:{port}   health: http://{host}:{port}/readyz")
    for staff_id, role, token in _in_session(settings, work):
        typer.echo(f"  {role.value:<12} {staff_id:<6} {token}")
    if serve_after:
        serve(host=host, port=port, workers=1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
