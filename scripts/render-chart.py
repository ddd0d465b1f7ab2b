#!/usr/bin/env python3
"""Render charts/hibernator with real Helm (the chart venv's helm-python-sdk)
and print the objects as one JSON array, for tests that run what the chart
renders (the streaming journey test in hibernator-operator/tests/it/process).

    target/chart-venv/bin/python scripts/render-chart.py \
        [--namespace NS] [--release NAME] [--journey] [-f values.yaml ...]

`--journey` starts from the values blocks of the streaming journey
(charts/hibernator/ci/journeys/runner-streaming.md, merged as
chart_check/journey.py reads them); values files are merged over them in
order, as `helm template -f a -f b` does. A render error (a refused value)
prints Helm's message on stderr and exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.dont_write_bytecode = True

import helm_python as helm
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from chart_check.common import CHART, NAMESPACE, RELEASE, load_yaml_docs  # noqa: E402
from chart_check.docs import merge  # noqa: E402
from chart_check.journey import journey_values  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--namespace", default=NAMESPACE)
    parser.add_argument("--release", default=RELEASE)
    parser.add_argument("--journey", action="store_true", help="start from the streaming journey's values")
    parser.add_argument("-f", "--values", action="append", default=[], help="values file (repeatable)")
    args = parser.parse_args()
    values: dict = journey_values() if args.journey else {}
    for file in args.values:
        merge(values, yaml.safe_load(Path(file).read_text()) or {})
    with helm.Chart.load(str(CHART)) as chart:
        try:
            manifests = chart.render(values, name=args.release, namespace=args.namespace, is_install=True)
        except helm.HelmError as err:
            print(str(err), file=sys.stderr)
            return 1
    objects = []
    for path in sorted(manifests):
        if path.endswith((".yaml", ".yml")):
            objects.extend(load_yaml_docs(manifests[path]))
    json.dump(objects, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
