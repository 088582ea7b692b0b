"""docker-compose.yml against the Compose Specification's schema and against what its images document.

No Docker engine runs here, so what the engine would refuse (the schema) and what an image would silently ignore
(a misspelled variable, a volume where the image keeps nothing, a healthcheck whose tool is not installed) are
checked against facts read in each image's upstream sources, each cited where it is stated. Every check is also
shown to reject a mutated copy of the file.
"""

from __future__ import annotations

import copy
import importlib.resources
import json
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any
from xml.etree import ElementTree

import pytest
import yaml
from jsonschema import validators  # type: ignore[import-untyped]  # no stubs installed (types-jsonschema)

ROOT = Path(__file__).parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
COMPOSE = yaml.safe_load(COMPOSE_FILE.read_text())

Compose = dict[str, Any]

# --------------------------------------------------------------------------------------------------------------------
# 1. The Compose Specification's JSON Schema, as check-jsonschema vendors it
# --------------------------------------------------------------------------------------------------------------------


def _compose_schema() -> dict[str, Any]:
    vendored = importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema: dict[str, Any] = json.loads(vendored.read_text())
    return schema


def _validator_class(schema: dict[str, Any]) -> Any:
    # The vendored copy names its dialect as https://json-schema.org/draft-07/schema, which jsonschema knows only
    # as http://json-schema.org/draft-07/schema# (unknown, it would fall back to the newest dialect).
    dialect = schema["$schema"].replace("https://", "http://").rstrip("#") + "#"
    return validators.validator_for({"$schema": dialect}, default=None)


def compose_schema_errors(compose: Compose) -> list[str]:
    schema = _compose_schema()
    validator_class = _validator_class(schema)
    assert validator_class is not None, f"no validator for $schema {schema.get('$schema')}"
    validator_class.check_schema(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    return [
        f"/{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in sorted(validator.iter_errors(compose), key=lambda error: list(map(str, error.absolute_path)))
    ]


def test_the_compose_file_is_valid_under_the_compose_specification() -> None:
    schema = _compose_schema()
    assert schema["$schema"] == "https://json-schema.org/draft-07/schema"  # the vendored copy's dialect
    assert _validator_class(schema) is validators.Draft7Validator
    assert compose_schema_errors(COMPOSE) == []


def test_the_schema_rejects_a_bogus_dependency_condition_and_an_unknown_top_level_key() -> None:
    bogus = copy.deepcopy(COMPOSE)
    bogus["services"]["grafana"]["depends_on"] = {"clickhouse": {"condition": "bogus"}}
    assert any(error.startswith("/services/grafana/depends_on:") for error in compose_schema_errors(bogus))
    misspelled = copy.deepcopy(COMPOSE)
    misspelled["servics"] = misspelled.pop("services")
    assert any("'servics'" in error for error in compose_schema_errors(misspelled))


def _run_check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    cli = Path(sys.executable).parent / "check-jsonschema"
    return subprocess.run(
        [str(cli), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_check_jsonschema_cli_accepts_the_file_and_rejects_a_mutated_copy(tmp_path: Path) -> None:
    done = _run_check_jsonschema(COMPOSE_FILE)
    assert done.returncode == 0, done.stdout + done.stderr
    bogus = copy.deepcopy(COMPOSE)
    bogus["services"]["grafana"]["depends_on"] = {"clickhouse": {"condition": "bogus"}}
    (tmp_path / "docker-compose.yml").write_text(yaml.safe_dump(bogus))
    done = _run_check_jsonschema(tmp_path / "docker-compose.yml")
    assert done.returncode == 1, done.stdout + done.stderr


# --------------------------------------------------------------------------------------------------------------------
# 2. What the images document. Each fact names where it was read; facts that could not be confirmed are left out.
# --------------------------------------------------------------------------------------------------------------------

KAFKA = "apache/kafka:3.9.1"
CLICKHOUSE = "clickhouse/clickhouse-server:25.3"
GRAFANA = "grafana/grafana:11.6.0"
ALERTMANAGER = "prom/alertmanager:v0.28.1"
STREAMWATCH = "streamwatch:local"  # built from ./Dockerfile (FROM python:3.11.11-slim-bookworm)

# Read in apache/kafka's branch 3.9 (commit c821449, October 2024; its docker/ and KafkaDockerWrapper.scala are the
# same as at tag 3.9.0-rc3). The 3.9.1 tag itself was not in the snapshot read.
#
# core/src/main/scala/kafka/docker/KafkaDockerWrapper.scala, getServerConfigsFromEnv: every variable starting with
# KAFKA_ that is not in Constants.ExcludeServerPropsEnv becomes a line of server.properties: "KAFKA_" removed,
# lower-cased, "_" -> ".", then "..." -> "-" and ".." -> "_". An unknown property is written there and ignored.
KAFKA_NOT_PROPERTIES = frozenset(
    {
        # Constants.ExcludeServerPropsEnv (same file): JVM, log4j and launch-script settings.
        "KAFKA_VERSION",
        "KAFKA_HEAP_OPTS",
        "KAFKA_LOG4J_OPTS",
        "KAFKA_OPTS",
        "KAFKA_JMX_OPTS",
        "KAFKA_JVM_PERFORMANCE_OPTS",
        "KAFKA_GC_LOG_OPTS",
        "KAFKA_LOG4J_ROOT_LOGLEVEL",
        "KAFKA_LOG4J_LOGGERS",
        "KAFKA_TOOLS_LOG4J_LOGLEVEL",
        "KAFKA_JMX_HOSTNAME",
    }
)

# Broker configs of Kafka 3.9: each is .define()d in a ConfigDef that server/.../config/AbstractKafkaConfig.java
# merges into CONFIG_DEF, the definition KafkaConfig (core/src/main/scala/kafka/server/KafkaConfig.scala) uses.
KAFKA_BROKER_CONFIGS = frozenset(
    {
        # server/src/main/java/org/apache/kafka/server/config/KRaftConfigs.java: NODE_ID_CONFIG, PROCESS_ROLES_CONFIG,
        # CONTROLLER_LISTENER_NAMES_CONFIG, defined in KRaftConfigs.CONFIG_DEF
        "node.id",
        "process.roles",
        "controller.listener.names",
        # server/src/main/java/org/apache/kafka/network/SocketServerConfigs.java: LISTENERS_CONFIG,
        # ADVERTISED_LISTENERS_CONFIG, LISTENER_SECURITY_PROTOCOL_MAP_CONFIG, defined in SocketServerConfigs.CONFIG_DEF
        "listeners",
        "advertised.listeners",
        "listener.security.protocol.map",
        # server/src/main/java/org/apache/kafka/server/config/ReplicationConfigs.java: INTER_BROKER_LISTENER_NAME_CONFIG
        "inter.broker.listener.name",
        # raft/src/main/java/org/apache/kafka/raft/QuorumConfig.java: QUORUM_VOTERS_CONFIG = "controller.quorum." +
        # "voters", defined in QuorumConfig.CONFIG_DEF
        "controller.quorum.voters",
        # group-coordinator/.../GroupCoordinatorConfig.java: OFFSETS_TOPIC_REPLICATION_FACTOR_CONFIG
        "offsets.topic.replication.factor",
        # transaction-coordinator/.../TransactionLogConfigs.java: TRANSACTIONS_TOPIC_REPLICATION_FACTOR_CONFIG,
        # TRANSACTIONS_TOPIC_MIN_ISR_CONFIG, defined in TransactionLogConfigs.CONFIG_DEF
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        # server-common/.../ServerLogConfigs.java: NUM_PARTITIONS_CONFIG, LOG_DIRS_CONFIG = "log." + "dirs",
        # LOG_DIR_CONFIG = "log." + "dir" (default /tmp/kafka-logs), defined in storage/.../LogConfig.java
        # SERVER_CONFIG_DEF
        "num.partitions",
        "log.dirs",
        "log.dir",
    }
)

# Variables the ClickHouse image's entrypoint reads: ClickHouse/docker-library (the source of the official image, per
# docker-library/official-images library/clickhouse), server/25.3.13.19/entrypoint.sh (added in commit 69243cde; the
# repository's `clickhouse` file at f24cb6bb tags 25.3 to that directory). The 25.3 tag has moved from 25.3.2.39 to
# 25.3.14.14; entrypoint.sh is byte-identical in all thirteen server/25.3.*/ directories.
CLICKHOUSE_ENTRYPOINT_VARIABLES = frozenset(
    {
        "CLICKHOUSE_RUN_AS_ROOT",  # run as root:root, no chown
        "CLICKHOUSE_DO_NOT_CHOWN",
        "CLICKHOUSE_UID",  # deprecated, still read
        "CLICKHOUSE_GID",
        "CLICKHOUSE_CONFIG",  # the server's config file (also ENV in Dockerfile.ubuntu)
        "CLICKHOUSE_USER",  # the user written to users.d/default-user.xml instead of `default`
        "CLICKHOUSE_PASSWORD",
        "CLICKHOUSE_PASSWORD_FILE",
        "CLICKHOUSE_DB",  # created by init_clickhouse_db
        "CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT",  # that user's <access_management>
        "CLICKHOUSE_SKIP_USER_SETUP",
        "CLICKHOUSE_ALWAYS_RUN_INITDB_SCRIPTS",
        "CLICKHOUSE_INIT_TIMEOUT",
        "CLICKHOUSE_WATCHDOG_ENABLE",  # exported to clickhouse-server
    }
)

# Grafana settings set by GF_<SECTION>_<KEY> variables: "All options in the configuration file can be overridden
# using environment variables using the syntax GF_<SectionName>_<KeyName> ... upper case, . replaced by _"
# (grafana.com/docs, Configure Grafana, "Override configuration with environment variables").
GRAFANA_SETTINGS = frozenset(
    {
        # grafana/grafana conf/defaults.ini (and sample.ini): [security] admin_password, "default admin password,
        # can be changed before first start of grafana"
        ("security", "admin_password"),
    }
)
GRAFANA_IMAGE_VARIABLES = frozenset(
    {
        # grafana/grafana packaging/docker/run.sh before grafana/grafana#105145 (merged after 2025-05-27, so after
        # 11.6.0): each comma-separated entry of GF_INSTALL_PLUGINS goes to `grafana cli --pluginsDir
        # "${GF_PATHS_PLUGINS}" plugins install ${plugin}` (unquoted, so "id version" pins the version). Since that
        # PR it is deprecated and run.sh installs only with GF_INSTALL_PLUGINS_FORCE=true (Grafana 12.1).
        "GF_INSTALL_PLUGINS",
        # grafana/grafana Dockerfile, final stage ENV (the Alpine build of spring 2025, BASE_IMAGE=alpine:3.21):
        # the paths run.sh passes to `grafana server` as cfg:default.paths.*
        "GF_PATHS_CONFIG",
        "GF_PATHS_DATA",
        "GF_PATHS_HOME",
        "GF_PATHS_LOGS",
        "GF_PATHS_PLUGINS",
        "GF_PATHS_PROVISIONING",
    }
)
GRAFANA_PROVISIONING = "/etc/grafana/provisioning"  # GF_PATHS_PROVISIONING, same Dockerfile ENV

# Directories each image has (parents included: every one is made by `mkdir -p`, COPY or the package install).
IMAGE_DIRECTORIES: dict[str, frozenset[str]] = {
    # apache/kafka docker/jvm/Dockerfile (branch 3.9): `mkdir opt/kafka`, the release tarball extracted into
    # /opt/kafka, `mkdir -p /var/lib/kafka/data /etc/kafka/secrets`, `mkdir -p /etc/kafka/docker /usr/logs
    # /mnt/shared/config`; VOLUME ["/etc/kafka/secrets", "/var/lib/kafka/data", "/mnt/shared/config"].
    KAFKA: frozenset(
        {"/opt/kafka", "/opt/kafka/bin", "/var/lib/kafka/data", "/etc/kafka/secrets", "/etc/kafka/docker"}
        | {"/usr/logs", "/mnt/shared/config"}
    ),
    # ClickHouse/docker-library server/25.3.*/Dockerfile.ubuntu (every 25.3 directory): `mkdir -p /var/lib/clickhouse
    # /var/log/clickhouse-server /etc/clickhouse-server /etc/clickhouse-client`, `mkdir /docker-entrypoint-initdb.d`,
    # `COPY docker_related_config.xml /etc/clickhouse-server/config.d/`, VOLUME /var/lib/clickhouse.
    # users.d: the clickhouse-server package's postinstall (ClickHouse packages/clickhouse-server.postinstall) runs
    # `clickhouse install`, which creates it (programs/install/Install.cpp, "Creating config directory {} that is used
    # for tweaks of users configuration"); the image's entrypoint.sh writes users.d/default-user.xml without making it.
    CLICKHOUSE: frozenset(
        {"/var/lib/clickhouse", "/var/log/clickhouse-server", "/etc/clickhouse-server", "/etc/clickhouse-client"}
        | {"/docker-entrypoint-initdb.d", "/etc/clickhouse-server/config.d", "/etc/clickhouse-server/users.d"}
    ),
    # grafana/grafana Dockerfile, final stage (Alpine build of spring 2025): `mkdir -p "$GF_PATHS_PROVISIONING/
    # datasources" ".../dashboards" ".../notifiers" ".../plugins" ".../access-control" ".../alerting" "$GF_PATHS_LOGS"
    # "$GF_PATHS_PLUGINS" "$GF_PATHS_DATA"` and "$GF_PATHS_HOME/.aws", with the GF_PATHS_* values of its ENV.
    GRAFANA: frozenset(
        {f"{GRAFANA_PROVISIONING}/{d}" for d in ("datasources", "dashboards", "notifiers", "plugins", "alerting")}
        | {f"{GRAFANA_PROVISIONING}/access-control", "/var/log/grafana", "/var/lib/grafana/plugins"}
        | {"/var/lib/grafana", "/usr/share/grafana/.aws"}
    ),
    # prometheus/alertmanager Dockerfile at v0.28.1 (commit b2099ea): `COPY examples/ha/alertmanager.yml
    # /etc/alertmanager/alertmanager.yml`, `mkdir -p /alertmanager`, VOLUME [ "/alertmanager" ].
    ALERTMANAGER: frozenset({"/etc/alertmanager", "/alertmanager"}),
}

# What a healthcheck may run in each image.
IMAGE_TOOLS: dict[str, frozenset[str]] = {
    # apache/kafka bin/kafka-broker-api-versions.sh; build.gradle releaseTarGz puts bin/ in the tarball that
    # docker/jvm/Dockerfile extracts into /opt/kafka (--strip-components 1). The same RUN installs bash and removes
    # wget again (`apk del wget gpg gpg-agent`).
    KAFKA: frozenset({"/opt/kafka/bin/kafka-broker-api-versions.sh", "bash"}),
    # ClickHouse/docker-library server/25.3.*/Dockerfile.ubuntu: `apt-get install ... ca-certificates locales tzdata
    # wget` on ubuntu:22.04 (no curl), then the clickhouse-client package (ARG PACKAGES).
    CLICKHOUSE: frozenset({"wget", "clickhouse-client"}),
    # grafana/grafana Dockerfile (Alpine build of spring 2025): `apk add --no-cache ca-certificates bash curl tzdata
    # musl-utils`; wget is Alpine's busybox applet: the same stage runs `wget -qO- .../glibc-bin-...tar.gz` with
    # nothing installing wget. grafana/grafana:<version> is the Alpine variant (grafana.com/docs, Configure a Grafana
    # Docker image: "By default, the images are built using the ... Alpine Linux project base image").
    GRAFANA: frozenset({"wget", "curl", "bash"}),
    # prometheus/alertmanager Dockerfile at v0.28.1: FROM quay.io/prometheus/busybox-${OS}-${ARCH}:latest, COPY
    # .build/.../amtool /bin/amtool. prometheus/busybox README: that image is based on the official busybox:uclibc;
    # docker-library/busybox latest-1/uclibc/Dockerfile.builder builds busybox from `make defconfig` and runs
    # `busybox --install /bin`; busybox networking/wget.c: `config WGET ... default y`.
    ALERTMANAGER: frozenset({"wget", "amtool"}),
    # docker-library/python 3.11/slim-bookworm/Dockerfile: "make some useful symlinks that are expected to exist
    # ("/usr/local/bin/python" and friends)", python3 -> python (read at 3.11.12; the same template makes 3.11.11).
    # wget is installed only to build and purged (apt-get purge --auto-remove); no curl.
    STREAMWATCH: frozenset({"python", "python3"}),
}


# ---- reading the compose file ---------------------------------------------------------------------------------------


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(key): "" if value is None else str(value) for key, value in env.items()}


def _mounts(compose: Compose, service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(kind, source, target) of each mount: kind is "volume" (named), "bind" or "anonymous"."""
    out = []
    for mount in service.get("volumes", []):
        if isinstance(mount, dict):
            source, target = str(mount.get("source", "")), str(mount["target"])
        else:
            parts = str(mount).split(":")
            source, target = (parts[0], parts[1]) if len(parts) > 1 else ("", parts[0])
        if not source:
            kind = "anonymous"
        elif source in (compose.get("volumes") or {}):
            kind = "volume"
        else:
            kind = "bind"
        out.append((kind, source, target))
    return out


def _services_by_image(compose: Compose) -> list[tuple[str, str, dict[str, Any]]]:
    return [(name, str(service.get("image", "")), service) for name, service in compose["services"].items()]


def _healthcheck_tool(test: str | list[str]) -> str | None:
    """The program a healthcheck runs: the first word of a CMD-SHELL command, the first argument of CMD."""
    if isinstance(test, str):  # a string is CMD-SHELL's command
        return shlex.split(test)[0]
    kind, *args = test
    if kind == "NONE":
        return None
    if kind == "CMD-SHELL":
        return shlex.split(" ".join(args))[0]
    assert kind == "CMD", f"unknown healthcheck form {kind}"
    return args[0]


# ---- our own image, from ./Dockerfile -------------------------------------------------------------------------------


def _dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    logical, lines = "", []
    for line in text.splitlines():
        if not logical and (not line.strip() or line.lstrip().startswith("#")):
            continue
        logical += line.rstrip().removesuffix("\\") + " "
        if not line.rstrip().endswith("\\"):
            lines.append(logical.strip())
            logical = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def own_image_directories(dockerfile: str) -> frozenset[str]:
    """What ./Dockerfile makes: `mkdir -p` arguments, WORKDIRs, and where COPY puts files (their directories)."""
    made: set[str] = set()
    workdir = PurePosixPath("/")
    for instruction, args in _dockerfile_instructions(dockerfile):
        if instruction == "WORKDIR":
            workdir = workdir / args.strip()
            made.add(str(workdir))
        elif instruction == "RUN":
            for command in re.split(r"&&|;", args):
                words = command.split()
                if words[:2] == ["mkdir", "-p"]:
                    made.update(str(workdir / word) for word in words[2:] if not word.startswith("-"))
        elif instruction == "COPY":
            words = [word for word in args.split() if not word.startswith("--")]
            destination = workdir / words[-1]
            sources = words[:-1]
            copies_a_file = len(sources) == 1 and (ROOT / sources[0]).is_file() and not words[-1].endswith("/")
            made.add(str(destination.parent if copies_a_file else destination))
    return frozenset(made)


IMAGE_DIRECTORIES[STREAMWATCH] = own_image_directories((ROOT / "Dockerfile").read_text())


def _has_directory(image: str, path: str) -> bool:
    target = PurePosixPath(path)
    return any(target == made or target in made.parents for made in map(PurePosixPath, IMAGE_DIRECTORIES[image]))


# ---- the checks: each returns what it finds wrong, so that a mutated copy can be shown to fail ----------------------


def kafka_problems(compose: Compose) -> list[str]:
    problems = []
    for name, image, service in _services_by_image(compose):
        if image != KAFKA:
            continue
        env = _environment(service)
        for variable in env:
            if not variable.startswith("KAFKA_") or variable in KAFKA_NOT_PROPERTIES:
                continue
            prop = variable.removeprefix("KAFKA_").lower().replace("_", ".").replace("...", "-").replace("..", "_")
            if prop not in KAFKA_BROKER_CONFIGS:
                problems.append(f"{name}: {variable} becomes `{prop}`, not a Kafka 3.9 broker config")
        volumes = {target for kind, _, target in _mounts(compose, service) if kind == "volume"}
        log_dirs = [d.strip() for d in env.get("KAFKA_LOG_DIRS", "").split(",") if d.strip()]
        if not log_dirs:
            problems.append(f"{name}: KAFKA_LOG_DIRS is not set, so the log is not in a volume")
        for log_dir in log_dirs:
            if log_dir not in volumes:
                problems.append(f"{name}: KAFKA_LOG_DIRS {log_dir} is not a named volume's target {sorted(volumes)}")
    return problems


def _from_env_variables(xml_file: Path) -> set[str]:
    return {str(e.get("from_env")) for e in ElementTree.parse(xml_file).iter() if e.get("from_env") is not None}


def clickhouse_problems(compose: Compose) -> list[str]:
    problems = []
    for name, image, service in _services_by_image(compose):
        if image != CLICKHOUSE:
            continue
        consumed: set[str] = set()  # from_env in the XML files mounted into the server's configuration
        for kind, source, target in _mounts(compose, service):
            if kind == "bind" and target.startswith("/etc/clickhouse-server/") and target.endswith(".xml"):
                consumed |= _from_env_variables(ROOT / source)
        for variable in _environment(service):
            if variable not in CLICKHOUSE_ENTRYPOINT_VARIABLES and variable not in consumed:
                problems.append(f"{name}: {variable} is read neither by the entrypoint nor by a mounted from_env")
    return problems


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in (*_strings(key), *_strings(value))]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    return [node] if isinstance(node, str) else []


def _provisioning_references(compose: Compose, service: dict[str, Any]) -> set[str]:
    """The variables Grafana expands ($NAME or ${NAME}) in the values of the provisioning files mounted for it."""
    referenced: set[str] = set()
    for kind, source, target in _mounts(compose, service):
        if kind == "bind" and PurePosixPath(target) == PurePosixPath(GRAFANA_PROVISIONING):
            for path in sorted((ROOT / source).rglob("*")):
                if path.suffix in (".yaml", ".yml"):
                    for value in _strings(yaml.safe_load(path.read_text())):
                        for braced, bare in re.findall(r"\$\{(\w+)\}|\$(\w+)", value):
                            referenced.add(braced or bare)
    return referenced


def grafana_problems(compose: Compose) -> list[str]:
    problems = []
    for name, image, service in _services_by_image(compose):
        if image != GRAFANA:
            continue
        referenced = _provisioning_references(compose, service)
        for variable in _environment(service):
            if variable in GRAFANA_IMAGE_VARIABLES:
                continue
            if variable.startswith("GF_"):
                setting = variable.removeprefix("GF_").lower()
                if not any(setting == f"{section}_{key}" for section, key in GRAFANA_SETTINGS):
                    problems.append(f"{name}: {variable} is neither a GF_<SECTION>_<KEY> setting nor an image variable")
            elif variable not in referenced:
                problems.append(f"{name}: {variable} is referenced by no provisioning file ({sorted(referenced)})")
    return problems


def alertmanager_problems(compose: Compose) -> list[str]:
    # prometheus/alertmanager Dockerfile at v0.28.1: ENTRYPOINT [ "/bin/alertmanager" ], no script: its settings are
    # flags (the service's command), and no variable is read.
    return [
        f"{name}: {variable} is read by nothing in {image}"
        for name, image, service in _services_by_image(compose)
        if image == ALERTMANAGER
        for variable in _environment(service)
    ]


def mount_problems(compose: Compose) -> list[str]:
    """A named volume is made from the image's directory at its target (contents and owner): the image must have it.
    A bind mount lands in a directory of the image, or inside another of the service's mounts."""
    problems = []
    for name, image, service in _services_by_image(compose):
        if image not in IMAGE_DIRECTORIES:
            problems.append(f"{name}: no facts about the directories of {image!r}")
            continue
        mounts = _mounts(compose, service)
        targets = [PurePosixPath(target) for _, _, target in mounts]
        for kind, source, target in mounts:
            path = PurePosixPath(target)
            if kind == "volume" and not _has_directory(image, target):
                problems.append(f"{name}: volume {source} is mounted at {target}, which {image} does not make")
            elif kind == "bind" and not (
                _has_directory(image, str(path.parent)) or any(other in path.parents for other in targets)
            ):
                problems.append(f"{name}: {source} is mounted at {target}, whose directory {image} does not have")
    return problems


def healthcheck_problems(compose: Compose) -> list[str]:
    problems = []
    for name, image, service in _services_by_image(compose):
        test = (service.get("healthcheck") or {}).get("test")
        if not test:
            continue
        tool = _healthcheck_tool(test)
        if tool is None:
            continue
        if image not in IMAGE_TOOLS:
            problems.append(f"{name}: no facts about the programs of {image!r}")
        elif tool not in IMAGE_TOOLS[image]:
            problems.append(f"{name}: the healthcheck runs {tool}, which {image} does not have")
    return problems


CHECKS: list[Callable[[Compose], list[str]]] = [
    kafka_problems,
    clickhouse_problems,
    grafana_problems,
    alertmanager_problems,
    mount_problems,
    healthcheck_problems,
]


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_the_compose_file_agrees_with_its_images(check: Callable[[Compose], list[str]]) -> None:
    assert check(COMPOSE) == []


def test_every_image_is_one_the_tables_describe() -> None:
    images = {image for _, image, _ in _services_by_image(COMPOSE)}
    assert images == {KAFKA, CLICKHOUSE, GRAFANA, ALERTMANAGER, STREAMWATCH}
    assert set(IMAGE_DIRECTORIES) == set(IMAGE_TOOLS) == images
    # the own image's base, whose programs IMAGE_TOOLS[STREAMWATCH] describes
    assert "FROM python:3.11.11-slim-bookworm" in (ROOT / "Dockerfile").read_text().splitlines()
    assert {"/profiles", "/data", "/etc/streamwatch", "/app"} <= IMAGE_DIRECTORIES[STREAMWATCH]


def _mutated(change: Callable[[Compose], None]) -> Compose:
    compose = copy.deepcopy(COMPOSE)
    change(compose)
    return compose


def _rename(service: str, old: str, new: str, value: str | None = None) -> Callable[[Compose], None]:
    def change(compose: Compose) -> None:
        env = compose["services"][service]["environment"]
        kept = env.pop(old)
        env[new] = kept if value is None else value

    return change


def _set(service: str, key: str, value: Any) -> Callable[[Compose], None]:
    def change(compose: Compose) -> None:
        compose["services"][service][key] = value

    return change


def _replace_mount(service: str, old: str, new: str) -> Callable[[Compose], None]:
    def change(compose: Compose) -> None:
        volumes = compose["services"][service]["volumes"]
        volumes[volumes.index(old)] = new

    return change


def _healthcheck(service: str, command: str) -> Callable[[Compose], None]:
    def change(compose: Compose) -> None:
        compose["services"][service]["healthcheck"]["test"] = ["CMD-SHELL", command]

    return change


MUTATIONS = [
    # a misspelled property: written to server.properties and ignored by the broker
    (kafka_problems, _rename("kafka", "KAFKA_NUM_PARTITIONS", "KAFKA_NUM_PARTITION"), "`num.partition`"),
    # log.dir is a real config, but KAFKA_LOG_DIRS no longer puts the log in the volume
    (kafka_problems, _rename("kafka", "KAFKA_LOG_DIRS", "KAFKA_LOG_DIR"), "KAFKA_LOG_DIRS is not set"),
    (kafka_problems, _rename("kafka", "KAFKA_LOG_DIRS", "KAFKA_LOG_DIRS", "/tmp/kraft-combined-logs"), "not a named"),
    (
        clickhouse_problems,
        _rename("clickhouse", "CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT", "CLICKHOUSE_ACCESS_MANAGEMENT"),
        "CLICKHOUSE_ACCESS_MANAGEMENT is read neither",
    ),
    # the grafana user's password no longer reaches the from_env of users.d/grafana.xml
    (
        clickhouse_problems,
        _rename("clickhouse", "GRAFANA_CLICKHOUSE_PASSWORD", "GRAFANA_PASSWORD"),
        "GRAFANA_PASSWORD is read neither",
    ),
    (
        grafana_problems,
        _rename("grafana", "GF_SECURITY_ADMIN_PASSWORD", "GF_SECURITY_ADMIN_PASSWD"),
        "GF_SECURITY_ADMIN_PASSWD",
    ),
    (grafana_problems, _rename("grafana", "CLICKHOUSE_USER", "CLICKHOUSE_USERNAME"), "CLICKHOUSE_USERNAME is refer"),
    (alertmanager_problems, _set("alertmanager", "environment", {"ALERTMANAGER_CONFIG": "x"}), "read by nothing"),
    (
        mount_problems,
        _replace_mount("kafka", "kafka-data:/var/lib/kafka/data", "kafka-data:/var/lib/kafka/logs"),
        "/var/lib/kafka/logs, which apache/kafka:3.9.1 does not make",
    ),
    (
        mount_problems,
        _replace_mount("clickhouse", "clickhouse-data:/var/lib/clickhouse", "clickhouse-data:/var/lib/clickhouse-data"),
        "does not make",
    ),
    (
        mount_problems,
        _replace_mount(
            "clickhouse",
            "./deploy/clickhouse/users.d/grafana.xml:/etc/clickhouse-server/users.d/grafana.xml:ro",
            "./deploy/clickhouse/users.d/grafana.xml:/etc/clickhouse/users.d/grafana.xml:ro",
        ),
        "whose directory",
    ),
    (mount_problems, _replace_mount("init", "profiles:/profiles", "profiles:/data/profiles"), "/data/profiles"),
    (mount_problems, _set("grafana", "image", "grafana/grafana:12.0.0"), "no facts"),
    (healthcheck_problems, _healthcheck("clickhouse", "curl -fs http://localhost:8123/ping"), "runs curl"),
    # the Kafka image removes wget after using it to download Kafka
    (healthcheck_problems, _healthcheck("kafka", "wget --spider -q http://localhost:19092"), "runs wget"),
    (healthcheck_problems, _healthcheck("alertmanager", "curl -fs http://localhost:9093/-/ready"), "runs curl"),
    (healthcheck_problems, _set("alertmanager", "image", "prom/alertmanager:latest"), "no facts"),
]


@pytest.mark.parametrize(
    ("check", "change", "expected"),
    MUTATIONS,
    ids=[f"{check.__name__}-{i}" for i, (check, _, _) in enumerate(MUTATIONS)],
)
def test_each_check_rejects_a_mutated_copy(
    check: Callable[[Compose], list[str]], change: Callable[[Compose], None], expected: str
) -> None:
    problems = check(_mutated(change))
    assert any(expected in problem for problem in problems), problems


def test_a_healthcheck_names_its_program_in_each_form() -> None:
    assert _healthcheck_tool(["CMD-SHELL", "wget --spider -q http://x"]) == "wget"
    assert _healthcheck_tool("wget --spider -q http://x") == "wget"
    assert _healthcheck_tool(["CMD", "python", "-c", "pass"]) == "python"
    assert _healthcheck_tool(["NONE"]) is None
