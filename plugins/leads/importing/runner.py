"""Running an import: atomic batches through the records service, resumable, reported.

Every row becomes a ``records.create`` call, so validation, intent tagging,
routing and every other plugin's hooks apply exactly as for a form or an API
call. Rows go in batches (500 by default), one transaction each; each row has
a savepoint, so a refused row is reported and the rest of its batch is kept,
while anything unexpected rolls the whole batch back and stops the import.

An ``import_run`` record, updated in each batch's own transaction, holds the
file's SHA-256, the mapping and the number of committed batches: importing
the same file again resumes after the last committed batch, with the same
mapping and batch size. A dry run does everything inside savepoints that are
rolled back, so its report is what a real run would say, and nothing stays.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from qiao.api import (
    Actor,
    BadUserInput,
    Conflict,
    EntityDef,
    FieldDef,
    QiaoError,
    Record,
    Runtime,
    Source,
    UniqueIds,
    WriteContext,
)
from qiao.plugins.leads import dedupe, notify, routing
from qiao.plugins.leads.importing import mapping as mappings
from qiao.plugins.leads.importing.cleaning import cleaner
from qiao.plugins.leads.importing.reader import Cell, Table, read_table

DEFAULT_BATCH_SIZE = 500
DUPLICATE_POLICIES = ("skip", "keep")


@dataclass(frozen=True)
class Problem:
    """One line of the report: a refused row or a duplicate, with the row as it was."""

    row: int
    column: str | None
    reason: str
    kind: str  # "error" or "duplicate"
    cells: tuple[Cell, ...] = ()


@dataclass
class Outcome:
    """What an import did (or, dry, would do)."""

    columns: dict[str, str]
    rows: int = 0
    created: int = 0
    duplicates: int = 0
    errors: int = 0
    run_id: str | None = None
    resumed_after_batch: int = 0
    dry_run: bool = False
    problems: list[Problem] = field(default_factory=list)


@dataclass(frozen=True)
class _Staged:
    """A row ready to be created: its values, and the column each value came from."""

    number: int
    cells: tuple[Cell, ...]
    values: dict[str, Any]
    source_column: dict[str, str]
    keys: dict[str, str]

    def remember(self, index: dedupe.Index) -> None:
        """Let later rows of the file find this one as their duplicate."""
        if self.keys:
            index.add_row(self.number, str(self.values.get("name") or ""), self.keys)


@dataclass(frozen=True)
class _Column:
    index: int
    name: str
    clean: Callable[[Cell], Any]


class Importer:
    """Imports one file into one entity for one actor."""

    def __init__(
        self,
        runtime: Runtime,
        actor: Actor,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        duplicates: str = "skip",
        progress: Callable[[int], None] | None = None,
    ) -> None:
        if duplicates not in DUPLICATE_POLICIES:
            raise ValueError(f"duplicates must be one of {DUPLICATE_POLICIES}")
        self.runtime = runtime
        self.records = runtime.records
        self.actor = actor
        self.batch_size = batch_size
        self.duplicates = duplicates
        self.progress = progress

    def read(
        self, data: bytes, filename: str, entity_name: str, mapping: Mapping[str, Any] | None
    ) -> tuple[Table, dict[str, str]]:
        """The file's rows and the mapping to use (suggested when none is given)."""
        entity = self.runtime.current().entity(entity_name)
        suggester = mappings.Suggester(entity)
        given = dict(mapping or {})

        def recognise(header: str) -> bool:
            return header.strip() in given or suggester.field_for(header) is not None

        table = read_table(data, filename, recognise)
        wanted = given or suggester.suggest(table.columns)
        return table, mappings.check(entity, wanted, table.columns, self.runtime.current())

    def run(
        self,
        data: bytes,
        filename: str,
        entity_name: str,
        mapping: Mapping[str, Any] | None = None,
        *,
        dry_run: bool = False,
        again: bool = False,
    ) -> Outcome:
        digest = hashlib.sha256(data).hexdigest()
        run = None if dry_run else self._previous_run(digest, entity_name, again)
        if run is not None:
            mapping, self.batch_size = run["mapping"], run["batch_size"]
        table, columns = self.read(data, filename, entity_name, mapping)
        outcome = Outcome(columns=columns, rows=len(table.rows), dry_run=dry_run)
        if run is None and not dry_run:
            run = self._start_run(digest, filename, entity_name, columns, len(table.rows))
        if run is not None:
            outcome.run_id = run["id"]
            outcome.resumed_after_batch = run["batches_done"]
        entity = self.runtime.current().entity(entity_name)
        plan = self._plan(entity, table, columns)
        with self.runtime.db.read() as conn:
            index = dedupe.Index.load(conn, self.runtime.records)
        batches = math.ceil(len(table.rows) / self.batch_size)
        start = outcome.resumed_after_batch
        for number in range(start, batches):
            rows = table.rows[number * self.batch_size : (number + 1) * self.batch_size]
            self._batch(entity, plan, rows, index, outcome, run, number, dry_run)
            if self.progress is not None:
                self.progress(len(rows))
        if run is not None and batches == start:
            self._finish(run["id"], batches)
        return outcome

    # -- Runs -----------------------------------------------------------------------------

    def _previous_run(self, digest: str, entity: str, again: bool) -> dict[str, Any] | None:
        with self.runtime.db.read() as conn:
            page = self.records.list(
                conn,
                "import_run",
                filter={"file_hash": {"eq": digest}, "entity": {"eq": entity}},
                order_by=[{"field": "created_at", "direction": "DESC"}],
                first=1,
                actor=Actor.system(),
            )
        if not page.records or again:
            return None
        run = page.records[0]
        if run["status"] == "DONE":
            raise Conflict(
                f"this file was imported completely already (import run {run['id']}, "
                f"{run['created_count']} created); pass 'again' to import it once more"
            )
        return run

    def _start_run(
        self, digest: str, filename: str, entity: str, columns: dict[str, str], rows: int
    ) -> dict[str, Any]:
        values = {
            "file_hash": digest,
            "filename": filename[-500:],
            "entity": entity,
            "batch_size": self.batch_size,
            "rows_total": rows,
            "mapping": columns,
        }
        with self.records.transaction(self.actor, Source.IMPORT) as ctx:
            return self.records.create(ctx, "import_run", values)

    def _finish(self, run_id: str, batches: int) -> None:
        """Close a run that had no batch left to do (an empty file, or resumed at its end)."""
        with self.records.transaction(self.actor, Source.IMPORT) as ctx:
            self.records.update(
                ctx, "import_run", run_id, {"status": "DONE", "batches_done": batches}
            )

    # -- Rows -----------------------------------------------------------------------------

    def _plan(
        self, entity: EntityDef, table: Table, columns: dict[str, str]
    ) -> dict[str, list[_Column]]:
        """Field name -> the columns feeding it, in file order (first non-empty wins)."""
        plan: dict[str, list[_Column]] = {}
        for index, name in enumerate(table.columns):
            target = columns.get(name)
            if target is None:
                continue
            field_def: FieldDef | None
            if "." in target:  # a relation by a unique field of the records it points at
                _, _, field_def = mappings.by_key(entity, self.runtime.current(), target, name)
            else:
                field_def = entity.field(target)
            assert field_def is not None
            plan.setdefault(target, []).append(_Column(index, name, cleaner(field_def)))
        return plan

    def _named(
        self,
        conn: Connection,
        entity: EntityDef,
        plan: dict[str, list[_Column]],
        rows: Sequence[tuple[int, list[Cell]]],
    ) -> dict[str, UniqueIds]:
        """For each relation column's target, the ids of the records the batch's cells name
        by a unique field, read as the importing user: one lookup of their distinct values,
        not one per row. A cell that does not clean is left to its row's report."""
        catalog = self.runtime.current()
        found: dict[str, UniqueIds] = {}
        for target, feeding in plan.items():
            if "." not in target:
                continue
            _, pointed, key = mappings.by_key(entity, catalog, target, feeding[0].name)
            values: set[Any] = set()
            for _, cells in rows:
                for column in feeding:
                    with suppress(ValueError):
                        values.add(column.clean(cells[column.index]))
            found[target] = self.records.ids_by_unique(
                conn, pointed.name, key.name, values - {None}, actor=self.actor
            )
        return found

    def _batch(
        self,
        entity: EntityDef,
        plan: dict[str, list[_Column]],
        rows: Sequence[tuple[int, list[Cell]]],
        index: dedupe.Index,
        outcome: Outcome,
        run: dict[str, Any] | None,
        number: int,
        dry_run: bool,
    ) -> None:
        before = (outcome.created, outcome.duplicates, outcome.errors, len(outcome.problems))
        try:
            with self.records.transaction(self.actor, Source.IMPORT) as ctx:
                conn = ctx.connection
                undo = conn.begin_nested() if dry_run else None
                created = self._write_batch(ctx, entity, plan, rows, index, outcome)
                assigned: dict[str, list[Record]] = {}
                if entity.name == "lead":
                    for record in created:
                        if record["owner_id"]:
                            assigned.setdefault(record["owner_id"], []).append(record)
                run_id = run["id"] if run is not None else None
                for owner, leads in assigned.items():
                    notify.leads_imported(ctx, owner, leads, run_id)
                if undo is not None:
                    undo.rollback()
                if run is not None:
                    self.records.update(
                        ctx,
                        "import_run",
                        run["id"],
                        {
                            "batches_done": number + 1,
                            "created_count": run["created_count"] + outcome.created,
                            "duplicate_count": run["duplicate_count"] + outcome.duplicates,
                            "error_count": run["error_count"] + outcome.errors,
                            "status": "DONE"
                            if (number + 1) * self.batch_size >= outcome.rows
                            else "RUNNING",
                        },
                    )
        except BaseException:
            outcome.created, outcome.duplicates, outcome.errors = before[:3]
            del outcome.problems[before[3] :]
            raise

    def _write_batch(
        self,
        ctx: WriteContext,
        entity: EntityDef,
        plan: dict[str, list[_Column]],
        rows: Sequence[tuple[int, list[Cell]]],
        index: dedupe.Index,
        outcome: Outcome,
    ) -> list[Record]:
        """Create a batch's rows with one ``create_many``, row by row when it cannot be.

        Rows are cleaned and checked for duplicates first; the rest go to the
        records service together, rows it refuses for their values reported.
        When the batch as a whole is refused (a hook, a rule or a unique value
        refusing a row), or a refused row was the duplicate another row was
        left out for, the batch is rolled back and written row by row in
        savepoints, as before: what a row's fate is does not depend on the
        path.
        """
        conn = ctx.connection
        found = self._named(conn, entity, plan, rows)
        mark = index.mark()
        counts = (outcome.created, outcome.duplicates, outcome.errors, len(outcome.problems))
        attempt = conn.begin_nested()
        with routing.batch(conn, self.runtime.current()):
            staged = []
            for row_number, cells in rows:
                row = self._stage(conn, entity, plan, found, row_number, cells, index, outcome)
                if row is not None:
                    staged.append(row)
                    row.remember(index)
            try:
                result = self.records.create_many(
                    ctx, entity.name, [row.values for row in staged], skip_invalid=True
                )
            except QiaoError:
                result = None
        refused_rows = {staged[r.index].number for r in result.refused} if result else set()
        if result is not None and not (refused_rows & index.rows_matched(mark)):
            attempt.commit()
            index.forget(mark, refused_rows)
            for refused in result.refused:
                row = staged[refused.index]
                column = row.source_column.get(refused.error.field or "", refused.error.field)
                self._problem(
                    outcome, row.number, column, refused.error.message, "error", row.cells
                )
            outcome.created += len(result.records)
            outcome.problems[counts[3] :] = sorted(outcome.problems[counts[3] :], key=_by_row)
            return result.records
        attempt.rollback()
        index.forget(mark)
        outcome.created, outcome.duplicates, outcome.errors = counts[:3]
        del outcome.problems[counts[3] :]
        with routing.batch(conn, self.runtime.current()):
            created = []
            for row_number, cells in rows:
                row = self._stage(conn, entity, plan, found, row_number, cells, index, outcome)
                record = self._create_one(ctx, entity, row, outcome) if row else None
                if row is not None and record is not None:
                    created.append(record)
                    row.remember(index)
            return created

    def _stage(
        self,
        conn: Connection,
        entity: EntityDef,
        plan: dict[str, list[_Column]],
        found: Mapping[str, UniqueIds],
        row_number: int,
        cells: list[Cell],
        index: dedupe.Index,
        outcome: Outcome,
    ) -> _Staged | None:
        """One row's values, checked for duplicates; None when it is refused or left out
        as a duplicate (reported)."""
        values: dict[str, Any] = {}
        source_column: dict[str, str] = {}
        keys: dict[str, str] = {}
        for target, feeding in plan.items():
            for column in feeding:
                try:
                    value = column.clean(cells[column.index])
                except ValueError as exc:
                    self._problem(outcome, row_number, column.name, str(exc), "error", cells)
                    return None
                if value is not None and "." in target:
                    try:
                        value = found[target].id(value, field=column.name)
                    except BadUserInput as exc:
                        self._problem(outcome, row_number, column.name, exc.message, "error", cells)
                        return None
                    relation = target.partition(".")[0]
                    values[relation] = value
                    source_column[relation] = column.name
                    break
                if value is not None:
                    values[target] = value
                    source_column[target] = column.name
                    break
        if entity.name == "lead":
            if "source" not in values:
                values["source"] = "IMPORT"
            keys = dedupe.lead_keys(values)
            matches = index.matches(keys, conn)
            if matches:
                reason = "; ".join(m.describe() for m in matches)
                self._problem(outcome, row_number, None, reason, "duplicate", cells)
                outcome.duplicates += 1
                if self.duplicates == "skip":
                    return None
                values["duplicate_of"] = dedupe.first_lead(matches)
            values["duplicate_matches"] = [m.as_json() for m in matches]
        return _Staged(row_number, tuple(cells), values, source_column, keys)

    def _create_one(
        self, ctx: WriteContext, entity: EntityDef, row: _Staged, outcome: Outcome
    ) -> Record | None:
        """Create one staged row in its own savepoint; None (reported) when refused."""
        try:
            with ctx.connection.begin_nested():
                record = self.records.create(ctx, entity.name, row.values)
        except QiaoError as exc:
            column = row.source_column.get(exc.field or "", exc.field)
            self._problem(outcome, row.number, column, exc.message, "error", row.cells)
            return None
        outcome.created += 1
        return record

    def _problem(
        self,
        outcome: Outcome,
        row: int,
        column: str | None,
        reason: str,
        kind: str,
        cells: Sequence[Cell],
    ) -> None:
        if kind == "error":
            outcome.errors += 1
        outcome.problems.append(Problem(row, column, reason, kind, tuple(cells)))


def _by_row(problem: Problem) -> int:
    return problem.row
