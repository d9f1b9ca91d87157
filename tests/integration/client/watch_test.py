#!/usr/bin/python3
"""`invad watch` against the invad-server binary: files dropped into a hot folder (renamed in,
copied in place, one held open and written in two halves, one that is not an image) are each
scored exactly once and moved to ok/, ng/ or error/; while the server restarts, new files wait
and are then scored once; the watcher stops cleanly on SIGTERM.

  watch_test.py --bin BUILD_DIR --work DIR
"""
import csv
import os
import shutil
import signal
import subprocess
import time

from fixture import Server, setup


def wait_for(cond, what, timeout=120):
    deadline = time.time() + timeout
    while not cond():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def main():
    a, invad, tile, repo = setup(__doc__)
    images = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(os.path.join(tile, "test"))
                    for f in fs)
    assert len(images) >= 6, images  # 2 good + one per defect kind
    hot = os.path.join(a.work, "hot")
    os.makedirs(hot)
    results = os.path.join(a.work, "results.csv")

    def done():
        return {sub: sorted(os.listdir(os.path.join(hot, sub)))
                for sub in ("ok", "ng", "error") if os.path.isdir(os.path.join(hot, sub))}

    def moved():
        return sum(len(v) for v in done().values())

    def rows():
        with open(results) as f:
            return list(csv.DictReader(f))

    server = Server(a.bin, a.work, repo)
    watch = None
    try:
        server.wait_serving(invad)
        target = f"--target=127.0.0.1:{server.port}"
        watch_log = open(os.path.join(a.work, "watch.log"), "w+")
        watch = subprocess.Popen([invad, "watch", hot, target, f"--results={results}",
                                  "--settle=200ms", "--poll_interval=50ms", "--deadline=10s"],
                                 stdout=watch_log, stderr=subprocess.STDOUT)
        wait_for(lambda: os.path.exists(results), "the results file")

        expected = {}  # name -> bytes
        # renamed in (the usual hand-over) and copied in place
        for i, src in enumerate(images[:4]):
            name = f"part{i}.png"
            data = open(src, "rb").read()
            expected[name] = data
            if i % 2:
                with open(os.path.join(hot, "." + name), "wb") as f:
                    f.write(data)
                os.rename(os.path.join(hot, "." + name), os.path.join(hot, name))
            else:
                shutil.copy(src, os.path.join(hot, name))
        # not an image
        with open(os.path.join(hot, "garbage.png"), "wb") as f:
            f.write(b"this is not a png")
        expected["garbage.png"] = None
        # held open and written in two halves with a pause of 15 settle periods between them
        slow = open(images[4], "rb").read()
        expected["slow.png"] = slow
        with open(os.path.join(hot, "slow.png"), "wb") as f:
            f.write(slow[:len(slow) // 2])
            f.flush()
            wait_for(lambda: moved() == 5, "the five complete files")
            time.sleep(3)
            assert "slow.png" not in sum(done().values(), []), done()
            assert os.path.exists(os.path.join(hot, "slow.png"))
            f.write(slow[len(slow) // 2:])
        wait_for(lambda: moved() == 6, "the slow file")
        d = done()
        assert d["error"] == ["garbage.png"], d
        assert "slow.png" in d["ok"] + d["ng"], d
        by_name = {r["file"]: r for r in rows()}
        assert len(rows()) == 6 and set(by_name) == set(expected), rows()
        assert by_name["slow.png"]["verdict"] in ("ok", "ng")
        assert int(by_name["slow.png"]["bytes"]) == len(slow)
        for name, r in by_name.items():
            if expected[name] is not None:
                assert r["model"] == "tile" and r["version"] == "1", r
                assert (r["verdict"] == "ng") == (float(r["score"]) > float(r["threshold"])), r

        # the server goes away: files dropped meanwhile wait in the folder, untouched
        assert server.stop() == 0
        for i, src in enumerate(images[5:] + images[:1]):
            shutil.copy(src, os.path.join(hot, f"during_restart{i}.png"))
            expected[f"during_restart{i}.png"] = open(src, "rb").read()
        time.sleep(3)
        assert moved() == 6 and len(rows()) == 6, (done(), rows())
        server = Server(a.bin, a.work, repo, address=f"127.0.0.1:{server.port}",
                        log_name="server2.log")
        wait_for(lambda: moved() == 6 + len(images[5:]) + 1, "the files dropped during the restart")
        names = [r["file"] for r in rows()]
        assert len(names) == len(set(names)) == len(expected), names  # each exactly once
        assert set(names) == set(expected)
        assert not [f for f in os.listdir(hot) if f.endswith(".png")], os.listdir(hot)

        watch.send_signal(signal.SIGTERM)
        assert watch.wait(timeout=60) == 0
        watch_log.seek(0)
        log = watch_log.read()
        assert "will retry" in log or "retry in" in log, log
        # --once over what is left (nothing): exits 0 at once and appends nothing
        o = subprocess.run([invad, "watch", hot, target, f"--results={results}", "--once"],
                           capture_output=True, text=True, timeout=120)
        assert o.returncode == 0 and len(rows()) == len(expected), o
        print("watch test: OK")
    finally:
        if watch is not None and watch.poll() is None:
            watch.kill()
        server.stop()


if __name__ == "__main__":
    main()
