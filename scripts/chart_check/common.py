"""Shared constants and helpers of scripts/chart-check.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
CHART = ROOT / "charts" / "hibernator"
KUBE_VERSION = "1.35.0"
RELEASE = "hibernator"
NAMESPACE = "hibernator-system"
OUR_GROUP = "hibernator.dev"


class Report:
    """Collects check results; prints failures as they happen."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed: list[str] = []

    def ok(self, what: str, verbose: bool) -> None:
        self.passed += 1
        if verbose:
            print(f"ok   {what}")

    def fail(self, what: str, why: str) -> None:
        self.failed.append(what)
        print(f"FAIL {what}: {why}")


def load_yaml_docs(text: str) -> Iterator[dict]:
    for doc in yaml.safe_load_all(text):
        if doc:
            yield doc


def code_blocks(markdown: str) -> list[str]:
    """Contents of the fenced code blocks of a Markdown text."""
    blocks: list[str] = []
    current: list[str] | None = None
    for line in markdown.splitlines():
        if line.strip().startswith("```"):
            if current is None:
                current = []
            else:
                blocks.append("\n".join(current))
                current = None
        elif current is not None:
            current.append(line)
    return blocks
