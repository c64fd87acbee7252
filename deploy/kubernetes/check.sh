#!/usr/bin/env bash
# Validates deploy/kubernetes/ offline (CI runs it from .ci/run):
#
#   bash deploy/kubernetes/check.sh     (from anywhere; uses target/debug/certwatch,
#                                        or the binary in $CERTWATCH_BIN)
#
# 1. the PrometheusRule is what generate-prometheusrule.py writes from the rules file;
# 2. every kustomization renders with `kubectl kustomize` (kubectl's built-in kustomize);
# 3. validate.py checks every manifest: the Kubernetes kinds against the Kubernetes
#    OpenAPI schemas (kubernetes-validate, strict), the Prometheus Operator's kinds
#    against models of its CRD schemas (cloudcoil-models-prometheus-operator, strict),
#    and certwatch's conventions (see validate.py); then its self-test breaks copies of
#    the manifests one way each (a typo, an insecure setting, a flag certwatch lacks...)
#    and requires each to be reported.
#
# The validators come from PyPI (requirements.txt, pinned) into a venv kept in
# $CERTWATCH_TOOLS_DIR (default ~/.cache/certwatch/tools) and rebuilt only when
# requirements.txt changes. Needs python3 with venv (Debian: python3-venv), kubectl
# (kustomize 2.1 or later inside), promtool (Debian: prometheus).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

K8S=deploy/kubernetes
CERTWATCH=${CERTWATCH_BIN:-target/debug/certwatch}
TOOLS=${CERTWATCH_TOOLS_DIR:-${HOME:-$PWD/target}/.cache/certwatch/tools}
VENV=$TOOLS/k8s-validate-venv
OUT=target/kubernetes
mkdir -p "$OUT"

[[ -x $CERTWATCH ]] || { echo "no certwatch binary at $CERTWATCH (cargo build, or set CERTWATCH_BIN)"; exit 1; }
# kubectl comes with this machine kind's image (1.32, kustomize 5.5); Debian's
# kubernetes-client (1.20, kustomize 2.0) cannot render a directory in `resources:`.
for tool in python3 kubectl promtool; do
    command -v "$tool" >/dev/null || { echo "$tool not found"; exit 1; }
done

echo "--- PrometheusRule up to date with alerts/certwatch.rules.yml"
python3 "$K8S/generate-prometheusrule.py" --check

echo "--- kubectl kustomize"
for k in "$K8S"/*/kustomization.yaml; do
    dir=$(dirname "$k")
    name=$(basename "$dir")
    kubectl kustomize "$dir" >"$OUT/kustomize-$name.yaml"
    echo "    ok: $dir renders $(grep -c '^kind:' "$OUT/kustomize-$name.yaml") objects"
done

want=$(sha256sum "$K8S/requirements.txt" | cut -d' ' -f1)
if [[ "$(cat "$VENV/requirements.sha256" 2>/dev/null)" != "$want" ]] ||
    ! "$VENV/bin/python" -c 'import kubernetes_validate, cloudcoil.models.prometheus_operator' 2>/dev/null; then
    echo "--- installing the validators (requirements.txt) into $VENV"
    start=$SECONDS
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$K8S/requirements.txt"
    echo "$want" >"$VENV/requirements.sha256"
    echo "    installed in $((SECONDS - start)) s"
fi

echo "--- validate.py: schemas and conventions"
manifests=()
while IFS= read -r f; do manifests+=("$f"); done < <(
    find "$K8S" -name '*.yaml' ! -name kustomization.yaml | sort)
installs=()
for name in sharded single; do installs+=(--install "$OUT/kustomize-$name.yaml"); done
"$VENV/bin/python" "$K8S/validate.py" "$CERTWATCH" "${installs[@]}" "${manifests[@]}"

echo "--- validate.py self-test: manifests broken one way each are reported"
"$VENV/bin/python" "$K8S/validate.py" "$CERTWATCH" --self-test "${installs[@]}" "${manifests[@]}"
