"""Parse and write the subset of PHP's serialize() format that WordPress meta uses.

Supported: arrays (as dicts with int or str keys), strings, ints, floats, bools and
null. Objects (``O:``, ``C:``), enums (``E:``) and references (``r:``, ``R:``) raise
PHPSerialError, so no input can make the parser build anything but plain data.
String lengths count UTF-8 bytes, as PHP does.
"""

from __future__ import annotations

import math
import re
from typing import TypeAlias

PHPValue: TypeAlias = None | bool | int | float | str | dict[int | str, "PHPValue"]

DEFAULT_MAX_DEPTH = 32

_LENGTH = re.compile(rb"[0-9]+")
_INT = re.compile(rb"[+-]?[0-9]+")
_FLOAT = re.compile(rb"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_SPECIAL_FLOATS = {b"INF": math.inf, b"-INF": -math.inf, b"NAN": math.nan}
_UNSUPPORTED_TAGS = {
    ord("O"): "object",
    ord("C"): "custom-serialized object",
    ord("E"): "enum",
    ord("r"): "reference",
    ord("R"): "reference",
}


class PHPSerialError(ValueError):
    """Invalid or unsupported serialized PHP data."""


def loads(data: bytes | str, max_depth: int = DEFAULT_MAX_DEPTH) -> PHPValue:
    """Parse one serialized PHP value, or raise PHPSerialError.

    A str is encoded as UTF-8 first, because the declared string lengths count
    bytes. Trailing bytes after the value are rejected. Arrays nested deeper than
    ``max_depth`` are rejected.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    parser = _Parser(raw, max_depth)
    value = parser.value(depth=0)
    if parser.position != len(raw):
        raise PHPSerialError(f"unexpected data at byte {parser.position}")
    return value


def dumps(value: object) -> str:
    """Serialize a value the way PHP's serialize() would.

    Lists and tuples become arrays with keys 0, 1, 2 and so on.
    """
    return "".join(_dump(value))


def _dump(value: object) -> list[str]:
    if value is None:
        return ["N;"]
    if isinstance(value, bool):
        return [f"b:{int(value)};"]
    if isinstance(value, int):
        return [f"i:{value};"]
    if isinstance(value, float):
        return [f"d:{_format_float(value)};"]
    if isinstance(value, str):
        return [f's:{len(value.encode("utf-8"))}:"{value}";']
    if isinstance(value, (list, tuple)):
        value = dict(enumerate(value))
    if isinstance(value, dict):
        return _dump_array(value)
    raise TypeError(f"cannot serialize {type(value).__name__} as PHP data")


def _dump_array(array: dict) -> list[str]:
    parts = [f"a:{len(array)}:{{"]
    for key, item in array.items():
        if isinstance(key, bool) or not isinstance(key, (int, str)):
            raise TypeError(f"PHP array keys must be int or str, not {key!r}")
        parts.extend(_dump(key))
        parts.extend(_dump(item))
    parts.append("}")
    return parts


def _format_float(value: float) -> str:
    if math.isnan(value):
        return "NAN"
    if math.isinf(value):
        return "INF" if value > 0 else "-INF"
    return repr(value)


class _Parser:
    def __init__(self, data: bytes, max_depth: int) -> None:
        self.data = data
        self.position = 0
        self.max_depth = max_depth

    def value(self, depth: int) -> PHPValue:
        tag = self._peek()
        if tag in _UNSUPPORTED_TAGS:
            kind = _UNSUPPORTED_TAGS[tag]
            raise PHPSerialError(f"{kind} at byte {self.position} is not supported")

        self.position += 1
        if tag == ord("N"):
            self._expect(b";")
            return None
        self._expect(b":")
        if tag == ord("b"):
            return self._bool()
        if tag == ord("i"):
            return int(self._token(_INT, b";"))
        if tag == ord("d"):
            return self._float()
        if tag == ord("s"):
            return self._string()
        if tag == ord("a"):
            return self._array(depth + 1)
        raise PHPSerialError(f"unknown type {chr(tag)!r} at byte {self.position - 1}")

    def _bool(self) -> bool:
        token = self._token(_INT, b";")
        if token not in (b"0", b"1"):
            raise PHPSerialError(f"invalid boolean {token!r}")
        return token == b"1"

    def _float(self) -> float:
        end = self._find(b";")
        token = self.data[self.position : end]
        if token in _SPECIAL_FLOATS:
            self.position = end + 1
            return _SPECIAL_FLOATS[token]
        return float(self._token(_FLOAT, b";"))

    def _string(self) -> str:
        length = self._length()
        self._expect(b'"')
        end = self.position + length
        if end > len(self.data):
            raise PHPSerialError(f"string of {length} bytes runs past the end")
        raw = self.data[self.position : end]
        self.position = end
        self._expect(b'";')
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise PHPSerialError(f"string is not valid UTF-8: {error}") from None

    def _array(self, depth: int) -> dict[int | str, PHPValue]:
        if depth > self.max_depth:
            raise PHPSerialError(f"arrays nested deeper than {self.max_depth}")
        count = self._length()
        self._expect(b"{")

        array: dict[int | str, PHPValue] = {}
        for _ in range(count):
            key = self.value(depth)
            if isinstance(key, bool) or not isinstance(key, (int, str)):
                raise PHPSerialError(f"array key {key!r} is not an int or string")
            array[key] = self.value(depth)

        self._expect(b"}")
        return array

    def _length(self) -> int:
        return int(self._token(_LENGTH, b":"))

    def _token(self, pattern: re.Pattern[bytes], terminator: bytes) -> bytes:
        end = self._find(terminator)
        token = self.data[self.position : end]
        if not pattern.fullmatch(token):
            raise PHPSerialError(f"invalid number {token!r} at byte {self.position}")
        self.position = end + 1
        return token

    def _find(self, terminator: bytes) -> int:
        end = self.data.find(terminator, self.position)
        if end < 0:
            raise PHPSerialError(
                f"missing {terminator.decode()!r} after byte {self.position}"
            )
        return end

    def _peek(self) -> int:
        if self.position >= len(self.data):
            raise PHPSerialError("unexpected end of data")
        return self.data[self.position]

    def _expect(self, expected: bytes) -> None:
        end = self.position + len(expected)
        if self.data[self.position : end] != expected:
            found = self.data[self.position : end]
            where = f"at byte {self.position}"
            raise PHPSerialError(
                f"expected {expected.decode()!r} {where}, found {found!r}"
            )
        self.position = end
