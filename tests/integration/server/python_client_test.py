#!/usr/bin/python3
"""Clients we did not write: Python gRPC (Debian python3-grpcio) against the invad-server binary.

Stubs are generated at test time with protoc and grpc_python_plugin. The test trains a tiny model
with invad-train, starts invad-server on free ports, waits for health SERVING, scores one PNG
through invad.v1 Score and through KServe v2 ModelInfer (same score), checks ServerLive /
ServerReady / ModelReady / ModelMetadata and /metrics, writes a new version and sends SIGHUP (it
must replace the old one), then sends SIGTERM and expects a clean drain: health NOT_SERVING, exit
status 0.

  python_client_test.py --bin BUILD_DIR --proto PROTO_DIR --work DIR
"""
import argparse
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request


def run(cmd, **kw):
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--proto", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    if os.path.exists(a.work):
        shutil.rmtree(a.work)
    os.makedirs(a.work)
    gen = os.path.join(a.work, "gen")
    os.makedirs(gen)
    plugin = shutil.which("grpc_python_plugin")
    assert plugin, "grpc_python_plugin missing (Debian protobuf-compiler-grpc)"
    # health.proto is copied to another path: a generated `grpc/health/v1` package would shadow
    # the installed `grpc` module (the proto package, hence the service name, stays the same).
    extra = os.path.join(a.work, "protos")
    os.makedirs(os.path.join(extra, "health_stubs"))
    shutil.copy(os.path.join(a.proto, "grpc/health/v1/health.proto"),
                os.path.join(extra, "health_stubs/health.proto"))
    shutil.copy(os.path.join(os.path.dirname(os.path.abspath(__file__)), "reflection.proto"),
                os.path.join(extra, "health_stubs/reflection.proto"))
    run(["protoc", f"-I{a.proto}", f"-I{extra}", f"--python_out={gen}", f"--grpc_out={gen}",
         f"--plugin=protoc-gen-grpc={plugin}", "invad/v1/model_config.proto",
         "invad/v1/inference.proto", "kserve/grpc_predict_v2.proto", "health_stubs/health.proto",
         "health_stubs/reflection.proto"])
    sys.path.insert(0, gen)
    import grpc  # noqa: E402
    from health_stubs import health_pb2, health_pb2_grpc  # noqa: E402
    from health_stubs import reflection_pb2, reflection_pb2_grpc  # noqa: E402
    from invad.v1 import inference_pb2, inference_pb2_grpc  # noqa: E402
    from kserve import grpc_predict_v2_pb2 as kv2, grpc_predict_v2_pb2_grpc as kv2_grpc  # noqa

    data = os.path.join(a.work, "data")
    run([os.path.join(a.bin, "tools/datagen/invad-datagen"), "--out", data, "--categories",
         "wood", "--train", "30", "--test_good", "1", "--test_per_defect", "1", "--size", "64"],
        stdout=subprocess.DEVNULL)
    repo = os.path.join(a.work, "models")
    run([os.path.join(a.bin, "tools/train/invad-train"), "--data", os.path.join(data, "wood"),
         "--out", os.path.join(repo, "wood"), "--image_size", "64", "--latent_size", "8",
         "--dit_hidden", "32", "--steps", "10", "--progress=false"], stdout=subprocess.DEVNULL)

    log = open(os.path.join(a.work, "server.log"), "w+")
    server = subprocess.Popen(
        [os.path.join(a.bin, "server/invad-server"), "--grpc_address=127.0.0.1:0",
         "--metrics_address=127.0.0.1:0", f"--model_repository={repo}", "--intra_op_threads=1",
         "--drain_grace_period=5s"], stderr=log)
    try:
        port = metrics_port = None
        deadline = time.time() + 60
        while time.time() < deadline and (port is None or metrics_port is None):
            log.seek(0)
            text = log.read()
            m = re.search(r"listening on port (\d+)", text)
            port = int(m.group(1)) if m else None
            m = re.search(r"metrics on port (\d+)", text)
            metrics_port = int(m.group(1)) if m else None
            assert server.poll() is None, "invad-server exited:\n" + text
            time.sleep(0.1)
        assert port and metrics_port, "no port in the server log"
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        health = health_pb2_grpc.HealthStub(channel)
        while True:
            r = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
            if r.status == health_pb2.HealthCheckResponse.SERVING:
                break
            assert time.time() < deadline, "never SERVING"
            time.sleep(0.1)

        # Reflection (on by default) lists the services, so grpcurl-style tools work.
        refl = reflection_pb2_grpc.ServerReflectionStub(channel)
        answers = refl.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10)
        services = {s.name for r in answers for s in r.list_services_response.service}
        for want in ("invad.v1.AnomalyDetection", "inference.GRPCInferenceService",
                     "grpc.health.v1.Health"):
            assert want in services, (want, services)

        png_path = sorted(
            os.path.join(dp, f) for dp, _, fs in os.walk(os.path.join(data, "wood", "test"))
            for f in fs if f.endswith(".png"))[0]
        png = open(png_path, "rb").read()
        v1 = inference_pb2_grpc.AnomalyDetectionStub(channel)
        req = inference_pb2.ScoreRequest(model="wood", image=inference_pb2.Image(encoded=png))
        req.correlation.frame_id = "py-1"
        score = v1.Score(req, timeout=60)
        assert score.model == "wood" and score.version == 1, score
        assert score.correlation.frame_id == "py-1"

        # examples/python: its own stubs and script against this server
        example = os.path.join(a.proto, "..", "examples", "python")
        stubs = os.path.join(a.work, "example_stubs")
        run(["bash", os.path.join(example, "generate_stubs.sh"), stubs], stdout=subprocess.DEVNULL)
        env = dict(os.environ, INVAD_STUBS=stubs)
        ex = subprocess.run([sys.executable, os.path.join(example, "score_image.py"),
                             f"127.0.0.1:{port}", "wood", png_path], env=env, capture_output=True,
                            text=True, timeout=120)
        assert ex.returncode == (1 if score.anomalous else 0), ex
        assert f"score={score.score:.3f}" in ex.stdout, (ex, score.score)
        ex = subprocess.run([sys.executable, os.path.join(example, "score_image.py"),
                             f"127.0.0.1:{port}", "nope", png_path], env=env, capture_output=True,
                            text=True, timeout=120)
        assert ex.returncode == 2 and "NOT_FOUND" in ex.stderr, ex

        kserve = kv2_grpc.GRPCInferenceServiceStub(channel)
        assert kserve.ServerLive(kv2.ServerLiveRequest(), timeout=10).live
        assert kserve.ServerReady(kv2.ServerReadyRequest(), timeout=10).ready
        assert kserve.ModelReady(kv2.ModelReadyRequest(name="wood"), timeout=10).ready
        meta = kserve.ModelMetadata(kv2.ModelMetadataRequest(name="wood"), timeout=10)
        assert meta.versions == ["1"] and meta.inputs[0].name == "image", meta
        inp = kv2.ModelInferRequest.InferInputTensor(name="image", datatype="BYTES", shape=[1])
        inp.contents.bytes_contents.append(png)
        infer = kserve.ModelInfer(kv2.ModelInferRequest(model_name="wood", id="k-1", inputs=[inp]),
                                  timeout=60)
        outs = {o.name: o for o in infer.outputs}
        assert infer.id == "k-1"
        kscore = outs["score"].contents.fp64_contents[0]
        print(f"Score {score.score!r}  ModelInfer {kscore!r}", flush=True)
        assert abs(kscore - score.score) <= 1e-6 * max(1.0, abs(score.score)), (kscore, score.score)
        assert outs["anomalous"].contents.bool_contents[0] == score.anomalous

        # SIGHUP: a new version written by invad-train is loaded and replaces version 1.
        run([os.path.join(a.bin, "tools/train/invad-train"), "--data",
             os.path.join(data, "wood"), "--out", os.path.join(repo, "wood"), "--image_size",
             "64", "--latent_size", "8", "--dit_hidden", "32", "--steps", "5",
             "--progress=false"], stdout=subprocess.DEVNULL)
        server.send_signal(signal.SIGHUP)
        while True:
            info = v1.GetModel(inference_pb2.GetModelRequest(model="wood"), timeout=10)
            if [(v.version, v.state) for v in info.versions] == [
                    (2, inference_pb2.VersionInfo.READY)]:
                break
            assert time.time() < deadline + 60, f"version 2 never replaced version 1: {info}"
            time.sleep(0.1)
        assert v1.Score(req, timeout=60).version == 2

        # A bad request gets its code, and the server keeps serving.
        try:
            v1.Score(inference_pb2.ScoreRequest(model="nope"), timeout=10)
            raise AssertionError("unknown model accepted")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND, e

        body = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read()
        assert b'method="ModelInfer"' in body and b'method="Score"' in body

        # SIGTERM: health turns NOT_SERVING (Watch sees it), then a clean exit 0.
        watch = health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=60)
        first = next(watch)
        assert first.status == health_pb2.HealthCheckResponse.SERVING
        server.send_signal(signal.SIGTERM)
        try:
            nxt = next(watch)
            assert nxt.status == health_pb2.HealthCheckResponse.NOT_SERVING, nxt
        except grpc.RpcError:
            pass  # the stream may end with the server; the exit status below is what counts
        rc = server.wait(timeout=60)
        assert rc == 0, f"invad-server exited {rc}"
        log.seek(0)
        assert "stopped" in log.read()
        print("python client test: OK")
    finally:
        if server.poll() is None:
            server.kill()
        log.seek(0)
        sys.stderr.write(log.read()[-3000:])


if __name__ == "__main__":
    main()
