"""The markers of Qiao's hooks: ``@hookspec`` declares a hook, ``@hookimpl`` implements one.

They are pluggy's markers for the ``qiao`` project, plus the entity subscription
of the write hooks. They sit at the bottom of the core, apart from the hook
specifications (:mod:`qiao.core.hookspecs`), so that any package can be a
plugin: the events package's outbox writer implements a write hook, while the
specifications name the event model in their signatures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar, overload

import pluggy

PROJECT = "qiao"
hookspec = pluggy.HookspecMarker(PROJECT)
#: The attribute ``hookimpl(entities=...)`` sets on an implementation.
ENTITIES_ATTRIBUTE = "qiao_entities"
#: The attribute ``hookimpl(applies=...)`` sets on an implementation.
APPLIES_ATTRIBUTE = "qiao_applies"
#: What ``applies=`` is given: ``(context, entity, operation)`` -> whether a batch of those
#: writes has anything for the per-record hook to do.
Applies = Callable[[Any, Any, str], bool]
_F = TypeVar("_F", bound=Callable[..., object])


class HookimplMarker:
    """pluggy's implementation marker, plus the entity subscription of the write hooks.

    ``@hookimpl`` and ``@hookimpl(tryfirst=True, wrapper=True, ...)`` mean what
    they mean in pluggy. ``@hookimpl(entities=["lead", "account"])`` on a
    record write hook asks to be called for writes of those entities only, so
    a plugin does not test ``entity.name`` on every write of every entity. The
    subscription is per plugin and hook: a plugin with several implementations
    of one hook is called when any of them subscribes to the entity.

    ``@hookimpl(applies=check)`` on a per-record write hook says, once per batch,
    whether the batch has anything for it: ``create_many`` and ``update_many``
    call a plugin that implements only the per-record hook once a row, and skip
    it for a batch ``check(context, entity, operation)`` answers False for, so a plugin that
    acts on few entities (those with numbering, say) is not asked row by row.
    The hook itself still decides row by row, and single writes call it as
    always.
    """

    def __init__(self, project: str) -> None:
        self._mark = pluggy.HookimplMarker(project)

    @overload
    def __call__(self, function: _F) -> _F: ...

    @overload
    def __call__(
        self,
        function: None = None,
        *,
        entities: Iterable[str] | None = None,
        applies: Applies | None = None,
        **options: Any,
    ) -> Callable[[_F], _F]: ...

    def __call__(
        self,
        function: _F | None = None,
        *,
        entities: Iterable[str] | None = None,
        applies: Applies | None = None,
        **options: Any,
    ) -> _F | Callable[[_F], _F]:
        def mark(fn: _F) -> _F:
            if entities is not None:
                names = frozenset([entities] if isinstance(entities, str) else entities)
                setattr(fn, ENTITIES_ATTRIBUTE, names)
            if applies is not None:
                setattr(fn, APPLIES_ATTRIBUTE, applies)
            marked: _F = self._mark(fn, **options)
            return marked

        return mark if function is None else mark(function)


hookimpl = HookimplMarker(PROJECT)
