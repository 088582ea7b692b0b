"""The release: what `pip install streamwatch` gets, checked as a user would get it.

The sdist and the wheel are built (`python -m build --no-isolation`, hatchling from this venv) from a snapshot of
git's files, committed or not, ignored ones left out, so nothing is written into the work tree and caches lying in
it never reach a release. Then: `twine check --strict` accepts both (README.md renders as the long description);
each holds what it must; the wheel installs in a fresh virtualenv with the base dependencies only (from the index,
pinned by constraints.txt), where `streamwatch --version` runs and the SDK publishes a prediction to the session's
broker, read back here and validated; and CHANGELOG.md has an entry for the version, in Keep a Changelog's format,
whose compatibility line states the formats the code writes. `make release-check` builds and checks `dist/` the
same way.
"""

from __future__ import annotations

import email.parser
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import confluent_kafka
import jsonschema
import numpy as np
import orjson
import pytest

import streamwatch
from streamwatch.config.settings import Settings
from streamwatch.contract.events import PredictionEvent, parse_event
from streamwatch.contract.limits import SCHEMA_VERSIONS
from streamwatch.pipeline.state import FORMAT_VERSION
from streamwatch.profiles.model import PROFILE_VERSION

ROOT = Path(__file__).resolve().parent.parent
VERSION = streamwatch.__version__
SDIST = f"streamwatch-{VERSION}.tar.gz"
WHEEL = f"streamwatch-{VERSION}-py3-none-any.whl"
DIST_INFO = f"streamwatch-{VERSION}.dist-info"


def run(args: list[str | Path], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure, fail the test with its output."""
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, check=False, **kwargs)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(map(str, args))} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def snapshot(dest: Path) -> Path:
    """Copy git's files of the work tree (tracked and untracked, less the ignored ones) to ``dest``."""
    listed = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT).stdout
    for name in sorted(set(filter(None, listed.split("\0")))):
        source = ROOT / name
        if not source.is_file():  # deleted but not yet committed
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    return dest


@dataclass(frozen=True)
class Release:
    tree: Path  # the snapshot built from
    dist: Path
    sdist: Path
    wheel: Path


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Release:
    work = tmp_path_factory.mktemp("release")
    tree = snapshot(work / "tree")
    dist = work / "dist"
    run([sys.executable, "-m", "build", "--sdist", "--wheel", "--no-isolation", "--outdir", dist, tree])
    return Release(tree=tree, dist=dist, sdist=dist / SDIST, wheel=dist / WHEEL)


def test_build_makes_an_sdist_and_a_wheel_named_for_the_version(release: Release) -> None:
    assert sorted(p.name for p in release.dist.iterdir()) == sorted([SDIST, WHEEL])


def test_twine_check_strict_accepts_both(release: Release) -> None:
    checked = run([sys.executable, "-m", "twine", "check", "--strict", release.sdist, release.wheel])
    assert checked.stdout.count("PASSED") == 2, checked.stdout


def test_the_wheel_holds_the_package_and_its_sql_and_nothing_else(release: Release) -> None:
    with zipfile.ZipFile(release.wheel) as wheel:
        names = set(wheel.namelist())
        sql = {name: wheel.read(name) for name in names if name.startswith("streamwatch/sql/")}
    assert {name.split("/")[0] for name in names} == {"streamwatch", DIST_INFO}  # no tests/, bench/, schemas/...
    assert not [name for name in names if "/tests/" in name or "/bench/" in name]
    # Every file of schemas/clickhouse, as it is: migrate() reads them from streamwatch/sql.
    schema = release.tree / "schemas" / "clickhouse"
    assert sql == {f"streamwatch/sql/{p.name}": p.read_bytes() for p in schema.iterdir()}
    assert any(name.endswith(".sql") for name in sql)
    assert "streamwatch/py.typed" in names  # the package is typed (PEP 561)
    modules = {p.relative_to(release.tree / "src").as_posix() for p in (release.tree / "src").rglob("*.py")}
    assert modules <= names


def test_the_sdist_holds_what_a_build_from_it_needs(release: Release) -> None:
    top = f"streamwatch-{VERSION}/"
    with tarfile.open(release.sdist) as sdist:
        names = {member.name.removeprefix(top) for member in sdist.getmembers() if member.isfile()}
    needed = {"PKG-INFO", "pyproject.toml", "README.md", "CHANGELOG.md", "constraints.txt"}
    for folder in ("src", "schemas/clickhouse"):
        needed |= {p.relative_to(release.tree).as_posix() for p in (release.tree / folder).rglob("*") if p.is_file()}
    assert needed - names == set()


def test_the_metadata_states_the_version_and_a_markdown_readme(release: Release) -> None:
    with zipfile.ZipFile(release.wheel) as wheel:
        metadata = email.parser.Parser().parsestr(wheel.read(f"{DIST_INFO}/METADATA").decode())
    assert metadata["Name"] == "streamwatch"
    assert metadata["Version"] == VERSION
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert metadata.get_payload().strip() == (release.tree / "README.md").read_text().strip()


# The SDK as an inference service runs it, in the clean virtualenv: one prediction published, and what the install
# holds reported as JSON on stdout.
SDK_CALL = """
import dataclasses, importlib.util, json, sys
import streamwatch
from streamwatch import ContractError, Producer, load_settings

bootstrap, topic = sys.argv[1:3]
settings = load_settings(kafka={"bootstrap_servers": bootstrap}, topics={"predictions": topic})
with Producer(settings=settings, model="credit-risk", model_version="3.1.0", strict=True) as monitor:
    request_id = monitor.log_prediction(
        request_id=streamwatch.new_request_id(),
        features={"age": 42, "income": 1234.5, "region": "north", "flag": True, "missing": None},
        prediction=1, score=0.8, latency_ms=12.5, segments={"gender": "F"}, variant="canary",
        embeddings={"purpose": [0.25, -0.5, 1.0]},
    )
    try:
        monitor.log_prediction(features={"age": [1]}, prediction=1, latency_ms=1.0)
        refused = None
    except ContractError as exc:
        refused = str(exc)
print(json.dumps({
    "version": streamwatch.__version__,
    "file": streamwatch.__file__,
    "request_id": request_id,
    "refused": refused,
    "stats": dataclasses.asdict(monitor.stats()),
    "heavy": [m for m in ("numpy", "scipy", "pyarrow", "river", "faust", "chdb") if importlib.util.find_spec(m)],
}))
"""


def read_back(bootstrap_servers: str, topic: str, timeout: float = 30.0) -> list[confluent_kafka.Message]:
    """Every message of ``topic`` from its beginning: until one arrived, then a second more for any other."""
    consumer = confluent_kafka.Consumer(
        {"bootstrap.servers": bootstrap_servers, "group.id": f"release-{time.time_ns()}", "enable.auto.commit": False}
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign(
            [confluent_kafka.TopicPartition(topic, p, confluent_kafka.OFFSET_BEGINNING) for p in partitions]
        )
        got: list[confluent_kafka.Message] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in consumer.consume(100, timeout=0.2):
                assert message.error() is None, message.error()
                got.append(message)
            if got:
                deadline = min(deadline, time.monotonic() + 1.0)
        return got
    finally:
        consumer.close()


@pytest.mark.timeout(600)  # installs the base dependencies from the index: ~20-60 s
def test_the_wheel_installs_alone_and_its_cli_and_sdk_run(release: Release, settings: Settings, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    # The environment of a user's shell: none of this venv's or this checkout's paths.
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    run([sys.executable, "-m", "venv", venv], env=env)
    assert "include-system-site-packages = false" in (venv / "pyvenv.cfg").read_text()
    python = venv / "bin" / "python"
    # The base dependencies only (no extras), pinned, from binary wheels (as scripts/check_pythons.sh installs).
    pins = release.tree / "constraints.txt"
    install = [python, "-m", "pip", "install", "--progress-bar", "off", "--only-binary=:all:", "-c", pins]
    run([*install, release.wheel], env=env, cwd=tmp_path)
    run([python, "-m", "pip", "check"], env=env, cwd=tmp_path)

    version = run([venv / "bin" / "streamwatch", "--version"], env=env, cwd=tmp_path)
    assert version.stdout.strip() == f"streamwatch {VERSION}"

    script = tmp_path / "sdk_call.py"
    script.write_text(SDK_CALL)
    bootstrap, topic = settings.kafka.bootstrap_servers, settings.topics.predictions
    # -I: neither the working directory nor PYTHON* variables on the path: streamwatch is the wheel's.
    called = run([python, "-I", script, bootstrap, topic], env=env, cwd=tmp_path)
    result = json.loads(called.stdout.splitlines()[-1])
    assert result["version"] == VERSION
    assert Path(result["file"]).is_relative_to(venv)
    assert result["heavy"] == []  # the SDK stays light: no worker dependency came along
    assert result["refused"] and "features.age" in result["refused"]
    stats = result["stats"]
    assert (stats["logged"], stats["queued"], stats["delivered"], stats["in_flight"]) == (1, 1, 1, 0), stats

    messages = read_back(bootstrap, topic)
    assert len(messages) == 1
    raw = messages[0].value()
    schema = json.loads((release.tree / "schemas" / "input-event.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(orjson.loads(raw))
    event = parse_event(raw)
    assert isinstance(event, PredictionEvent)
    assert messages[0].key() == event.request_id.encode() == result["request_id"].encode()
    assert (event.model, event.model_version, event.variant) == ("credit-risk", "3.1.0", "canary")
    assert (event.prediction, event.score, event.latency_ms) == (1, 0.8, 12.5)
    assert dict(event.features) == {"age": 42, "income": 1234.5, "region": "north", "flag": True, "missing": None}
    assert dict(event.segments) == {"gender": "F"}
    assert event.schema_version == 2 and event.embeddings is not None  # embeddings need contract version 2
    assert np.array_equal(np.float32(event.embeddings["purpose"]), np.float32([0.25, -0.5, 1.0]))


# CHANGELOG.md, in Keep a Changelog 1.1.0's format (https://keepachangelog.com/en/1.1.0/).
CHANGELOG = ROOT / "CHANGELOG.md"
SEMVER = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*)?"
)
RELEASE_HEADING = re.compile(rf"## \[(?P<version>{SEMVER.pattern})\] - (?P<date>\d{{4}}-\d{{2}}-\d{{2}})")
KINDS = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


@dataclass(frozen=True)
class Section:
    heading: str
    version: str | None  # None for [Unreleased]
    day: date | None
    body: str


def sections() -> list[Section]:
    """The changelog's ``## `` sections in order; fails on a heading that is neither [Unreleased] nor a release."""
    found: list[Section] = []
    for chunk in re.split(r"^(?=## )", CHANGELOG.read_text(), flags=re.MULTILINE)[1:]:
        heading, _, body = chunk.partition("\n")
        if heading == "## [Unreleased]":
            found.append(Section(heading, None, None, body))
            continue
        match = RELEASE_HEADING.fullmatch(heading)
        assert match, f"CHANGELOG.md: {heading!r} is not '## [Unreleased]' or '## [X.Y.Z] - YYYY-MM-DD'"
        found.append(Section(heading, match["version"], date.fromisoformat(match["date"]), body))
    return found


def precedence(version: str) -> tuple[tuple[int, ...], int, tuple[tuple[int, int | str], ...]]:
    """Semantic versioning's order (build metadata ignored): a pre-release comes before its release."""
    match = SEMVER.fullmatch(version)
    assert match, version
    core = tuple(int(part) for part in match.groups()[:3])
    pre = match[4]
    if pre is None:
        return core, 1, ()
    return core, 0, tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split("."))


def test_the_changelog_has_an_entry_for_the_version(release: Release) -> None:
    """__version__ (the wheel's too) is the newest release in CHANGELOG.md: a version bumped without its entry fails,
    and so does an entry whose version was not bumped. Work not yet released goes under [Unreleased]."""
    with zipfile.ZipFile(release.wheel) as wheel:
        metadata = email.parser.Parser().parsestr(wheel.read(f"{DIST_INFO}/METADATA").decode())
    released = [s for s in sections() if s.version is not None]
    assert released, "CHANGELOG.md has no release"
    assert released[0].version == VERSION == metadata["Version"], (
        f"__version__ is {VERSION}; the newest release in CHANGELOG.md is {released[0].version}"
    )


def test_the_changelog_keeps_its_format() -> None:
    text = CHANGELOG.read_text()
    assert text.startswith("# Changelog\n")
    assert "https://keepachangelog.com/en/1.1.0/" in text and "https://semver.org/spec/v2.0.0.html" in text
    found = sections()
    assert found and found[0].version is None, "the first section is ## [Unreleased]"
    assert [s.version for s in found].count(None) == 1
    released = found[1:]
    versions = [s.version for s in released if s.version]
    keys = [precedence(v) for v in versions]
    assert keys == sorted(keys, reverse=True) and len(set(keys)) == len(keys), f"not newest first: {versions}"
    days = [s.day for s in released if s.day]
    assert days == sorted(days, reverse=True), "release dates go back in time down the file"
    assert all(day <= date.today() for day in days), f"a release dated after today: {days}"
    for section in found:
        kinds = re.findall(r"^### (.*)$", section.body, flags=re.MULTILINE)
        assert set(kinds) <= KINDS and len(kinds) == len(set(kinds)), f"{section.heading}: subsections {kinds}"
        assert not re.search(r"^#{1,2} |^#{4,} ", section.body, flags=re.MULTILINE), section.heading
        if section.version is not None or section.body.strip():
            assert kinds, f"{section.heading}: no ### Added/Changed/Deprecated/Removed/Fixed/Security"
            assert "schema_version" in section.body and "State format" in section.body, (
                f"{section.heading}: no compatibility line (the contract's schema_version, the state format...)"
            )


def test_the_newest_compatibility_line_states_the_formats_of_the_code() -> None:
    """The first section that states the formats ([Unreleased] when it does) states the ones the code has now, so a
    format bumped without a changelog line fails here."""
    stated = next(s for s in sections() if "State format" in s.body)
    line = " ".join(stated.body.split())
    contract = re.search(r"schema_version`? (\d+(?:(?:, | and )\d+)*)", line)
    assert contract and {int(v) for v in re.findall(r"\d+", contract[1])} == set(SCHEMA_VERSIONS), stated.heading
    state = re.search(r"State format:? (\d+)", line)
    assert state and int(state[1]) == FORMAT_VERSION, stated.heading
    profiles = re.search(r"Profiles:? format (\d+)", line)
    assert profiles and int(profiles[1]) == PROFILE_VERSION, stated.heading
    migrations = sorted(p.name[:4] for p in (ROOT / "schemas" / "clickhouse").glob("*.sql"))
    clickhouse = re.search(r"ClickHouse:? migrations? (\d{4})(?:[–-](\d{4}))?", line)
    assert clickhouse and (clickhouse[1], clickhouse[2] or clickhouse[1]) == (migrations[0], migrations[-1]), (
        stated.heading
    )
