"""Generate the site's reference pages from the code, at build time, so that they cannot go stale.

mkdocs-gen-files runs this file (``plugins: gen-files`` in ``mkdocs.yml``) and it writes, in memory:

- ``reference/cli.md``: the typer app's command tree, walked as click commands;
- ``reference/settings.md``: :class:`streamwatch.config.settings.Settings` and the YAML file's models, one anchor
  per setting, named by its dotted name (``#windows.size_ms``);
- ``reference/contract.md``: the JSON Schemas in ``schemas/`` (copied next to the page as well);
- ``reference/export.md``: the JSON Lines export of :mod:`streamwatch.replay.export`, its keys taken from the
  records' ``export()``;
- ``reference/tables.md``: the ClickHouse schema, applied to an embedded chdb and read back from ``system.*``;
- ``reference/metrics.md``: ``streamwatch.core.catalogue.METRICS`` (an ImportError if it is missing: no empty page);
- ``reference/rules.md``: ``streamwatch.alerts.defaults.DEFAULT_RULES``, one anchor per rule name;
- ``reference/python-api.md``: mkdocstrings directives for the public API (``streamwatch.__all__``).

Each page is built by a ``*_page()`` function that returns Markdown, so tests import this file and call them.
:class:`DocstringMarkup` is a griffe extension (``mkdocs.yml`` names it) that turns the docstrings' reST roles
and bare doctests into Markdown.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import io
import json
import re
import tokenize
import types
import typing
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import griffe

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "schemas"
SETTINGS_PAGE = "reference/settings.md"

# ---------------------------------------------------------------------------------------------------------------
# Markdown helpers

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|data|attr|exc|obj|const|term|ref):`(~?)([^`<]+?)(?:\s*<[^>]+>)?`")


def rst_to_md(text: str) -> str:
    """Docstring reST to Markdown: ``:class:`~a.B``` -> `` `B` ``, ````code```` -> `` `code` ``.

    >>> rst_to_md("see :class:`~streamwatch.sdk.producer.Producer` and ``x|y``")
    'see `Producer` and `x|y`'
    """

    def role(match: re.Match[str]) -> str:
        target = match.group(2).strip()
        return f"`{target.rsplit('.', 1)[-1] if match.group(1) else target}`"

    text = _ROLE.sub(role, text)
    return re.sub(r"``([^`]+)``", r"`\1`", text)


def cell(text: object) -> str:
    """Text fit for one Markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def code(text: object) -> str:
    """Inline code, safe for a table cell."""
    value = str(text)
    fence = "``" if "`" in value else "`"
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{fence}{pad}{value}{pad}{fence}".replace("|", "\\|")


def table(header: list[str], rows: Iterable[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def paragraphs(docstring: str | None) -> str:
    """A docstring's prose (doctests dropped) as Markdown paragraphs."""
    text = inspect.cleandoc(docstring or "")
    kept = [p for p in text.split("\n\n") if not p.lstrip().startswith(">>>")]
    return rst_to_md("\n\n".join(kept)).strip()


def duration_text(value: timedelta | int, unit_ms: bool = False) -> str:
    """``timedelta(hours=4)`` -> ``4h``; ``86_400_000`` (ms) -> ``1d``."""
    ms = value if isinstance(value, int) else round(value.total_seconds() * 1000)
    if ms == 0:
        return "0s"
    for suffix, size in (("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{suffix}"
    return f"{ms}ms"


# ---------------------------------------------------------------------------------------------------------------
# reference/settings.md


class SettingDoc(typing.NamedTuple):
    """One row of the settings page."""

    dotted: str
    type: str
    default: str
    env: str | None
    description: str
    section: bool = False  # a nested model: its heading below has the anchor


class SettingsSection(typing.NamedTuple):
    """One table of the settings page: a model's fields under a dotted prefix."""

    prefix: str
    doc: str
    rows: list[SettingDoc]
    level: int


def _unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    """An annotation without ``Annotated``, and the metadata it carried."""
    metadata: list[Any] = []
    while typing.get_origin(annotation) is typing.Annotated:
        annotation, *extra = typing.get_args(annotation)
        metadata += extra
    return annotation, metadata


def _union_args(annotation: Any) -> tuple[Any, ...] | None:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return None


def _is_model(annotation: Any) -> bool:
    from pydantic import BaseModel

    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _constraints(metadata: Iterable[Any]) -> list[str]:
    """Bounds, lengths and patterns of a field's metadata, as short phrases."""
    from streamwatch.contract.events import NO_CONTROL_CHARS

    out: list[str] = []
    for item in metadata:
        for attr, phrase in (("ge", "≥ {}"), ("gt", "> {}"), ("le", "≤ {}"), ("lt", "< {}")):
            value = getattr(item, attr, None)
            if value is not None:
                out.append(phrase.format(value))
        shortest, longest = getattr(item, "min_length", None), getattr(item, "max_length", None)
        if shortest is not None and longest is not None:
            out.append(f"{shortest} to {longest} long")
        elif shortest is not None or longest is not None:
            out.append(f"at least {shortest} long" if longest is None else f"at most {longest} long")
        pattern = getattr(item, "pattern", None)
        if pattern:
            out.append("no control characters" if pattern == NO_CONTROL_CHARS else f"matches {code(pattern)}")
    return out


def _validator_kind(metadata: Iterable[Any]) -> str | None:
    """What a Before/AfterValidator makes of a value, for the types the config uses."""
    for item in metadata:
        func = getattr(item, "func", None)
        if func is None:
            continue
        name = getattr(func, "__name__", "")
        if name == "_windows_or_duration":
            return "integer (windows) or duration"
        if getattr(func, "__module__", "") == "streamwatch.config.durations":
            return "duration"
        if name in ("http_url", "_secret_http_url"):
            return "URL"
    return None


def type_text(annotation: Any, metadata: Iterable[Any] = ()) -> str:
    """A Python annotation in words, with its bounds: ``Literal['a', 'b'] | None`` -> `` `"a"` or `"b"` or null``."""
    annotation, inner = _unwrap(annotation)
    metadata = [*metadata, *inner]
    text = _bare_type_text(annotation, metadata)
    bounds = _constraints(metadata)
    return f"{text} ({', '.join(bounds)})" if bounds else text


def _bare_type_text(annotation: Any, metadata: list[Any], bounds: bool = True) -> str:
    from pydantic import SecretStr

    kind = _validator_kind(metadata)
    if kind is not None:
        secret = annotation is SecretStr
        return f"secret {kind}" if secret else kind
    if (args := _union_args(annotation)) is not None:
        parts = [type_text(a) if bounds else _bare_type_text(*_unwrap(a), False) for a in args if a is not type(None)]
        text = " or ".join(dict.fromkeys(parts))
        return f"{text} or null" if type(None) in args else text
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " or ".join(code(json.dumps(v)) for v in typing.get_args(annotation))
    if origin is list:  # the items' own bounds are left out: the contract page and the error messages say them
        item = _bare_type_text(*_unwrap(typing.get_args(annotation)[0]), False)
        return f"list of ({item})" if " or " in item else f"list of {item}"
    if origin is dict:
        key, value = (_bare_type_text(*_unwrap(a), False) for a in typing.get_args(annotation))
        return f"mapping of {key} to {value}"
    names = {bool: "boolean", int: "integer", float: "number", str: "string", Path: "path", timedelta: "duration"}
    if annotation is SecretStr:
        return "secret"
    if annotation in names:
        return names[annotation]
    return getattr(annotation, "__name__", str(annotation))


def _has_secret(annotation: Any) -> bool:
    from pydantic import SecretStr

    annotation, _ = _unwrap(annotation)
    if annotation is SecretStr:
        return True
    return any(_has_secret(a) for a in typing.get_args(annotation) if not isinstance(a, str | int | float))


def default_text(name: str, field: Any) -> str:
    """A field's default as the YAML file would write it; secrets never show theirs."""
    from pydantic import BaseModel
    from pydantic_core import PydanticUndefined

    if field.is_required():
        return "required"
    if _has_secret(field.annotation):
        return "secret, not shown"
    value = field.default_factory() if field.default_factory is not None else field.default
    if value is PydanticUndefined:
        return "required"
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return code(str(value).lower())
    if isinstance(value, timedelta):
        return code(duration_text(value))
    if isinstance(value, int) and name.endswith("_ms") and value:
        return f"{code(value)} ({duration_text(value)})"
    if isinstance(value, BaseModel):
        return "see below"
    if isinstance(value, list | dict):
        return code(json.dumps(value))
    if isinstance(value, str):
        return code(json.dumps(value))
    return code(value)


def _yaml_name(name: str, field: Any) -> str:
    from pydantic import AliasChoices

    if field.alias:
        return str(field.alias)
    if isinstance(field.validation_alias, AliasChoices):
        return str(field.validation_alias.choices[0])
    if isinstance(field.validation_alias, str):
        return field.validation_alias
    return name


def _env_name(dotted: str) -> str:
    from streamwatch.config.settings import ENV_PREFIX

    return ENV_PREFIX + dotted.upper().replace(".", "__")


def _members(annotation: Any) -> list[tuple[str, type]]:
    """The models a field holds, by the name they are documented under.

    A model, optional or not, is itself; a list or dict of models is its item; a discriminated union of
    models (the channels) is each member under its ``type``.
    """
    annotation, _ = _unwrap(annotation)
    if (args := _union_args(annotation)) is not None:
        models = [a for a in (_unwrap(a)[0] for a in args) if _is_model(a)]
        if len(models) == 1:
            return [("", models[0])]
        return [(typing.get_args(m.model_fields["type"].annotation)[0], m) for m in models]
    origin = typing.get_origin(annotation)
    if origin is list:
        return _members(typing.get_args(annotation)[0])
    if origin is dict:
        return _members(typing.get_args(annotation)[1])
    return [("", annotation)] if _is_model(annotation) else []


def _walk_model(
    model: type, prefix: str, env: bool, level: int, skip: frozenset[str] = frozenset()
) -> list[SettingsSection]:
    """A section of ``model``'s own fields (those in ``skip`` left out), then a section per model nested in it."""
    rows: list[SettingDoc] = []
    later: list[SettingsSection] = []
    for name, field in model.model_fields.items():  # type: ignore[attr-defined]
        if name in skip:
            continue
        dotted = f"{prefix}.{_yaml_name(name, field)}" if prefix else _yaml_name(name, field)
        description = rst_to_md(field.description or "")
        members = _members(field.annotation)
        annotation, _ = _unwrap(field.annotation)
        collection = typing.get_origin(annotation) in (list, dict)
        if not members:
            env_name = _env_name(dotted) if env else None
            kind = type_text(field.annotation, field.metadata)
            rows.append(SettingDoc(dotted, kind, default_text(name, field), env_name, description))
            continue
        optional = type(None) in (_union_args(annotation) or ())
        kind = {list: "list of mappings", dict: "mapping of names to mappings"}.get(
            typing.get_origin(annotation), "mapping"
        )
        kind = f"{kind} (see [{code(dotted)}](#{dotted}))" + (" or null" if optional else "")
        if prefix or collection:  # a top-level section (kafka, alerting) is its heading, not a row
            env_name = _env_name(dotted) if env and not collection else None
            rows.append(SettingDoc(dotted, kind, default_text(name, field), env_name, description, section=True))
        if len(members) == 1:
            later += _walk_model(members[0][1], dotted, env and not collection, level + 1)
            continue
        # A discriminated union (the channels): the fields every member has, then each member's own.
        common = frozenset.intersection(*(frozenset(m.model_fields) for _, m in members))  # type: ignore[attr-defined]
        tags = " or ".join(code(json.dumps(tag)) for tag, _ in members)
        shared = []
        for row in _walk_model(members[0][1], dotted, False, level + 1)[0].rows:
            if row.dotted.rsplit(".", 1)[-1] in common:
                shared.append(row._replace(type=tags) if row.dotted == f"{dotted}.type" else row)
        kinds = ", ".join(f"[{code(tag)}](#{dotted}.{tag})" for tag, _ in members)
        later.append(SettingsSection(dotted, f"Each entry is one of {kinds}, chosen by its `type`.", shared, level + 1))
        for tag, member in members:
            later += _walk_model(member, f"{dotted}.{tag}", False, level + 2, common)
    return [SettingsSection(prefix, paragraphs(model.__doc__), rows, level), *later]


def settings_sections() -> list[SettingsSection]:
    """Every section of the settings page, in the order of ``Settings``' fields."""
    from streamwatch.config.settings import Settings

    return _walk_model(Settings, "", True, 1)


def settings_page() -> str:
    from streamwatch.config import settings as module

    out = [
        "# Settings\n",
        "<!-- Generated by docs/gen_reference.py from streamwatch.config.settings.Settings: do not edit. -->\n",
        paragraphs(module.__doc__) + "\n",
        "Each setting below has an anchor of its dotted name (`settings/#windows.size_ms`). The environment "
        "variable of a setting is `STREAMWATCH_` and its dotted name in capitals, with `__` between the parts. "
        "The lists `models`, `rules` and `channels` are written in the YAML file: their fields are named "
        "`models.slo.target` for the `slo.target` of every entry of `models` (a key of a mapping, such as a "
        "feature's name under `models.features`, is left out too), and a channel's own fields are under its type "
        "(`channels.webhook.signing_secret`). Secrets are never printed.\n",
    ]
    for section in settings_sections():
        anchor = section.prefix or "top-level"
        heading = code(section.prefix) if section.prefix else "Top level"
        out.append(f"{'#' * min(max(section.level, 2), 4)} {heading} {{#{anchor}}}\n")
        if section.doc:
            out.append(section.doc + "\n")
        rows = [
            [
                f"[{code(row.dotted)}](#{row.dotted})" + ("" if row.section else f"{{#{row.dotted}}}"),
                row.type,
                row.default,
                code(row.env) if row.env else "YAML file only",
                row.description,
            ]
            for row in section.rows
        ]
        out.append(table(["Setting", "Type", "Default", "Environment variable", "Description"], rows))
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------------------------
# reference/cli.md


def cli_command() -> Any:
    """The click command of the typer app, as ``streamwatch`` runs it."""
    import typer

    from streamwatch.cli.main import app

    return typer.main.get_command(app)


def walk_commands(command: Any, path: tuple[str, ...] = ("streamwatch",)) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every visible command under ``command`` (itself first), with its path of names."""
    if getattr(command, "hidden", False):
        return
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from walk_commands(sub, (*path, name))


def command_anchor(path: tuple[str, ...]) -> str:
    return "-".join(path[1:]) or path[0]


def _help_text(text: str | None) -> str:
    text = inspect.cleandoc(text or "").split("\f")[0]
    return "\n".join(line for line in text.splitlines() if line.strip() != "\b").strip()


def _param_row(param: Any, ctx: Any) -> list[str]:
    record = param.get_help_record(ctx)
    first = record[0] if record else param.name
    match = re.search(r"\s(<[^>]*>|[A-Za-z][\w.\[\]]*)$", first) if param.param_type_name == "option" else None
    kind = match.group(1).strip("<>") if match else ""
    if param.param_type_name == "argument":
        name = code((param.metavar or param.name.upper()) + ("…" if param.nargs == -1 else ""))
        kind = re.search(r"<([^>]*)>", first).group(1) if "<" in first else ""  # type: ignore[union-attr]
    else:
        name = ", ".join(code(o) for o in [*param.opts, *param.secondary_opts])
    if getattr(param, "is_flag", False):
        kind = "flag"
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    bounds = ""
    if low is not None or high is not None:
        bounds = " ≤ ".join(str(v) for v in (low, "x", high) if v is not None)
        kind = kind.replace(" range", "")
    default = ""
    if param.required:
        default = "required"
    elif getattr(param, "is_flag", False) and param.secondary_opts:
        default = code(param.opts[0] if param.default else param.secondary_opts[0])
    elif getattr(param, "is_flag", False):
        default = "off" if not param.default else "on"
    elif param.default not in (None, "", ()) and not callable(param.default):
        default = code(param.default)
    if getattr(param, "multiple", False) or param.nargs == -1:
        kind = f"{kind}, repeatable" if kind else "repeatable"
    envvar = param.envvar if isinstance(param.envvar, str) else ", ".join(param.envvar or ())
    help_text = _help_text(getattr(param, "help", None))
    if bounds:
        help_text = f"{help_text} ({bounds})".strip()
    return [
        name,
        code(kind) if kind and kind not in ("flag",) else kind,
        default,
        code(envvar) if envvar else "",
        help_text,
    ]


def cli_page() -> str:
    from typer._click.core import Context

    root = cli_command()
    out = [
        "# Command line\n",
        "<!-- Generated by docs/gen_reference.py from the typer app streamwatch.cli.main:app: do not edit. -->\n",
        "Every command and option of `streamwatch`, as `--help` shows them; every command also takes `--help`. "
        "A user error (a bad argument, setting or event) ends as one line on stderr and exit status 2. "
        "Settings not given as options come from the environment and the YAML file: see [Settings](settings.md).\n",
    ]
    contexts: dict[tuple[str, ...], Any] = {}
    commands = list(walk_commands(root))
    for path, command in commands:
        ctx = Context(command, info_name=path[-1], parent=contexts.get(path[:-1]))
        contexts[path] = ctx
        level = min(len(path) + 1, 4) if len(path) > 1 else 2
        out.append(f"{'#' * level} `{' '.join(path)}` {{#{command_anchor(path)}}}\n")
        help_text = _help_text(command.help)
        if help_text:
            out.append(help_text + "\n")
        out.append(f"```text\n{command.get_usage(ctx)}\n```\n")
        params = [p for p in command.params if not getattr(p, "hidden", False)]
        if params:
            out.append(
                table(
                    ["Argument or option", "Type", "Default", "Environment variable", "Description"],
                    [_param_row(p, ctx) for p in params],
                )
            )
        subcommands = [(name, sub) for name, sub in getattr(command, "commands", {}).items() if not sub.hidden]
        if subcommands:
            rows = [
                [f"[{code(name)}](#{command_anchor((*path, name))})", _help_text(sub.help).split("\n\n")[0]]
                for name, sub in subcommands
            ]
            out.append(table(["Command", "What it does"], rows))
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------------------------
# reference/contract.md

#: The order of the schema files on the page: what producers publish first. Others follow, sorted.
CONTRACT_ORDER = ("prediction", "feature", "label", "input-event", "alert", "retrain", "circuit-break")


def _schema_type(schema: dict[str, Any], defs_anchor: Callable[[str], str]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{defs_anchor(name)})"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            parts = [_schema_type(s, defs_anchor) for s in schema[key]]
            return " or ".join(dict.fromkeys(parts))
    if "const" in schema:
        return code(json.dumps(schema["const"]))
    if "enum" in schema:
        return ", ".join(code(json.dumps(v)) for v in schema["enum"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "array":
        items = schema.get("items")
        return f"array of {_schema_type(items, defs_anchor)}" if items else "array"
    if kind == "object":
        values = next(iter(schema.get("patternProperties", {}).values()), None) or schema.get("additionalProperties")
        if isinstance(values, dict) and values:
            return f"object of {_schema_type(values, defs_anchor)}"
        return "object"
    if kind:
        return str(kind) + (f" ({schema['format']})" if "format" in schema else "")
    return "any JSON value"


_SCHEMA_BOUNDS = (
    ("minLength", "length ≥ {}"),
    ("maxLength", "length ≤ {}"),
    ("minimum", "≥ {}"),
    ("exclusiveMinimum", "> {}"),
    ("maximum", "≤ {}"),
    ("exclusiveMaximum", "< {}"),
    ("minItems", "≥ {} items"),
    ("maxItems", "≤ {} items"),
    ("minProperties", "≥ {} entries"),
    ("maxProperties", "≤ {} entries"),
)


def _schema_constraints(schema: dict[str, Any], where: str = "") -> list[str]:
    """Bounds and patterns of a schema and of what it nests (the non-null branch of an anyOf, items, values)."""
    from streamwatch.contract.events import NO_CONTROL_CHARS

    out = [where + phrase.format(schema[key]) for key, phrase in _SCHEMA_BOUNDS if key in schema]
    if "pattern" in schema:
        pattern = schema["pattern"]
        out.append(where + ("no control characters" if pattern == NO_CONTROL_CHARS else f"matches {code(pattern)}"))
    names = schema.get("propertyNames")
    if isinstance(names, dict):
        out += _schema_constraints(names, where + "keys: ")
    for key in ("anyOf", "oneOf"):
        branches = [s for s in schema.get(key, ()) if s.get("type") != "null"]
        if len(branches) == 1:
            out += _schema_constraints(branches[0], where)
    if isinstance(schema.get("items"), dict):
        out += _schema_constraints(schema["items"], where + "items: ")
    values = next(iter(schema.get("patternProperties", {}).values()), None)
    if isinstance(values, dict):
        out += _schema_constraints(values, where + "values: ")
    return out


def _schema_description(schema: dict[str, Any]) -> str:
    texts = [schema.get("description", "")]
    for key in ("anyOf", "oneOf"):
        texts += [s.get("description", "") for s in schema.get(key, ()) if isinstance(s, dict)]
    return rst_to_md(" ".join(dict.fromkeys(t for t in texts if t)))


def _object_table(schema: dict[str, Any], defs_anchor: Callable[[str], str]) -> str:
    required = set(schema.get("required", ()))
    rows = []
    for name, prop in schema.get("properties", {}).items():
        rows.append(
            [
                code(name),
                _schema_type(prop, defs_anchor),
                "yes" if name in required else "no",
                code(json.dumps(prop["default"])) if "default" in prop else "",
                "; ".join(_schema_constraints(prop)),
                _schema_description(prop),
            ]
        )
    note = "" if schema.get("additionalProperties", True) is not False else "\nNo other field is accepted.\n"
    return table(["Field", "Type", "Required", "Default", "Constraints", "Description"], rows) + note


def schema_files() -> list[Path]:
    files = sorted(SCHEMAS.glob("*.schema.json"))
    if not files:
        raise FileNotFoundError(f"no JSON Schema files in {SCHEMAS}")
    rank = {name: i for i, name in enumerate(CONTRACT_ORDER)}
    return sorted(files, key=lambda p: (rank.get(p.name.removesuffix(".schema.json"), len(rank)), p.name))


def contract_page() -> str:
    out = [
        "# Event contract\n",
        "<!-- Generated by docs/gen_reference.py from schemas/*.schema.json: do not edit. -->\n",
        paragraphs(importlib.import_module("streamwatch.contract.events").__doc__) + "\n",
        "The JSON Schema files (draft 2020-12) are generated from the pydantic models by `streamwatch schemas "
        "--out schemas`; `streamwatch schemas --check --out schemas` fails when they are stale. Each section below "
        "is generated from one file, linked as it is.\n",
    ]
    files = schema_files()
    out.append(
        table(
            ["Schema", "File", "What it is"],
            [
                [
                    f"[{json.loads(p.read_text())['title']}](#{p.name.removesuffix('.schema.json')})",
                    f"[{code(p.name)}](schemas/{p.name})",
                    rst_to_md(json.loads(p.read_text()).get("description", "")),
                ]
                for p in files
            ],
        )
    )
    for path in files:
        schema = json.loads(path.read_text(encoding="utf-8"))
        stem = path.name.removesuffix(".schema.json")

        def defs_anchor(name: str, stem: str = stem) -> str:
            return f"{stem}-{name.lower()}"

        out.append(f"## {schema.get('title', stem)} {{#{stem}}}\n")
        out.append(f"`{schema.get('$id', '')}`: [{code('schemas/' + path.name)}](schemas/{path.name})\n")
        if schema.get("description"):
            out.append(rst_to_md(schema["description"]) + "\n")
        if "oneOf" in schema:
            variants = [s["$ref"].rsplit("/", 1)[-1] for s in schema["oneOf"] if "$ref" in s]
            mapping = schema.get("discriminator", {}).get("mapping", {})
            by_def = {ref.rsplit("/", 1)[-1]: tag for tag, ref in mapping.items()}
            tag = schema.get("discriminator", {}).get("propertyName", "type")
            rows = []
            for variant in variants:
                target = next(
                    (
                        f.name.removesuffix(".schema.json")
                        for f in files
                        if json.loads(f.read_text()).get("title") == variant
                    ),
                    None,
                )
                rows.append(
                    [code(json.dumps(by_def.get(variant, ""))), f"[{variant}](#{target})" if target else variant]
                )
            out.append(f"One of these events, chosen by its `{tag}`:\n")
            out.append(table([code(tag), "Event"], rows))
            continue
        out.append(_object_table(schema, defs_anchor))
        for name, definition in schema.get("$defs", {}).items():
            out.append(f"### {name} {{#{defs_anchor(name)}}}\n")
            if definition.get("description"):
                out.append(rst_to_md(definition["description"]) + "\n")
            if definition.get("type") == "object" and "properties" in definition:
                out.append(_object_table(definition, defs_anchor))
            else:
                out.append(f"Type: {_schema_type(definition, defs_anchor)}.\n")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------------------------
# reference/export.md


def _export_rows(
    exported: dict[str, Any], record: type, extra: dict[str, tuple[str, str]] | None = None
) -> list[list[str]]:
    """One row per exported key: its JSON type, and the record field it comes from."""
    fields = {f.name for f in dataclasses.fields(record)}
    hints = typing.get_type_hints(record)
    rows = []
    for key in exported:
        if extra and key in extra:
            kind, source = extra[key]
        elif key == "segment":
            kind, source = "object of string, or null (the whole population)", f"{record.__name__}.{key}"
        elif key in fields:
            kind = type_text(hints[key])
            if hints[key] is float or (_union_args(hints[key]) or ()) == (float, type(None)):
                kind = "number or null (null when not finite)"
            source = f"{record.__name__}.{key}"
        elif f"{key}_ms" in fields:
            kind, source = "string (RFC 3339, UTC)", f"{record.__name__}.{key}_ms"
        else:
            raise ValueError(
                f"exported key {key!r} of {record.__name__} matches no field: document it in gen_reference"
            )
        rows.append([code(key), kind, code(source)])
    return rows


def _definition_list(docstring: str) -> tuple[str, dict[str, str], str]:
    """A module docstring's reST definition list (``term`` then an indented body): intro, terms, outro."""
    text = inspect.cleandoc(docstring)
    text = text.split("\n>>>", 1)[0]
    blocks = re.split(r"\n(?=``[^`]+``(?:, ``[^`]+``)*\n    )", text)
    intro, terms, outro = blocks[0], {}, ""
    for block in blocks[1:]:
        head, _, body = block.partition("\n")
        body_lines = body.split("\n\n", 1)
        terms[head.strip()] = " ".join(line.strip() for line in body_lines[0].splitlines())
        if len(body_lines) > 1:
            outro = body_lines[1]
    return intro, terms, outro


def export_page() -> str:
    from streamwatch.core.records import Finding, MetricRow
    from streamwatch.replay import export
    from streamwatch.replay.batch import LineDeadLetter

    intro, terms, outro = _definition_list(export.__doc__ or "")
    row = MetricRow("credit", "3", "production", 0, 60_000, "psi", 0.01, feature="age", segment=(("region", "eu"),))
    finding = Finding("drift", "warning", "credit", "3", "production", 0, 60_000, "psi", 0.3, 0.2, evidence={"n": 1})
    dead = {
        **LineDeadLetter("e.jsonl", 1, "bad", b"{").export(),
        **LineDeadLetter("e.jsonl", 2, "bad", b"\xff").export(),
    }
    generated: dict[str, list[list[str]] | str] = {
        "metrics": _export_rows(row.export(), MetricRow),
        "findings": _export_rows(export.export_finding(finding), Finding, {"evidence": ("object", "Finding.evidence")}),
        "deadletters": _export_rows(
            dead,
            LineDeadLetter,
            {
                "raw": ("string or null (null when the line is not UTF-8)", "LineDeadLetter.raw"),
                "raw_base64": ("string (only when raw is null)", "LineDeadLetter.raw"),
            },
        ),
        "alerts": "Each line is an [AlertEvent](contract.md#alert).",
        "retrain": "Each line is a [RetrainEvent](contract.md#retrain).",
    }
    unknown = set(export.EXPORT_FILES) - set(generated)
    if unknown:
        raise ValueError(f"export files {sorted(unknown)} are not documented by docs/gen_reference.py")
    out = [
        "# Export format\n",
        "<!-- Generated by docs/gen_reference.py from streamwatch.replay.export: do not edit. -->\n",
        rst_to_md(intro) + "\n",
    ]
    for kind, name in export.EXPORT_FILES.items():
        term = next((t for t in terms if f"``{name}``" in t), None)
        if term is None:
            raise ValueError(f"the docstring of streamwatch.replay.export does not describe {name}")
        out.append(f"## `{name}` {{#{kind}}}\n")
        out.append(rst_to_md(terms[term]) + "\n")
        content = generated[kind]
        if isinstance(content, str):
            out.append(content + "\n")
            continue
        missing = [r[0].strip("`") for r in content if f"``{r[0].strip('`')}``" not in terms[term]]
        if missing:
            raise ValueError(f"the docstring of streamwatch.replay.export does not name {missing} of {name}")
        out.append(table(["Key", "JSON type", "From"], content))
    if outro.strip():
        out.append("## Numbers\n\n" + rst_to_md(outro) + "\n")
    example = (export.__doc__ or "").split("\n>>>", 1)
    if len(example) > 1:
        out.append("## Example\n\n```pycon\n>>>" + example[1].rstrip() + "\n```\n")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------------------------
# reference/tables.md


class TableDoc(typing.NamedTuple):
    name: str
    engine: str
    sorting_key: str
    partition_key: str
    ttl: str
    comment: str
    created_by: str
    select: str
    columns: list[tuple[str, ...]]


def _sql_comments() -> dict[str, tuple[str, str]]:
    """Per table or view: the migration file creating it, and the comment block right above its CREATE."""
    from streamwatch.adapters.clickhouse.migrations import MIGRATION

    found: dict[str, tuple[str, str]] = {}
    for path in sorted((SCHEMAS / "clickhouse").glob("*.sql")):
        if not MIGRATION.match(path.name):
            continue
        comment: list[str] = []
        for line in path.read_text(encoding="utf-8").splitlines():
            stripped = line.strip()
            if stripped.startswith("--"):
                comment.append(stripped[2:].strip())
                continue
            match = re.match(r"CREATE (?:TABLE|VIEW|MATERIALIZED VIEW) IF NOT EXISTS \{database\}\.(\w+)", stripped)
            if match:  # the comment block right above it (a blank line ends a block)
                found[match.group(1)] = (path.name, " ".join(c for c in comment if c))
            comment = []
    return found


def clickhouse_tables() -> list[TableDoc]:
    """The schema as ClickHouse holds it once every migration ran: applied to an in-memory chdb."""
    from streamwatch.adapters.clickhouse.store import connect
    from streamwatch.config.settings import ClickHouseSettings

    store = connect(ClickHouseSettings(dsn="chdb://memory"))
    store.migrate()
    db = store.database
    comments = _sql_comments()
    columns: dict[str, list[tuple[str, ...]]] = {}
    for row in store.query(
        "SELECT table, name, type, default_kind, default_expression, compression_codec, comment, is_in_sorting_key "
        f"FROM system.columns WHERE database = '{db}' ORDER BY table, position"
    ):
        columns.setdefault(row[0], []).append(tuple(str(v) for v in row[1:]))
    tables = []
    for name, engine, sorting, partition, comment, create, select in store.query(
        "SELECT name, engine, sorting_key, partition_key, comment, create_table_query, as_select "
        f"FROM system.tables WHERE database = '{db}' ORDER BY name"
    ):
        ttl = re.search(r"\bTTL (.+?)(?: SETTINGS |$)", create)
        created_by, sql_comment = comments.get(name, ("", ""))
        if name == "schema_migrations":
            created_by, sql_comment = "migrate()", "The schema files applied, with their checksums."
        tables.append(
            TableDoc(
                name,
                engine,
                sorting,
                partition,
                ttl.group(1) if ttl else "",
                comment or sql_comment,
                created_by,
                select if engine == "View" else "",
                columns.get(name, []),
            )
        )
    return tables


def tables_page() -> str:
    from streamwatch.adapters.clickhouse import migrations

    out = [
        "# ClickHouse tables\n",
        "<!-- Generated by docs/gen_reference.py: schemas/clickhouse/*.sql applied to an embedded chdb, "
        "read back from system.tables and system.columns. Do not edit. -->\n",
        paragraphs(migrations.__doc__) + "\n",
        "Every table below is in the database `clickhouse.database` "
        "([setting](settings.md#clickhouse.database), `streamwatch` by default), as it is once every schema "
        f"file has been applied with the default settings (raw events kept {30} days: "
        "[`clickhouse.raw_ttl_days`](settings.md#clickhouse.raw_ttl_days)). Read the ReplacingMergeTree tables "
        "with `FINAL`.\n",
    ]
    tables = clickhouse_tables()
    out.append(
        table(
            ["Table", "Engine", "Created by", "What it holds"],
            [
                [f"[{code(t.name)}](#{t.name})", t.engine, code(t.created_by) if t.created_by else "", t.comment]
                for t in tables
            ],
        )
    )
    for t in tables:
        out.append(f"## `{t.name}` {{#{t.name}}}\n")
        if t.comment:
            out.append(rst_to_md(t.comment) + "\n")
        facts = [["Engine", code(t.engine)]]
        if t.created_by:
            facts.append(["Created by", code(t.created_by)])
        if t.sorting_key:
            facts.append(["ORDER BY", code(t.sorting_key)])
        if t.partition_key:
            facts.append(["PARTITION BY", code(t.partition_key)])
        if t.ttl:
            facts.append(["TTL", code(t.ttl)])
        out.append(table(["", ""], facts))
        if t.select:
            out.append(f"```sql\n{t.select}\n```\n")
        rows = []
        for name, kind, default_kind, default_expr, codec, comment, in_key in t.columns:
            default = f"{default_kind} {code(default_expr)}" if default_kind else ""
            if default_kind == "EPHEMERAL":
                default = "EPHEMERAL (written, never stored)"
            rows.append(
                [code(name), code(kind), default, code(codec) if codec else "", "yes" if in_key == "1" else "", comment]
            )
        out.append(table(["Column", "Type", "Default", "Codec", "In ORDER BY", "Comment"], rows))
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------------------------
# reference/rules.md


def _rule_comments() -> dict[str, str]:
    """Each default rule's description: the comment block above it in ``alerts/defaults.py``.

    A comment describes the rules that follow it up to the next comment (``auc-drop`` and ``accuracy-drop``
    share one).
    """
    from streamwatch.alerts import defaults

    source = Path(inspect.getsourcefile(defaults) or "").read_text(encoding="utf-8")
    comments: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("#").strip()
    tree = ast.parse(source)
    value = next(
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == "DEFAULT_RULES"
    )
    assert isinstance(value, ast.Tuple)
    out: dict[str, str] = {}
    last = ""
    for element in value.elts:
        line, block = element.lineno - 1, []
        while line in comments:
            block.insert(0, comments[line])
            line -= 1
        if block:
            last = " ".join(block)
        for node in ast.walk(element):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", node.value)
            ):
                out.setdefault(node.value, last)
    return out


def condition_text(rule: Any) -> str:
    """A rule's condition in words."""
    when = rule.when
    if when.finding is not None:
        text = f"a {code(when.finding)} finding"
        if when.finding_severity:
            text += f" of severity {code(when.finding_severity)}"
        return text + (f" (metric {code(when.metric)})" if when.metric else "")
    if when.drop is not None:
        return f"{code(when.metric)} {when.comparison} the model's baseline − {when.drop}"
    if when.parity:
        return (
            f"a slice's {code(when.metric)} {when.comparison} {when.threshold} worse than the best slice of its "
            "segment, the two intervals apart"
        )
    if when.threshold is None:
        return f"{code(when.metric)} {when.comparison} its row's threshold (calibrated on the reference)"
    return f"{code(when.metric)} {when.comparison} {when.threshold}"


def _for_text(rule: Any) -> str:
    value = rule.for_windows
    if isinstance(value, timedelta):
        return duration_text(value)
    return f"{value} window{'s' if value != 1 else ''}"


def rules_page() -> str:
    from streamwatch.alerts import defaults

    descriptions = _rule_comments()
    rules = defaults.DEFAULT_RULES
    out = [
        "# Alert rules\n",
        "<!-- Generated by docs/gen_reference.py from streamwatch.alerts.defaults.DEFAULT_RULES: do not edit. -->\n",
        paragraphs(defaults.__doc__) + "\n",
        "Each rule has an anchor of its name (`rules/#feature-drift`); alerts link there as their runbook. "
        "A rule's fields are those of a rule in the YAML file: see [`rules` in Settings](settings.md#rules).\n",
        table(
            ["Rule", "Kind", "Condition", "For", "View", "Severity"],
            [
                [f"[{code(r.name)}](#{r.name})", code(r.kind), condition_text(r), _for_text(r), r.view, r.severity]
                for r in rules
            ],
        ),
    ]
    for rule in rules:
        out.append(f"## `{rule.name}` {{#{rule.name}}}\n")
        if descriptions.get(rule.name):
            out.append(descriptions[rule.name] + "\n")
        metric = rule.when.metric
        facts = [
            ["Kind", code(rule.kind)],
            ["Condition", condition_text(rule)],
            ["Metric", f"[{code(metric)}](metrics.md#{metric})" if metric else "—"],
            ["For", _for_text(rule)],
            ["View", code(rule.view)],
            ["Severity", code(rule.severity)],
        ]
        if rule.actions:
            facts.append(["Actions", ", ".join(code(a) for a in rule.actions)])
        if rule.labels:
            facts.append(["Labels", ", ".join(code(f"{k}={v}") for k, v in rule.labels.items())])
        out.append(table(["", ""], facts))
    return "\n".join(out)


def rule_metrics() -> set[str]:
    from streamwatch.alerts.defaults import DEFAULT_RULES

    return {r.when.metric for r in DEFAULT_RULES if r.when.metric}


# ---------------------------------------------------------------------------------------------------------------
# reference/metrics.md


def metrics_page() -> str:
    """The metric catalogue; an ImportError when ``streamwatch.core.catalogue`` does not exist (no empty page)."""
    from streamwatch.alerts.defaults import DEFAULT_RULES

    # By its module name, so that sys.modules decides (a test stands a catalogue in for the real one).
    catalogue = importlib.import_module("streamwatch.core.catalogue")

    metrics = tuple(catalogue.METRICS)
    if not metrics:
        raise ValueError("streamwatch.core.catalogue.METRICS is empty")
    names = [m.name for m in metrics]
    if len(set(names)) != len(names):
        raise ValueError(
            f"streamwatch.core.catalogue.METRICS names a metric twice: {sorted(n for n in names if names.count(n) > 1)}"
        )
    rule_names = {r.name for r in DEFAULT_RULES}
    unknown = sorted({r for m in metrics for r in m.rules} - rule_names)
    if unknown:
        raise ValueError(f"streamwatch.core.catalogue.METRICS names rules that are not default rules: {unknown}")
    missing = sorted(rule_metrics() - set(names))
    if missing:
        raise ValueError(f"default rules judge metrics the catalogue does not describe: {missing}")
    families: dict[str, list[Any]] = {family: [] for family in getattr(catalogue, "FAMILIES", ())}
    for metric in metrics:
        families.setdefault(metric.family, []).append(metric)
    families = {family: items for family, items in families.items() if items}
    out = [
        "# Metric catalogue\n",
        "<!-- Generated by docs/gen_reference.py from streamwatch.core.catalogue.METRICS: do not edit. -->\n",
        paragraphs(catalogue.__doc__) + "\n",
        "Each metric has an anchor of its name (`metrics/#psi`): the `metric` of a row in the "
        "[`metrics` table](tables.md#metrics) and of the [export](export.md#metrics).\n",
    ]
    out.append(
        table(
            ["Family", "Metrics"],
            [[family, ", ".join(f"[{code(m.name)}](#{m.name})" for m in items)] for family, items in families.items()],
        )
    )
    for family, items in families.items():
        out.append(f"## {family}\n")
        for metric in items:
            out.append(f"### `{metric.name}` {{#{metric.name}}}\n")
            out.append(rst_to_md(metric.definition) + "\n")
            facts = []
            if metric.formula:
                facts.append(["Formula", code(metric.formula)])
            if metric.unit:
                facts.append(["Unit", metric.unit])
            if metric.reading:
                facts.append(["Reading", rst_to_md(metric.reading)])
            facts.append(["Rules", ", ".join(f"[{code(r)}](rules.md#{r})" for r in metric.rules) or "—"])
            out.append(table(["", ""], facts))
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------------------------
# reference/python-api.md


def public_api() -> dict[str, list[str]]:
    """``streamwatch.__all__`` (pinned by tests/test_public_api.py), grouped by the module defining each name."""
    import streamwatch

    modules: dict[str, list[str]] = {}
    for name in streamwatch.__all__:
        obj = getattr(streamwatch, name)
        module = getattr(obj, "__module__", None) if not isinstance(obj, str) else None
        if module is None:
            continue
        modules.setdefault(module, []).append(name)
    first = ("streamwatch.sdk", "streamwatch.contract", "streamwatch.config")  # what a service uses, first
    rank = [next((i for i, p in enumerate(first) if m.startswith(p)), len(first)) for m in modules]
    return dict(sorted(modules.items(), key=lambda item: rank[list(modules).index(item[0])]))


def python_api_page() -> str:
    import streamwatch

    api = public_api()
    out = [
        "# Python API\n",
        "<!-- Generated by docs/gen_reference.py from streamwatch.__all__: do not edit. -->\n",
        "The public API is what `import streamwatch` exports (`streamwatch.__all__`, pinned by "
        "`tests/test_public_api.py`); each name is documented below, in the module that defines it, with that "
        f"module's other public names. This is version `{streamwatch.__version__}`.\n",
    ]
    out.append("::: streamwatch\n    options:\n      members: false\n      show_root_heading: false\n")
    rows = []
    for module, names in api.items():
        rows += [[f"[{code(name)}](#{module}.{name})", code(module)] for name in names]
    out.append(table(["Name (`from streamwatch import …`)", "Defined in"], rows))
    for module in api:
        if module.startswith("streamwatch.sdk."):
            out.append("::: streamwatch.sdk\n    options:\n      members: false\n")
        exported = list(getattr(importlib.import_module(module), "__all__", api[module]))
        members = [n for n in exported if not n.isupper()] or api[module]
        out.append(f"::: {module}\n    options:\n      members:\n" + "".join(f"        - {n}\n" for n in members))
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------------------------
# The griffe extension (mkdocs.yml: mkdocstrings' python handler, extensions)

_DOCTEST_START = re.compile(r"^(\s*)>>> ")


def docstring_to_markdown(text: str) -> str:
    """reST roles to code spans and bare doctests into ``pycon`` fences (numpy ``Examples`` sections stay).

    >>> docstring_to_markdown("Add :func:`~a.b.add`.\\n\\n>>> add(1, 1)\\n2\\n\\nDone.").splitlines()
    ['Add `add`.', '', '```pycon', '>>> add(1, 1)', '2', '```', '', 'Done.']
    """
    text = rst_to_md(text)
    lines = text.splitlines()
    out: list[str] = []
    in_examples = in_fence = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip().startswith("```"):
            in_fence = not in_fence
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if re.fullmatch(r"\s*-{3,}\s*", following) and line.strip():
            in_examples = line.strip() == "Examples"
        match = _DOCTEST_START.match(line)
        if match and not in_fence and not in_examples:
            indent = match.group(1)
            block = []
            while i < len(lines) and lines[i].strip():
                block.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i].strip())
                i += 1
            out += [f"{indent}```pycon", *(indent + b for b in block), f"{indent}```"]
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


class DocstringMarkup(griffe.Extension):
    """Docstrings written for Sphinx and doctest, rendered as Markdown by mkdocstrings."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = docstring_to_markdown(obj.docstring.value)


# ---------------------------------------------------------------------------------------------------------------
# Writing the pages

PAGES: dict[str, Callable[[], str]] = {
    "reference/cli.md": cli_page,
    SETTINGS_PAGE: settings_page,
    "reference/contract.md": contract_page,
    "reference/export.md": export_page,
    "reference/tables.md": tables_page,
    "reference/metrics.md": metrics_page,
    "reference/rules.md": rules_page,
    "reference/python-api.md": python_api_page,
}


def main() -> None:
    import mkdocs_gen_files

    for page, build in PAGES.items():
        with mkdocs_gen_files.open(page, "w") as file:
            file.write(build())
        mkdocs_gen_files.set_edit_path(page, "gen_reference.py")
    for path in schema_files():
        with mkdocs_gen_files.open(f"reference/schemas/{path.name}", "w") as file:
            file.write(path.read_text(encoding="utf-8"))


if __name__ == "<run_path>":  # run by mkdocs-gen-files (runpy.run_path); imported by the tests, nothing runs
    main()
