"""Validates certwatch's Kubernetes manifests offline; run by deploy/kubernetes/check.sh.

    python validate.py CERTWATCH_BIN FILE...

Every document of every FILE (the manifests, and the output of `kubectl kustomize` for
each kustomization) is checked:

- core kinds against the Kubernetes OpenAPI schemas shipped in `kubernetes-validate`,
  strict (an unknown field is an error), for the oldest and newest Kubernetes versions
  below;
- the Prometheus Operator's kinds (ServiceMonitor, Probe, PrometheusRule) against the
  models `cloudcoil-models-prometheus-operator` generates from the Operator's CRD
  schemas, made strict here (an unknown field is an error, as `kubectl apply` with the
  default strict field validation makes it);
- certwatch's own conventions: the pod security settings, labels without `release`,
  selectors that select what they are meant to, container arguments certwatch accepts
  (`CERTWATCH_BIN --help`), a ConfigMap that `certwatch config check` accepts, Probe
  targets that `probe.allow` admits, and a PrometheusRule that promtool accepts.

Prints one line per document and every problem; exits 1 when there is any.
"""

import fnmatch
import ipaddress
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

import cloudcoil.pydantic  # noqa: E402  (before the models: see strict_models)
import kubernetes_validate
import pydantic

KUBERNETES_VERSIONS = ["1.30", kubernetes_validate.utils.latest_version()]
NAME_LABEL = "app.kubernetes.io/name"


def strict_models():
    """The Operator's models, rejecting unknown fields.

    cloudcoil's generated models ignore unknown keys (pydantic's default); the API
    server with strict field validation rejects them, and a typo in a ServiceMonitor
    is exactly what this check is for. Every model derives from cloudcoil's BaseModel,
    whose configuration they inherit when the module is imported, so it is set first.
    """
    cloudcoil.pydantic.BaseModel.model_config["extra"] = "forbid"
    from cloudcoil.models.prometheus_operator import v1

    return {kind: getattr(v1, kind) for kind in ("ServiceMonitor", "Probe", "PrometheusRule")}


OPERATOR_KINDS = strict_models()


class Checker:
    # Results of the external tools, by input: the self-test checks 14 variants.
    _help = {}
    _config_check = {}
    _promtool = {}

    def __init__(self, certwatch):
        self.certwatch = certwatch
        self.errors = []

    def error(self, where, message):
        self.errors.append(f"{where}: {message}")

    # --- schemas -------------------------------------------------------------------

    def schema(self, where, doc):
        api, kind = doc.get("apiVersion", ""), doc.get("kind", "")
        if api.startswith("monitoring.coreos.com/"):
            model = OPERATOR_KINDS.get(kind)
            if model is None or api != "monitoring.coreos.com/v1":
                self.error(where, f"no schema for {api} {kind}")
                return "?"
            try:
                model.model_validate(doc)
            except pydantic.ValidationError as e:
                for err in e.errors():
                    path = ".".join(str(p) for p in err["loc"])
                    self.error(where, f"{path}: {err['msg']}")
            return "Prometheus Operator v0.80 CRD model, strict"
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                path = ".".join(str(p) for p in e.path)
                self.error(where, f"Kubernetes {version}: {path}: {e.message}")
            except kubernetes_validate.utils.SchemaNotFoundError:
                self.error(where, f"Kubernetes {version} has no schema for {api} {kind}")
        return f"Kubernetes {' and '.join(KUBERNETES_VERSIONS)} schemas, strict"

    # --- conventions ---------------------------------------------------------------

    def labels(self, where, doc):
        labels = doc.get("metadata", {}).get("labels", {})
        if labels.get(NAME_LABEL) != "certwatch":
            self.error(where, f"metadata.labels has no {NAME_LABEL}: certwatch")
        for path, value in walk(doc):
            if path and path[-1] == "release":
                self.error(where, f"{'.'.join(map(str, path))}: a `release` label ties "
                                  "the object to one Helm release of Prometheus")

    def pod(self, where, doc):
        tmpl = doc["spec"]["template"]
        spec = tmpl["spec"]
        sel = doc["spec"]["selector"]["matchLabels"]
        if not selects(sel, tmpl["metadata"].get("labels", {})):
            self.error(where, "spec.selector does not select the pod template's labels")
        psc = spec.get("securityContext", {})
        want_pod = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
        for key, value in want_pod.items():
            if psc.get(key) != value:
                self.error(where, f"pod securityContext.{key} is not {value}")
        if not isinstance(psc.get("runAsUser"), int) or psc["runAsUser"] == 0:
            self.error(where, "pod securityContext.runAsUser is not a non-root uid")
        if spec.get("automountServiceAccountToken") is not False:
            self.error(where, "automountServiceAccountToken is not false")
        for c in spec["containers"]:
            csc = c.get("securityContext", {})
            want = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                    "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}
            for key, value in want.items():
                if csc.get(key) != value:
                    self.error(where, f"container {c['name']}: securityContext.{key} is not {value}")
            if "livenessProbe" not in c or "readinessProbe" not in c:
                self.error(where, f"container {c['name']}: no liveness or readiness probe")
            self.args(where, c.get("args", []))

    def args(self, where, args):
        if self.certwatch not in self._help:
            out = subprocess.run([self.certwatch, "--help"], capture_output=True, text=True)
            self._help[self.certwatch] = set(re.findall(r"(--[a-z][a-z0-9.-]*)", out.stdout))
        for a in args:
            flag = a.split("=", 1)[0]
            if flag.startswith("--") and flag not in self._help[self.certwatch]:
                self.error(where, f"argument {a}: `certwatch --help` has no {flag}")

    def configmap(self, where, doc):
        text = doc.get("data", {}).get("certwatch.yml")
        if text is None:
            self.error(where, "no data key certwatch.yml")
            return
        if text not in self._config_check:
            with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
                f.write(text)
                f.flush()
                out = subprocess.run([self.certwatch, "config", "check", f.name],
                                     capture_output=True, text=True)
            self._config_check[text] = (out.returncode, f"{out.stdout}{out.stderr}".strip())
        code, output = self._config_check[text]
        if code != 0:
            self.error(where, f"certwatch config check: {output}")

    def rules(self, where, doc):
        if not shutil.which("promtool"):
            self.error(where, "promtool not found (Debian package prometheus)")
            return
        rules = yaml.safe_dump({"groups": doc["spec"]["groups"]})
        if rules not in self._promtool:
            with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
                f.write(rules)
                f.flush()
                out = subprocess.run(["promtool", "check", "rules", f.name],
                                     capture_output=True, text=True)
            self._promtool[rules] = (out.returncode, f"{out.stdout}{out.stderr}".strip())
        code, output = self._promtool[rules]
        if code != 0:
            self.error(where, f"promtool check rules: {output}")


def walk(node, path=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield path + (k,), v
            yield from walk(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, path + (i,))


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def allowed(target, patterns):
    """`probe.allow` as certwatch reads it: host glob or CIDR, a colon, a port or `*`."""
    host, _, port = target.rpartition(":")
    for p in patterns:
        phost, _, pport = p.rpartition(":")
        if pport not in ("*", port):
            continue
        try:
            if ipaddress.ip_address(host.strip("[]")) in ipaddress.ip_network(phost.strip("[]")):
                return True
        except ValueError:
            if fnmatch.fnmatchcase(host, phost):
                return True
    return False


def cross_checks(chk, docs):
    """What holds between objects: selectors, ports, /probe targets."""
    by_kind = {}
    for where, d in docs:
        by_kind.setdefault(d["kind"], []).append((where, d))
    pods = [(w, d["spec"]["template"]) for w, d in by_kind.get("StatefulSet", [])
            + by_kind.get("Deployment", [])]
    services = by_kind.get("Service", [])
    for where, svc in services:
        for w, tmpl in pods:
            if not selects(svc["spec"]["selector"], tmpl["metadata"]["labels"]):
                chk.error(where, f"the Service does not select the pods of {w}")
            ports = {p["name"] for c in tmpl["spec"]["containers"] for p in c.get("ports", [])}
            for p in svc["spec"]["ports"]:
                if p["targetPort"] not in ports:
                    chk.error(where, f"targetPort {p['targetPort']} is no container port of {w}")
    for w, sts in by_kind.get("StatefulSet", []):
        names = {s["metadata"]["name"] for _, s in services}
        if sts["spec"]["serviceName"] not in names:
            chk.error(w, f"serviceName {sts['spec']['serviceName']} is not a Service here")
        args = sts["spec"]["template"]["spec"]["containers"][0].get("args", [])
        shard = [a for a in args if a.startswith("--shard")]
        count = int(shard[0].rsplit("/", 1)[1]) if shard else 1
        if count != sts["spec"]["replicas"]:
            chk.error(w, f"--shard COUNT {count} is not replicas {sts['spec']['replicas']}")
    for where, np in by_kind.get("NetworkPolicy", []):
        for w, tmpl in pods:
            if not selects(np["spec"]["podSelector"]["matchLabels"], tmpl["metadata"]["labels"]):
                chk.error(where, f"the NetworkPolicy does not select the pods of {w}")
    for where, sm in by_kind.get("ServiceMonitor", []):
        sel = sm["spec"]["selector"]["matchLabels"]
        hits = [s for _, s in services if selects(sel, s["metadata"]["labels"])]
        if services and len(hits) != 1:
            chk.error(where, f"selects {len(hits)} Services, want exactly 1 (each pod scraped once)")
        for s in hits:
            names = {p["name"] for p in s["spec"]["ports"]}
            for ep in sm["spec"]["endpoints"]:
                if ep["port"] not in names:
                    chk.error(where, f"endpoint port {ep['port']} is not a port of the Service")
    configs = [yaml.safe_load(d["data"]["certwatch.yml"]) for _, d in by_kind.get("ConfigMap", [])]
    for where, probe in by_kind.get("Probe", []):
        spec = probe["spec"]
        if services:
            svc = services[0][1]
            want = (f"{svc['metadata']['name']}.{svc['metadata']['namespace']}.svc:"
                    f"{svc['spec']['ports'][0]['port']}")
            if spec["prober"]["url"] != want:
                chk.error(where, f"prober.url {spec['prober']['url']} is not {want}")
        for cfg in configs:
            allow = cfg.get("probe", {}).get("allow")
            if "module" in spec and spec["module"] not in cfg.get("modules", {}):
                chk.error(where, f"module {spec['module']} is not a module of the ConfigMap")
            for t in spec["targets"]["staticConfig"]["static"]:
                if allow is not None and not allowed(t, allow):
                    chk.error(where, f"target {t} is not in the ConfigMap's probe.allow {allow}")


def check_all(chk, files, installs, quiet=False):
    """Checks every document of `files`, then each installation with the Operator's
    objects. `files` and `installs` map a name to its documents."""
    docs = []
    for f, documents in files.items():
        for i, d in enumerate(documents):
            where = f"{f}#{i} {d.get('kind')}/{d.get('metadata', {}).get('name')}"
            before = len(chk.errors)
            how = chk.schema(where, d)
            chk.labels(where, d)
            if d.get("kind") in ("StatefulSet", "Deployment"):
                chk.pod(where, d)
            elif d.get("kind") == "ConfigMap":
                chk.configmap(where, d)
            elif d.get("kind") == "PrometheusRule":
                chk.rules(where, d)
            if not quiet:
                status = "ok" if len(chk.errors) == before else "FAILED"
                print(f"    {status}: {where} (schema: {how})")
            docs.append((where, d))
    # Between objects: each installation (the output of `kubectl kustomize` of
    # sharded/ or single/) with the Prometheus Operator's objects.
    operator = [(w, d) for w, d in docs if d["apiVersion"].startswith("monitoring.coreos.com/")]
    for f, documents in installs.items():
        before = len(chk.errors)
        group = [(f"{f} {d['kind']}/{d['metadata']['name']}", d) for d in documents]
        cross_checks(chk, group + operator)
        if not quiet:
            status = "ok" if len(chk.errors) == before else "FAILED"
            print(f"    {status}: {f}: selectors, ports, --shard and replicas, /probe targets "
                  f"and probe.allow, with the Prometheus Operator objects")
    return len(docs)


# Each mutation breaks one rule in a copy of the manifests; the check must report it.
# (file suffix, kind, change, what the error must say)
MUTATIONS = [
    ("servicemonitor.yaml", "ServiceMonitor",
     lambda d: d["spec"]["endpoints"][0].update(intervall="30s"), "intervall"),
    ("probe.yaml", "Probe",
     lambda d: d["spec"]["prober"].update(scheme="gopher"), "scheme"),
    ("prometheusrule.yaml", "PrometheusRule",
     lambda d: d["spec"]["groups"][0]["rules"][5].update(expr="rate(x[5m]"), "promtool"),
    ("statefulset.yaml", "StatefulSet",
     lambda d: d["spec"]["template"]["spec"]["containers"][0]["securityContext"].update(
         readOnlyRootFilesystem=False), "readOnlyRootFilesystem"),
    ("statefulset.yaml", "StatefulSet",
     lambda d: d["spec"]["template"]["spec"]["containers"][0].update(
         readinessprobe={"httpGet": {"path": "/-/ready", "port": 9798}}), "readinessprobe"),
    ("deployment.yaml", "Deployment",
     lambda d: d["spec"]["template"]["spec"]["securityContext"].pop("seccompProfile"),
     "seccompProfile"),
    ("deployment.yaml", "Deployment",
     lambda d: d["spec"]["template"]["spec"]["containers"][0]["args"].append("--no-such-flag"),
     "--no-such-flag"),
    ("kustomize-sharded.yaml", "StatefulSet",
     lambda d: d["spec"].update(replicas=4), "--shard COUNT 3 is not replicas 4"),
    ("kustomize-sharded.yaml", "Service",
     lambda d: d["spec"]["selector"].update({"app.kubernetes.io/component": "other"}),
     "does not select the pods"),
    ("configmap.yaml", "ConfigMap",
     lambda d: d["data"].update({"certwatch.yml": d["data"]["certwatch.yml"].replace(
         "interval: 5m", "interval: 5 minutes")}), "certwatch config check"),
    ("probe.yaml", "Probe",
     lambda d: d["spec"]["targets"]["staticConfig"]["static"].append("db.example.net:5432"),
     "not in the ConfigMap's probe.allow"),
    ("networkpolicy.yaml", "NetworkPolicy",
     lambda d: d["spec"]["egress"][1]["ports"].append({"port": "https", "protocol": "SCTP",
                                                       "endPort": "x"}), "endPort"),
    ("service.yaml", "Service",
     lambda d: d["metadata"]["labels"].update(release="kube-prometheus-stack"), "release"),
]


def self_test(certwatch, files, installs):
    """Every mutation must be reported; the unmutated manifests must pass."""
    import copy

    chk = Checker(certwatch)
    check_all(chk, files, installs, quiet=True)
    failed = [f"the shipped manifests do not pass: {chk.errors}"] if chk.errors else []
    for suffix, kind, change, expect in MUTATIONS:
        fs, ins = copy.deepcopy(files), copy.deepcopy(installs)
        target = [d for group in (fs, ins) for name, docs in group.items()
                  if name.endswith(suffix) for d in docs if d["kind"] == kind]
        if not target:
            failed.append(f"no {kind} in {suffix}")
            continue
        change(target[0])
        chk = Checker(certwatch)
        check_all(chk, fs, ins, quiet=True)
        hits = [e for e in chk.errors if expect in e]
        if hits:
            print(f"    ok: {kind} in {suffix} broken, reported: {' '.join(hits[0].split())[:160]}")
        else:
            failed.append(f"{kind} in {suffix}: no error mentioning {expect!r} ({chk.errors})")
    for f in failed:
        print("    FAILED:", f)
    print(f"    {len(MUTATIONS) - len(failed)} of {len(MUTATIONS)} broken manifests reported")
    return 1 if failed else 0


def load(path):
    return [d for d in yaml.safe_load_all(pathlib.Path(path).read_text()) if d is not None]


def main(argv):
    certwatch, rest = argv[1], argv[2:]
    mode = "check"
    if rest and rest[0] == "--self-test":
        mode, rest = "self-test", rest[1:]
    installs, files = {}, {}
    while rest:
        if rest[0] == "--install":
            installs[rest[1]] = load(rest[1])
            rest = rest[2:]
        else:
            f = rest.pop(0)
            files[f] = load(f)
    if mode == "self-test":
        return self_test(certwatch, files, installs)
    chk = Checker(certwatch)
    count = check_all(chk, files, installs)
    for e in chk.errors:
        print("    error:", e)
    print(f"    {count} documents, {len(installs)} installations, {len(chk.errors)} problems")
    return 1 if chk.errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
