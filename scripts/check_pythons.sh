#!/usr/bin/env bash
# Check streamwatch on the other Python versions it supports (3.11 is `make test`'s own .venv).
#
#   scripts/check_pythons.sh [VERSION ...]      default: 3.12 3.13   (`make pythons` runs it)
#
# For each version, in a fresh virtualenv under a temporary directory, with the pins of
# constraints.txt and binary wheels only (--only-binary=:all:, so a missing wheel fails at once
# instead of compiling numpy or chdb for half an hour):
#
#   sdk     `pip install .` (no extras) installs; `import streamwatch` and the public API load;
#           an event made by the SDK's Encoder parses back with parse_event to the same values;
#           a Producer builds its librdkafka client, queues an event and closes; and none of
#           numpy, scipy, pyarrow, river, faust, chdb is installed (the SDK stays light).
#   worker  `pip install .[worker]` then `.[dev]` (the test tools) install and `pip check` is clean;
#           every module of the package imports; and the worker's tests pass under that
#           interpreter (TESTS below): the statistics on numpy/scipy/river checked against
#           scikit-learn, fairlearn and pandas, the pipeline's state (msgspec), the contract, the
#           adapters (chdb, pyarrow, Kafka) and the worker loop end to end (Kafka to chdb).
#
# An interpreter is looked up as pythonX.Y on PATH, then in pyenv's versions (a pyenv shim on
# PATH that is not activated does not run). One missing is skipped with a message, unless
# REQUIRE_PYTHONS=1. The versions are checked side by side (PYTHONS_SERIAL=1: one after the other).
# Prints one line per version (and the end of the failing step's log); exits non-zero if any failed.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSIONS=("$@")
[ ${#VERSIONS[@]} -gt 0 ] || VERSIONS=(3.12 3.13)
# The worker's tests: its statistics, pipeline and event contract; its adapters (chdb, pyarrow,
# Kafka); and its loop end to end on the local broker and chdb. Not test_worker_process.py, which
# kills and restarts worker processes: slow (70 s), and about the OS more than the interpreter.
TESTS=(tests/core tests/pipeline tests/contract tests/adapters tests/runtime
    --ignore=tests/runtime/test_worker_process.py)

WORK="$(mktemp -d "${TMPDIR:-/tmp}/streamwatch-pythons.XXXXXX")"
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$WORK"' EXIT

# A snapshot of the work tree (git's files, committed or not, less the ignored ones), taken once:
# every version builds and tests the same files, an edit made meanwhile cannot pair an old wheel
# with new tests, and nothing (builds, __pycache__) is written into the work tree.
TREE="$WORK/tree"
mkdir "$TREE"
if ! (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' file; do
    if [ -e "$file" ]; then printf '%s\0' "$file"; fi # a deleted file, not yet committed, is left out
done) | tar -C "$ROOT" --null -T - -cf - | tar -C "$TREE" -xf - || [ ! -f "$TREE/pyproject.toml" ]; then
    echo "check_pythons: FAILED: cannot copy the work tree (is $ROOT a git checkout?)"
    exit 1
fi

# The interpreter for version $1 that really runs, or nothing.
find_python() {
    local version=$1 candidate
    local candidates=("$(command -v "python$version" 2>/dev/null)")
    local root="${PYENV_ROOT:-$HOME/.pyenv}"
    while IFS= read -r candidate; do
        candidates+=("$candidate")
    done < <(printf '%s\n' "$root"/versions/"$version".*/bin/"python$version" | sort -V -r)
    for candidate in "${candidates[@]}"; do
        [ -n "$candidate" ] || continue
        if [ "$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$version" ]; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

cat >"$WORK/sdk_smoke.py" <<'PY'
import importlib.util
import sys

import streamwatch
from streamwatch import PredictionEvent, Producer, parse_event
from streamwatch.contract.encode import Encoder

encoder = Encoder(clock_ms=lambda: 1763900000000, event_ids=lambda: "e1")
raw = encoder.prediction(
    model="credit", model_version="3.1.0", request_id="r1", latency_ms=12.5,
    features={"age": 42, "city": "Lyon"}, prediction=1, score=0.8, segments={"region": "eu"},
)
event = parse_event(raw)
assert isinstance(event, PredictionEvent), type(event)
got = (event.event_id, event.request_id, event.model, event.model_version, event.prediction, event.score,
       event.latency_ms, dict(event.features), dict(event.segments))
want = ("e1", "r1", "credit", "3.1.0", 1, 0.8, 12.5, {"age": 42, "city": "Lyon"}, {"region": "eu"})
assert got == want, got

# A real librdkafka client: nothing listens on the discard port, so the event stays queued
# and close() gives up on it at once.
producer = Producer("127.0.0.1:9", model="credit", model_version="3.1.0")
producer.log_prediction(features={"age": 42}, prediction=1, score=0.8, latency_ms=1.0)
producer.close(timeout=0)
assert producer.stats().queued == 1, producer.stats()

heavy = [name for name in ("numpy", "scipy", "pyarrow", "river", "faust", "chdb") if importlib.util.find_spec(name)]
assert not heavy, f"the SDK install brought in {heavy}"
print(f"streamwatch {streamwatch.__version__} SDK ok on Python {sys.version.split()[0]}")
PY

cat >"$WORK/worker_smoke.py" <<'PY'
import importlib
import pkgutil
import sys

import streamwatch

# Every module of the package, the worker's included (but not __main__, which runs the CLI).
names = [m.name for m in pkgutil.walk_packages(streamwatch.__path__, "streamwatch.") if m.name != "streamwatch.__main__"]
for name in names:
    importlib.import_module(name)
print(f"{len(names)} modules import on Python {sys.version.split()[0]}")
PY

# --no-compile: byte-compiling scipy, pandas, pyarrow, chdb... at install doubled the install time;
# what is imported is compiled then, into a cache under $WORK (nothing lands in the work tree).
PIP_FLAGS=(--progress-bar off --disable-pip-version-check --no-compile --only-binary=:all: -c "$TREE/constraints.txt")
export PYTHONPYCACHEPREFIX="$WORK/pycache"

# check VERSION: runs the checks, writes its one-line result to $WORK/result-VERSION; non-zero on failure.
check() {
    local version=$1 started=$SECONDS python venv log step=""
    local result="$WORK/result-$version"
    python=$(find_python "$version") || {
        if [ "${REQUIRE_PYTHONS:-0}" = 1 ]; then
            echo "python$version: FAILED: not found (on PATH or in pyenv), and REQUIRE_PYTHONS=1" >"$result"
            return 1
        fi
        echo "python$version: skipped: not found on PATH or in pyenv" >"$result"
        return 0
    }
    venv="$WORK/venv-$version"
    log="$WORK/log-$version"
    run() { # run STEP COMMAND...: append the output to the log, remember the step
        step=$1
        shift
        echo "+ $*" >>"$log"
        "$@" >>"$log" 2>&1
    }
    # The tests run from the snapshot (its conftest and pyproject's pytest options) against the
    # installed package: src/ is not on sys.path, so `import streamwatch` is the wheel just built.
    if run "venv" "$python" -m venv "$venv" &&
        run "sdk install (pip install -c constraints.txt .)" "$venv/bin/pip" install "${PIP_FLAGS[@]}" "$TREE" &&
        run "sdk smoke" env -C "$WORK" "$venv/bin/python" "$WORK/sdk_smoke.py" &&
        run "worker install (pip install -c constraints.txt '.[worker]')" \
            "$venv/bin/pip" install "${PIP_FLAGS[@]}" "${TREE}[worker]" &&
        run "test tools install (pip install -c constraints.txt '.[dev]')" \
            "$venv/bin/pip" install "${PIP_FLAGS[@]}" "${TREE}[dev]" &&
        run "pip check" "$venv/bin/pip" check &&
        run "worker smoke" flock "$WORK/cpu.lock" env -C "$WORK" "$venv/bin/python" "$WORK/worker_smoke.py" &&
        run "worker tests" flock "$WORK/cpu.lock" env -C "$TREE" "$venv/bin/python" -m pytest -q -p no:cacheprovider "${TESTS[@]}"
    then
        echo "python$version ($("$venv/bin/python" -c 'import sys; print(sys.version.split()[0])')): ok:" \
            "SDK installs and runs; worker installs, imports, tests:" \
            "$(grep -Eo '[0-9]+ passed[^=]*' "$log" | tail -1 | sed -E 's/ \([0-9:]+\)//; s/ *$//') ($((SECONDS - started))s)" >"$result"
        rm -rf "$venv"
        return 0
    fi
    {
        echo "---- python$version: the end of the log of '$step' ----"
        grep -v "^WARNING: Location '.*' is ignored" "$log" | tail -40
        echo "python$version ($python): FAILED at $step ($((SECONDS - started))s)"
    } >"$result"
    rm -rf "$venv"
    return 1
}

# The versions are checked side by side (the machine has 2 cores), the installs overlapping, but
# one test run at a time (cpu.lock): hypothesis's 200 ms deadline fails tests on a starved CPU.
# PYTHONS_SERIAL=1 checks one version after the other.
started=$SECONDS
failed=0
pids=()
for version in "${VERSIONS[@]}"; do
    if [ "${PYTHONS_SERIAL:-0}" = 1 ]; then
        check "$version" || failed=1
    else
        check "$version" &
        pids+=($!)
    fi
done
for pid in "${pids[@]}"; do
    wait "$pid" || failed=1
done
for version in "${VERSIONS[@]}"; do
    cat "$WORK/result-$version"
done
echo "check_pythons: $([ $failed = 0 ] && echo ok || echo FAILED) (${VERSIONS[*]}, $((SECONDS - started))s)"
exit $failed
