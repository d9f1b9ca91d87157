#!/usr/bin/python3
"""Deploy files, checked offline by the tools that own their formats (issue 7).

  deploy_test.py k8s         kubectl kustomize renders overlays cpu and gpu; the parsed objects have
                             probes, resources, non-root settings, PDB, HPA metrics, ...
  deploy_test.py compose     docker-compose config accepts docker-compose.yml; what it mounts exists
  deploy_test.py monitoring  promtool check config / check rules / test rules; every metric the
                             alerts, the adapter rule, the HPA and the dashboard use is one a running
                             invad-server exports (scraped) and docs/metrics.md lists
  deploy_test.py dockerfile  deploy/docker/Dockerfile: COPY sources exist, build RUNs call
                             scripts/, runtime packages cover ldd of the installed binaries,
                             HEALTHCHECK and ENTRYPOINT use installed binaries

  common flags: --src SOURCE_DIR --bin BUILD_DIR --work DIR
A missing tool skips (exit 77), or fails when CI=true: scripts/install-deps.sh provides them all.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml

SKIP = 77


def need(tool):
    path = shutil.which(tool)
    if path:
        return path
    if os.environ.get("CI") == "true":
        sys.exit(f"FAIL: {tool} missing under CI=true (scripts/install-deps.sh installs it)")
    print(f"SKIP: {tool} not installed")
    sys.exit(SKIP)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def server_flags(bindir):
    """Flag names invad-server accepts (from --helpfull)."""
    out = subprocess.run([os.path.join(bindir, "server/invad-server"), "--helpfull"],
                         capture_output=True, text=True, timeout=60)
    names = set(re.findall(r"^\s+--(\w+)", out.stdout + out.stderr, re.M))
    check("grpc_address" in names and "flagfile" in names, "cannot read invad-server --helpfull")
    return names


def check_flags(args, known, where):
    for a in args:
        m = re.match(r"--(\w+)", a)
        check(m and m.group(1) in known, f"{where}: unknown invad-server flag {a!r}")


def duration_s(text):
    m = re.fullmatch(r"(\d+)(ms|s|m)", text)
    check(m, f"duration {text!r}")
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[m.group(2)]


# ---------------------------------------------------------------------------------------------
def test_k8s(a):
    kubectl = need("kubectl")
    known = server_flags(a.bin)
    for overlay in ("cpu", "gpu"):
        path = os.path.join(a.src, "deploy/k8s/overlays", overlay)
        r = subprocess.run([kubectl, "kustomize", path], capture_output=True, text=True,
                           timeout=120)
        check(r.returncode == 0, f"kubectl kustomize {overlay}: {r.stderr}")
        objs = [d for d in yaml.safe_load_all(r.stdout) if d]
        by_kind = {}
        for o in objs:
            by_kind.setdefault(o["kind"], []).append(o)
        for kind in ("Deployment", "Service", "ConfigMap", "PersistentVolumeClaim",
                     "PodDisruptionBudget", "HorizontalPodAutoscaler", "ServiceMonitor",
                     "NetworkPolicy"):
            check(kind in by_kind, f"{overlay}: no {kind}")
        (dep,) = by_kind["Deployment"]
        pod = dep["spec"]["template"]["spec"]
        (c,) = pod["containers"]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        check(ports == {"grpc": 50051, "health": 50052, "metrics": 9464}, ports)

        # flags: from the generated ConfigMap, mounted, every one a real flag
        (cm,) = by_kind["ConfigMap"]
        flags_file = cm["data"]["invad.flags"]
        flags = [f for f in flags_file.split() if f]
        check_flags(flags, known, f"{overlay} invad.flags")
        fv = dict(f[2:].split("=", 1) for f in flags)
        check(c["args"] == ["--flagfile=/etc/invad/invad.flags"], c["args"])
        mounts = {m["name"]: m for m in c["volumeMounts"]}
        vols = {v["name"]: v for v in pod["volumes"]}
        check(mounts["flags"]["mountPath"] == "/etc/invad", mounts)
        check(vols["flags"]["configMap"]["name"] == cm["metadata"]["name"], "flags volume")
        check(vols["models"].get("persistentVolumeClaim", {}).get("claimName") ==
              by_kind["PersistentVolumeClaim"][0]["metadata"]["name"], "models volume from PVC")
        check(mounts["models"]["mountPath"] == fv["model_repository"], "model mount")
        check("emptyDir" in vols["tmp"] and mounts["tmp"]["mountPath"] == "/tmp", "tmp")

        # probes: gRPC, on the plaintext health port; readiness "", liveness "liveness"
        health_port = int(fv["health_address"].rsplit(":", 1)[1])
        check(health_port == ports["health"], "health port")
        for probe, service in (("readinessProbe", ""), ("livenessProbe", "liveness"),
                               ("startupProbe", "")):
            g = c[probe]["grpc"]
            check(g["port"] == health_port and g.get("service", "") == service, (probe, g))
        sp = c["startupProbe"]
        check(sp["periodSeconds"] * sp["failureThreshold"] >= 120,
              "startup probe shorter than 2 minutes of warm-up")
        # drain: termination grace > preStop pause + drain grace period
        pause = 0
        pre = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
        if pre[:1] == ["sleep"]:
            pause = int(pre[1])
        check(pod["terminationGracePeriodSeconds"] >=
              pause + duration_s(fv["drain_grace_period"]) + 5, "termination grace too short")

        # resources and security
        res = c["resources"]
        for k in ("cpu", "memory"):
            check(k in res["requests"] and k in res["limits"], (k, res))
        check(str(res["requests"]["cpu"]) == fv["intra_op_threads"] or overlay == "gpu" and
              int(fv["intra_op_threads"]) <= int(res["requests"]["cpu"]),
              "intra_op_threads must match the CPU request")
        psc, csc = pod["securityContext"], c["securityContext"]
        check(psc["runAsNonRoot"] is True and psc["runAsUser"] != 0, psc)
        check(csc["readOnlyRootFilesystem"] is True and csc["allowPrivilegeEscalation"] is False,
              csc)
        check(csc["capabilities"]["drop"] == ["ALL"], csc)

        # services: ClusterIP + headless, both selecting the pods
        labels = dep["spec"]["template"]["metadata"]["labels"]
        svcs = {s["metadata"]["name"]: s["spec"] for s in by_kind["Service"]}
        check(len(svcs) == 2, svcs)
        headless = [s for s in svcs.values() if s.get("clusterIP") == "None"]
        check(len(headless) == 1, "one headless Service")
        for s in svcs.values():
            check(all(labels.get(k) == v for k, v in s["selector"].items()), "selector")
            check(any(p["name"] == "grpc" and p["port"] == 50051 for p in s["ports"]), s)
        # PDB, HPA (CPU and queue depth), ServiceMonitor, NetworkPolicy
        (pdb,) = by_kind["PodDisruptionBudget"]
        check(pdb["apiVersion"] == "policy/v1" and
              ("maxUnavailable" in pdb["spec"] or "minAvailable" in pdb["spec"]), pdb)
        check(all(labels.get(k) == v for k, v in pdb["spec"]["selector"]["matchLabels"].items()),
              "PDB selector")
        (hpa,) = by_kind["HorizontalPodAutoscaler"]
        check(hpa["apiVersion"] == "autoscaling/v2", hpa["apiVersion"])
        check(hpa["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"], "HPA target")
        metrics = hpa["spec"]["metrics"]
        check(any(m["type"] == "Resource" and m["resource"]["name"] == "cpu" for m in metrics),
              "HPA on CPU")
        check(any(m["type"] == "Pods" and m["pods"]["metric"]["name"] == "invad_queue_depth"
                  for m in metrics), "HPA on queue depth")
        check(hpa["spec"]["minReplicas"] >= pdb["spec"].get("maxUnavailable", 1) + 1,
              "min replicas must survive the PDB")
        (sm,) = by_kind["ServiceMonitor"]
        check(sm["spec"]["endpoints"][0]["port"] == "metrics", sm)
        (np,) = by_kind["NetworkPolicy"]
        np_ports = {p["port"] for r in np["spec"]["ingress"] for p in r["ports"]}
        check(np_ports == {50051, 9464}, np_ports)

        if overlay == "gpu":
            check(c["resources"]["limits"].get("nvidia.com/gpu") == 1, "GPU limit")
            check(any(t.get("key") == "nvidia.com/gpu" for t in pod.get("tolerations", [])),
                  "GPU toleration")
            check(pod.get("nodeSelector"), "GPU node selector")
            check(fv.get("device", "").startswith("cuda"), "--device=cuda in the GPU flags")
            check(c["image"].endswith(":cuda"), c["image"])
        else:
            check("nvidia.com/gpu" not in c["resources"]["limits"], "no GPU on cpu")
            check(fv.get("device", "cpu") == "cpu", "cpu device")
    print("k8s: OK")


# ---------------------------------------------------------------------------------------------
def test_compose(a):
    compose = need("docker-compose")
    path = os.path.join(a.src, "docker-compose.yml")
    r = subprocess.run([compose, "-f", path, "config"], capture_output=True, text=True,
                       timeout=120, cwd=a.src)
    check(r.returncode == 0, f"docker-compose config: {r.stderr}")
    cfg = yaml.safe_load(r.stdout)
    services = cfg["services"]
    check(set(services) >= {"invad-server", "prometheus", "grafana"}, set(services))
    srv = services["invad-server"]
    check_flags(srv["command"], server_flags(a.bin), "docker-compose invad-server command")
    fv = dict(f[2:].split("=", 1) for f in srv["command"])
    check(srv.get("read_only") is True and srv.get("user", "0").split(":")[0] != "0",
          "server: read-only root, non-root user")
    grace = srv["stop_grace_period"]
    check(duration_s(grace) > duration_s(fv.get("drain_grace_period", "20s")),
          "stop_grace_period must exceed the drain grace period")
    check(srv["healthcheck"]["test"][1] == "/usr/local/bin/invad", srv["healthcheck"])
    check(os.path.exists(os.path.join(a.src, srv["build"]["dockerfile"]))
          or os.path.isabs(srv["build"]["dockerfile"]), "Dockerfile")
    # every bind-mounted source exists (models/ is written by `make demo`)
    for name, s in services.items():
        for v in s.get("volumes", []):
            src = v["source"] if isinstance(v, dict) else v.split(":")[0]
            if os.path.basename(src) == "models":
                continue
            check(os.path.exists(src), f"{name}: mount source {src} missing")
    # Prometheus scrapes the server's metrics port under its compose name
    prom = yaml.safe_load(open(os.path.join(a.src, "deploy/prometheus/prometheus.yml")))
    targets = [t for sc in prom["scrape_configs"] for st in sc["static_configs"]
               for t in st["targets"]]
    check(f"invad-server:{fv['metrics_address'].rsplit(':', 1)[1]}" in targets, targets)
    print("compose: OK")


# ---------------------------------------------------------------------------------------------
def metric_names(text):
    """invad_* names in PromQL (histogram suffixes folded to the family)."""
    out = set()
    for n in re.findall(r"\binvad_[a-z_]+", text):
        out.add(re.sub(r"_(bucket|sum|count)$", "", n))
    return out


def test_monitoring(a):
    promtool = need("promtool")
    prom_dir = os.path.join(a.src, "deploy/prometheus")
    for args in (["check", "config", "prometheus.yml"], ["check", "rules", "alerts.yml"],
                 ["test", "rules", "alerts_test.yml"]):
        r = subprocess.run([promtool] + args, capture_output=True, text=True, cwd=prom_dir,
                           timeout=300)
        check(r.returncode == 0, f"promtool {' '.join(args)}: {r.stdout}{r.stderr}")

    used = {}
    rules = yaml.safe_load(open(os.path.join(prom_dir, "alerts.yml")))
    for g in rules["groups"]:
        for rule in g["rules"]:
            for n in metric_names(rule["expr"]):
                used.setdefault(n, set()).add(f"alert {rule['alert']}")
    adapter = yaml.safe_load(open(os.path.join(a.src, "deploy/k8s/prometheus-adapter/rules.yaml")))
    for rule in adapter["rules"]:
        for n in metric_names(rule["seriesQuery"]) | metric_names(rule["name"]["as"]):
            used.setdefault(n, set()).add("prometheus-adapter")
    hpa = yaml.safe_load(open(os.path.join(a.src, "deploy/k8s/base/hpa.yaml")))
    for m in hpa["spec"]["metrics"]:
        if m["type"] == "Pods":
            used.setdefault(m["pods"]["metric"]["name"], set()).add("HPA")
    dash = json.load(open(os.path.join(a.src, "deploy/grafana/dashboards/invad.json")))
    for p in dash["panels"]:
        for t in p["targets"]:
            for n in metric_names(t["expr"]):
                used.setdefault(n, set()).add(f"dashboard '{p['title']}'")
    check(len(used) >= 8, used)

    documented = set(re.findall(r"^\| `(invad_[a-z_]+)`",
                                open(os.path.join(a.src, "docs/metrics.md")).read(), re.M))
    undocumented = {n: w for n, w in used.items() if n not in documented}
    check(not undocumented, f"not in docs/metrics.md: {undocumented}")

    # A running server: one scored image and one refused request, then /metrics.
    sys.path.insert(0, os.path.join(a.src, "tests/integration/client"))
    from fixture import Server, make_model  # noqa: E402
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    tile, repo = make_model(a.bin, a.work)
    server = Server(a.bin, a.work, repo)
    try:
        invad = os.path.join(a.bin, "client/invad")
        server.wait_serving(invad)
        image = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(os.path.join(tile, "test"))
                       for f in fs)[0]
        r = subprocess.run([invad, "score", image, f"--target=127.0.0.1:{server.port}",
                            "--fail_on_anomaly=false"], capture_output=True, text=True,
                           timeout=120)
        check(r.returncode == 0, r)
        deadline = time.time() + 30
        while True:
            text = urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics",
                                          timeout=10).read().decode()
            exported = set(re.findall(r"^# TYPE (invad_[a-z_]+) ", text, re.M))
            if "invad_anomalies_total" in exported or time.time() > deadline:
                break
            time.sleep(0.5)
    finally:
        server.stop()
    missing = {n: w for n, w in used.items() if n not in exported}
    check(not missing, f"used but not exported by invad-server: {missing}")
    print(f"monitoring: OK ({len(used)} metrics used, all exported and documented)")


# ---------------------------------------------------------------------------------------------
def dockerfile_stages(path):
    """[(stage name, [(instruction, text)])] with continuation lines joined."""
    stages, lines, cur = [], [], ""
    for raw in open(path):
        line = raw.rstrip("\n")
        if line.lstrip().startswith("#") and not cur:
            continue
        cur += line.rstrip("\\").strip() + " " if line.endswith("\\") else line.strip()
        if not line.endswith("\\"):
            if cur:
                lines.append(cur)
            cur = ""
    for line in lines:
        instr, _, rest = line.partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            m = re.search(r"\bAS\s+(\S+)", rest, re.I)
            stages.append((m.group(1) if m else str(len(stages)), []))
        elif stages:
            stages[-1][1].append((instr, rest.strip()))
    return stages


def dockerignored(src, patterns):
    return any(src == p.rstrip("/") or src.startswith(p.rstrip("/") + "/") for p in patterns)


def test_dockerfile(a):
    need("dpkg")
    need("apt-cache")
    path = os.path.join(a.src, "deploy/docker/Dockerfile")
    stages = dict(dockerfile_stages(path))
    check(set(stages) == {"build", "runtime"}, set(stages))
    ignore = [l.strip() for l in open(os.path.join(a.src, ".dockerignore"))
              if l.strip() and not l.startswith("#")]
    for name, instrs in stages.items():
        for instr, rest in instrs:
            if instr in ("COPY", "ADD") and "--from=" not in rest:
                srcs = [s for s in rest.split() if not s.startswith("--")][:-1]
                for s in srcs:
                    check(os.path.exists(os.path.join(a.src, s)), f"COPY source {s} missing")
                    check(not dockerignored(s.rstrip("/"), ignore),
                          f"COPY source {s} excluded by .dockerignore")
    # the build stage runs our scripts, nothing ad hoc
    build_runs = [rest for instr, rest in stages["build"] if instr == "RUN"]
    check(build_runs, "no RUN in the build stage")
    for run in build_runs:
        scripts = re.findall(r"scripts/[\w.-]+\.sh", run)
        check(scripts, f"build RUN does not call a script from scripts/: {run}")
        for s in scripts:
            check(os.access(os.path.join(a.src, s), os.X_OK), f"{s} missing or not executable")
    runtime = stages["runtime"]
    runtime_runs = " ".join(rest for instr, rest in runtime if instr == "RUN")
    check("install-deps.sh --runtime" in runtime_runs, "runtime stage: install-deps.sh --runtime")
    user = [rest for instr, rest in runtime if instr == "USER"]
    check(user and user[-1].split(":")[0] not in ("0", "root"), "runtime stage runs as root")
    exposed = {p for instr, rest in runtime if instr == "EXPOSE" for p in rest.split()}
    check({"50051", "9464"} <= exposed, exposed)

    # the binaries the image installs: `cmake --install` of the release build
    prefix = tempfile.mkdtemp(prefix="invad-install-")
    r = subprocess.run(["cmake", "--install", a.bin, "--prefix", prefix], capture_output=True,
                       text=True, timeout=300)
    check(r.returncode == 0, r.stderr)
    bindir = os.path.join(prefix, "bin")
    binaries = sorted(os.listdir(bindir))
    check(set(binaries) >= {"invad-server", "invad", "invad-train", "invad-eval",
                            "invad-datagen"}, binaries)
    copied = [rest for instr, rest in runtime if instr == "COPY" and "--from=build" in rest]
    check(any("/opt/invad/bin/" in c and c.endswith("/usr/local/bin/") for c in copied), copied)
    for instr in ("HEALTHCHECK", "ENTRYPOINT"):
        (rest,) = [r for i, r in runtime if i == instr]
        exe = json.loads(rest[rest.index("["):])[0]
        check(exe.startswith("/usr/local/bin/") and os.path.basename(exe) in binaries,
              f"{instr} runs {exe}, which the image does not install")

    # runtime packages (and what apt pulls in with them) cover every library the binaries load
    pkgs = subprocess.run([os.path.join(a.src, "scripts/install-deps.sh"), "--runtime", "--list"],
                          capture_output=True, text=True, check=True).stdout.split()
    closure = subprocess.run(
        ["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
         "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances"] + pkgs,
        capture_output=True, text=True, check=True).stdout
    provided = {l.strip() for l in closure.splitlines() if l and not l.startswith(" ")}
    provided |= {m for m in re.findall(r"Depends: <?([\w.+-]+)", closure)}
    libs = set()
    for b in binaries:
        out = subprocess.run(["ldd", os.path.join(bindir, b)], capture_output=True,
                             text=True).stdout
        check("not found" not in out, f"{b}: {out}")
        libs |= {os.path.realpath(p) for p in re.findall(r"=> (/\S+)", out)}
    # one dpkg -S for all (merged /usr: dpkg may know a library under /lib instead of /usr/lib)
    queries = sorted(libs) + sorted(l.replace("/usr/lib/", "/lib/", 1) for l in libs
                                    if l.startswith("/usr/lib/"))
    r = subprocess.run(["dpkg", "-S"] + queries, capture_output=True, text=True)
    found = {}
    for line in r.stdout.splitlines():
        pkg, _, path = line.partition(": ")
        found[path.strip()] = pkg.split(":")[0].split(",")[0].strip()
    owners = {}
    for lib in sorted(libs):
        pkg = found.get(lib) or found.get(lib.replace("/usr/lib/", "/lib/", 1))
        check(pkg, f"no package owns {lib}")
        owners[lib] = pkg
    uncovered = {lib: p for lib, p in owners.items() if p not in provided}
    check(not uncovered, f"runtime packages miss: {uncovered}")
    shutil.rmtree(prefix, ignore_errors=True)
    print(f"dockerfile: OK ({len(binaries)} binaries, {len(libs)} libraries from "
          f"{len(set(owners.values()))} packages, covered by {len(pkgs)} runtime packages)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["k8s", "compose", "monitoring", "dockerfile"])
    ap.add_argument("--src", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    {"k8s": test_k8s, "compose": test_compose, "monitoring": test_monitoring,
     "dockerfile": test_dockerfile}[a.what](a)


if __name__ == "__main__":
    main()
