"""The QA and training parts of the `firstcontact` command: draw a sample, print the monthly
table, check a QA form, import the training register."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

import typer
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import Role
from app.auth.service import Principal
from app.config import Settings
from app.db import in_transaction
from app.errors import AppError
from app.qa import export, forms, sampling, training
from app.qa import report as qa_report
from app.qa.schemas import Report, SampleCreate, SampleRead
from app.rules.errors import RulesError

T = TypeVar("T")
CLI_ACTOR = "cli"


class Format(StrEnum):
    table = "table"
    csv = "csv"
    xlsx = "xlsx"


@dataclass(frozen=True)
class CommandLine(Principal):
    """Whoever runs the command on the server: audited as `cli`, like the other commands."""

    @property
    def actor(self) -> str:
        return CLI_ACTOR


OPERATOR = CommandLine(id=CLI_ACTOR, name="command line", role=Role.qa)


def _run(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """`work` in one committed transaction; a refusal is printed with its reasons (exit 1)."""

    try:
        return asyncio.run(in_transaction(settings, work))
    except (AppError, RulesError) as exc:
        typer.echo(f"error: {exc.message}", err=True)
        details = exc.details.get("errors") if isinstance(exc.details, dict) else None
        for line in details or []:
            typer.echo(f"  {line}", err=True)
        raise typer.Exit(1) from exc


def sample(
    settings: Settings,
    month: str,
    per_handler: int,
    seed: int,
    queue: str | None,
    min_talk_seconds: int | None,
    flagged_only: bool,
    at_least_one_flagged: bool,
) -> int:
    try:
        body = SampleCreate(
            month=month,
            per_handler=per_handler,
            seed=seed,
            queue=queue,
            min_talk_seconds=min_talk_seconds,
            flagged_only=flagged_only,
            at_least_one_flagged=at_least_one_flagged,
        )
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            where = ".".join(str(p) for p in error["loc"])
            typer.echo(f"error: {where}: {error['msg']}", err=True)
        return 2

    async def work(session: AsyncSession) -> SampleRead:
        return await sampling.create_sample(session, body, OPERATOR)

    drawn = _run(settings, work)
    typer.echo(
        f"sample {drawn.id}: {len(drawn.calls)} calls from {drawn.handlers} handlers in "
        f"{drawn.month} (seed {drawn.seed})"
    )
    for call in drawn.calls:
        typer.echo(f"  {call.handler_id:<12} call {call.call_id}")
    for short in drawn.shortfalls:
        typer.echo(
            f"  fewer eligible calls: {short.handler_id} had {short.eligible}, drew {short.drawn}"
        )
    return 0


def report(
    settings: Settings,
    start: str,
    end: str,
    fmt: str,
    output: Path | None,
) -> int:
    form = forms.load(settings.rules_dir)

    async def work(session: AsyncSession) -> Report:
        return await qa_report.build(session, form, start, end, OPERATOR)

    built = _run(settings, work)
    if fmt == "xlsx":
        data = export.to_xlsx(built)
        if output is None:
            if sys.stdout.isatty():
                typer.echo("error: an XLSX file is binary; give --output FILE", err=True)
                return 2
            sys.stdout.buffer.write(data)
        else:
            output.write_bytes(data)
        return 0
    text = export.to_csv(built) if fmt == "csv" else export.to_table(built)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
    return 0


def check_form(path: Path) -> int:
    """Validate a QA form file (or a RULES_DIR/qa folder); prints file:line: reason."""
    try:
        form = forms.load_path(path)
    except forms.QaFormError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        typer.echo(f"{len(exc.problems)} problem(s); the form would not be loaded", err=True)
        return 1
    typer.echo(f"ok  {form.ref}  {len(form.standards)} standards  {form.source}")
    return 0


def import_training(settings: Settings, path: Path) -> int:
    form = forms.load(settings.rules_dir)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        typer.echo(
            f"error: {path.name}: cannot read as UTF-8 text ({type(exc).__name__})", err=True
        )
        return 1

    async def work(session: AsyncSession) -> tuple[int, int]:
        return await training.import_csv(session, form, path.name, text, CLI_ACTOR)

    rows, new = _run(settings, work)
    typer.echo(f"imported {rows} training records ({new} new, {rows - new} updated)")
    return 0
