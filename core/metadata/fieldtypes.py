"""The kinds of value a field holds.

Apart from the declaration model so that value coercion
(:mod:`qiao.core.metadata.values`), which the model uses to check defaults and
bounds, can name them without importing the model.
"""

from enum import StrEnum

#: Decimals are stored exactly; on SQLite as a scaled 64-bit integer, hence 18 digits.
MAX_DECIMAL_PRECISION = 18


class FieldType(StrEnum):
    """The kinds of value a field holds; each maps to one SQL column type."""

    STRING = "string"
    TEXT = "text"
    INTEGER = "integer"
    DECIMAL = "decimal"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    ENUM = "enum"
    EMAIL = "email"
    PHONE = "phone"
    URL = "url"
    JSON = "json"
    RELATION = "relation"
