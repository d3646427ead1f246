"""`firstcontact`: serve, migrate, manage staff, run the demo.

Commands that print a token print it alone on the last line, so scripts can read it with
`tail -n 1`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
import uvicorn
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app import migrate
from app import serve as serving
from app.auth import service as auth
from app.auth.models import Role
from app.config import Settings, get_settings
from app.db import in_transaction
from app.errors import AppError
from app.history import cli as history_cli
from app.logs import configure_logging, uvicorn_log_config
from app.metrics import multiproc
from app.qa import cli as qa_cli
from app.realtime import revocation
from app.retention import cli as retention_cli
from app.rules import cli as rules_cli
from app.rules.errors import RulesError

app = typer.Typer(
    help="Call-taker assist service for police contact centres.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
staff_app = typer.Typer(help="Staff accounts and their API tokens.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(staff_app, name="staff")
rules_app = typer.Typer(help="Rule packs (alerts, prompts, advice, cues).", no_args_is_help=True)
app.add_typer(rules_app, name="rules")
qa_app = typer.Typer(help="Quality assurance: samples, the monthly table.", no_args_is_help=True)
app.add_typer(qa_app, name="qa")
training_app = typer.Typer(help="The training register.", no_args_is_help=True)
app.add_typer(training_app, name="training")
audit_app = typer.Typer(help="The audit log: its hash chain, subject access.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
retention_app = typer.Typer(help="Retention periods: the purge.", no_args_is_help=True)
app.add_typer(retention_app, name="retention")

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

    try:
        return asyncio.run(in_transaction(settings, work))
    except (AppError, RulesError) as exc:
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
    # Served processes freeze their start-up heap (app.heap); worker processes inherit this.
    os.environ.setdefault("GC_FREEZE", "true")
    get_settings.cache_clear()
    settings = _settings()
    if workers > 1 and settings.is_sqlite:
        typer.echo(
            "note: several workers on SQLite share one file; the in-process broker does not "
            "cross processes. Set DATABASE_URL and REDIS_URL for a multi-worker deployment.",
            err=True,
        )
    configure_logging(settings.log_level, settings.log_json)
    options: serving.ServerOptions = {
        "log_config": uvicorn_log_config(settings.log_level, settings.log_json),
        "proxy_headers": True,
        # Whose X-Forwarded-For/-Proto uvicorn believes (the client address behind the
        # proxy: login lockout, audit; the scheme: Secure cookies).
        "forwarded_allow_ips": serving.forwarded_allow_ips(settings.forwarded_allow_ips),
        "timeout_graceful_shutdown": 10,
        "ws_max_size": settings.ws_max_message,  # larger client frames: closed with 1009
        "ws_per_message_deflate": settings.ws_deflate,
        # No protocol-level pings from uvicorn (every 20 s per socket by default): the
        # service's own heartbeat (WS_HEARTBEAT_SECONDS) already finds a dead or frozen
        # screen, more strictly (its page must answer, not just its browser), and each
        # ping cost every worker CPU per socket held (issue 19: a third of an idle worker's).
        "ws_ping_interval": None,
    }
    if workers > 1:
        # The workers (fresh interpreters) read it from the environment they inherit: they
        # take turns at the polls of shared tables (Settings.host_workers).
        os.environ["HOST_WORKERS"] = str(workers)
    if workers > 1 and serving.supported():
        # One SO_REUSEPORT socket per worker: the kernel spreads connections evenly
        # (uvicorn's shared socket lets one worker accept a whole burst).
        raise typer.Exit(serving.run(host, port, workers, options))
    with multiproc.shared_directory() if workers > 1 else contextlib.nullcontext():
        uvicorn.run(
            "app.main:create_app", factory=True, host=host, port=port, workers=workers, **options
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
        return await auth.issue_token(
            session, staff_id, actor=CLI_ACTOR, max_age_days=_settings().token_max_age_days
        )

    token = _in_session(_settings(), work)
    typer.echo(f"created {role.value} {staff_id}; the token below is shown once only:")
    typer.echo(token)


@staff_app.command("token")
def staff_token(staff_id: Annotated[str, typer.Option("--id")]) -> None:
    """Issue another token for an existing staff member (printed on the last line)."""

    async def work(session: AsyncSession) -> str:
        return await auth.issue_token(
            session, staff_id, actor=CLI_ACTOR, max_age_days=_settings().token_max_age_days
        )

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
    """Revoke every token of a staff member and end their browser sessions; their open
    sockets close (at once with REDIS_URL, else at the service's next credential recheck)."""
    settings = _settings()

    async def work(session: AsyncSession) -> auth.Ended:
        return await auth.revoke(session, staff_id, actor=CLI_ACTOR, deactivate=deactivate)

    ended = _in_session(settings, work)
    # After the commit, as the API does: the service's workers close the sockets.
    if not asyncio.run(revocation.announce_from_tool(settings, ended)):
        typer.echo(
            "note: the running service is not told directly (no REDIS_URL, or Redis is "
            "unreachable): open sockets "
            "close at its next credential recheck (WS_AUTH_RECHECK_SECONDS); "
            "POST /api/v1/staff/{id}/revoke closes them at once",
            err=True,
        )
    typer.echo(
        f"revoked {len(ended.token_ids)} token(s) of {staff_id}"
        + (", deactivated" if deactivate else "")
    )


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
    calls: Annotated[
        bool, typer.Option("--calls/--no-calls", help="Ring the demo handlers while serving.")
    ] = True,
) -> None:
    """Migrate the database, create demo staff with fresh tokens, and serve (ringing demo
    calls at the demo handlers, so their screens come alive)."""
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
            token = await auth.issue_token(
                session, staff_id, actor="demo", max_age_days=settings.token_max_age_days
            )
            issued.append((staff_id, role, token))
        return issued

    seeded = history_cli.seed_demo_if_empty(settings)
    if seeded is not None:
        typer.echo("demo history seeded: " + ", ".join(f"{t} {n}" for t, n in seeded.items()))
    typer.echo(f"demo database ready ({settings.database_url})")
    typer.echo(f"service: http://{host}:{port}   health: http://{host}:{port}/readyz")
    for staff_id, role, token in _in_session(settings, work):
        typer.echo(f"  {role.value:<12} {staff_id:<6} {token}")
    # Browser screens (issue 7): log in with a token above; demo calls ring H1001 and H1002.
    typer.echo(f"browser: http://{host}:{port}/login   (handler token: /handler screen;")
    typer.echo("         supervisor token: /supervisor board)")
    if serve_after:
        if calls:
            from app.web import demo as demo_calls

            local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
            demo_calls.start_in_background(
                f"http://{local}:{port}", settings.telephony_secret.get_secret_value().encode()
            )
            typer.echo("demo calls: ringing H1001 and H1002 from demo-history numbers")
        serve(host=host, port=port, workers=1)


@app.command("import")
def import_history(
    directory: Annotated[Path, typer.Argument(help="Folder holding the history CSV files.")],
) -> None:
    """Load people/households/memberships/contacts/markers CSV files (all or nothing)."""
    raise typer.Exit(history_cli.import_command(_settings(), directory))


@rules_app.command("check")
def rules_check(
    path: Annotated[Path, typer.Argument(help="A pack file, or a directory of them.")],
) -> None:
    """Validate packs as RULES_DIR=PATH would load them; exit 1 with file:line: reason."""
    raise typer.Exit(rules_cli.check(path, max_window_days=_settings().history_horizon_days))


@qa_app.command("sample")
def qa_sample(
    month: Annotated[str, typer.Option(help="The month, YYYY-MM (UK local).")],
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same sample.")],
    per_handler: Annotated[int, typer.Option(help="Calls per handler.")] = 3,
    queue: Annotated[str | None, typer.Option(help="Only calls on this queue.")] = None,
    min_talk_seconds: Annotated[int | None, typer.Option(help="Only calls this long.")] = None,
    flagged_only: Annotated[bool, typer.Option(help="Only flagged calls.")] = False,
    at_least_one_flagged: Annotated[
        bool, typer.Option(help="A flagged call per handler, when the handler has one.")
    ] = False,
) -> None:
    """Draw a QA sample (stored and audited, as POST /api/v1/qa/samples)."""
    raise typer.Exit(
        qa_cli.sample(
            _settings(),
            month,
            per_handler,
            seed,
            queue,
            min_talk_seconds,
            flagged_only,
            at_least_one_flagged,
        )  # fmt: skip
    )


@qa_app.command("report")
def qa_report(
    start: Annotated[str, typer.Option("--from", help="First month, YYYY-MM.")],
    end: Annotated[str, typer.Option("--to", help="Last month, YYYY-MM (inclusive).")],
    fmt: Annotated[
        qa_cli.Format, typer.Option("--format", help="table (the terminal), csv or xlsx.")
    ] = qa_cli.Format.table,
    output: Annotated[Path | None, typer.Option(help="Write to this file.")] = None,
) -> None:
    """Print the monthly QA table in the force's layout (one row per measure)."""
    raise typer.Exit(qa_cli.report(_settings(), start, end, fmt.value, output))


@qa_app.command("check")
def qa_check(
    path: Annotated[Path, typer.Argument(help="A QA form file, or RULES_DIR/qa.")],
) -> None:
    """Validate a QA form; exit 1 with file:line: reason."""
    raise typer.Exit(qa_cli.check_form(path))


@training_app.command("import")
def training_import(
    path: Annotated[Path, typer.Argument(help="CSV: staff_id, module, completed_on, expires_on.")],
) -> None:
    """Load training records (all or nothing); bad rows as file:line: column: reason."""
    raise typer.Exit(qa_cli.import_training(_settings(), path))


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the audit log's hash chain; exit 1 naming each row edited, inserted or deleted."""
    from app.audit import cli as audit_cli

    raise typer.Exit(audit_cli.verify(_settings()))


@audit_app.command("subject")
def audit_subject(
    person: Annotated[str, typer.Option("--person", help="The person's id, e.g. P1.")],
) -> None:
    """CSV to stdout: who saw or changed the person's data, and when (subject access)."""
    from app.audit import cli as audit_cli

    raise typer.Exit(audit_cli.export_subject(_settings(), person))


@retention_app.command("run")
def retention_run(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would be removed; change nothing.")
    ] = False,
) -> None:
    """Remove every class of data past its retention period (RETENTION_* settings)."""
    settings = _settings()
    rows = _in_session(
        settings, retention_cli.purge_work(settings, actor=CLI_ACTOR, dry_run=dry_run)
    )
    raise typer.Exit(retention_cli.report_purge(rows, dry_run=dry_run))


@app.command()
def erase(
    person: Annotated[str, typer.Option("--person", help="The person's id (as imported).")],
) -> None:
    """Erase a person everywhere (removed or pseudonymised); one audit row records it."""
    settings = _settings()
    rows = _in_session(settings, retention_cli.erase_work(settings, person, actor=CLI_ACTOR))
    retention_cli.print_rows(f"erased person {person}:", rows)


@app.command()
def simulate(
    rate: Annotated[str, typer.Option(help="New calls per second: 5/s, 30/m or 2.5.")] = "5/s",
    duration: Annotated[
        float, typer.Option(min=0.1, help="Seconds during which calls arrive.")
    ] = 60.0,
    url: Annotated[str, typer.Option(help="The running service.")] = "http://127.0.0.1:8000",
    secret: Annotated[
        str | None, typer.Option(help="Signing key (default TELEPHONY_SECRET).")
    ] = None,
    handlers: Annotated[
        str, typer.Option(help="Comma-separated handler staff ids.")
    ] = "H1001,H1002",
    speed: Annotated[float, typer.Option(min=0.01, help="Play calls N times faster.")] = 1.0,
    seed: Annotated[int | None, typer.Option(help="Random seed, for a repeatable run.")] = None,
) -> None:
    """Be the telephony platform: post signed call lifecycles to a running service."""
    from app import simulate as sim  # the simulator is a client; serve does not need it

    try:
        per_second = sim.parse_rate(rate)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--rate") from exc
    key = secret if secret is not None else _settings().telephony_secret.get_secret_value()
    config = sim.SimulationConfig(
        url=url, secret=key.encode(), rate=per_second, duration=duration, speed=speed, seed=seed,
        handlers=[h.strip() for h in handlers.split(",") if h.strip()],
    )  # fmt: skip
    typer.echo(f"simulating {per_second:g} calls/s for {duration:g} s against {url}")
    report = asyncio.run(sim.run(config))
    typer.echo(report.summary())
    rejected = sum(n for status, n in report.statuses.items() if status >= 400)
    raise typer.Exit(1 if rejected or (report.errors and not report.sent) else 0)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
