"""The Kubernetes manifests (deploy/kubernetes) cannot be applied here (no cluster): render them and check statically.

They are rendered with `kubectl kustomize` when kubectl is installed, and otherwise assembled in Python from
kustomization.yaml (resources, generators, images, components); when kubectl is there, both are rendered and must
agree. Every rendered document is validated against the Kubernetes API's schemas (kubernetes-validate, strict:
unknown fields fail), the ServiceMonitor against the Prometheus operator's documented fields; then the cross-checks:
the variables are settings, the config loads with them, the probes reach /health where the worker listens, the
commands parse as the CLI parses them, selectors select, references resolve, and the sizes follow the benchmarks'
benchmarks. Where cheap, each check is also shown to reject a mutated copy.
"""

from __future__ import annotations

import base64
import copy
import functools
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs installed (types-jsonschema)
import kubernetes_validate  # type: ignore[import-untyped]  # no py.typed marker
import pytest
import yaml

from tests.deployment.test_compose import _setting_exists

ROOT = Path(__file__).parents[2]
BASE = ROOT / "deploy" / "kubernetes"
SERVICEMONITOR = BASE / "components" / "servicemonitor"
KUBECTL = shutil.which("kubectl")
Doc = dict[str, Any]

# The oldest and the newest Kubernetes versions kubernetes-validate has schemas for.
VERSIONS = [kubernetes_validate.utils.all_versions()[0], kubernetes_validate.utils.latest_version()]


# Rendering ------------------------------------------------------------------------------------------------------


def _kubectl(directory: Path) -> list[Doc]:
    assert KUBECTL is not None
    done = subprocess.run([KUBECTL, "kustomize", str(directory)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def _env_file(path: Path) -> dict[str, str]:
    """A kustomize env file: KEY=value lines; blank lines and # comments skipped."""
    pairs = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key] = value
    return pairs


def _generated(kind: str, generator: Doc, directory: Path) -> dict[str, str]:
    data: dict[str, str] = {}
    for entry in generator.get("files", []):
        key, _, source = entry.rpartition("=") if "=" in entry else (Path(entry).name, "", entry)
        data[key] = (directory / source).read_text()
    for env in generator.get("envs", []):
        data.update(_env_file(directory / env))
    for literal in generator.get("literals", []):
        key, _, value = literal.partition("=")
        data[key] = value
    if kind == "Secret":
        return {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
    return data


def _set_images(docs: list[Doc], images: list[Doc]) -> None:
    for doc in docs:
        pod = _pod_spec(doc)
        if pod is None:
            continue
        for container in [*pod.get("containers", []), *pod.get("initContainers", [])]:
            for image in images:
                name = str(re.split(r"[:@]", container["image"], maxsplit=1)[0])
                if name == image["name"]:
                    tag = container["image"][len(name) :]
                    tag = f":{image['newTag']}" if "newTag" in image else tag
                    container["image"] = str(image.get("newName", name)) + tag


def _assemble(directory: Path) -> list[Doc]:
    """What `kubectl kustomize directory` renders, for the features these manifests use, without the names' hash
    suffixes (the generated objects keep their generator's name, and so do the references to them)."""
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    docs: list[Doc] = []
    for entry in spec.get("resources", []) + spec.get("components", []):
        path = directory / entry
        if path.is_dir():
            docs += _assemble(path)
        else:
            docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    labels = spec.get("generatorOptions", {}).get("labels", {})
    for kind, key in (("ConfigMap", "configMapGenerator"), ("Secret", "secretGenerator")):
        for generator in spec.get(key, []):
            data = _generated(kind, generator, directory)
            behavior = generator.get("behavior", "create")
            if behavior == "create":
                doc: Doc = {"apiVersion": "v1", "kind": kind, "metadata": {"name": generator["name"]}}
                if labels:
                    doc["metadata"]["labels"] = dict(labels)
                if kind == "Secret":
                    doc["type"] = "Opaque"
                if data:
                    doc["data"] = data
                docs.append(doc)
                continue
            [existing] = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == generator["name"]]
            merged = {**existing.get("data", {}), **data} if behavior == "merge" else data
            existing.pop("data", None)
            if merged:
                existing["data"] = merged
    _set_images(docs, spec.get("images", []))
    return docs


def _generator_names(directory: Path) -> set[str]:
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    names = {g["name"] for key in ("configMapGenerator", "secretGenerator") for g in spec.get(key, [])}
    for entry in spec.get("resources", []) + spec.get("components", []):
        if (directory / entry).is_dir():
            names |= _generator_names(directory / entry)
    return names


def _unhashed(docs: list[Doc], generators: set[str]) -> list[Doc]:
    """kubectl's rendering with the hash suffixes of generated names taken out, everywhere they occur."""
    text = yaml.safe_dump_all(docs)
    for name in generators:
        text = re.sub(rf"\b{re.escape(name)}-[a-z0-9]{{10}}\b", name, text)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def _overlay(directory: Path, components: bool) -> Path:
    """A kustomization in `directory` with the base as its resource, and the ServiceMonitor component if asked.
    kustomize takes relative paths only."""
    spec: Doc = {"resources": [os.path.relpath(BASE, directory)]}
    if components:
        spec["components"] = [os.path.relpath(SERVICEMONITOR, directory)]
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(spec))
    return directory


@functools.cache
def _rendered(servicemonitor: bool) -> tuple[Doc, ...]:
    if not servicemonitor:
        docs = _kubectl(BASE) if KUBECTL else _assemble(BASE)
        return tuple(docs)
    with tempfile.TemporaryDirectory() as tmp:
        overlay = _overlay(Path(tmp), components=True)
        return tuple(_kubectl(overlay) if KUBECTL else _assemble(overlay))


def _docs(servicemonitor: bool = False) -> list[Doc]:
    """A fresh copy of the rendering: tests may mutate it."""
    return copy.deepcopy(list(_rendered(servicemonitor)))


def _key(doc: Doc) -> tuple[str, str]:
    return doc["kind"], doc["metadata"]["name"]


def _get(docs: list[Doc], kind: str, name: str) -> Doc:
    [doc] = [d for d in docs if _key(d) == (kind, name)]
    return doc


def _pod_spec(doc: Doc) -> Doc | None:
    if doc["kind"] in ("StatefulSet", "Deployment", "Job", "DaemonSet"):
        spec: Doc = doc["spec"]["template"]["spec"]
        return spec
    return None


def _workloads(docs: list[Doc]) -> list[Doc]:
    return [d for d in docs if _pod_spec(d) is not None]


def _containers(docs: list[Doc]) -> list[tuple[Doc, Doc]]:
    return [(w, c) for w in _workloads(docs) for c in w["spec"]["template"]["spec"]["containers"]]


def _worker(docs: list[Doc]) -> Doc:
    [statefulset] = [d for d in docs if d["kind"] == "StatefulSet"]
    return statefulset


def _job(docs: list[Doc]) -> Doc:
    [job] = [d for d in docs if d["kind"] == "Job"]
    return job


def test_the_base_renders_and_the_servicemonitor_is_only_in_its_component() -> None:
    base, with_component = _docs(), _docs(servicemonitor=True)
    kinds = sorted(d["kind"] for d in base)
    assert kinds == sorted(
        ["ConfigMap"] * 3 + ["Job", "PodDisruptionBudget", "Secret", "Service", "Service", "StatefulSet"]
    )
    # the base applies to a cluster without the Prometheus operator's CRDs: only built-in API groups
    assert all(not d["apiVersion"].startswith("monitoring.coreos.com") for d in base)
    added = [d for d in with_component if _key(d) not in {_key(b) for b in base}]
    assert [(d["apiVersion"], d["kind"]) for d in added] == [("monitoring.coreos.com/v1", "ServiceMonitor")]


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed: only the Python assembly renders")
@pytest.mark.parametrize("servicemonitor", [False, True], ids=["base", "with-servicemonitor"])
def test_the_python_assembly_renders_what_kubectl_renders(servicemonitor: bool, tmp_path: Path) -> None:
    """The fallback used without kubectl is the same rendering, document for document, but the hash suffixes."""
    directory = _overlay(tmp_path, components=True) if servicemonitor else BASE
    generators = _generator_names(directory)
    by_kubectl = sorted(_unhashed(_kubectl(directory), generators), key=_key)
    by_python = sorted(_assemble(directory), key=_key)
    assert [_key(d) for d in by_python] == [_key(d) for d in by_kubectl]
    assert by_python == by_kubectl
    # kubectl did suffix the generated names (so references to them were rewritten, and compared above)
    assert all(
        d["metadata"]["name"] not in generators for d in _kubectl(directory) if d["kind"] in ("ConfigMap", "Secret")
    )


# Schemas --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_every_document_is_a_valid_kubernetes_object(version: str) -> None:
    checked = 0
    for doc in _docs(servicemonitor=True):
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # a CRD: kubernetes-validate has no schema for it (test_the_servicemonitor_...)
        kubernetes_validate.validate(doc, version, strict=True)
        checked += 1
    assert checked == len(_docs())
    mutated = _worker(_docs())
    mutated["spec"]["podManagmentPolicy"] = mutated["spec"].pop("podManagementPolicy")  # strict: unknown fields fail
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(mutated, version, strict=True)


# The fields of monitoring.coreos.com/v1 ServiceMonitor these manifests use, as the Prometheus operator documents
# them (API reference, ServiceMonitorSpec and Endpoint: https://prometheus-operator.dev/docs/api-reference/api/):
# spec.selector (required) and spec.endpoints[] with port (a Service port's name), path, interval and
# scrapeTimeout (durations like 30s). A subset, closed to other fields so that a misspelling fails.
_DURATION = {
    "type": "string",
    "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$",
}
SERVICEMONITOR_SCHEMA: Doc = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {"name": {"type": "string"}, "labels": {"type": "object"}},
        },
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["port"],
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string", "pattern": "^/"},
                            "interval": _DURATION,
                            "scrapeTimeout": _DURATION,
                        },
                    },
                },
            },
        },
    },
}


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def test_the_servicemonitor_has_the_operators_shape_and_scrapes_the_metrics_service_once() -> None:
    docs = _docs(servicemonitor=True)
    [monitor] = [d for d in docs if d["kind"] == "ServiceMonitor"]
    jsonschema.validate(monitor, SERVICEMONITOR_SCHEMA)
    misspelled = copy.deepcopy(monitor)
    misspelled["spec"]["endpoints"][0]["scrape_timeout"] = misspelled["spec"]["endpoints"][0].pop("scrapeTimeout")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(misspelled, SERVICEMONITOR_SCHEMA)
    selector = monitor["spec"]["selector"]["matchLabels"]
    selected = [d for d in docs if d["kind"] == "Service" and _selects(selector, d["metadata"]["labels"])]
    assert [d["metadata"]["name"] for d in selected] == ["streamwatch-metrics"]  # not the headless one as well
    ports = {p["name"] for p in selected[0]["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["port"] in ports and endpoint["path"] == "/metrics"


# Settings and the config ----------------------------------------------------------------------------------------

POD_NAME = "streamwatch-worker-0"


def _data(doc: Doc) -> dict[str, str]:
    data: dict[str, str] = doc.get("data", {})
    if doc["kind"] == "Secret":
        return {key: base64.b64decode(value).decode() for key, value in data.items()}
    return data


def _environment(container: Doc, docs: list[Doc]) -> dict[str, str]:
    """The container's environment as the kubelet builds it: envFrom first, then env (which wins)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if key in source:
                env.update(_data(_get(docs, kind, source[key]["name"])))
    for variable in container.get("env", []):
        if "value" in variable:
            env[variable["name"]] = str(variable["value"])
            continue
        ref = variable["valueFrom"]
        if "fieldRef" in ref:
            env[variable["name"]] = {"metadata.name": POD_NAME}[ref["fieldRef"]["fieldPath"]]
        elif "secretKeyRef" in ref:
            env[variable["name"]] = _data(_get(docs, "Secret", ref["secretKeyRef"]["name"]))[ref["secretKeyRef"]["key"]]
        else:
            env[variable["name"]] = _data(_get(docs, "ConfigMap", ref["configMapKeyRef"]["name"]))[
                ref["configMapKeyRef"]["key"]
            ]
    return env


def _not_settings(names: list[str]) -> list[str]:
    return [
        name
        for name in names
        if name.startswith("STREAMWATCH_")
        and name != "STREAMWATCH_CONFIG_FILE"
        and not _setting_exists(name.removeprefix("STREAMWATCH_").lower().split("__"))
    ]


def _config_doc(docs: list[Doc]) -> Doc:
    pod = _worker(docs)["spec"]["template"]["spec"]
    [mount] = [m for m in pod["containers"][0]["volumeMounts"] if m["mountPath"] == "/etc/streamwatch"]
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    return _get(docs, "ConfigMap", volume["configMap"]["name"])


def _env_references(text: str) -> set[str]:
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text))


def test_every_streamwatch_variable_is_a_setting() -> None:
    docs = _docs()
    for workload, container in _containers(docs):
        env = _environment(container, docs)
        assert not _not_settings(list(env)), f"{workload['metadata']['name']}: {_not_settings(list(env))}"
        # the others are there for the config file's ${NAME}s
        config = _data(_config_doc(docs))["streamwatch.yaml"]
        for name in env:
            if not name.startswith("STREAMWATCH_"):
                assert name in _env_references(config), f"{name} is set but the config never reads it"
    # the commented-out variables the env files document are settings too
    documented = [
        line.lstrip("# ").partition("=")[0]
        for path in (BASE / "secrets.env", BASE / "streamwatch.env")
        for line in path.read_text().splitlines()
        if re.match(r"#? ?STREAMWATCH_\w+=", line)
    ]
    assert "STREAMWATCH_KAFKA__SASL_PASSWORD" in documented and not _not_settings(documented)
    assert _not_settings(["STREAMWATCH_KAFKA__SASL_PASSWORD", "STREAMWATCH_KAFKA__SASL_PASWORD"]) == [
        "STREAMWATCH_KAFKA__SASL_PASWORD"
    ]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No STREAMWATCH_* variable of the machine running the tests leaks into the settings loaded here."""
    for name in list(os.environ):
        if name.startswith("STREAMWATCH_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_the_config_loads_with_the_environment_the_worker_gets(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from streamwatch.config.settings import WorkerSettings, load_settings
    from streamwatch.errors import ConfigError

    docs = _docs()
    [container] = _worker(docs)["spec"]["template"]["spec"]["containers"]
    env = _environment(container, docs)
    assert env["STREAMWATCH_CONFIG_FILE"] == "/etc/streamwatch/streamwatch.yaml"
    for name, value in env.items():
        if name != "STREAMWATCH_CONFIG_FILE":
            clean_env.setenv(name, value)
    config = tmp_path / "streamwatch.yaml"
    config.write_text(_data(_config_doc(docs))["streamwatch.yaml"])
    settings = load_settings(config)
    assert settings.worker.instance_id == POD_NAME and settings.worker.web_host == "0.0.0.0"
    assert settings.worker.web_port == WorkerSettings().web_port
    assert settings.kafka.bootstrap_servers == env["STREAMWATCH_KAFKA__BOOTSTRAP_SERVERS"] != "127.0.0.1:9092"
    assert settings.clickhouse.dsn.startswith("http") and settings.clickhouse.password is not None
    assert settings.clickhouse.password.get_secret_value() == "change-me"  # the committed value is a placeholder
    assert (settings.alerting.dashboard_url or "").startswith(env["GRAFANA_URL"] + "/d/")
    assert [m.name for m in settings.models] == ["credit-risk"] and not settings.channels
    # the init Job gets the same settings, but the worker's identity
    [init] = _job(docs)["spec"]["template"]["spec"]["containers"]
    assert {k: v for k, v in env.items() if "WORKER__INSTANCE_ID" not in k and "WEB_HOST" not in k} == (
        _environment(init, docs)
    )
    config.write_text(config.read_text().replace("rolling_windows:", "rolling_window:"))
    with pytest.raises(ConfigError):
        load_settings(config)


def test_the_commented_channels_example_is_a_valid_list_and_its_secrets_are_documented(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from streamwatch.config.settings import load_settings
    from streamwatch.errors import ConfigError

    text = (BASE / "streamwatch.yaml").read_text()
    block = re.search(r"# --- channels example ---\n(.*?)# --- end of channels example ---", text, re.S)
    assert block is not None
    example = "\n".join(line.removeprefix("# ") for line in block.group(1).splitlines())
    names = _env_references(example)
    assert names == {"SLACK_WEBHOOK_URL", "PAGERDUTY_ROUTING_KEY", "WEBHOOK_SECRET"}
    secrets = (BASE / "secrets.env").read_text()
    for name in names:
        assert re.search(rf"^# {name}=", secrets, re.M), f"secrets.env does not show where {name} goes"
        clean_env.setenv(name, "https://hooks.example.com/value" if "URL" in name else "value")
    config = tmp_path / "streamwatch.yaml"
    config.write_text(text.replace(block.group(0), example + "\n"))
    settings = load_settings(config)
    assert [c.type for c in settings.channels] == ["slack", "pagerduty", "webhook", "alertmanager"]
    clean_env.delenv("WEBHOOK_SECRET")
    with pytest.raises(ConfigError, match="WEBHOOK_SECRET is not set"):
        load_settings(config)


# The workers ----------------------------------------------------------------------------------------------------


def _config_settings(docs: list[Doc], tmp_path: Path) -> Any:
    from streamwatch.config.settings import load_settings

    path = tmp_path / "config.yaml"
    text = _data(_config_doc(docs))["streamwatch.yaml"]
    path.write_text(re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::-([^}]*))?\}", "http://placeholder", text))
    return load_settings(path)


def test_each_replica_is_a_static_member_named_by_its_pod_and_replicas_fit_the_partitions(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    docs = _docs()
    statefulset = _worker(docs)
    [container] = statefulset["spec"]["template"]["spec"]["containers"]
    [instance] = [e for e in container["env"] if e["name"] == "STREAMWATCH_WORKER__INSTANCE_ID"]
    assert instance["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert statefulset["spec"]["podManagementPolicy"] == "Parallel"
    # the governing Service is headless and selects the replicas
    governing = _get(docs, "Service", statefulset["spec"]["serviceName"])
    assert governing["spec"]["clusterIP"] == "None"
    assert _selects(governing["spec"]["selector"], statefulset["spec"]["template"]["metadata"]["labels"])
    # replicas beyond the partitions idle: the default is within them, and the comment by `replicas:` says so
    partitions = _config_settings(docs, tmp_path).topics.partitions
    assert 1 <= statefulset["spec"]["replicas"] <= partitions
    source = (BASE / "worker.yaml").read_text()
    comment = source[: source.index("\n  replicas:")].rsplit("\n  serviceName:", 1)[1]
    assert "partitions" in comment and "idle" in comment


def _port_number(container: Doc, port: int | str) -> int:
    if isinstance(port, int):
        return port
    [number] = [p["containerPort"] for p in container.get("ports", []) if p["name"] == port]
    return int(number)


def _probe_errors(container: Doc, web_port: int) -> list[str]:
    errors = []
    args = container["args"]
    if "--web-port" in args:
        web_port = int(args[args.index("--web-port") + 1])
    for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
        probe = container.get(kind)
        if probe is None:
            errors.append(f"no {kind}")
            continue
        get = probe.get("httpGet", {})
        if get.get("path") != "/health" or _port_number(container, get.get("port", 0)) != web_port:
            errors.append(f"{kind} does not reach /health on {web_port}")
    return errors


def test_the_probes_reach_health_where_the_worker_listens() -> None:
    from streamwatch.config.settings import WorkerSettings

    docs = _docs()
    [container] = _worker(docs)["spec"]["template"]["spec"]["containers"]
    web_port = WorkerSettings().web_port
    assert _probe_errors(container, web_port) == []
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["STREAMWATCH_WORKER__WEB_HOST"] == "0.0.0.0"  # 127.0.0.1 by default: the kubelet could not reach it
    # the worker takes ~10-60 s to start: the startup probe allows more than that before liveness counts
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120
    assert container["livenessProbe"]["periodSeconds"] * container["livenessProbe"]["failureThreshold"] >= 60
    # the metrics Service reaches the same port, under the name the ServiceMonitor uses
    metrics = _get(docs, "Service", "streamwatch-metrics")
    [port] = metrics["spec"]["ports"]
    assert port["name"] == "metrics" and _port_number(container, port["targetPort"]) == web_port
    moved = copy.deepcopy(container)
    moved["args"] = [*moved["args"], "--web-port", "7077"]
    assert len(_probe_errors(moved, web_port)) == 3
    renamed = copy.deepcopy(container)
    renamed["readinessProbe"]["httpGet"]["path"] = "/healthz"
    assert _probe_errors(renamed, web_port) == ["readinessProbe does not reach /health on 6066"]


def _parse_args(args: list[str]) -> None:
    """Parse as the CLI does: a command of the app, its options, their values' types (raises if not)."""
    import typer.main

    from streamwatch.cli.main import app

    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    assert args[0] in commands, f"{args[0]} is not a streamwatch command"
    commands[args[0]].make_context(args[0], list(args[1:]))


def test_the_containers_run_real_commands_with_real_options() -> None:
    docs = _docs()
    commands = {c["name"]: c["args"] for _, c in _containers(docs)}
    assert commands["worker"][0] == "worker" and commands["init"] == ["init"]
    for args in commands.values():
        assert "command" not in args  # the image's ENTRYPOINT, streamwatch, is kept
        _parse_args(args)
    for _, container in _containers(docs):
        assert "command" not in container
    with pytest.raises(Exception, match="No such option"):
        _parse_args(["worker", "--refrence", "/profiles/a.json"])
    with pytest.raises(AssertionError, match="not a streamwatch command"):
        _parse_args(["workers"])


def _label_errors(docs: list[Doc]) -> list[str]:
    errors = []
    statefulset = _worker(docs)
    pods = statefulset["spec"]["template"]["metadata"]["labels"]
    job_pods = _job(docs)["spec"]["template"]["metadata"]["labels"]
    if not _selects(statefulset["spec"]["selector"]["matchLabels"], pods):
        errors.append("the StatefulSet does not select its own pods")
    for doc in docs:
        if doc["kind"] == "Service":
            selector = doc["spec"]["selector"]
        elif doc["kind"] == "PodDisruptionBudget":
            selector = doc["spec"]["selector"]["matchLabels"]
        else:
            continue
        if not _selects(selector, pods):
            errors.append(f"{_key(doc)} does not select the workers")
        if _selects(selector, job_pods):
            errors.append(f"{_key(doc)} selects the init Job's pods")
    return errors


def test_the_services_and_the_disruption_budget_select_the_worker_pods() -> None:
    docs = _docs()
    assert _label_errors(docs) == []
    pdb = _get(docs, "PodDisruptionBudget", "streamwatch-worker")
    assert pdb["spec"]["maxUnavailable"] == 1
    for doc in docs:
        assert doc["metadata"]["labels"]["app.kubernetes.io/name"] == "streamwatch", _key(doc)
    assert _worker(docs)["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] == "worker"
    assert _job(docs)["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] == "init"
    mislabelled = _docs()
    _get(mislabelled, "PodDisruptionBudget", "streamwatch-worker")["spec"]["selector"]["matchLabels"][
        "app.kubernetes.io/component"
    ] = "workers"
    assert _label_errors(mislabelled) == ["('PodDisruptionBudget', 'streamwatch-worker') does not select the workers"]


# The image, security and resources ------------------------------------------------------------------------------


def _dockerfile_user() -> tuple[int, str]:
    """The uid the Dockerfile's useradd gives the image's user, and the image's last WORKDIR."""
    text = (ROOT / "Dockerfile").read_text()
    uid = re.search(r"useradd\b[^\n]*--uid[ =](\d+)", text)
    workdirs = re.findall(r"^WORKDIR\s+(\S+)", text, re.M)
    assert uid is not None and workdirs
    return int(uid.group(1)), workdirs[-1]


def _security_errors(workload: Doc, uid: int, workdir: str) -> list[str]:
    pod = workload["spec"]["template"]["spec"]
    context = pod.get("securityContext", {})
    errors = [
        f"pod {field} is {context.get(field)!r}"
        for field, wanted in (
            ("runAsNonRoot", True),
            ("runAsUser", uid),
            ("runAsGroup", uid),
            ("fsGroup", uid),
        )
        if context.get(field) != wanted
    ]
    volumes = {v["name"]: v for v in pod["volumes"]}
    for container in pod["containers"]:
        own = container.get("securityContext", {})
        if own.get("allowPrivilegeEscalation") is not False or own.get("readOnlyRootFilesystem") is not True:
            errors.append(f"{container['name']}: privilege escalation or a writable root filesystem")
        if own.get("capabilities", {}).get("drop") != ["ALL"]:
            errors.append(f"{container['name']}: capabilities not dropped")
        if own.get("runAsUser", uid) != uid:
            errors.append(f"{container['name']}: runs as another user")
        writable = {m["mountPath"] for m in container["volumeMounts"] if "emptyDir" in volumes[m["name"]]}
        for path in ("/tmp", workdir):
            if path not in writable:
                errors.append(f"{container['name']}: no emptyDir at {path}")
    return errors


def test_the_pods_run_as_the_images_user_with_a_read_only_root() -> None:
    uid, workdir = _dockerfile_user()
    assert (uid, workdir) == (10001, "/data")
    docs = _docs()
    for workload in _workloads(docs):
        assert _security_errors(workload, uid, workdir) == [], workload["metadata"]["name"]
        assert workload["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
        # Services' variables (STREAMWATCH_METRICS_PORT=tcp://...) would share the settings' prefix
        assert workload["spec"]["template"]["spec"]["enableServiceLinks"] is False
    assert _security_errors(_worker(docs), uid + 1, workdir) == [
        "pod runAsUser is 10001",
        "pod runAsGroup is 10001",
        "pod fsGroup is 10001",
    ]
    assert _security_errors(_worker(docs), uid, "/app") == ["worker: no emptyDir at /app"]


_UNITS = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def _quantity(value: str | int) -> float:
    number, unit = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(value)).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def test_every_container_has_requests_and_the_workers_follow_the_benchmarks() -> None:
    docs = _docs()
    for _, container in _containers(docs):
        resources = container["resources"]
        for kind in ("cpu", "memory"):
            assert _quantity(resources["requests"][kind]) > 0, (container["name"], kind)
            assert _quantity(resources["limits"][kind]) >= _quantity(resources["requests"][kind])
    [worker] = _worker(docs)["spec"]["template"]["spec"]["containers"]
    readme = (ROOT / "docs" / "benchmarks.md").read_text()
    # "the stage holds ~2.8 GB in memory" at full caps, per partition (docs/benchmarks.md, Scale-out)
    stage = re.search(r"the stage holds ~([0-9.]+) GB in memory", readme)
    assert stage is not None
    full_caps = float(stage.group(1)) * 1e9
    requests, limits = worker["resources"]["requests"], worker["resources"]["limits"]
    assert _quantity(requests["memory"]) >= full_caps  # one partition at full caps
    assert _quantity(limits["memory"]) >= 2 * full_caps  # two: 3 replicas on 6 partitions, or a rebalance
    # one worker process does ~12-15k events/s on a core (docs/benchmarks.md, The worker, end to end; Scale-out)
    assert re.search(r"One worker process: [0-9,]+ events/s", readme)
    assert _quantity(requests["cpu"]) == 1
    source = (BASE / "worker.yaml").read_text()
    for figure in ("2.8 GB", "events/s", "bench/worker.py"):
        assert figure in source, f"worker.yaml's resources comment does not cite {figure}"


def test_the_image_is_the_package_version_set_by_kustomize() -> None:
    import streamwatch

    spec = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    assert spec["images"] == [{"name": "streamwatch", "newTag": streamwatch.__version__}]
    for _, container in _containers(_docs()):
        assert container["image"] == f"streamwatch:{streamwatch.__version__}"
        assert container["imagePullPolicy"] == "IfNotPresent"


# References -----------------------------------------------------------------------------------------------------


def _reference_errors(docs: list[Doc]) -> list[str]:
    """Each ConfigMap, Secret and key a pod reads exists, each mount names a declared volume, each volume is used."""
    errors = []
    names = {_key(d) for d in docs}
    for workload, container in _containers(docs):
        pod = workload["spec"]["template"]["spec"]
        where = f"{workload['metadata']['name']}/{container['name']}"
        for source in container.get("envFrom", []):
            for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                if key in source and (kind, source[key]["name"]) not in names:
                    errors.append(f"{where}: no {kind} {source[key]['name']}")
        for variable in container.get("env", []):
            for kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                ref = variable.get("valueFrom", {}).get(key)
                if ref is None:
                    continue
                if (kind, ref["name"]) not in names:
                    errors.append(f"{where}: no {kind} {ref['name']}")
                elif ref["key"] not in _get(docs, kind, ref["name"]).get("data", {}):
                    errors.append(f"{where}: {kind} {ref['name']} has no key {ref['key']}")
        declared = {v["name"] for v in pod.get("volumes", [])}
        mounted = {m["name"] for c in pod["containers"] for m in c.get("volumeMounts", [])}
        for name in sorted({m["name"] for m in container.get("volumeMounts", [])} - declared):
            errors.append(f"{where}: mounts undeclared volume {name}")
        for name in sorted(declared - mounted):
            errors.append(f"{workload['metadata']['name']}: volume {name} is never mounted")
        for volume in pod.get("volumes", []):
            for kind, key, field in (("ConfigMap", "configMap", "name"), ("Secret", "secret", "secretName")):
                if key in volume and (kind, volume[key][field]) not in names:
                    errors.append(f"{where}: volume {volume['name']} needs {kind} {volume[key][field]}")
    return errors


def test_every_reference_resolves_and_every_mount_is_declared() -> None:
    docs = _docs()
    assert _reference_errors(docs) == []
    pod = _worker(docs)["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
    assert {"/etc/streamwatch", "/profiles", "/tmp", "/data"} <= set(mounts)
    # the Secret holds the ClickHouse password, as a placeholder
    [secret] = [d for d in docs if d["kind"] == "Secret"]
    assert _data(secret) == {"STREAMWATCH_CLICKHOUSE__PASSWORD": "change-me"}
    broken = _docs()
    container = _worker(broken)["spec"]["template"]["spec"]["containers"][0]
    container["env"].append(
        {
            "name": "STREAMWATCH_KAFKA__SASL_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": secret["metadata"]["name"], "key": "SASL_PASSWORD"}},
        }
    )
    container["volumeMounts"].append({"name": "certs", "mountPath": "/certs"})
    assert _reference_errors(broken) == [
        f"streamwatch-worker/worker: Secret {secret['metadata']['name']} has no key SASL_PASSWORD",
        "streamwatch-worker/worker: mounts undeclared volume certs",
    ]


def test_the_init_job_removes_itself_so_that_the_next_apply_runs_it_again() -> None:
    job = _job(_docs())
    assert 0 < job["spec"]["ttlSecondsAfterFinished"] <= 3600
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("OnFailure", "Never")
    source = (BASE / "init-job.yaml").read_text()
    assert "immutable" in source and "idempotent" in source


# What a user does: an overlay --------------------------------------------------------------------------------------


def test_an_overlay_adds_profiles_replaces_the_secret_and_sets_the_image(tmp_path: Path) -> None:
    """The deployment guide's steps: profiles merged into the empty ConfigMap, the placeholder Secret replaced from a
    file that is not committed, the ServiceMonitor component, an image from the user's registry."""
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "credit-risk-3.1.0.json").write_text('{"profile": "stand-in"}\n')
    (tmp_path / "secrets.env").write_text(
        "STREAMWATCH_CLICKHOUSE__PASSWORD=s3cret\nSLACK_WEBHOOK_URL=https://h.example/x\n"
    )
    spec = {
        "resources": [os.path.relpath(BASE, tmp_path)],
        "components": [os.path.relpath(SERVICEMONITOR, tmp_path)],
        "images": [{"name": "streamwatch", "newName": "registry.example.com/streamwatch", "newTag": "0.1.0"}],
        "configMapGenerator": [
            {"name": "streamwatch-profiles", "behavior": "merge", "files": ["profiles/credit-risk-3.1.0.json"]}
        ],
        "secretGenerator": [{"name": "streamwatch-secrets", "behavior": "replace", "envs": ["secrets.env"]}],
    }
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(spec))
    docs = _kubectl(tmp_path) if KUBECTL else _assemble(tmp_path)
    if KUBECTL:  # merge and replace, assembled in Python as kustomize does them
        generators = _generator_names(tmp_path)
        assert sorted(_unhashed(docs, generators), key=_key) == sorted(_assemble(tmp_path), key=_key)
    assert _reference_errors(docs) == []
    pod = _worker(docs)["spec"]["template"]["spec"]
    [profiles] = [v for v in pod["volumes"] if v["name"] == "profiles"]
    profile_map = _get(docs, "ConfigMap", profiles["configMap"]["name"])
    assert set(profile_map["data"]) == {"credit-risk-3.1.0.json"}
    [secret] = [d for d in docs if d["kind"] == "Secret"]
    assert _data(secret) == {"STREAMWATCH_CLICKHOUSE__PASSWORD": "s3cret", "SLACK_WEBHOOK_URL": "https://h.example/x"}
    assert {c["image"] for _, c in _containers(docs)} == {"registry.example.com/streamwatch:0.1.0"}
    assert [d["kind"] for d in docs].count("ServiceMonitor") == 1
