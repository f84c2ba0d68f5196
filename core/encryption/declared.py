"""Standard fields a deployment encrypts: ``[encryption] fields`` in qiao.toml.

The CRM's own personal fields (a contact's mobile, a lead's e-mail) are
declared by its manifest, which every deployment shares; whether a deployment
stores them encrypted is its own choice. ``qiao init`` writes::

    [encryption]
    fields = ["contact.mobile", "contact.phone", "contact.email", "contact.wechat",
              "lead.mobile", "lead.email", "lead_channel.secret"]

Each named field is made ``encrypted: true, searchable: exact`` (a long ``text``
field is not searchable; and none is
``indexed`` or ``unique`` any more, which ciphertext cannot be) when a process builds its
registry, so equality filters and de-duplication keep working through the
blind index. Fields of entities no enabled plugin declares are passed over (a
deployment without the leads plugin has no leads); an unknown field of a known
entity stops start-up. The file is read at every registry build: ``qiao keys
encrypt-field`` adds a field and moves the metadata version on, and every
running process takes it up at its next metadata check.

Values stored before a field was converted are read as they are (they are
plaintext, and ``qiao keys status`` counts them) until ``encrypt-field`` has
sealed them; a custom field marked ``encrypted`` refuses an unsealed value.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from pathlib import Path

from qiao.core.errors import ConfigurationError
from qiao.core.metadata.model import STRING_TYPES, EntityDef, FieldType

TABLE = "encryption"


def read_declared(path: Path | None) -> frozenset[tuple[str, str]]:
    """The ``(entity, field)`` pairs ``[encryption] fields`` of the file at ``path`` names."""
    if path is None:
        return frozenset()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"{path}: {exc}") from None
    table = data.get(TABLE, {})
    names = table.get("fields", []) if isinstance(table, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigurationError(f'{path}: [{TABLE}] fields must be a list of "entity.field" names')
    return frozenset(parse_name(n, str(path)) for n in names)


def parse_name(name: str, where: str = "") -> tuple[str, str]:
    """``"contact.mobile"`` -> ``("contact", "mobile")``; anything else is refused."""
    entity, dot, field = name.partition(".")
    if not (entity and dot and field) or "." in field:
        prefix = f"{where}: " if where else ""
        raise ConfigurationError(f'{prefix}{name!r} is not an "entity.field" name')
    return entity, field


def apply_declared(
    entities: Iterable[EntityDef], declared: frozenset[tuple[str, str]]
) -> list[EntityDef]:
    """``entities`` with every declared field encrypted and searchable by exact value."""
    out = list(entities)
    if not declared:
        return out
    by_name = {e.name: i for i, e in enumerate(out)}
    for entity_name, field_name in sorted(declared):
        index = by_name.get(entity_name)
        if index is None:
            continue  # an entity of a plugin this deployment does not enable
        entity = out[index]
        field = entity.field(field_name)
        if field is None:
            raise ConfigurationError(
                f"[{TABLE}] fields names {entity_name}.{field_name}, but {entity_name} has "
                f"no field {field_name!r}"
            )
        if field.type not in STRING_TYPES or field.computed:
            raise ConfigurationError(
                f"[{TABLE}] fields: {entity_name}.{field_name} is a {field.type.value} field; "
                "only stored string, text, email, phone and url fields can be encrypted"
            )
        if field.encrypted:
            continue
        searchable = None if field.type is FieldType.TEXT else "exact"
        sealed = field.model_copy(
            update={"encrypted": True, "searchable": searchable, "indexed": False, "unique": False}
        )
        fields = tuple(sealed if f.name == field_name else f for f in entity.fields)
        out[index] = entity.model_copy(update={"fields": fields}).revalidated()
    return out
