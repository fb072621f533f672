#!/usr/bin/env bash
# Validates deploy/ without a Docker engine (AC-OBS-4, specs/observability.md):
#   - promtool (Debian's `prometheus` package) checks deploy/prometheus/prometheus.yml;
#   - docker-compose (Debian's, which validates against its bundled Compose schema) checks
#     deploy/docker-compose.yml and resolves it;
#   - a structural check: the service set, every mounted file exists, the collector's pipelines use
#     defined components and export to Jaeger, Grafana provisions the dashboard the stack mounts.
# The dashboard's metric names are checked against a live node by the Rust test
# `obs_metrics::every_metric_the_dashboard_queries_exists_on_a_live_node`.
# Installs promtool and docker-compose with apt when missing. Usage: bash ci/deploy-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
python3 -c 'import yaml' >/dev/null 2>&1 || need+=(python3-yaml)
if ((${#need[@]})); then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

echo "promtool: $(promtool --version 2>&1 | head -n1)"
promtool check config deploy/prometheus/prometheus.yml

echo "docker-compose: $(docker-compose version --short 2>/dev/null || true)"
docker-compose -f deploy/docker-compose.yml config -q
echo "deploy/docker-compose.yml: valid"

python3 - <<'PY'
import json, os, sys, yaml

os.chdir("deploy")
problems = []
compose = yaml.safe_load(open("docker-compose.yml"))
services = compose["services"]
want = {"nats", "keys", "node-1", "node-2", "otel-collector", "jaeger", "prometheus", "grafana"}
if set(services) != want:
    problems.append(f"compose services {sorted(services)} != {sorted(want)}")
for name, service in services.items():
    for volume in service.get("volumes", []):
        source = volume.split(":")[0]
        if source.startswith(".") and not os.path.exists(source):
            problems.append(f"{name} mounts missing {source}")

collector = yaml.safe_load(open("otel-collector.yaml"))
for pipeline, spec in collector["service"]["pipelines"].items():
    for kind in ("receivers", "processors", "exporters"):
        for component in spec.get(kind, []):
            if component not in (collector.get(kind) or {}):
                problems.append(f"collector pipeline {pipeline} uses undefined {kind[:-1]} {component}")
if "4318" not in collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"]:
    problems.append("collector does not receive OTLP/HTTP on 4318")
if not collector["exporters"]["otlp/jaeger"]["endpoint"].startswith("jaeger:"):
    problems.append("collector does not export to jaeger")

for node in ("compose/node-1.toml", "compose/node-2.toml"):
    text = open(node).read()
    if 'otlp_endpoint = "http://otel-collector:4318"' not in text:
        problems.append(f"{node} does not export traces to the collector")

providers = yaml.safe_load(open("grafana/provisioning/dashboards/arqonbus.yml"))["providers"]
grafana_mounts = [v.split(":") for v in services["grafana"]["volumes"]]
mounted = {target: source for source, target, *_ in grafana_mounts}
for provider in providers:
    path = provider["options"]["path"]
    if path not in mounted:
        problems.append(f"grafana provider path {path} is not mounted")
dashboard = json.load(open("grafana/dashboards/arqonbus-overview.json"))
if dashboard.get("title") != "ArqonBus Overview":
    problems.append("the dashboard is not titled 'ArqonBus Overview'")
datasources = yaml.safe_load(open("grafana/provisioning/datasources/prometheus.yml"))["datasources"]
uids = {d["uid"] for d in datasources}
for panel in dashboard["panels"]:
    if panel["datasource"]["uid"] not in uids:
        problems.append(f"panel {panel['title']} uses an unprovisioned datasource")

scrape = yaml.safe_load(open("prometheus/prometheus.yml"))
targets = {t for job in scrape["scrape_configs"] for c in job.get("static_configs", []) for t in c["targets"]}
for node in ("node-1:8080", "node-2:8080"):
    if node not in targets:
        problems.append(f"prometheus does not scrape {node}")

if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
print("deploy/: structure ok (services, mounts, collector -> jaeger, grafana provisioning, scrape targets)")
PY
