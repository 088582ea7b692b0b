"""The one settings object: environment variables plus one YAML file.

Precedence, highest first: arguments passed in code (the CLI's flags),
``STREAMWATCH_*`` environment variables (nested with ``__``, e.g.
``STREAMWATCH_KAFKA__BOOTSTRAP_SERVERS``), the YAML file named by
``config_file`` or ``STREAMWATCH_CONFIG_FILE``, then defaults.

Strings in the YAML file may say ``${NAME}`` or ``${NAME:-default}`` so that
secrets stay in the environment and the file can be committed. Secrets are
:class:`~pydantic.SecretStr`: they print as ``**********`` and are revealed
only where a client is built.

The YAML file is hostile input until proven otherwise: it is refused, with one
line naming the file and line, when it is larger than :data:`MAX_CONFIG_BYTES`,
holds more than :data:`MAX_VALUES` values, nests deeper than :data:`MAX_NESTING`
or uses anchors and aliases (``&a``, ``*a``: a config never needs them, and
they make a 300-byte "billion laughs" expand to gigabytes). Numbers that feed time arithmetic or librdkafka's 32-bit
properties are bounded, so an overflow is a one-line error too.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from streamwatch.config.durations import MAX_DURATION
from streamwatch.config.models import AlertingConfig, Channel, ModelConfig, RuleConfig, check_references
from streamwatch.errors import ConfigError, describe_validation_error

__all__ = [
    "MAX_CONFIG_BYTES",
    "MAX_NESTING",
    "MAX_VALUES",
    "ClickHouseSettings",
    "KafkaSettings",
    "ProducerSettings",
    "Settings",
    "TopicSettings",
    "WindowSettings",
    "WorkerSettings",
    "load_settings",
    "setting_anchor",
    "setting_names",
]

ENV_PREFIX = "STREAMWATCH_"
CONFIG_FILE_ENV = "STREAMWATCH_CONFIG_FILE"

#: The largest YAML config file read: 1 MiB (a full config is a few KiB).
MAX_CONFIG_BYTES = 1 << 20
#: The deepest nesting of mappings and lists in the YAML file (a config needs about 6).
MAX_NESTING = 32
#: The most values (scalars, mappings and lists) in the YAML file: building Python objects is
#: what costs (some µs each), and a config with a thousand feature overrides has about 6000.
MAX_VALUES = 100_000
# Durations given in milliseconds or days obey the same ten-year bound as "5m"-style ones.
_MAX_MS = int(MAX_DURATION.total_seconds() * 1000)
_MAX_DAYS = MAX_DURATION.days
# librdkafka's integer properties are 32-bit.
_INT32_MAX = 2**31 - 1


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KafkaSettings(_Section):
    """How to reach Kafka. Security settings pass straight to librdkafka.

    For Confluent Cloud style API keys use ``SASL_SSL`` with ``PLAIN``, the key
    as ``sasl_username`` and the secret as ``sasl_password``.
    """

    bootstrap_servers: str = "127.0.0.1:9092"
    client_id: str = "streamwatch"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: Path | None = None
    ssl_certificate_location: Path | None = None
    ssl_key_location: Path | None = None
    ssl_key_password: SecretStr | None = None
    librdkafka: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Any other librdkafka property. Values are treated as secrets and never printed.",
    )

    @model_validator(mode="after")
    def _sasl_complete(self) -> KafkaSettings:
        if self.security_protocol.startswith("SASL"):
            if self.sasl_mechanism is None:
                raise ValueError(f"sasl_mechanism: required when security_protocol is {self.security_protocol}")
            if self.sasl_mechanism != "OAUTHBEARER" and (self.sasl_username is None or self.sasl_password is None):
                raise ValueError(f"sasl_username: username and password required for {self.sasl_mechanism}")
        return self


class TopicSettings(_Section):
    """Topic names. Predictions, features and labels must have equal partition counts."""

    predictions: str = "streamwatch.predictions"
    features: str = "streamwatch.features"
    labels: str = "streamwatch.labels"
    alerts: str = "streamwatch.alerts"
    retrain: str = "streamwatch.retrain"
    deadletter: str = "streamwatch.deadletter"
    control: str = Field("streamwatch.control", description="Circuit-break events for the serving layer.")
    notifications: str = Field("streamwatch.notifications", description="The durable outbox of notifications.")
    silences: str = Field("streamwatch.silences", description="Silences, compacted by id.")
    partitions: int = Field(
        6, ge=1, le=100_000, description="Partitions `streamwatch init` creates for each input topic."
    )
    replication_factor: int | None = Field(
        None,
        ge=1,
        le=32,
        description="Replicas of each topic `streamwatch init` creates; unset, the broker's "
        "default.replication.factor (3 on a production cluster, 1 on a single broker).",
    )


class ProducerSettings(_Section):
    """The SDK's bounds. When the buffer is full, events are dropped and counted, never blocked on."""

    buffer_max_messages: int = Field(100_000, ge=1, le=10_000_000)
    buffer_max_kbytes: int = Field(64 * 1024, ge=1, le=_INT32_MAX)
    linger_ms: float = Field(50, ge=0, le=900_000, description="How long librdkafka waits to fill a batch.")
    message_timeout_ms: int = Field(
        300_000,
        ge=1,
        le=_INT32_MAX,
        description="How long an event waits for an unreachable broker before it is dropped.",
    )
    compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = "lz4"
    strict: bool = Field(False, description="Raise ContractError into the caller instead of dropping and counting.")


class ClickHouseSettings(_Section):
    """Where results go: embedded chdb at a local path by default, or a ClickHouse server.

    ``dsn`` is ``chdb://memory``, ``chdb:///absolute/path``, ``chdb://relative/path``
    (from the current directory), or ``http(s)://host:8123`` for a server. chdb
    locks its path to one process: several workers need a server.
    """

    dsn: str = "chdb://./streamwatch-data/clickhouse"
    database: str = Field("streamwatch", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    username: str = "default"
    password: SecretStr | None = None
    secure: bool = Field(False, description="TLS to the server (implied by an https:// dsn).")
    verify: bool = True
    ca_cert: Path | None = None
    raw_ttl_days: int = Field(30, ge=0, le=_MAX_DAYS, description="Days raw events are kept; 0 keeps them forever.")
    raw_events: Literal["all", "sample", "none"] = Field(
        "all",
        description="Which raw events (predictions, feature events, labels) are stored: all; a sample of requests "
        "(raw_sample_rate), every event of a request kept or dropped together; or none. Metrics and dead letters "
        "are stored whatever this says.",
    )
    raw_sample_rate: float = Field(
        0.01,
        gt=0,
        le=1,
        description="With raw_events: sample, the share of requests whose raw events are stored, chosen by a hash "
        "of the request id (the event id when there is none), so a retry stores the same events.",
    )
    connect_timeout_s: float = Field(10.0, gt=0, le=3600)


class WindowSettings(_Section):
    """Event-time windows, shared by every model (see the documentation)."""

    size_ms: int = Field(60_000, ge=1_000, le=_MAX_MS)
    allowed_lateness_ms: int = Field(10_000, ge=0, le=_MAX_MS)
    label_horizon_ms: int = Field(
        86_400_000, ge=1_000, le=_MAX_MS, description="How long after a prediction its label may come."
    )
    rolling_windows: int = Field(60, ge=0, le=100_000, description="Windows a rolling view merges; below 2, none.")
    detector: Literal["page_hinkley", "adwin", "kswin"] = "page_hinkley"
    drift_calibration: Literal["auto", "off"] = Field(
        "auto",
        description="auto: drift thresholds calibrated on the reference for each window's size (small windows "
        "stray more by chance); off: the fixed defaults.",
    )
    performance_view_ms: int = Field(
        1_800_000,
        ge=0,
        le=_MAX_MS,
        description="Performance and fairness are also reported over the predictions of this trailing span "
        "(a rolling view, window label e.g. `30m`), which the default performance and fairness rules judge: one "
        "minute holds too few labelled requests per slice to see a gap of 10 points. 0: no view.",
    )
    performance_interval_ms: int = Field(
        300_000,
        ge=0,
        le=_MAX_MS,
        description="How often, in event time, a window whose labels keep coming is reported again: its "
        "performance goes out once it closes, then at most once per interval, however labels trickle in "
        "(every report re-computes its figures and fairness); windows within performance_view_ms, which the "
        "rules judge, are reported at every window close. 0: whenever a window closes.",
    )


class WorkerSettings(_Section):
    """The stream workers: their consumer group, batches, checkpoints and web server."""

    group: str = Field("streamwatch", min_length=1, max_length=128)
    instance_id: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        description="Kafka static membership id, unique per replica (a pod name): a restarted worker "
        "takes its partitions back at once.",
    )
    batch_size: int = Field(5_000, ge=1, le=100_000, description="Messages per batch through the core.")
    checkpoint_interval_ms: int = Field(
        5_000, ge=100, le=_MAX_MS, description="How often each partition's state is saved."
    )
    idle_timeout_ms: int = Field(
        30_000, ge=100, le=_MAX_MS, description="A partition this quiet follows the others' event time."
    )
    max_future_ms: int = Field(
        300_000,
        ge=0,
        le=_MAX_MS,
        description="An event this far after its Kafka timestamp is a dead letter; one this far ahead of its "
        "partition's other events moves event time only once the next event confirms it.",
    )
    max_age_ms: int = Field(
        7 * 86_400_000, ge=0, le=_MAX_MS, description="An event this far before its Kafka timestamp is a dead letter."
    )
    unknown_models: Literal["dead_letter", "accept"] = Field(
        "dead_letter",
        description="Events of a model not in `models`, or of a version without a reference when the model lists "
        "references: dead letters (counted), or monitored like the others. With no model configured, all are.",
    )
    report_interval_ms: int = Field(
        1_000, ge=50, le=_MAX_MS, description="How often the reporting worker merges partials and judges alert rules."
    )
    web_host: str = "127.0.0.1"
    web_port: int = Field(6066, ge=1, le=65535)


class Settings(BaseSettings):
    """Every setting streamwatch has, from code, environment and the YAML file."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True, validate_default=False
    )

    config_file: Path | None = Field(None, description="The YAML file models, rules and channels came from.")
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    producer: ProducerSettings = Field(default_factory=ProducerSettings)
    clickhouse: ClickHouseSettings = Field(default_factory=ClickHouseSettings)
    windows: WindowSettings = Field(default_factory=WindowSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    models: list[ModelConfig] = Field(default_factory=list)
    rules: list[RuleConfig] = Field(default_factory=list)
    channels: list[Channel] = Field(default_factory=list)
    alerting: AlertingConfig = Field(default_factory=AlertingConfig)

    @model_validator(mode="after")
    def _monitor_config_consistent(self) -> Settings:
        check_references(self.models, self.rules, self.channels)
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _YamlFileSource(settings_cls, init_settings)


class _YamlFileSource(PydanticBaseSettingsSource):
    """Reads the YAML file named in code or by ``STREAMWATCH_CONFIG_FILE``."""

    def __init__(self, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        path = init_settings().get("config_file") or os.environ.get(CONFIG_FILE_ENV)
        self.path = Path(path) if path else None
        self.data = _read_yaml(self.path) if self.path else {}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.data)


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _Refused(yaml.MarkedYAMLError):
    """YAML that is well formed but not accepted in a config file."""


# libyaml's parser when PyYAML has it (about 20 times faster than the pure-Python one).
_FastSafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _check_events(text: str) -> None:
    """Refuse anchors, aliases and deep nesting from the parser's events, before anything is built.

    Events are cheap (an alias is one event, not its expansion), so a "billion
    laughs" is refused after a few hundred bytes, nothing deeper than
    :data:`MAX_NESTING` reaches the recursive composer, and no more than
    :data:`MAX_VALUES` objects are built.
    """
    depth = values = 0
    for event in yaml.parse(text, Loader=_FastSafeLoader):
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(
                problem="YAML aliases (*name) are not allowed in a config file", problem_mark=event.start_mark
            )
        if getattr(event, "anchor", None) is not None:
            raise _Refused(
                problem="YAML anchors (&name) are not allowed in a config file", problem_mark=event.start_mark
            )
        if isinstance(event, yaml.NodeEvent):
            values += 1
            if values > MAX_VALUES:
                raise _Refused(problem=f"more than {MAX_VALUES} values", problem_mark=event.start_mark)
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_NESTING:
                raise _Refused(problem=f"nested more than {MAX_NESTING} levels deep", problem_mark=event.start_mark)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


class _ConfigLoader(_FastSafeLoader):
    """The safe loader, with a scalar that Python cannot hold (a timestamp of month 13, an integer of
    5000 digits) turned into a YAML error that has a line, rather than a bare ValueError."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError):
            kind = node.tag.rsplit(":", 1)[-1] if isinstance(node.tag, str) else "scalar"
            kind = {"int": "integer", "float": "number", "bool": "boolean"}.get(kind, kind)
            raise _Refused(problem=f"invalid {kind} value", problem_mark=node.start_mark) from None


# The last file parsed, as (bytes, data): a setting that fails validation re-reads the file to
# name the rule or channel at fault, and should not pay for a second parse.
_last_parsed: list[tuple[bytes, Any]] = []


def _parse(raw: bytes, text: str) -> Any:
    if _last_parsed and _last_parsed[0][0] == raw:
        return _last_parsed[0][1]
    _check_events(text)
    data = yaml.load(text, Loader=_ConfigLoader)  # a safe loader, after the refusals above
    _last_parsed[:] = [(raw, data)]
    return data


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"config file {path}: cannot be read ({exc.strerror})") from None
    if len(raw) > MAX_CONFIG_BYTES:
        last = raw[:MAX_CONFIG_BYTES].count(b"\n") + 1
        raise ConfigError(f"config file {path} line {last}: larger than {MAX_CONFIG_BYTES >> 20} MiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"config file {path} line {bad}: not UTF-8 text") from None
    try:
        data = _parse(raw, text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" line {where.line + 1}" if where is not None else ""
        problem = " ".join(str(getattr(exc, "problem", None) or "invalid YAML").split())
        raise ConfigError(f"config file {path}{line}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: must be a mapping of settings at the top level")
    return _expand_env(data, path, "")


def _expand_env(node: Any, path: Path, where: str) -> Any:
    if isinstance(node, dict):
        return {k: _expand_env(v, path, f"{where}.{k}" if where else str(k)) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand_env(v, path, f"{where}[{i}]") for i, v in enumerate(node)]
    if isinstance(node, str):

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            value = os.environ.get(name, default)
            if value is None:
                raise ConfigError(f"config file {path}: {where}: environment variable {name} is not set")
            return value

        return _ENV_REF.sub(substitute, node)
    return node


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Build :class:`Settings`, turning any validation error into a one-line :class:`ConfigError`.

    >>> load_settings(kafka={"security_protocol": "SASL_SSL"})
    Traceback (most recent call last):
    ...
    streamwatch.errors.ConfigError: invalid setting kafka.sasl_mechanism: required when security_protocol is SASL_SSL
    """
    if config_file is not None:
        overrides["config_file"] = Path(config_file)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise _config_error(exc, overrides) from None
    except SettingsError as exc:  # an environment variable that is not valid JSON for a nested setting
        raise _environment_error(str(exc)) from None
    except RecursionError:  # JSON in an environment variable nested too deep for json.loads
        raise _environment_error("") from None


_SETTINGS_ERROR_FIELD = re.compile(r'error parsing value for field "([^"]+)"')


def _environment_error(message: str) -> ConfigError:
    """One line for a SettingsError's ``message``, or (``""``) for JSON too deep for ``json.loads``."""
    if match := _SETTINGS_ERROR_FIELD.search(message):
        field = match.group(1)
        return ConfigError(
            f"invalid setting {field}: not valid JSON (from environment variable {ENV_PREFIX}{field.upper()})"
        )
    if message:
        return ConfigError(f"invalid {ENV_PREFIX}* environment variable: {' '.join(message.split())}")
    names = sorted(name for name, value in os.environ.items() if name.startswith(ENV_PREFIX))
    deepest = max(names, key=lambda name: _json_depth(os.environ[name]), default=None)
    if deepest is None:
        return ConfigError(f"invalid {ENV_PREFIX}* environment variable: nested too deeply")
    field = deepest[len(ENV_PREFIX) :].lower().replace("__", ".")
    return ConfigError(f"invalid setting {field}: nested too deeply (from environment variable {deepest})")


def _json_depth(text: str) -> int:
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _config_error(exc: ValidationError, overrides: dict[str, Any]) -> ConfigError:
    path = overrides.get("config_file") or os.environ.get(CONFIG_FILE_ENV)
    data = _read_yaml(Path(path)) if path else {}
    field, reason = describe_validation_error(exc, data)
    source = ""
    env_name = ENV_PREFIX + field.upper().replace(".", "__")
    if env_name in os.environ:
        source = f" (from environment variable {env_name})"
    elif path:
        source = f" (in {path})"
    return ConfigError(f"invalid setting {field}: {reason}{source}")


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models a field's annotation holds: itself, or inside a list, a dict's values or a union."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for argument in get_args(annotation) for model in _models_in(argument)]


def setting_names(model: type[BaseModel] | None = None, prefix: str = "") -> list[str]:
    """Every setting's dotted name, sections and the YAML file's models, rules and channels included; a list's or a
    dict's items are named by their fields (``models.task``). The settings reference has an anchor for each.

    >>> names = setting_names()
    >>> "windows.size_ms" in names and "kafka" in names and "models.task" in names and "rules.for" in names
    True
    >>> "channels.slack.webhook_url" in names
    True
    """
    names: list[str] = []
    for field, info in (model or Settings).model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):  # the first spelling is the documented one (rules' `for`)
            alias = alias.choices[0]
        name = f"{prefix}{alias if isinstance(alias, str) else info.alias or field}"
        names.append(name)
        inner = list(dict.fromkeys(_models_in(info.annotation)))
        if len(inner) > 1 and all(_tag(member) for member in inner):
            # A tagged union (channels): the fields all members share, then each member's own under its tag, as
            # pydantic's errors name them (channels.slack.webhook_url)
            shared = set.intersection(*(set(member.model_fields) for member in inner))
            names.extend(f"{name}.{field}" for field in inner[0].model_fields if field in shared)
            for member in inner:
                names.append(f"{name}.{_tag(member)}")
                own = [
                    f for f in setting_names(member, f"{name}.{_tag(member)}.") if f.rpartition(".")[2] not in shared
                ]
                names.extend(own)
            continue
        for member in inner:
            names.extend(setting_names(member, f"{name}."))
    return list(dict.fromkeys(names))


def _tag(model: type[BaseModel]) -> str | None:
    """A tagged union member's tag: the one value its ``type`` field allows."""
    field = model.model_fields.get("type")
    values = get_args(field.annotation) if field is not None else ()
    return str(values[0]) if len(values) == 1 else None


def setting_anchor(name: str) -> str:
    """The settings reference's anchor for a setting an error names: list items and dict keys dropped, and an
    unknown name (a misspelt field) cut back to the section that has it.

    >>> setting_anchor("models['credit'].task"), setting_anchor("kafka.bootstrap_server"), setting_anchor("bogus")
    ('models.task', 'kafka', '')
    >>> setting_anchor("models['credit'].features.age.monitor")
    'models.features.monitor'
    """
    plain = re.sub(r"\[[^\]]*\]", "", name)
    known = set(setting_names())
    parts = plain.split(".")
    # A mapping's key may be a segment of its own (models['m'].features.age.monitor): try without each
    candidates = [plain, *(".".join(parts[:i] + parts[i + 1 :]) for i in range(1, len(parts) - 1))]
    found = next((candidate for candidate in candidates if candidate in known), None)
    if found:
        return found
    while plain and plain not in known:
        plain = plain.rpartition(".")[0]
    return plain
