"""Every code block of the README and the documentation site is run or checked, so that none goes stale.

The fence's language says how (a setting after it, as pytest-examples reads them, changes that):

- ``python``: run as a script with the project's Python, from an empty directory, with a live Kafka-protocol broker
  in ``STREAMWATCH_KAFKA__BOOTSTRAP_SERVERS`` (its topics made); ``python test="typecheck"``: type-checked by mypy
  with the project's settings, for code that needs a server this suite does not run;
- ``yaml``: a streamwatch config file, loaded by ``streamwatch config check`` (``${NAME}`` references get a value);
  ``yaml test="parse"``: another tool's YAML (Kubernetes, Compose), parsed;
- ``sh``: each ``streamwatch`` command must be one the CLI has, with options it has; each ``make`` target must be
  in the Makefile; each script run with ``python`` must exist. Other programs (docker, kubectl, curl) are not run;
- ``sql``: run on the embedded ClickHouse, on streamwatch's migrated schema in the database ``streamwatch``;
- ``json``: parsed, and an event (an object with ``type`` and ``schema_version``) is checked against the contract;
- ``text``: output and pictures, not checked. A fence with no language, or another one, fails: say what it is.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from pytest_examples import find_examples

from streamwatch.adapters.localbroker import LocalKafka
from streamwatch.cli.main import app

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
CHECKED = {"python", "yaml", "sh", "sql", "json", "text"}
FENCE = re.compile(r"(^ *```)( *)([^\n]*?)\n(.*?)\n\1 *$", re.M | re.S)


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it is, its language, its settings and its text (dedented)."""

    path: Path
    line: int
    language: str
    settings: dict[str, str]
    source: str

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks() -> Iterator[Block]:
    for path in PAGES:
        text = path.read_text()
        for match in FENCE.finditer(text):
            indent, _, info, body = match.groups()
            width = len(indent) - 3
            language, _, rest = info.strip().partition(" ")
            settings = dict(re.findall(r'([\w-]+)="([^"]*)"', rest))
            source = "\n".join(line[width:] for line in body.splitlines()) + "\n"
            yield Block(path, text[: match.start()].count("\n") + 1, language.lower(), settings, source)


BLOCKS = list(blocks())


def by(language: str, test: str | None = None) -> list[Block]:
    return [b for b in BLOCKS if b.language == language and b.settings.get("test") == test]


def test_every_block_says_what_it_is_and_pytest_examples_finds_the_same_python() -> None:
    unknown = [f"{b} ```{b.language}" for b in BLOCKS if b.language not in CHECKED]
    assert not unknown, f"give each block a language this suite checks ({sorted(CHECKED)}): {unknown}"
    found = {(e.path, e.start_line) for page in PAGES for e in find_examples(page)}
    mine = {(b.path, b.line) for b in BLOCKS if b.language == "python"}
    assert mine == found


@pytest.fixture(scope="module")
def kafka() -> Iterator[str]:
    from streamwatch.adapters.kafka import create_topics
    from streamwatch.config.settings import load_settings

    with LocalKafka() as broker:
        settings = load_settings(kafka={"bootstrap_servers": broker.bootstrap_servers})
        topics = settings.topics
        create_topics(settings.kafka, [topics.predictions, topics.features, topics.labels], partitions=3)
        yield broker.bootstrap_servers


@pytest.mark.parametrize("block", by("python"), ids=str)
def test_python_runs(block: Block, kafka: str, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(block.source)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMWATCH_")}
    env["STREAMWATCH_KAFKA__BOOTSTRAP_SERVERS"] = kafka
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"{block} failed:\n{done.stdout}\n{done.stderr}"


def test_python_that_needs_a_server_type_checks(tmp_path: Path) -> None:
    examples = by("python", "typecheck")
    if not examples:
        pytest.skip("no block is only type-checked")
    files = []
    for n, block in enumerate(examples):
        path = tmp_path / f"example_{n}.py"
        path.write_text(block.source)
        files.append(str(path))
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--check-untyped-defs", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    report = done.stdout
    for n, block in enumerate(examples):
        report = report.replace(files[n], str(block))
    assert done.returncode == 0, report


def _placeholders(text: str) -> dict[str, str]:
    """A value for each ${NAME} a config refers to: a URL where the name says so, any text otherwise."""
    names = re.findall(r"\$\{([A-Z_][A-Z0-9_]*)(?::-[^}]*)?\}", text)
    return {name: "https://hooks.example.com/x" if "URL" in name else f"value-of-{name.lower()}" for name in names}


@pytest.mark.parametrize("block", by("yaml"), ids=str)
def test_yaml_is_a_config_streamwatch_loads(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    for name, value in _placeholders(block.source).items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "streamwatch.yaml"
    path.write_text(block.source)
    result = CliRunner().invoke(app, ["config", "check", "--config", str(path)])
    assert result.exit_code == 0, f"{block}: {result.output}"


@pytest.mark.parametrize("block", by("yaml", "parse"), ids=str)
def test_other_yaml_parses(block: Block) -> None:
    assert list(yaml.safe_load_all(block.source)), block


def _commands(source: str) -> Iterator[list[str]]:
    """Each simple command of a shell block: continuations joined, prompts and comments dropped."""
    for line in source.replace("\\\n", " ").splitlines():
        line = line.strip().removeprefix("$ ")
        if not line or line.startswith("#"):
            continue
        for part in re.split(r"&&|\|\||;|\|", line):
            words = shlex.split(part, comments=True)
            while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):  # VAR=value before a command
                words.pop(0)
            if words:
                yield words


def _cli_problem(words: list[str]) -> str | None:
    """Why ``streamwatch <words>`` is not a command the CLI has, or None."""
    # typer vendors click (typer._click): its groups are known by their commands, not by click.Group
    command: Any = typer.main.get_command(app)
    path = ["streamwatch"]
    while getattr(command, "commands", None) and words and not words[0].startswith("-"):
        sub = command.commands.get(words[0])
        if sub is None:
            return f"{' '.join(path)} has no command {words[0]}"
        path.append(words.pop(0))
        command = sub
    options = {name for param in command.params for name in (*param.opts, *param.secondary_opts)} | {"--help"}
    for word in words:
        if word.startswith("-") and word != "-" and word.split("=", 1)[0] not in options:
            return f"{' '.join(path)} has no option {word}"
    return None


MAKE_TARGETS = set(re.findall(r"^([\w.-]+):", (ROOT / "Makefile").read_text(), re.M))


@pytest.mark.parametrize("block", by("sh"), ids=str)
def test_shell_commands_exist(block: Block) -> None:
    for words in _commands(block.source):
        program = Path(words[0]).name
        if program == "streamwatch":
            problem = _cli_problem(words[1:])
            assert problem is None, f"{block}: {problem}"
        elif program == "make":
            targets = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
            assert set(targets) <= MAKE_TARGETS, f"{block}: no make target {set(targets) - MAKE_TARGETS}"
        elif program.startswith("python") and len(words) > 1 and words[1].endswith(".py"):
            assert (ROOT / words[1]).exists(), f"{block}: no script {words[1]}"


def test_the_shell_check_can_fail() -> None:
    assert _cli_problem(["worker", "--reference", "x.json"]) is None
    assert _cli_problem(["worker", "--referenc", "x.json"]) == "streamwatch worker has no option --referenc"
    assert _cli_problem(["silence", "add", "--bogus"]) is not None and _cli_problem(["wroker"]) is not None
    assert list(_commands("$ A=1 streamwatch init && echo ok  # why\n")) == [["streamwatch", "init"], ["echo", "ok"]]


@pytest.fixture(scope="module")
def schema(chdb_client: Any) -> Any:
    from streamwatch.adapters.clickhouse import Store

    store = Store(chdb_client, database="streamwatch")
    store.migrate(raw_ttl_days=0)
    return chdb_client


@pytest.mark.parametrize("block", by("sql"), ids=str)
def test_sql_runs_on_the_schema(block: Block, schema: Any) -> None:
    schema.query(block.source)


@pytest.mark.parametrize("block", by("json"), ids=str)
def test_json_parses_and_events_are_valid(block: Block) -> None:
    from streamwatch import parse_event

    value = json.loads(block.source)
    if isinstance(value, dict) and {"type", "schema_version"} <= set(value):
        parse_event(block.source.encode(), any_type=True)
