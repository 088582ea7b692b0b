"""The README's example events are valid under the contract, so the documentation cannot drift."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from streamwatch import parse_event

README = (Path(__file__).parent.parent / "README.md").read_text()
BLOCKS = [b for b in re.findall(r"```json\n(.*?)```", README, re.S) if '"type"' in b]


def test_every_event_type_has_an_example() -> None:
    types = [re.search(r'"type": "(\w+)"', block).group(1) for block in BLOCKS]  # type: ignore[union-attr]
    assert sorted(types) == ["alert", "feature", "label", "prediction", "retrain"]


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: re.search(r'"type": "(\w+)"', b).group(1))  # type: ignore[union-attr]
def test_readme_example_is_valid(block: str) -> None:
    parse_event(block.encode(), any_type=True)
