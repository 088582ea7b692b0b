"""The streamwatch image, built without a Docker daemon: the Dockerfile replayed into a directory.

Docker does not run where streamwatch is developed, so :func:`build` reads the Dockerfile with dockerfile-parse and
replays it instruction by instruction into ``root``, a directory standing for the image's filesystem:

- ``COPY`` copies from the build context what Docker would send (``.dockerignore`` applied), so that each ``RUN``
  sees exactly the files copied before it, and nothing else of the repository;
- the base image's Python is a virtual environment at ``root/usr/local`` (where python:3.11-slim keeps its own);
- ``RUN pip install ...`` runs the Dockerfile's own command, in the build context's working directory, with the
  Dockerfile's ``ENV``. Only the wheel of streamwatch is built there (by hatchling, from the copied files): the
  pinned dependencies, which a real build downloads, are read from the project's own environment, and
  ``PIP_NO_INDEX`` keeps pip from fetching anything, so a dependency the install asks for and the project's
  environment lacks fails the build as a missing download would;
- the other ``RUN`` commands (``groupadd``, ``useradd``, ``mkdir -p``, ``chown``) are simulated, and one the
  simulation does not know fails the build, so that a new command cannot pass unexamined;
- ``USER``, ``WORKDIR``, ``ENTRYPOINT`` and ``CMD`` are recorded for :meth:`Image.run`.

:meth:`Image.run` runs a command from that install as the image's user (by ``setpriv``; it needs root), allowed to
read every file, as the image's world-readable files are, but to write only where that user may, so that a
directory the user does not own refuses writes as it would in a container. :func:`named_volume` makes the directory
Docker makes for a new named volume.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).parents[2]


class BuildError(AssertionError):
    """A step of the Dockerfile failed, as it would fail ``docker build``."""


def dockerignore(context: Path) -> list[tuple[bool, re.Pattern[str]]]:
    """``.dockerignore``'s patterns as (excluding, regex), in order: the last one matching a path decides."""
    path = context / ".dockerignore"
    rules = []
    for line in path.read_text().splitlines() if path.exists() else []:
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        excluding = not pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        regex = ""
        for part in re.split(r"(\*\*/?|\*|\?)", pattern):
            if part.startswith("**"):
                regex += "(?:.*/)?" if part.endswith("/") else ".*"
            elif part == "*":
                regex += "[^/]*"
            elif part == "?":
                regex += "[^/]"
            else:
                regex += re.escape(part)
        rules.append((excluding, re.compile(regex)))
    return rules


def ignored(relative: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether Docker leaves ``relative`` (a path in the context) out: a pattern matching a parent excludes it."""
    parts = relative.split("/")
    verdict = False
    for excluding, regex in rules:
        if any(regex.fullmatch("/".join(parts[: i + 1])) for i in range(len(parts))):
            verdict = excluding
    return verdict


@dataclass
class Image:
    """What :func:`build` made: the filesystem, and what the Dockerfile says about running it."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    user: tuple[int, int] = (0, 0)
    users: dict[str, tuple[int, int]] = field(default_factory=dict)
    groups: dict[str, int] = field(default_factory=dict)
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    installed: str = ""  # what the install step printed
    context_at_install: list[str] = field(default_factory=list)  # the working directory's entries it saw

    def path(self, container_path: str) -> Path:
        """Where a path of the image lies in :attr:`root`."""
        return self.root / container_path.lstrip("/")

    def run(
        self, args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run ``args`` from the image's install, as its user, in its working directory unless ``cwd`` is given."""
        uid, gid = self.user
        bin_dir = str(self.path("/usr/local/bin"))
        environment = {
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "HOME": str(self.path(f"/home/{self._user_name()}")),
            "LANG": "C.UTF-8",
            **self.env,
            **(env or {}),
        }
        as_user = [
            "setpriv",
            f"--reuid={uid}",
            f"--regid={gid}",
            "--clear-groups",
            # Read what the image's files let everyone read; write only where the user may.
            "--inh-caps=+dac_read_search",
            "--ambient-caps=+dac_read_search",
        ]
        return subprocess.run(
            [*as_user, *args],
            env=environment,
            cwd=cwd or self.path(self.workdir),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def _user_name(self) -> str:
        return next((name for name, ids in self.users.items() if ids == self.user), "root")


def build(dockerfile_text: str, context: Path, root: Path) -> Image:
    """Replay ``dockerfile_text`` with ``context`` as the build context into ``root`` (an empty directory)."""
    parser = DockerfileParser(fileobj=io.BytesIO(dockerfile_text.encode()))
    root.mkdir()
    image = Image(root=root)
    rules = dockerignore(context)
    root.chmod(0o755)
    for step in parser.structure:
        instruction, value = step["instruction"], step["value"]
        if instruction in ("COMMENT", "EXPOSE", "LABEL"):
            continue
        if instruction == "FROM":
            _base_python(image, value)
        elif instruction == "ENV":
            for pair in shlex.split(value):
                name, _, setting = pair.partition("=")
                image.env[name] = setting
        elif instruction == "WORKDIR":
            image.workdir = value if value.startswith("/") else f"{image.workdir.rstrip('/')}/{value}"
            image.path(image.workdir).mkdir(parents=True, exist_ok=True)
        elif instruction == "COPY":
            _copy(image, context, rules, shlex.split(value))
        elif instruction == "RUN":
            _run(image, value)
        elif instruction == "USER":
            image.user = _user(image, value)
        elif instruction in ("ENTRYPOINT", "CMD"):
            setattr(image, instruction.lower(), json.loads(value))
        else:
            raise BuildError(f"no simulation for {instruction} {value}")
    return image


def _base_python(image: Image, base: str) -> None:
    if not base.startswith("python:3.11"):
        raise BuildError(f"the simulation stands for python:3.11 images, not {base}")
    local = image.path("/usr/local")
    subprocess.run([sys.executable, "-m", "venv", str(local)], check=True)
    # The pinned dependencies a real build downloads, read from the project's environment (see the module's doc).
    [site] = local.glob("lib/python3*/site-packages")
    (site / "_project_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")


def _copy(image: Image, context: Path, rules: list[tuple[bool, re.Pattern[str]]], words: list[str]) -> None:
    if any(word.startswith("--") for word in words):
        raise BuildError(f"no simulation for COPY {' '.join(words)}")
    *sources, target = words
    destination = target if target.startswith("/") else f"{image.workdir.rstrip('/')}/{target}"
    into_directory = target.endswith("/") or len(sources) > 1
    for source in sources:
        origin = context / source
        if not origin.exists() or ignored(os.path.normpath(source), rules):
            raise BuildError(f'COPY failed: "{source}" not found in the build context')
        place = (
            image.path(destination) / origin.name if into_directory and origin.is_file() else image.path(destination)
        )
        if origin.is_file():
            place.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, place)
            continue
        for path in sorted(origin.rglob("*")):
            relative = path.relative_to(context).as_posix()
            if path.is_file() and not ignored(relative, rules):
                copied = place / path.relative_to(origin)
                copied.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, copied)


def _run(image: Image, command: str) -> None:
    words = shlex.split(command)
    if words[:2] == ["pip", "install"]:
        image.context_at_install = sorted(path.name for path in image.path(image.workdir).iterdir())
        done = subprocess.run(
            ["sh", "-c", command],
            cwd=image.path(image.workdir),
            env={
                "PATH": f"{image.path('/usr/local/bin')}:/usr/bin:/bin",
                "HOME": str(image.path("/root")),
                **image.env,
                # Offline: see the module's doc.
                "PIP_NO_INDEX": "1",
                "PIP_FIND_LINKS": "",
                "PIP_NO_BUILD_ISOLATION": "0",
            },
            capture_output=True,
            text=True,
            check=False,
        )
        image.installed = done.stdout + done.stderr
        if done.returncode:
            raise BuildError(f"RUN {command} exited {done.returncode}:\n{image.installed}")
        return
    for part in command.split("&&"):
        _simulate(image, shlex.split(part))


def _simulate(image: Image, argv: list[str]) -> None:
    name, args = argv[0], argv[1:]
    options = {a: b for a, b in zip(args, [*args[1:], ""], strict=True) if a.startswith("--")}
    if name == "groupadd":
        image.groups[args[-1]] = int(options["--gid"])
    elif name == "useradd":
        uid = int(options["--uid"])
        gid = int(options.get("--gid", uid))
        image.users[args[-1]] = (uid, gid)
        if "--create-home" in args:
            home = image.path(f"/home/{args[-1]}")
            home.mkdir(parents=True, exist_ok=True)
            os.chown(home, uid, gid)
    elif name == "mkdir" and args[0] == "-p":
        for directory in args[1:]:
            image.path(directory).mkdir(parents=True, exist_ok=True)
            image.path(directory).chmod(0o755)
    elif name == "chown":
        owner, *paths = args
        uid, gid = _user(image, owner)
        for path in paths:
            os.chown(image.path(path), uid, gid)
    else:
        raise BuildError(f"no simulation for RUN {shlex.join(argv)}")


def _user(image: Image, spec: str) -> tuple[int, int]:
    user, _, group = spec.partition(":")
    uid, gid = (int(user), int(user)) if user.isdigit() else image.users[user]
    if group:
        gid = int(group) if group.isdigit() else image.groups[group]
    return uid, gid


def named_volume(image: Image, target: str, directory: Path) -> Path:
    """The directory Docker makes for a new named volume mounted at ``target``: a copy of the image's path (its
    contents, owner and mode) when the image has one, an empty root-owned directory when it does not."""
    source = image.path(target)
    if source.is_dir():
        shutil.copytree(source, directory, symlinks=True)
        status = source.stat()
        os.chown(directory, status.st_uid, status.st_gid)
        directory.chmod(status.st_mode & 0o7777)
    else:
        directory.mkdir()
        os.chown(directory, 0, 0)
        directory.chmod(0o755)
    return directory
