"""Writing a batch of another system's records by their key: the new ones created
together, the changed ones updated together, the rest left as they are.

A connector reads pages of customers, products or contacts, each carrying the
other system's key in an external-id field. Upserting them one at a time costs
a lookup, a write and a re-read per row; here a page's keys are looked up in one
query and its new records go through one ``create_many``. The records the
others name are read in one query too, and a row that would change nothing (most
rows of a full pull, or of the overlap a pull reads again) is done there: no
write, no hook, no savepoint. The rows that change something go through one
``update_many``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from qiao.core.errors import BadUserInput, QiaoError
from qiao.core.metadata.model import EntityDef, FieldDef
from qiao.core.metadata.values import coerce_for_query
from qiao.core.records.batch import Created, RowError, RowsRefused, Upserted
from qiao.core.records.context import WriteContext

if TYPE_CHECKING:
    from qiao.core.records.service import RecordsService


def external_key(entity: EntityDef, key: str) -> FieldDef:
    """The external-id field ``key`` of ``entity``; BAD_USER_INPUT naming the ones it has."""
    field = entity.field(key)
    if field is None or not field.external_id:
        keys = ", ".join(f.name for f in entity.fields if f.external_id) or "none"
        raise BadUserInput(
            f"{key!r} is not an external-id field of {entity.name} (they are: {keys})",
            field=key,
        )
    return field


def upsert_rows(
    service: RecordsService,
    ctx: WriteContext,
    entity_name: str,
    key: str,
    rows: Sequence[Mapping[str, Any]],
    *,
    skip_invalid: bool = False,
) -> Upserted:
    """Create the records whose ``key`` values name none the actor can read, update the
    others, as :meth:`~qiao.core.records.service.RecordsService.upsert` would row by row.

    A key repeated in the batch is written in input order: its first row creates
    or updates the record, the later ones update it. Refused rows are reported by
    index (:class:`RowsRefused`) and nothing of the batch is written; with
    ``skip_invalid`` they are left out and listed in ``refused`` instead: when
    the batch's creates or updates are refused as a whole (by a hook, a rule or
    a unique value) they are tried again one by one, each in a savepoint, so
    one bad row costs only itself.
    """
    field = external_key(service.catalog.entity(entity_name), key)
    rounds, refused = key_rounds(key, [_stored(field, row.get(key)) for row in rows])
    if refused and not skip_invalid:
        raise RowsRefused(refused, len(rows))
    batch = _Batch(service, ctx, entity_name, key, rows, skip_invalid, Upserted(refused=refused))
    with nullcontext() if skip_invalid else ctx.connection.begin_nested():
        for positions in rounds:
            batch.write(positions)
    return batch.outcome()


def key_rounds(key: str, stored_keys: Sequence[Any]) -> tuple[list[list[int]], list[RowError]]:
    """Row positions grouped so that no key is written twice in one group, in input
    order, and the rows refused for their key.

    ``stored_keys`` holds each row's key in stored form, the ValueError turning
    it into one raised, or None when the row has none. A key met again goes to
    the next group, written after the row before it.
    """
    rounds: list[list[int]] = []
    refused: list[RowError] = []
    times: dict[Any, int] = {}
    for index, stored in enumerate(stored_keys):
        if isinstance(stored, ValueError):
            refused.append(RowError(index, BadUserInput(f"{key}: {stored}", field=key)))
            continue
        if stored in (None, ""):
            message = f"{key} is required to find the record by"
            refused.append(RowError(index, BadUserInput(message, field=key)))
            continue
        met = times.get(stored, 0)
        times[stored] = met + 1
        if met == len(rounds):
            rounds.append([])
        rounds[met].append(index)
    return rounds, refused


def _stored(field: FieldDef, value: Any) -> Any:
    """``value`` as ``field`` stores it, or the ValueError saying why it cannot be."""
    try:
        return coerce_for_query(field, value)
    except ValueError as error:
        return error


@dataclass
class _Batch:
    """One upsert batch being written, and what it has written and refused so far."""

    service: RecordsService
    ctx: WriteContext
    entity: str
    key: str
    rows: Sequence[Mapping[str, Any]]
    skip_invalid: bool
    done: Upserted

    def write(self, positions: Sequence[int]) -> None:
        """Update the rows at ``positions`` that name a record, then create the rest."""
        service, ctx = self.service, self.ctx
        keys = [self.rows[i][self.key] for i in positions]
        found = service.ids_by_unique(ctx.connection, self.entity, self.key, keys, actor=ctx.actor)
        fresh: list[int] = []
        known: list[tuple[int, str, dict[str, Any]]] = []
        for index in positions:
            values = self.rows[index]
            record_id = found.ids.get(values[self.key])
            if record_id is None:
                fresh.append(index)
            else:
                changes = {k: v for k, v in values.items() if k != self.key}
                known.append((index, record_id, changes))
        if known:
            writes = [(record_id, changes) for _, record_id, changes in known]
            unchanged = service.unchanged(ctx, self.entity, writes)
            for (index, _, _), same in zip(known, unchanged, strict=True):
                if same is not None:
                    self._written(index, same, created=False)
            changing = [row for row, same in zip(known, unchanged, strict=True) if same is None]
            updates = [(record_id, changes) for _, record_id, changes in changing]
            self._together(
                [index for index, _, _ in changing],
                partial(service.update_many, ctx, self.entity, updates),
                [partial(service.update, ctx, self.entity, *update) for update in updates],
                creates=False,
            )
        self._together(
            fresh,
            partial(service.create_many, ctx, self.entity, [self.rows[i] for i in fresh]),
            [partial(service.create, ctx, self.entity, self.rows[i]) for i in fresh],
            creates=True,
        )

    def outcome(self) -> Upserted:
        """What was written and refused, each in input order."""
        done = self.done
        order = sorted(range(len(done.indexes)), key=done.indexes.__getitem__)
        return Upserted(
            records=[done.records[i] for i in order],
            indexes=[done.indexes[i] for i in order],
            created=done.created,
            refused=sorted(done.refused, key=lambda r: r.index),
        )

    def _together(
        self,
        positions: list[int],
        many: Callable[..., Created],
        singles: Sequence[Callable[[], dict[str, Any]]],
        *,
        creates: bool,
    ) -> None:
        """Write the rows at ``positions`` with one batch call (``many``); when the batch is
        refused as a whole and refused rows are skipped, each row alone (``singles``)."""
        if not positions:
            return
        try:
            with self._savepoint():
                written = many(skip_invalid=self.skip_invalid)
        except RowsRefused as refusal:
            if not self.skip_invalid:
                moved = [RowError(positions[r.index], r.error) for r in refusal.rows]
                raise RowsRefused(moved, len(self.rows)) from refusal
        except QiaoError:
            if not self.skip_invalid:
                raise
        else:
            self.done.refused += [RowError(positions[r.index], r.error) for r in written.refused]
            for record, index in zip(written.records, written.indexes, strict=True):
                self._written(positions[index], record, created=creates)
            return
        for index, single in zip(positions, singles, strict=True):
            self._one(index, single, creates)

    def _one(self, index: int, write: Callable[[], dict[str, Any]], creates: bool) -> None:
        try:
            with self._savepoint():
                record = write()
        except QiaoError as error:
            if not self.skip_invalid:
                raise RowsRefused([RowError(index, error)], len(self.rows)) from error
            self.done.refused.append(RowError(index, error))
            return
        self._written(index, record, created=creates)

    def _written(self, index: int, record: dict[str, Any], *, created: bool) -> None:
        self.done.records.append(record)
        self.done.indexes.append(index)
        if created:
            self.done.created.add(index)

    def _savepoint(self) -> AbstractContextManager[Any]:
        """A savepoint for one write when refused rows are skipped; otherwise none, as the
        batch's own savepoint undoes everything."""
        return self.ctx.connection.begin_nested() if self.skip_invalid else nullcontext()
