"""The pipeline a config describes, and the reference profiles it judges against.

Shared by ``streamwatch replay`` and ``streamwatch worker``, so that both run
the very same pipeline for the same settings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from pydantic import ValidationError

from streamwatch.config.settings import Settings
from streamwatch.core.budget import AlertBudget
from streamwatch.core.slo import SLO
from streamwatch.errors import ConfigError, describe_validation_error
from streamwatch.pipeline.pipeline import Pipeline
from streamwatch.profiles.model import ReferenceProfile

__all__ = ["Profiles", "admission", "configured_profiles", "load_profiles", "pipeline_from_settings"]

Profiles = dict[tuple[str, str], ReferenceProfile]


def load_profiles(paths: Iterable[Path | str]) -> Profiles:
    """Read reference profiles, keyed by their lineage's ``(model, model_version)``.

    Raises :class:`~streamwatch.errors.ConfigError`, one line naming the file, for
    a file that cannot be read, is not JSON or is not a valid profile, and for
    two files of the same model version.
    """
    profiles: Profiles = {}
    origin: dict[tuple[str, str], Path] = {}
    for path in map(Path, paths):
        profile = _load_profile(path)
        key = (profile.lineage.model, profile.lineage.model_version)
        if key in profiles:
            raise ConfigError(f"reference {path}: model {key[0]} version {key[1]} already given by {origin[key]}")
        profiles[key], origin[key] = profile, path
    return profiles


def _load_profile(path: Path) -> ReferenceProfile:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"reference {path}: cannot be read ({exc.strerror})") from None
    try:
        return ReferenceProfile.model_validate_json(data)
    except ValidationError as exc:
        if exc.errors()[0]["type"] == "json_invalid":
            raise ConfigError(f"reference {path}: not valid JSON ({exc.errors()[0]['msg']})") from None
        where, reason = describe_validation_error(exc)
        raise ConfigError(f"reference {path}: not a valid reference profile: {where}: {reason}") from None


def configured_profiles(settings: Settings) -> Profiles:
    """The profiles the config file's models list under ``references``.

    Relative paths are taken from the config file's directory. Each profile
    must be of the model and version it is listed under.
    """
    base = settings.config_file.parent if settings.config_file else Path()
    profiles: Profiles = {}
    for model in settings.models:
        for version, path in model.references.items():
            profile = _load_profile(base / path)
            found = (profile.lineage.model, profile.lineage.model_version)
            if found != (model.name, version):
                raise ConfigError(
                    f"reference {base / path}: is a profile of model {found[0]} version {found[1]}, "
                    f"but models[{model.name!r}].references lists it for version {version}"
                )
            profiles[model.name, version] = profile
    return profiles


def pipeline_from_settings(settings: Settings, profiles: Mapping[tuple[str, str], ReferenceProfile]) -> Pipeline:
    """The pipeline the settings describe: each model's task, slices, SLO and drift thresholds.

    Window length, lateness, label horizon, rolling view and detector come from
    the ``windows`` settings, the same for every model.
    """
    slices: dict[str, list[list[str]]] = {}
    slos: dict[str, SLO] = {}
    thresholds: dict[str, dict[str, dict[str, float]]] = {}
    for model in settings.models:
        if model.segments:
            slices[model.name] = [[s] if isinstance(s, str) else list(s) for s in model.segments]
        if model.slo is not None:
            minutes = int(model.slo.period.total_seconds() // 60)
            if minutes < 1:
                raise ConfigError(f"invalid setting models[{model.name!r}].slo.period: must be at least 1m")
            slos[model.name] = SLO(
                target=model.slo.target,
                latency_ms=model.slo.latency_ms,
                period_minutes=minutes,
                min_bad_events=model.slo.min_bad_events,
            )
        features = {name: dict(f.thresholds) for name, f in model.features.items() if f.thresholds}
        if features:
            thresholds[model.name] = features
    tasks = _tasks(settings, profiles)
    windows = settings.windows
    return Pipeline(
        profiles,
        window_ms=windows.size_ms,
        allowed_lateness_ms=windows.allowed_lateness_ms,
        label_horizon_ms=windows.label_horizon_ms,
        rolling_windows=windows.rolling_windows,
        detector=windows.detector,
        slices=slices,
        slos=slos,
        tasks=tasks,
        thresholds=thresholds,
        calibrate_for="auto" if windows.drift_calibration == "auto" else None,
        max_lead_ms=settings.worker.max_future_ms,
        admit=admission(settings),
        budget=AlertBudget(settings.alerting.false_alerts_per_week),
        performance_view_ms=windows.performance_view_ms,
        performance_interval_ms=windows.performance_interval_ms,
    )


def _tasks(settings: Settings, profiles: Mapping[tuple[str, str], ReferenceProfile]) -> dict[str, str]:
    """Each model's task: the configured one, which must agree with what its profiles state; else the one its
    profiles state (a model configured with no task and profiled as multiclass is multiclass)."""
    tasks: dict[str, str] = {}
    for model in settings.models:
        stated = sorted({p.task for (name, _), p in profiles.items() if name == model.name and p.task})
        if "task" in model.model_fields_set:
            if any(task != model.task for task in stated):
                other = next(task for task in stated if task != model.task)
                raise ConfigError(
                    f"invalid setting models[{model.name!r}].task: {model.task}, but its reference profile "
                    f"states {other}"
                )
            tasks[model.name] = model.task
        elif len(stated) > 1:
            raise ConfigError(
                f"invalid setting models[{model.name!r}]: its reference profiles state different tasks "
                f"({', '.join(stated)}); set `task`"
            )
        elif stated:
            tasks[model.name] = stated[0]
    return tasks


def admission(settings: Settings) -> Callable[[str, str | None], bool] | None:
    """Which model versions are monitored: ``admit(model, version)``, or ``None`` for all.

    With ``worker.unknown_models: dead_letter`` (the default) and models configured, only
    those models are, and of a model that lists ``references``, only those versions: a
    producer cannot make streamwatch keep state (windows, alerts, checkpoints) for names
    it invents (a model's ``versions: any`` monitors all its versions). With no model
    configured, or ``accept``, every model version is monitored.

    >>> from streamwatch.config.settings import Settings
    >>> admit = admission(Settings(models=[{"name": "credit", "references": {"3": "credit-3.json"}}]))
    >>> admit("credit", "3"), admit("credit", "4"), admit("credit", None), admit("fraud", "1")
    (True, False, True, False)
    >>> admission(Settings()) is None
    True
    """
    if settings.worker.unknown_models == "accept" or not settings.models:
        return None
    versions = {m.name: frozenset(m.references) if m.versions == "referenced" else frozenset() for m in settings.models}

    def admit(model: str, version: str | None) -> bool:
        known = versions.get(model)
        return known is not None and (version is None or not known or version in known)

    return admit
