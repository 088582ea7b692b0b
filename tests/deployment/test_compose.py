"""docker-compose.yml cannot start here (no Docker engine); check it statically."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from xml.etree import ElementTree

import pytest
import yaml

ROOT = Path(__file__).parents[2]


def test_compose_file_runs_an_official_kraft_kafka() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    kafka = compose["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert "controller" in env["KAFKA_PROCESS_ROLES"]  # KRaft, no ZooKeeper
    assert "9092:9092" in kafka["ports"]
    assert "EXTERNAL://localhost:9092" in env["KAFKA_ADVERTISED_LISTENERS"]  # what the SDK's default reaches
    assert kafka["healthcheck"]["test"]
    for volume in kafka.get("volumes", []):
        assert volume.split(":")[0] in compose["volumes"]


COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
LONG_RUNNING = {"kafka", "clickhouse", "grafana", "worker-1", "worker-2", "alertmanager"}


def test_every_image_is_official_and_pinned() -> None:
    expected = {
        "kafka": "apache/kafka:",
        "clickhouse": "clickhouse/clickhouse-server:",
        "grafana": "grafana/grafana:",
        "alertmanager": "prom/alertmanager:",
    }
    for name, prefix in expected.items():
        image = SERVICES[name]["image"]
        assert image.startswith(prefix) and not image.endswith((":latest", ":")), image
    for name in ("init", "worker-1", "worker-2", "traffic"):
        assert SERVICES[name]["build"] == "." and SERVICES[name]["image"] == "streamwatch:local"


def test_ports_healthchecks_and_dependencies() -> None:
    assert "8123:8123" in SERVICES["clickhouse"]["ports"] and "3000:3000" in SERVICES["grafana"]["ports"]
    assert {"6066:6066", "6067:6066"} == {p for w in ("worker-1", "worker-2") for p in SERVICES[w]["ports"]}
    for name in LONG_RUNNING:
        assert SERVICES[name]["healthcheck"]["test"], name
    conditions = {"service_healthy", "service_completed_successfully"}
    for name, service in SERVICES.items():
        for needed, how in service.get("depends_on", {}).items():
            assert needed in SERVICES and how["condition"] in conditions, (name, needed)
            if how["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[needed], needed
    assert SERVICES["init"]["depends_on"] == {
        "kafka": {"condition": "service_healthy"},
        "clickhouse": {"condition": "service_healthy"},
    }
    for name in ("worker-1", "worker-2", "traffic"):
        assert SERVICES[name]["depends_on"] == {"init": {"condition": "service_completed_successfully"}}
    assert SERVICES["init"]["restart"] == "no" and "profiles" not in SERVICES["alertmanager"]  # its channel is on


def test_every_mounted_file_exists_and_named_volumes_are_declared() -> None:
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which is not in the repository"
            else:
                assert source in COMPOSE["volumes"], f"{name} uses undeclared volume {source}"
    grafana = {v.split(":")[1] for v in SERVICES["grafana"]["volumes"]}
    assert {"/etc/grafana/provisioning", "/var/lib/grafana/dashboards/streamwatch"} <= grafana
    assert SERVICES["grafana"]["environment"]["GF_INSTALL_PLUGINS"].split()[0] == "grafana-clickhouse-datasource"


def _setting_exists(path: list[str]) -> bool:
    from pydantic import BaseModel

    from streamwatch.config.settings import Settings

    model: type[BaseModel] = Settings
    for i, part in enumerate(path):
        field = model.model_fields.get(part)
        if field is None:
            return False
        annotation = field.annotation
        if i < len(path) - 1:
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return False
            model = annotation
    return True


def _streamwatch_env() -> dict[str, dict[str, str]]:
    return {
        name: {k: str(v) for k, v in service.get("environment", {}).items() if k.startswith("STREAMWATCH_")}
        for name, service in SERVICES.items()
    }


def test_every_streamwatch_variable_is_a_setting_and_the_stack_config_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    from streamwatch.config.settings import load_settings

    environments = _streamwatch_env()
    assert not _setting_exists(["kafka", "bootstrap_server"])  # the check can fail
    for name, env in environments.items():
        for variable in env:
            if variable == "STREAMWATCH_CONFIG_FILE":
                continue
            path = variable.removeprefix("STREAMWATCH_").lower().split("__")
            assert _setting_exists(path), f"{name}: {variable} is not a setting"
    worker = environments["worker-1"]
    assert worker["STREAMWATCH_CONFIG_FILE"] == "/etc/streamwatch/streamwatch.yaml"
    for variable, value in worker.items():
        if variable != "STREAMWATCH_CONFIG_FILE":
            monkeypatch.setenv(variable, value.replace("${CLICKHOUSE_PASSWORD:-streamwatch}", "streamwatch"))
    settings = load_settings(ROOT / "deploy" / "streamwatch.yaml")
    assert settings.kafka.bootstrap_servers == "kafka:19092" and settings.clickhouse.dsn == "http://clickhouse:8123"
    assert settings.worker.instance_id == "worker-1" and settings.worker.web_host == "0.0.0.0"
    assert settings.models[0].name == "credit-risk" and settings.channels[0].type == "alertmanager"


def test_the_two_workers_share_a_group_with_distinct_static_ids() -> None:
    env = _streamwatch_env()
    assert env["worker-1"]["STREAMWATCH_WORKER__GROUP"] == env["worker-2"]["STREAMWATCH_WORKER__GROUP"]
    assert env["worker-1"]["STREAMWATCH_WORKER__INSTANCE_ID"] != env["worker-2"]["STREAMWATCH_WORKER__INSTANCE_ID"]


def test_the_commands_the_stack_runs_exist() -> None:
    import typer.main

    from streamwatch.cli.main import app

    commands = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    assert {"init", "worker", "traffic"} <= commands
    assert SERVICES["worker-1"]["command"][0] == "worker" and SERVICES["traffic"]["command"][0] == "traffic"
    assert "streamwatch init" in " ".join(SERVICES["init"]["entrypoint"])


def test_the_dockerfile_is_pinned_installs_with_constraints_and_runs_as_a_user() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines() if line.strip()]
    [base] = [line for line in lines if line.startswith("FROM ")]
    assert base.startswith("FROM python:3.11.") and "latest" not in base
    assert any("pip install -c constraints.txt" in line and "worker" in line for line in lines)
    assert any(line.startswith("USER ") and "root" not in line for line in lines)
    assert 'ENTRYPOINT ["streamwatch"]' in lines and "EXPOSE 6066" in lines
    for line in lines:
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), f"Dockerfile copies {source}, which is not in the repository"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored


def test_the_image_copies_what_the_package_build_reads_before_installing() -> None:
    """hatchling reads pyproject.toml, the readme, the version file and every force-included path: each must be
    in the build context the install step sees (the files COPY puts there before it), or the build stops."""
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines() if line.strip()]
    install = next(i for i, line in enumerate(lines) if line.startswith("RUN pip install"))
    copied = [Path(target) for line in lines[:install] if line.startswith("COPY ") for target in line.split()[1:-1]]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wheel = project["tool"]["hatch"]["build"]["targets"]["wheel"]
    needed = [
        "pyproject.toml",
        project["project"]["readme"],
        project["tool"]["hatch"]["version"]["path"],
        *wheel["packages"],
        *wheel.get("force-include", {}),
    ]
    for path in map(Path, needed):
        assert any(path == source or source in path.parents for source in copied), f"{path} not copied before install"


USERS_FILE = ROOT / "deploy" / "clickhouse" / "users.d" / "grafana.xml"


def _grafana_user() -> tuple[ElementTree.Element, ElementTree.Element]:
    """The grafana user and its settings profile, as deploy/clickhouse/users.d/grafana.xml defines them."""
    root = ElementTree.parse(USERS_FILE).getroot()
    assert root.tag == "clickhouse"
    user = root.find("users/grafana")
    assert user is not None
    profile = root.find(f"profiles/{user.findtext('profile')}")
    assert profile is not None
    return user, profile


def test_clickhouse_mounts_the_read_only_grafana_user_and_grafana_connects_as_it() -> None:
    clickhouse, grafana = SERVICES["clickhouse"], SERVICES["grafana"]
    assert (
        "./deploy/clickhouse/users.d/grafana.xml:/etc/clickhouse-server/users.d/grafana.xml:ro" in clickhouse["volumes"]
    )
    datasource = yaml.safe_load((ROOT / "dashboards" / "provisioning" / "datasources" / "clickhouse.yaml").read_text())
    [source] = datasource["datasources"]
    # Grafana expands $NAME in provisioning files from its own environment (test_grafana_provisioning.py).
    assert source["jsonData"]["username"] == "$CLICKHOUSE_USER" and grafana["environment"]["CLICKHOUSE_USER"] == (
        "grafana"
    )
    assert source["secureJsonData"]["password"] == "$CLICKHOUSE_PASSWORD"
    user, _ = _grafana_user()
    [password] = user.findall("password")
    variable = password.get("from_env")
    # the user's password comes from the clickhouse service's environment, the same value Grafana is given,
    # with a default so that `docker compose up` works as it is; not the writer's password
    shared = clickhouse["environment"][variable]
    assert shared == grafana["environment"]["CLICKHOUSE_PASSWORD"] == f"${{{variable}:-grafana-readonly}}"
    assert "CLICKHOUSE_PASSWORD}" not in shared and clickhouse["environment"]["CLICKHOUSE_USER"] != "grafana"


def test_the_grafana_user_only_reads_the_streamwatch_database() -> None:
    from streamwatch.config.settings import load_settings

    user, profile = _grafana_user()
    assert profile.findtext("readonly") == "2"  # read queries only; the plugin may still send its settings
    assert profile.find("constraints/readonly") is None  # readonly=2 already forbids changing readonly
    assert float(profile.findtext("constraints/max_execution_time/max") or "inf") <= 600
    assert user.findtext("access_management") == "0"
    database = load_settings(ROOT / "deploy" / "streamwatch.yaml").clickhouse.database
    assert [q.text for q in user.findall("grants/query")] == [f"GRANT SELECT ON {database}.*"]
    assert user.find("allow_databases") is None  # grants and allow_databases cannot be mixed


CHDB_CHECK = """
import json, sys
from chdb import session
s = session.Session(":memory:?config-file=" + sys.argv[1])
def rows(sql):
    return [line.split("\\t") for line in s.query(sql, "TSV").bytes().decode().splitlines()]
def refused(sql):
    try:
        s.query(sql)
    except Exception as exc:
        return str(exc)
    return None
out = {
    "users": rows("SELECT name, storage, auth_type[1] FROM system.users ORDER BY name"),
    "grants": rows("SELECT access_type, database, ifNull(table, ''), grant_option FROM system.grants "
                   "WHERE user_name = 'grafana'"),
    "profile": rows("SELECT setting_name, value, ifNull(max, '') FROM system.settings_profile_elements "
                    "WHERE profile_name = 'grafana_readonly' ORDER BY setting_name"),
}
s.query("CREATE DATABASE streamwatch")
s.query("CREATE TABLE streamwatch.metrics (model String) ENGINE = MergeTree ORDER BY model")
s.query("INSERT INTO streamwatch.metrics VALUES ('a')")
s.query("SET profile = 'grafana_readonly'")
out["raised"] = refused("SELECT 1 SETTINGS max_execution_time = 3000")
out["allowed"] = refused("SELECT 1 SETTINGS max_execution_time = 30")
readonly = dict((r[0], r[1]) for r in out["profile"])["readonly"]
s.query("SET readonly = " + readonly)
out["select"] = rows("SELECT getSetting('readonly'), count() FROM streamwatch.metrics")
out["insert"] = refused("INSERT INTO streamwatch.metrics VALUES ('b')")
out["drop"] = refused("DROP TABLE streamwatch.metrics")
out["unset"] = refused("SET readonly = 0")
out["after"] = rows("SELECT count() FROM streamwatch.metrics")
print(json.dumps(out))
"""


def test_clickhouse_itself_reads_the_users_file_and_refuses_writes_in_its_profile(tmp_path: Path) -> None:
    """The users file loaded by ClickHouse's own engine (chdb, in a process of its own: one engine a process).

    No clickhouse-server runs on these machines (Debian's is from 2018), so this is ClickHouse as chdb embeds it,
    given the file through a server config. chdb cannot switch to another user (EXECUTE AS is disabled in it, and
    the config key that enables it was not taken), so the grants are read back rather than tried as the user; the
    profile's readonly value is applied to a session and writes are tried under it.
    """
    pytest.importorskip("chdb")
    (tmp_path / "users.d").mkdir()
    (tmp_path / "users.d" / "grafana.xml").write_bytes(USERS_FILE.read_bytes())
    (tmp_path / "users.xml").write_text(
        "<clickhouse><profiles><default/></profiles><quotas><default/></quotas><users><default><password/>"
        "<networks><ip>::/0</ip></networks><profile>default</profile><quota>default</quota>"
        "<access_management>1</access_management></default></users></clickhouse>"
    )
    config = tmp_path / "config.xml"
    config.write_text(
        f"<clickhouse><path>{tmp_path / 'data'}/</path><users_config>{tmp_path / 'users.xml'}</users_config>"
        "</clickhouse>"
    )
    env = {**os.environ, "GRAFANA_CLICKHOUSE_PASSWORD": "from-the-environment"}
    done = subprocess.run(
        [sys.executable, "-c", CHDB_CHECK, str(config)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.splitlines()[-1])
    assert ["grafana", "users_xml", "plaintext_password"] in out["users"]
    assert out["grants"] == [["SELECT", "streamwatch", "", "0"]]
    assert ["readonly", "2", ""] in out["profile"] and ["max_execution_time", "60", "300"] in out["profile"]
    assert "shouldn't be greater than 300" in out["raised"] and out["allowed"] is None
    assert out["select"] == [["2", "1"]] and out["after"] == [["1"]]
    for refusal in (out["insert"], out["drop"], out["unset"]):
        assert refusal and "readonly mode" in refusal, refusal


def test_kafka_keeps_its_log_in_its_volume() -> None:
    # The official image's scripts write the log to KAFKA_LOG_DIRS, /tmp/kraft-combined-logs when unset.
    kafka = COMPOSE["services"]["kafka"]
    targets = {mount.split(":")[1] for mount in kafka["volumes"] if mount.split(":")[0] in COMPOSE["volumes"]}
    assert kafka["environment"].get("KAFKA_LOG_DIRS") in targets


def test_no_channel_is_configured_whose_receiver_starts_only_under_a_profile() -> None:
    settings = yaml.safe_load((ROOT / "deploy" / "streamwatch.yaml").read_text())
    optional = {name for name, service in COMPOSE["services"].items() if service.get("profiles")}
    for channel in settings.get("channels", []):
        host = str(channel.get("url", "")).split("//", 1)[-1].split(":")[0].split("/")[0]
        assert host not in optional, f"channel {channel['name']} sends to {host}, which starts only under a profile"
        assert host in COMPOSE["services"] or "." in host, f"channel {channel['name']}: no service {host}"


def test_grafanas_plugins_are_pinned() -> None:
    plugins = COMPOSE["services"]["grafana"]["environment"]["GF_INSTALL_PLUGINS"].split(",")
    for plugin in plugins:
        name, _, version = plugin.strip().partition(" ")
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name}: no pinned version"
