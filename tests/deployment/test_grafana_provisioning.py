"""Grafana's provisioning files reach the datasource with the password exactly as the environment holds it.

Grafana expands environment variables in provisioning values (grafana/grafana,
pkg/services/provisioning/values/values.go, ``interpolateValue``): it splits a value on ``$$`` (a literal ``$``),
expands each part's ``${NAME}`` and ``$__env{NAME}`` references (pkg/setting/expanders.go, ``ExpandVar``), then runs
Go's ``os.ExpandEnv`` over the result, and joins the parts with ``$``. A ``${NAME}`` is so expanded twice: a ``$`` in
its value starts another variable (grafana/grafana issues 17986, 97185 and 130055). ``$NAME`` is expanded once,
by ``os.ExpandEnv`` alone, which does not expand what it substitutes; Grafana's provisioning docs say to use it.

No Grafana runs here, so :func:`grafana_interpolate` follows those two functions and Go's ``os.Expand`` step by
step, and the test checks it against the cases those issues report before it judges the provisioning file.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[2]
DATASOURCES = ROOT / "dashboards" / "provisioning" / "datasources"

# setting/expanders.go: a provider reference, ${NAME} (the env provider) or $__provider{argument}
_PROVIDER = re.compile(r"\$(|__\w+)\{([^}]+)\}")
_SPECIAL = set("*#$@!?-0123456789")  # Go's isShellSpecialVar


def _shell_name(s: str) -> tuple[str, int]:
    """Go's os.getShellName: the variable name after a ``$`` and how many bytes it takes."""
    if s[0] == "{":
        if len(s) > 2 and s[1] in _SPECIAL and s[2] == "}":
            return s[1], 3
        for i in range(1, len(s)):
            if s[i] == "}":
                return ("", 2) if i == 1 else (s[1:i], i + 1)
        return "", 1  # no closing brace: "${" is eaten
    if s[0] in _SPECIAL:
        return s[0], 1
    i = 0
    while i < len(s) and (s[i] == "_" or (s[i].isascii() and s[i].isalnum())):
        i += 1
    return s[:i], i


def go_expand_env(s: str, env: dict[str, str]) -> str:
    """Go's os.ExpandEnv: one pass, never expanding what it substitutes."""
    out: list[str] = []
    start = j = 0
    while j < len(s):
        if s[j] == "$" and j + 1 < len(s):
            out.append(s[start:j])
            name, width = _shell_name(s[j + 1 :])
            if name:
                out.append(env.get(name, ""))
            elif width == 0:
                out.append("$")  # "$" followed by no name stays
            j += width
            start = j + 1
        j += 1
    out.append(s[start:])
    return "".join(out)


def grafana_interpolate(value: str, env: dict[str, str]) -> str:
    """What Grafana's provisioning makes of one string value (values.go's interpolateValue)."""
    parts = []
    for part in value.split("$$"):
        for prefix, argument in _PROVIDER.findall(part):
            if prefix in ("", "__env"):
                part = part.replace(f"${prefix}{{{argument}}}", env.get(argument, ""), 1)
        parts.append(go_expand_env(part, env))
    return "$".join(parts)


PASSWORDS = ["plain", "pa$word", "pa$$word", "a${b}c", "$1x", "trailing$", "$", "{$}", "a$-b", "x $HOME y"]


def test_the_model_reproduces_what_grafanas_issues_report() -> None:
    env = {"PASS": "pa$word", "HOME": "/root"}
    assert grafana_interpolate("${PASS}", env) == "pa"  # issue 97185: a braced reference expands twice
    assert grafana_interpolate("$PASS", env) == "pa$word"  # the docs' advice: once
    assert grafana_interpolate("Pa$$w0rd", env) == "Pa$w0rd"  # issue 109716: $$ in the file is one $
    assert grafana_interpolate("$__env{PASS}", env) == "pa"  # issue 130055: providers too
    assert go_expand_env("a$ b$", {}) == "a$ b$" and go_expand_env("${}x", {}) == "x"  # Go's os.Expand


@pytest.mark.parametrize("password", PASSWORDS)
def test_the_datasource_gets_the_password_as_the_environment_holds_it(password: str) -> None:
    [source] = yaml.safe_load((DATASOURCES / "clickhouse.yaml").read_text())["datasources"]
    env = {"CLICKHOUSE_USER": "grafana", "CLICKHOUSE_PASSWORD": password, "HOME": "/usr/share/grafana", "b": "B"}
    assert grafana_interpolate(source["secureJsonData"]["password"], env) == password
    assert grafana_interpolate(source["jsonData"]["username"], env) == "grafana"


def test_every_provisioned_variable_is_referenced_once_expanded() -> None:
    """No provisioning file says ${NAME} or $__env{NAME}: whatever their value holds would be expanded again."""
    files = sorted((ROOT / "dashboards" / "provisioning").rglob("*.yaml"))
    assert files
    for path in files:
        for line in path.read_text().splitlines():
            value = line.split("#", 1)[0]
            assert not _PROVIDER.search(value), f"{path.name}: {line.strip()} expands its value twice"
