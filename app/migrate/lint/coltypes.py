"""Column types as the linter sees them, and when changing one copies a MySQL/MariaDB table.

The cases follow MariaDB's InnoDB rules for ALGORITHM=INSTANT/INPLACE (ROW_FORMAT=DYNAMIC, the
default): a VARCHAR may grow in place only while its length prefix keeps its size (1 byte up to
255 bytes, 2 beyond), and any other change of type or character set rewrites every row.
"""

import re
from dataclasses import dataclass

# Bytes per character of each character set: utf8mb4 needs 4, so VARCHAR(64) is 256 bytes.
BYTES_PER_CHAR = {"utf8mb4": 4, "utf8mb3": 3, "utf8": 3, "ucs2": 2, "latin1": 1, "ascii": 1}
DEFAULT_CHARSET = "utf8mb4"  # the project's tables; the safest assumption when unsaid
ONE_BYTE_PREFIX_MAX = 255
INT_BYTES = {"tinyint": 1, "smallint": 2, "mediumint": 3, "int": 4, "integer": 4, "bigint": 8}
TEXT_BYTES = {"tinytext": 255, "text": 65_535, "mediumtext": 16_777_215, "longtext": 2**32 - 1}
STRING_FAMILIES = ("varchar", "char", "varbinary", "binary")


@dataclass(frozen=True)
class ColumnType:
    family: str  # varchar, char, varbinary, binary, int, text, other:<name>
    size: int | None = None  # characters for strings, bytes for ints and texts
    charset: str | None = None  # None: the table's (assumed utf8mb4)

    def __str__(self) -> str:
        size = f"({self.size})" if self.size is not None else ""
        charset = f" {self.charset}" if self.charset else ""
        return f"{self.family.removeprefix('other:').upper()}{size}{charset}"

    def max_bytes(self) -> int | None:
        if self.size is None:
            return None
        if self.family in ("varbinary", "binary"):
            return self.size
        if self.family in ("varchar", "char"):
            return self.size * BYTES_PER_CHAR.get(self.charset or DEFAULT_CHARSET, 4)
        return self.size


SQL_TYPE = re.compile(
    r"^\s*(?P<name>[a-z]+)\s*(?:\(\s*(?P<size>\d+)[^)]*\))?"
    r"(?:.*?\b(?:CHARACTER\s+SET|CHARSET)\s*=?\s*(?P<charset>\w+))?",
    re.IGNORECASE | re.DOTALL,
)


def from_sql(text: str) -> ColumnType | None:
    """The type at the start of a column definition such as `VARCHAR(12) NULL`."""
    found = SQL_TYPE.match(text)
    if not found:
        return None
    return from_name(found["name"], found["size"], found["charset"])


def from_name(name: str, size: str | int | None, charset: str | None = None) -> ColumnType:
    lowered = name.lower()
    charset = charset.lower() if charset else None
    number = int(size) if size is not None else None
    aliases = {"string": "varchar", "unicode": "varchar", "nvarchar": "varchar", "nchar": "char"}
    lowered = aliases.get(lowered, lowered)
    if lowered in INT_BYTES or lowered in ("smallinteger", "biginteger", "boolean", "bool"):
        sizes = {**INT_BYTES, "smallinteger": 2, "biginteger": 8, "boolean": 1, "bool": 1}
        return ColumnType("int", sizes[lowered])
    if lowered in TEXT_BYTES or lowered == "unicodetext":
        return ColumnType("text", TEXT_BYTES.get(lowered, TEXT_BYTES["text"]), charset)
    if lowered in STRING_FAMILIES:
        return ColumnType(lowered, number, charset)
    return ColumnType(f"other:{lowered}", number, charset)


def copy_reason(old: ColumnType, new: ColumnType) -> str | None:
    """Why changing `old` into `new` copies the table on MySQL/MariaDB; None if it does not."""
    if old == new:
        return None
    if old.charset != new.charset and old.family != "int":
        before, after = old.charset or DEFAULT_CHARSET, new.charset or DEFAULT_CHARSET
        if before != after:
            return f"changes the character set from {before} to {after}: every row is rewritten"
    if old.family == new.family and old.family in ("varchar", "varbinary"):
        if old.size is None or new.size is None:
            return None
        if new.size < old.size:
            return f"narrows {old} to {new}: every row is checked and copied"
        old_bytes, new_bytes = old.max_bytes() or 0, new.max_bytes() or 0
        if old_bytes <= ONE_BYTE_PREFIX_MAX < new_bytes:
            return (
                f"grows {old} ({old_bytes} bytes) to {new} ({new_bytes} bytes) across the "
                f"{ONE_BYTE_PREFIX_MAX}-byte boundary: the length prefix grows from 1 to 2 "
                "bytes, so every row is rewritten"
            )
        return None
    if old.family == new.family == "int" and (new.size or 0) < (old.size or 0):
        return f"narrows {old} to {new}: every row is checked and copied"
    return f"changes the type from {old} to {new}: every row is rewritten"
