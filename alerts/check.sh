#!/usr/bin/env bash
# Checks the alerting rules, their unit tests, the example Alertmanager
# configuration and the Grafana dashboard of certwatch.
#
#   alerts/check.sh            (from anywhere; needs promtool, amtool, python3
#                               with PyYAML: Debian packages prometheus,
#                               prometheus-alertmanager, python3-yaml)
#
# Every check runs even when an earlier one failed; the script prints what it
# checked and exits non-zero when any check failed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

RULES=alerts/certwatch.rules.yml
TESTS=(alerts/tests/*.yml)
AMCONFIG=alerts/alertmanager.yml
RUNBOOK=alerts/RUNBOOK.md
DASHBOARD=dashboards/certwatch.json

# The metrics certwatch exports: ../shared/CONTRACT.md section 4, plus
# certwatch_probe_interval_seconds (the configured probe interval), the
# certificate files' of sections 5 and 6, section 7's revocation families, sections 8
# and 9 (legacy_only, chain_issue_info, cert_weakness_info),
# certwatch_cert_on_verified_path, the caps of DNS discovery (section 10:
# certwatch_discovered_hosts, certwatch_addresses_skipped); and Prometheus' own
# `up` (CertwatchDown). Rules and
# the dashboard may use no other metric (rules may also use the series they
# record themselves).
METRICS="certwatch_handshake_success certwatch_chain_verified certwatch_probe_success
certwatch_verify_error_info certwatch_probe_failure_info certwatch_tls_info certwatch_cert_info
certwatch_cert_not_after_timestamp_seconds certwatch_cert_not_before_timestamp_seconds
certwatch_cert_expiry_seconds certwatch_chain_expiry_seconds certwatch_verified_chain_expiry_seconds
certwatch_probe_duration_seconds certwatch_probe_phase_duration_seconds
certwatch_last_probe_timestamp_seconds certwatch_probes_total certwatch_build_info
certwatch_config_last_reload_successful certwatch_config_last_reload_success_timestamp_seconds
certwatch_targets certwatch_probe_interval_seconds
certwatch_served_cert_current certwatch_served_file_not_after_timestamp_seconds
certwatch_file_read_success certwatch_file_read_error_info certwatch_files_matched
certwatch_files_skipped
certwatch_legacy_only certwatch_chain_issue_info certwatch_cert_weakness_info
certwatch_cert_on_verified_path
certwatch_cert_revoked certwatch_ocsp_stapled certwatch_ocsp_next_update_timestamp_seconds
certwatch_crl_next_update_timestamp_seconds certwatch_cert_must_staple
certwatch_revocation_check_failure_info
certwatch_discovered_hosts certwatch_addresses_skipped
up"
export METRICS

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

passed=0
failed=0
failures=()

# step DESCRIPTION COMMAND...: runs COMMAND, prints its output and the verdict.
step() {
    local what=$1
    shift
    echo "==> $what"
    if "$@"; then
        echo "    ok: $what"
        passed=$((passed + 1))
    else
        echo "    FAILED: $what"
        failed=$((failed + 1))
        failures+=("$what")
    fi
    echo
}

need() {
    local missing=0 tool
    for tool in "$@"; do
        if command -v "$tool" >/dev/null 2>&1; then
            echo "    $tool: $(command -v "$tool")"
        else
            echo "    $tool: not found"
            missing=1
        fi
    done
    if ! python3 -c 'import yaml' 2>/dev/null; then
        echo "    python3: the yaml module (PyYAML, Debian: python3-yaml) is missing"
        missing=1
    fi
    return "$missing"
}

# --- rules ------------------------------------------------------------------

# Static checks promtool does not do: every alert has a severity, summary,
# description and a runbook_url whose anchor is a heading of RUNBOOK.md;
# every expression uses only certwatch's metrics.
check_rules_content() {
    python3 - "$RULES" "$RUNBOOK" <<'PY'
import os, re, sys, yaml
sys.path.insert(0, os.environ["CHECK_LIB"])
from promqlcheck import check_expr, github_slug

rules_path, runbook_path = sys.argv[1], sys.argv[2]
doc = yaml.safe_load(open(rules_path))
metrics = set(os.environ["METRICS"].split())
recorded = {r["record"] for g in doc["groups"] for r in g["rules"] if "record" in r}
headings = {github_slug(m.group(1)) for m in
            re.finditer(r"^#{1,6}\s+(.*?)\s*#*\s*$", open(runbook_path).read(), re.M)}
base = "https://github.com/certwatch/certwatch/blob/main/alerts/RUNBOOK.md#"
errors, alerts = [], []
for g in doc["groups"]:
    for r in g["rules"]:
        name = r.get("alert") or r.get("record")
        for e in check_expr(r["expr"], metrics | recorded):
            errors.append(f"{name}: {e}")
        if "alert" not in r:
            continue
        alerts.append(name)
        sev = r.get("labels", {}).get("severity")
        if sev not in ("critical", "warning", "info"):
            errors.append(f"{name}: severity label is {sev!r}")
        ann = r.get("annotations", {})
        for key in ("summary", "description", "runbook_url"):
            if not ann.get(key):
                errors.append(f"{name}: no {key} annotation")
        url = ann.get("runbook_url", "")
        kebab = re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()
        if url != base + "runbook-" + kebab:
            errors.append(f"{name}: runbook_url {url!r} is not {base}runbook-{kebab}")
        elif "runbook-" + kebab not in headings:
            errors.append(f"{name}: {runbook_path} has no heading with anchor #runbook-{kebab}")
print(f"    {len(alerts)} alerts, {len(recorded)} recorded thresholds: {', '.join(alerts)}")
print(f"    metrics used are all certwatch's; every alert has severity, summary, description"
      if not errors else "", end="")
print("" if errors else f" and a runbook_url anchored in {runbook_path}")
for e in errors:
    print("    error:", e)
sys.exit(1 if errors else 0)
PY
}

# --- dashboard ---------------------------------------------------------------

check_dashboard() {
    python3 - "$DASHBOARD" "$TMP/dashboard.rules.yml" <<'PY'
import json, os, re, sys
sys.path.insert(0, os.environ["CHECK_LIB"])
from promqlcheck import check_expr

path, rules_out = sys.argv[1], sys.argv[2]
d = json.load(open(path))
metrics = set(os.environ["METRICS"].split())
errors = []

if not isinstance(d.get("schemaVersion"), int) or d["schemaVersion"] < 39:
    errors.append(f"schemaVersion is {d.get('schemaVersion')!r}, want 39 or newer")

variables = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
ds = variables.get("datasource")
if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
    errors.append("no datasource variable `datasource` of type prometheus")

def is_our_ds(x):
    return isinstance(x, dict) and x.get("type") == "prometheus" and x.get("uid") == "${datasource}"

# Every PromQL expression, with where it comes from.
exprs = []
for name in ("team", "target"):
    v = variables.get(name)
    q = v and (v.get("query", {}).get("query") if isinstance(v.get("query"), dict) else v.get("query"))
    m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", q or "", re.S)
    if not v or v.get("type") != "query" or not m or m.group(2) != name:
        errors.append(f"variable `{name}` is not a label_values(..., {name}) query")
        continue
    if not is_our_ds(v.get("datasource")):
        errors.append(f"variable `{name}` does not use ${{datasource}}")
    exprs.append((f"variable {name}", m.group(1)))

def walk(panels):
    for p in panels:
        yield p
        yield from walk(p.get("panels", []))

ids = set()
panels = list(walk(d.get("panels", [])))
for p in panels:
    title = p.get("title", "?")
    if p.get("id") in ids:
        errors.append(f"panel {title!r}: duplicate id {p.get('id')}")
    ids.add(p.get("id"))
    if p.get("type") == "row":
        continue
    if not is_our_ds(p.get("datasource")):
        errors.append(f"panel {title!r}: datasource is not ${{datasource}}")
    if not p.get("targets"):
        errors.append(f"panel {title!r}: no targets")
    for t in p.get("targets", []):
        if not is_our_ds(t.get("datasource")):
            errors.append(f"panel {title!r} {t.get('refId')}: datasource is not ${{datasource}}")
        if not t.get("expr"):
            errors.append(f"panel {title!r} {t.get('refId')}: no expr")
            continue
        exprs.append((f"panel {title!r} {t.get('refId')}", t["expr"]))

for where, e in exprs:
    for err in check_expr(e, metrics):
        errors.append(f"{where}: {err}")

# For promtool: Grafana's variables replaced by values of the right kind.
def substitute(e):
    e = re.sub(r"\$__(rate_interval|interval|range|auto)\b", "5m", e)
    e = re.sub(r"\$__range_s\b", "300", e)
    return re.sub(r"\$\{\w+(:\w+)?\}|\$\w+|\[\[\w+\]\]", ".*", e)

rules = [{"record": f"dashboard:expr_{i}", "expr": substitute(e)} for i, (_, e) in enumerate(exprs)]
json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(rules_out, "w"), indent=1)

print(f"    schemaVersion {d.get('schemaVersion')}, {len(panels)} panels, "
      f"variables: {', '.join(variables)}; {len(exprs)} PromQL expressions extracted")
for e in errors:
    print("    error:", e)
sys.exit(1 if errors else 0)
PY
}

# The dashboard's expressions, as recording rules, through promtool's parser.
check_dashboard_promql() {
    [[ -s $TMP/dashboard.rules.yml ]] || { echo "    no expressions extracted"; return 1; }
    promtool check rules "$TMP/dashboard.rules.yml"
}

# --- the PromQL scanner shared by the checks above ----------------------------

export CHECK_LIB=$TMP/lib
mkdir -p "$CHECK_LIB"
cat >"$CHECK_LIB/promqlcheck.py" <<'PY'
"""A small PromQL scanner: which metric names and functions an expression uses."""
import re

FUNCTIONS = set("""
abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time ceil changes
clamp clamp_max clamp_min cos cosh count_over_time day_of_month day_of_week day_of_year
days_in_month deg delta deriv exp floor histogram_count histogram_fraction
histogram_quantile histogram_stddev histogram_stdvar histogram_sum holt_winters hour
idelta increase irate label_join label_replace last_over_time ln log10 log2
mad_over_time max_over_time min_over_time minute month pi predict_linear
present_over_time quantile_over_time rad rate resets round scalar sgn sin sinh sort
sort_desc sort_by_label sort_by_label_desc sqrt stddev_over_time stdvar_over_time
sum_over_time tan tanh time timestamp vector year start end
sum min max avg group stddev stdvar count count_values bottomk topk quantile limitk
limit_ratio
""".split())
KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
            "group_right", "bool", "offset", "atan2", "inf", "nan"}
TOKEN = re.compile(r"""
    (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<comment>\#[^\n]*)
  | (?P<number>[0-9][0-9a-zA-Z_.]*)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<other>.)
""", re.X | re.S)

def check_expr(expr, metrics):
    """Returns a list of problems: unknown metric names and unknown functions."""
    errors = []
    toks = [(m.lastgroup, m.group()) for m in TOKEN.finditer(expr)
            if m.lastgroup not in ("comment",) and not m.group().isspace()]
    i, depth_brace, depth_bracket, skip_paren = 0, 0, 0, 0
    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1][1] if i + 1 < len(toks) else ""
        if text == "{":
            depth_brace += 1
        elif text == "}":
            depth_brace -= 1
        elif text == "[":
            depth_bracket += 1
        elif text == "]":
            depth_bracket -= 1
        elif depth_brace or depth_bracket or kind != "ident":
            pass
        elif text.lower() in KEYWORDS:
            if text.lower() in ("by", "without", "on", "ignoring", "group_left",
                                "group_right") and nxt == "(":
                # skip the label list
                j = i + 2
                while j < len(toks) and toks[j][1] != ")":
                    j += 1
                i = j
        elif nxt == "(" or (text in FUNCTIONS and nxt.lower() in ("by", "without")):
            if text not in FUNCTIONS:
                errors.append(f"unknown function {text}()")
        elif text not in metrics:
            errors.append(f"metric {text} is not one of certwatch's")
        i += 1
    if depth_brace or depth_bracket:
        errors.append("unbalanced braces or brackets")
    return errors

def github_slug(heading):
    """The anchor GitHub gives a Markdown heading."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")
PY

# --- run -----------------------------------------------------------------------

step "tools: promtool, amtool, python3 with PyYAML" need promtool amtool python3
step "promtool check rules $RULES" promtool check rules "$RULES"
step "rules: severity/summary/description/runbook_url, runbook anchors in $RUNBOOK, only certwatch metrics" \
    check_rules_content
step "promtool test rules ${TESTS[*]}" promtool test rules "${TESTS[@]}"
step "amtool check-config $AMCONFIG" amtool check-config "$AMCONFIG"
step "amtool: severity=critical routes to certwatch-critical" \
    amtool config routes test --config.file="$AMCONFIG" --verify.receivers=certwatch-critical \
    severity=critical alertname=CertificateExpired target=example.com:443
step "amtool: severity=warning routes to certwatch-warning" \
    amtool config routes test --config.file="$AMCONFIG" --verify.receivers=certwatch-warning \
    severity=warning alertname=CertificateExpiring target=example.com:443
step "python3 -m json.tool $DASHBOARD (valid JSON)" python3 -m json.tool "$DASHBOARD" /dev/null
step "dashboard: schema, \${datasource}, team/target variables, only certwatch metrics and PromQL functions" \
    check_dashboard
step "promtool check rules on the dashboard's expressions (PromQL syntax)" check_dashboard_promql

echo "check.sh: $passed passed, $failed failed"
if ((failed > 0)); then
    printf '    failed: %s\n' "${failures[@]}"
    exit 1
fi
