"""Shared set-up of the CLI tests: a tiny trained model and the invad-server binary on loopback."""
import os
import re
import subprocess
import time
import urllib.request


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)


def setup(doc):
    """The CLI tests' common start: --bin and --work parsed, a clean work folder, a trained model.
    Returns (args, path of the invad binary, data dir of the category, model repository)."""
    import argparse
    import shutil
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    tile, repo = make_model(a.bin, a.work)
    return a, os.path.join(a.bin, "client/invad"), tile, repo


def make_model(bindir, work, category="tile"):
    """Synthetic data (invad-datagen) and a 64 px model trained for 10 steps; returns
    (data dir of the category, model repository)."""
    data = os.path.join(work, "data")
    subprocess.run([os.path.join(bindir, "tools/datagen/invad-datagen"), "--out", data,
                    "--categories", category, "--train", "30", "--test_good", "2",
                    "--test_per_defect", "1", "--size", "64"], check=True,
                   stdout=subprocess.DEVNULL)
    repo = os.path.join(work, "models")
    subprocess.run([os.path.join(bindir, "tools/train/invad-train"), "--data",
                    os.path.join(data, category), "--out", os.path.join(repo, category),
                    "--image_size", "64", "--latent_size", "8", "--dit_hidden", "32", "--steps",
                    "10", "--progress=false"], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return os.path.join(data, category), repo


class Server:
    """invad-server on `address` (port 0: any); .port and .metrics_port once it listens."""

    def __init__(self, bindir, work, repo, address="127.0.0.1:0", log_name="server.log",
                 extra=()):
        self.log = open(os.path.join(work, log_name), "w+")
        self.proc = subprocess.Popen(
            [os.path.join(bindir, "server/invad-server"), f"--grpc_address={address}",
             "--metrics_address=127.0.0.1:0", f"--model_repository={repo}",
             "--intra_op_threads=1"] + list(extra), stderr=self.log)
        self.port = self.metrics_port = self.health_port = None
        deadline = time.time() + 60
        while self.port is None or self.metrics_port is None:
            assert self.proc.poll() is None and time.time() < deadline, "server did not start"
            self.log.seek(0)
            text = self.log.read()
            m = re.search(r"listening on port (\d+)", text)
            self.port = int(m.group(1)) if m else None
            m = re.search(r"metrics on port (\d+)", text)
            self.metrics_port = int(m.group(1)) if m else None
            m = re.search(r"health on port (\d+)", text)
            self.health_port = int(m.group(1)) if m else None
            time.sleep(0.1)

    def metrics(self):
        """{(name, frozenset(labels)): value} from /metrics."""
        body = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics",
                                      timeout=10).read().decode()
        out = {}
        for line in body.splitlines():
            m = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
            if m:
                labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
                out[(m.group(1), labels)] = float(m.group(3))
        return out

    def rss_bytes(self):
        for line in open(f"/proc/{self.proc.pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def wait_serving(self, invad):
        deadline = time.time() + 60
        while run([invad, "health", f"--target=127.0.0.1:{self.port}"]).returncode != 0:
            assert time.time() < deadline, "never SERVING"
            time.sleep(0.2)

    def stop(self):
        self.proc.terminate()
        return self.proc.wait(timeout=60)
