"""The command line: every command has --help, and user errors are one line, never a traceback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from streamwatch import __version__
from streamwatch.cli.main import app
from streamwatch.demo.scenario import DemoScenario


def run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamwatch", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def commands(group: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    if hasattr(group, "commands"):  # typer vendors click; groups have .commands
        for name, command in group.commands.items():
            found += commands(command, (*path, name))
    return found


def test_version() -> None:
    assert run("--version").stdout.strip() == f"streamwatch {__version__}"


@pytest.mark.parametrize("path", commands(typer.main.get_command(app)), ids=" ".join)
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = run(*path, "--help")
    assert result.returncode == 0 and "Usage:" in result.stdout and "Show this message" in result.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("demo", "--minutes", "many"), "'--minutes'"),
        (("demo", "--minutes", "0"), "'--minutes'"),
        (("nonsense",), "No such command 'nonsense'"),
        (("validate",), "Missing argument 'files'"),
    ],
)
def test_bad_arguments_get_one_line_naming_them(args: tuple[str, ...], words: str) -> None:
    result = run(*args)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and words in errors[0], result.stderr
    assert "Traceback" not in result.stderr


def test_bad_config_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "streamwatch.yaml"
    config.write_text(
        "rules:\n  - name: r1\n    kind: drift\n    when: {metric: psi, threshold: 0.2}\n    channels: [nowhere]\n"
    )
    result = run("config", "check", "--config", str(config))
    assert result.returncode == 2
    assert result.stderr == (
        f"streamwatch: error: invalid setting rules['r1'].channels: unknown channel 'nowhere' (in {config})"
        " (see http://localhost:8000/reference/settings/#rules.channels)\n"
    )


def test_an_error_naming_a_setting_links_to_where_the_docs_are(tmp_path: Path) -> None:
    config = tmp_path / "streamwatch.yaml"
    config.write_text("kafka: {bootstrap_server: x}\n")  # misspelt: the link goes to its section
    env = {"STREAMWATCH_ALERTING__DOCS_URL": "https://docs.example.com/streamwatch/"}
    result = run("config", "check", "--config", str(config), env=env)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.endswith("(see https://docs.example.com/streamwatch/reference/settings/#kafka)\n")


def test_config_check_hides_secrets(tmp_path: Path) -> None:
    config = tmp_path / "streamwatch.yaml"
    config.write_text(
        "kafka: {security_protocol: SASL_SSL, sasl_mechanism: PLAIN, sasl_username: u, sasl_password: topsecret}\n"
    )
    result = run("config", "check", "-c", str(config))
    assert result.returncode == 0 and "config ok" in result.stdout and "topsecret" not in result.stdout


def test_validate_reports_each_bad_line(tmp_path: Path) -> None:
    good = '{"type":"label","event_id":"e","request_id":"r","timestamp":1,"model":"m","label":1}'
    bad = '{"type":"label","event_id":"e","request_id":"r","timestamp":1,"model":"m","label":[1]}'
    events = tmp_path / "events.jsonl"
    events.write_text(f"{good}\n{bad}\n\nnot json\n")
    result = run("validate", str(events))
    assert result.returncode == 1
    assert result.stdout.strip() == "1 valid, 2 invalid"
    assert result.stderr.splitlines() == [
        f"{events}:2: label event: label: must be a number, string or boolean, not list",
        f"{events}:4: event: not valid JSON (expected ident at line 1 column 2)",
    ]
    assert run("validate", "-", stdin=good + "\n").stdout.strip() == "1 valid, 0 invalid"
    missing = run("validate", str(tmp_path / "missing.jsonl"))
    assert missing.returncode == 2 and "cannot be read" in missing.stderr and "Traceback" not in missing.stderr


def test_schemas_check_fails_when_stale(tmp_path: Path) -> None:
    assert run("schemas", "--out", str(tmp_path)).returncode == 0
    assert run("schemas", "--check", "--out", str(tmp_path)).returncode == 0
    (tmp_path / "label.schema.json").write_text("{}")
    result = run("schemas", "--check", "--out", str(tmp_path))
    assert result.returncode == 2 and "label.schema.json" in result.stderr


def test_demo_runs_the_whole_path_and_catches_every_injected_incident(tmp_path: Path) -> None:
    result = run("demo", "--minutes", "12", "--per-minute", "300", "--no-live", "--out", str(tmp_path / "demo"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "demo ok" in result.stdout and "not detected" not in result.stdout
    for caught in ("feature-drift", "embedding-drift", "slice-fpr-gap", "slo-burn"):
        assert caught in result.stdout
    summary = result.stdout[result.stdout.index("what was injected") :]
    assert "the purpose" in summary and "embedding moves" in summary  # its row in the summary, caught above
    assert "rejected: 0" in result.stdout
    assert "alerts that fired outside every incident: 0" in result.stdout
    # Performance estimated from the first minute, held by the labels until the fairness regression, when
    # gender=F's scores stop matching their risk and the labels part from the estimate.
    assert "estimated before labels" in result.stdout
    verdicts = re.findall(r"│ (\d+) +│ 0\.\d+ +│ [0-9.-]+ +│ [0-9.]* +│ (within|OUTSIDE)", result.stdout)
    fairness = next(i for i in DemoScenario(12, 300).incidents if i.kind == "fairness")
    inside = {int(minute) for minute, verdict in verdicts if verdict == "within"}
    outside = {int(minute) for minute, verdict in verdicts if verdict == "OUTSIDE"}
    assert min(inside) == 0 and inside & set(range(fairness.start))  # estimated from the first minute, and held
    assert outside and outside <= set(range(fairness.start, fairness.end + 1))  # parted at the fairness incident
    report = (tmp_path / "demo" / "report.html").read_text()
    assert "<h2>Drift per feature</h2>" in report and "slice-fpr-gap" in report


def test_a_directory_the_machine_refuses_is_one_line_naming_it(tmp_path: Path) -> None:
    # What `init` met in docker-compose (a volume it may not write): an OSError, not a StreamwatchError.
    blocker = tmp_path / "profiles"
    blocker.write_text("a file where a directory should be")  # refused even to root, unlike permissions
    result = run("traffic", "--profiles-out", str(blocker / "sub"), "--profiles-only")
    assert result.returncode == 1
    assert result.stderr.startswith("streamwatch: error: ") and str(blocker) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
