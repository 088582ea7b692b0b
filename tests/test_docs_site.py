"""The documentation site's generated reference pages (docs/gen_reference.py) cover what the code has.

The page builders are called directly, without mkdocs: `make docs` (run by `make test`) builds the site
with --strict, which fails on a broken link or anchor.
"""

from __future__ import annotations

import doctest
import importlib.util
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr

from streamwatch.alerts.defaults import DEFAULT_RULES
from streamwatch.config.settings import Settings
from streamwatch.core.catalogue import MetricDoc
from streamwatch.core.records import MetricRow

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gen() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("gen_reference", ROOT / "docs" / "gen_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def settings_page(gen: types.ModuleType) -> str:
    return str(gen.settings_page())


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models a field's annotation holds (through Annotated, unions, lists and dicts)."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def _yaml_name(name: str, field: Any) -> str:
    choices = getattr(field.validation_alias, "choices", None)
    return str(choices[0]) if choices else name


def expected_settings(model: type[BaseModel], prefix: str = "", env: bool = True) -> list[tuple[str, str | None]]:
    """(dotted name, environment variable or None) of every leaf setting, walked from the model's fields."""
    out: list[tuple[str, str | None]] = []
    for name, field in model.model_fields.items():
        dotted = f"{prefix}.{_yaml_name(name, field)}" if prefix else _yaml_name(name, field)
        models = _models(field.annotation)
        collection = typing.get_origin(field.annotation) in (list, dict)
        if not models:
            out.append((dotted, "STREAMWATCH_" + dotted.upper().replace(".", "__") if env else None))
        elif len(models) == 1:
            out += expected_settings(models[0], dotted, env and not collection)
        else:  # a discriminated union (channels): each member's fields, under its `type` unless all share it
            shared = set.intersection(*(set(m.model_fields) for m in models))
            for member in models:
                tag = typing.get_args(member.model_fields["type"].annotation)[0]
                for leaf, _ in expected_settings(member, dotted, False):
                    field_name = leaf.rsplit(".", 1)[-1]
                    out.append((leaf if field_name in shared else f"{dotted}.{tag}.{field_name}", None))
    return list(dict.fromkeys(out))


def missing_settings(page: str, expected: list[tuple[str, str | None]]) -> list[str]:
    """The settings the page lacks: no anchor of the dotted name, or no row naming its environment variable."""
    missing = []
    for dotted, env in expected:
        row = re.search(
            rf"^\| \[`{re.escape(dotted)}`\]\(#{re.escape(dotted)}\)\{{#{re.escape(dotted)}\}} \|.*$", page, re.M
        )
        if row is None or (env is not None and f"`{env}`" not in row.group(0)):
            missing.append(dotted)
    return missing


def test_settings_page_lists_every_setting(settings_page: str) -> None:
    expected = expected_settings(Settings)
    names = [dotted for dotted, _ in expected]
    # The walk reaches every kind of setting: a section's, a nested section's, the YAML lists' and a channel's own.
    for name in (
        "windows.size_ms",
        "clickhouse.password",
        "alerting.retrain.cooldown",
        "models.slo.target",
        "rules.when.metric",
        "rules.for",
        "channels.name",
        "channels.webhook.signing_secret",
        "config_file",
    ):
        assert name in names
    assert ("windows.size_ms", "STREAMWATCH_WINDOWS__SIZE_MS") in expected
    assert missing_settings(settings_page, expected) == []
    assert len(re.findall(r"\{#windows\.size_ms\}", settings_page)) == 1


def test_a_setting_that_does_not_exist_is_missing(settings_page: str) -> None:
    made_up = [("windows.made_up_ms", "STREAMWATCH_WINDOWS__MADE_UP_MS"), ("models.made_up", None)]
    assert missing_settings(settings_page, made_up) == ["windows.made_up_ms", "models.made_up"]
    # A real setting with the wrong environment variable is missing too.
    assert missing_settings(settings_page, [("windows.size_ms", "STREAMWATCH_WINDOWS_SIZE_MS")]) == ["windows.size_ms"]


def test_secrets_show_no_default(settings_page: str) -> None:
    for section in ("kafka", "clickhouse"):
        model = Settings.model_fields[section].annotation
        for name, field in model.model_fields.items():  # type: ignore[union-attr]
            if SecretStr in typing.get_args(field.annotation) or field.annotation is SecretStr:
                row = next(line for line in settings_page.splitlines() if f"{{#{section}.{name}}}" in line)
                assert "secret, not shown" in row, row


def test_every_section_heading_has_its_anchor(settings_page: str) -> None:
    for heading in ("kafka", "windows", "alerting", "alerting.retrain", "models", "models.slo", "channels.slack"):
        assert re.search(rf"^#+ `{re.escape(heading)}` \{{#{re.escape(heading)}\}}$", settings_page, re.M), heading


def test_cli_page_lists_every_command_and_option(gen: types.ModuleType) -> None:
    page = gen.cli_page()
    sections = re.split(r"^#+ ", page, flags=re.M)
    commands = list(gen.walk_commands(gen.cli_command()))
    assert {" ".join(path) for path, _ in commands} >= {"streamwatch replay", "streamwatch config check"}
    for path, command in commands:
        heading = f"`{' '.join(path)}` {{#{gen.command_anchor(path)}}}"
        section = next((s for s in sections if s.startswith(heading)), None)
        assert section is not None, heading
        for param in command.params:
            if param.param_type_name == "option" and not param.hidden:
                for opt in param.opts:
                    assert f"`{opt}`" in section, (path, opt)
    assert "`STREAMWATCH_CONFIG_FILE`" in page


def test_rules_page_has_an_anchor_per_default_rule(gen: types.ModuleType) -> None:
    page = gen.rules_page()
    for rule in DEFAULT_RULES:
        assert len(re.findall(rf"^## `{re.escape(rule.name)}` \{{#{re.escape(rule.name)}\}}$", page, re.M)) == 1
        if rule.when.metric:
            assert f"(metrics.md#{rule.when.metric})" in page
    assert "{#no-such-rule}" not in page


def test_rules_take_their_description_from_the_comment_above_them(gen: types.ModuleType) -> None:
    descriptions = gen._rule_comments()
    assert set(descriptions) == {rule.name for rule in DEFAULT_RULES}
    assert descriptions["feature-drift"].startswith("A feature or the score drifted")
    assert descriptions["accuracy-drop"] == descriptions["auc-drop"]  # one comment above both


def test_metrics_page_groups_by_family_and_links_rules(gen: types.ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    metrics = [MetricDoc(m, "Judged", f"The {m}.", "x", "ratio", "Higher is worse.", ()) for m in gen.rule_metrics()]
    metrics.append(MetricDoc("psi", "Drift", "Population stability.", "Σ (a-e) ln(a/e)", "", "", ("feature-drift",)))
    fake = types.ModuleType("streamwatch.core.catalogue")
    fake.METRICS = tuple(metrics)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "streamwatch.core.catalogue", fake)
    page = gen.metrics_page()
    assert "## Drift\n" in page and "## Judged\n" in page
    assert "### `psi` {#psi}" in page
    assert "[`feature-drift`](rules.md#feature-drift)" in page
    fake.METRICS = (*metrics, MetricDoc("psi", "Drift", "", "", "", "", ()))  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="twice"):
        gen.metrics_page()


def test_metrics_page_fails_without_the_catalogue(gen: types.ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """No catalogue is an ImportError, never an empty page (a None in sys.modules makes the import fail)."""
    monkeypatch.setitem(sys.modules, "streamwatch.core.catalogue", None)  # type: ignore[arg-type]  # None: absent
    with pytest.raises(ImportError):
        gen.metrics_page()


def test_contract_page_has_every_schema_and_field(gen: types.ModuleType) -> None:
    import json

    page = gen.contract_page()
    for path in gen.schema_files():
        stem = path.name.removesuffix(".schema.json")
        assert f"{{#{stem}}}" in page and f"(schemas/{path.name})" in page
        for name in json.loads(path.read_text()).get("properties", {}):
            assert f"| `{name}` |" in page


def test_export_page_has_every_exported_key(gen: types.ModuleType) -> None:
    page = gen.export_page()
    for key in MetricRow("m", "1", "production", 0, 60_000, "psi", 0.1).export():
        assert f"| `{key}` |" in page


def test_sql_comments_find_every_table_created(gen: types.ModuleType) -> None:
    created = set(gen._sql_comments())
    assert {"predictions", "metrics", "partials", "checkpoints", "confusion_matrix"} <= created


def test_the_generator_doctests_pass(gen: types.ModuleType) -> None:
    assert doctest.testmod(gen).failed == 0


def test_every_setting_an_error_can_name_links_to_an_anchor_of_the_settings_page(settings_page: str) -> None:
    """The CLI's errors link to reference/settings/#<setting_anchor(name)> (cli.main.with_reference)."""
    from streamwatch.config.settings import setting_anchor, setting_names

    anchors = set(re.findall(r'\{#([^}\s]+)\}|id="([^"]+)"', settings_page))
    anchors = {a or b for a, b in anchors}
    missing = sorted({setting_anchor(name) for name in setting_names()} - anchors)
    assert not missing, f"no anchor on the settings page for {missing}"
    assert "kafka.bootstrap_server" not in anchors  # a misspelt setting has none: its link goes to the section
