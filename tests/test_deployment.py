"""docker-compose.yml cannot start here (no Docker engine); check it statically."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parent.parent


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
    assert SERVICES["init"]["restart"] == "no" and SERVICES["alertmanager"]["profiles"] == ["alerting"]


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
    assert SERVICES["grafana"]["environment"]["GF_INSTALL_PLUGINS"] == "grafana-clickhouse-datasource"


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
