"""A strict reader of the YAML subset technology files are written in (the simulator depends on
torch, numpy and the standard library only, so it carries its own).

Accepted: ``#`` comments; block mappings by indentation (``key: value``, or ``key:`` followed by a
more indented block); flow mappings and sequences on one line (``{value: 0.2, unit: fF/um}``,
``[1, 2]``); scalars: ``null`` / ``~``, ``true`` / ``false``, integers, decimal and exponent
floats (an exponent needs a decimal point: ``1.0e-3``, as YAML 1.1 reads it), single- or
double-quoted strings, and plain strings. Anything else (block sequences,
anchors, multi-line scalars, tabs for indentation, duplicate keys) is a :class:`YamlError` naming
the line. Every file it reads is also valid YAML with the same meaning.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["YamlError", "loads"]

_INT = re.compile(r"^[-+]?[0-9]+$")
_FLOW_KEY = re.compile(r"([^:{}\[\],]+?):(?=\s)")
_FLOAT = re.compile(r"^[-+]?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)([eE][-+]?[0-9]+)?$")


class YamlError(ValueError):
    """A technology file that is not in the accepted subset (with its line number)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


def loads(text: str) -> dict[str, Any]:
    """The mapping a document of the subset holds (an empty document is ``{}``)."""
    lines = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise YamlError(number, "tabs are not accepted for indentation; use spaces")
        content = _strip_comment(raw, number).rstrip()
        if content.strip() in ("", "---"):
            continue
        lines.append((number, len(content) - len(content.lstrip(" ")), content.strip()))
    if not lines:
        return {}
    value, end = _block(lines, 0, lines[0][1])
    if end != len(lines):
        number = lines[end][0]
        raise YamlError(number, "unexpected indentation")
    return value


def _block(lines: list[tuple[int, int, str]], start: int, indent: int) -> tuple[dict[str, Any], int]:
    out: dict[str, Any] = {}
    i = start
    while i < len(lines):
        number, ind, text = lines[i]
        if ind < indent:
            break
        if ind > indent:
            raise YamlError(number, "unexpected indentation")
        if text.startswith("- ") or text == "-":
            raise YamlError(number, "block sequences are not accepted; write [a, b] on one line")
        key, rest = _split_key(text, number)
        if key in out:
            raise YamlError(number, f"duplicate key {key!r}")
        if rest == "":
            if i + 1 < len(lines) and lines[i + 1][1] > indent:
                out[key], i = _block(lines, i + 1, lines[i + 1][1])
                continue
            out[key] = None
        else:
            out[key] = _value(rest, number)
        i += 1
    return out, i


def _split_key(text: str, number: int) -> tuple[str, str]:
    if text[0] in "'\"":
        key, pos = _quoted(text, 0, number)
        rest = text[pos:].lstrip()
        if not rest.startswith(":"):
            raise YamlError(number, "expected ':' after the key")
        return key, rest[1:].strip()
    match = re.match(r"^([^:{}\[\],#]+?):(\s+|$)", text)
    if not match:
        raise YamlError(number, f"expected 'key: value', got {text!r}")
    return match.group(1).strip(), text[match.end():].strip()


def _value(text: str, number: int) -> Any:
    if text[0] in "{[":
        value, pos = _flow(text, 0, number)
        if text[pos:].strip():
            raise YamlError(number, f"unexpected text after the closing bracket: {text[pos:].strip()!r}")
        return value
    if text[0] in "'\"":
        value, pos = _quoted(text, 0, number)
        if text[pos:].strip():
            raise YamlError(number, f"unexpected text after the quoted string: {text[pos:].strip()!r}")
        return value
    if text[0] in "&*!|>%@`":
        raise YamlError(number, f"{text[0]!r} (anchors, tags, block scalars) is not accepted")
    return _scalar(text, number)


def _flow(text: str, pos: int, number: int) -> tuple[Any, int]:
    opening = text[pos]
    closing = "}" if opening == "{" else "]"
    items: Any = {} if opening == "{" else []
    pos += 1
    while True:
        pos = _skip(text, pos)
        if pos >= len(text):
            raise YamlError(number, f"missing {closing!r} (flow collections stay on one line)")
        if text[pos] == closing:
            return items, pos + 1
        if opening == "{":
            if text[pos] in "'\"":
                key, pos = _quoted(text, pos, number)
            else:
                match = _FLOW_KEY.match(text, pos)
                if not match:
                    raise YamlError(number, f"expected 'key: value' in a flow mapping at {text[pos:]!r}")
                key, pos = match.group(1).strip(), match.end(1)
            pos = _skip(text, pos)
            if pos >= len(text) or text[pos] != ":":
                raise YamlError(number, "expected ':' in a flow mapping")
            value, pos = _flow_item(text, _skip(text, pos + 1), number, closing)
            if key in items:
                raise YamlError(number, f"duplicate key {key!r}")
            items[key] = value
        else:
            value, pos = _flow_item(text, pos, number, closing)
            items.append(value)
        pos = _skip(text, pos)
        if pos < len(text) and text[pos] == ",":
            pos += 1
        elif pos < len(text) and text[pos] != closing:
            raise YamlError(number, f"expected ',' or {closing!r} at {text[pos:]!r}")


def _flow_item(text: str, pos: int, number: int, closing: str) -> tuple[Any, int]:
    if pos >= len(text):
        raise YamlError(number, f"missing {closing!r}")
    if text[pos] in "{[":
        return _flow(text, pos, number)
    if text[pos] in "'\"":
        return _quoted(text, pos, number)
    end = pos
    while end < len(text) and text[end] not in ",]}":
        end += 1
    raw = text[pos:end].strip()
    if not raw:
        raise YamlError(number, "empty value in a flow collection")
    return _scalar(raw, number), end


def _quoted(text: str, pos: int, number: int) -> tuple[str, int]:
    quote = text[pos]
    out = []
    i = pos + 1
    while i < len(text):
        ch = text[i]
        if quote == "'" and ch == "'":
            if i + 1 < len(text) and text[i + 1] == "'":
                out.append("'")
                i += 2
                continue
            return "".join(out), i + 1
        if quote == '"' and ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            out.append({"n": "\n", "t": "\t", '"': '"', "\\": "\\"}.get(nxt, "\\" + nxt))
            i += 2
            continue
        if quote == '"' and ch == '"':
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise YamlError(number, "unterminated quoted string (strings stay on one line)")


def _skip(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] == " ":
        pos += 1
    return pos


def _scalar(raw: str, number: int) -> Any:
    if raw in ("null", "~", "Null", "NULL"):
        return None
    if raw in ("true", "True", "TRUE"):
        return True
    if raw in ("false", "False", "FALSE"):
        return False
    if raw.lower() in (".inf", "+.inf", "-.inf", ".nan"):  # as YAML reads them (rejected later)
        return float(raw.lower().replace(".inf", "inf").replace(".nan", "nan"))
    if _INT.match(raw):
        return int(raw)
    if _FLOAT.match(raw):
        if "." not in raw and ("e" in raw or "E" in raw):
            # YAML 1.1 readers (PyYAML) take 1e-3 for a string: insist on the unambiguous form.
            raise YamlError(number, f"write the number {raw!r} with a decimal point (e.g. 1.0e-3)")
        return float(raw)
    return raw


def _strip_comment(raw: str, number: int) -> str:
    quote = None
    for i, ch in enumerate(raw):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"" and raw[:i].rstrip()[-1:] in ("", ":", "{", "[", ","):
            quote = ch  # a quote opens a string only where a value or key starts
        elif ch == "#" and (i == 0 or raw[i - 1] in " \t"):
            return raw[:i]
    return raw
