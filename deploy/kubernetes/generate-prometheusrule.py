#!/usr/bin/env python3
"""Writes the Prometheus Operator's PrometheusRule for certwatch from the rules file.

    deploy/kubernetes/generate-prometheusrule.py           rewrite prometheusrule.yaml
    deploy/kubernetes/generate-prometheusrule.py --check   exit 1 (with a diff) when the
                                                            checked-in file is not what
                                                            this script writes
    deploy/kubernetes/generate-prometheusrule.py --stdout  print it

alerts/certwatch.rules.yml is the one source of the alerts and their thresholds (the
file Prometheus loads with `rule_files:`); the PrometheusRule carries its `groups`
unchanged, so the two never drift apart. tests/deploy_manifests.rs and
deploy/kubernetes/check.sh fail when the checked-in file differs from the output.
Needs python3 with PyYAML (Debian: python3-yaml); the output does not depend on the
PyYAML version (6.0 to 6.0.3 checked).
"""

import difflib
import pathlib
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOURCE = "alerts/certwatch.rules.yml"
OUTPUT = "deploy/kubernetes/prometheus-operator/prometheusrule.yaml"

LABELS = {
    "app.kubernetes.io/name": "certwatch",
    "app.kubernetes.io/component": "alert-rules",
    "app.kubernetes.io/part-of": "certwatch",
}

HEADER = f"""\
# GENERATED from {SOURCE} by deploy/kubernetes/generate-prometheusrule.py:
# do not edit. Change the rules (and their thresholds, at the top of that file) there,
# then run the script; a test fails while this file differs from its output. The
# comments of {SOURCE} explain the thresholds, the expiry bands and the joins.
"""


class _Dumper(yaml.SafeDumper):
    """Block style everywhere, lists indented under their key, multi-line strings
    (PromQL, descriptions) as `|` blocks."""

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


def _str(dumper, value):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render():
    rules = yaml.safe_load((ROOT / SOURCE).read_text())
    if not isinstance(rules, dict) or set(rules) != {"groups"} or not rules["groups"]:
        sys.exit(f"{SOURCE}: expected a mapping with one key, `groups`, and at least one group")
    doc = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "certwatch", "namespace": "monitoring", "labels": LABELS},
        "spec": {"groups": rules["groups"]},
    }
    body = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=1 << 16, indent=2)
    return HEADER + body


def main(argv):
    mode = argv[1] if len(argv) > 1 else "--write"
    if mode not in ("--write", "--check", "--stdout") or len(argv) > 2:
        sys.exit(__doc__)
    text = render()
    path = ROOT / OUTPUT
    if mode == "--stdout":
        sys.stdout.write(text)
    elif mode == "--write":
        path.write_text(text)
        print(f"wrote {OUTPUT} from {SOURCE}")
    else:
        current = path.read_text() if path.exists() else ""
        if current != text:
            sys.stdout.writelines(difflib.unified_diff(
                current.splitlines(True), text.splitlines(True),
                f"{OUTPUT} (checked in)", f"{OUTPUT} (generated from {SOURCE})"))
            print(f"{OUTPUT} is out of date: run deploy/kubernetes/generate-prometheusrule.py")
            return 1
        print(f"{OUTPUT} is what {SOURCE} generates")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
