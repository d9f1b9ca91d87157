#!/usr/bin/python3
"""Reproduces docs/accuracy.md: the offline accuracy study of issue 3.

Every trained model and invad-eval report is recorded in docs/accuracy-runs.json (committed), and
a run on record is not repeated, so the study spans sessions and fresh checkouts: a model is
trained (into --work) only when an evaluation it serves is missing; a record made with other
arguments (another --budget, say) or other data is dropped and redone. A stage not named trains
nothing, but its runs on record (or trained in --work) still reach the report:
  data      invad-datagen, one data set for every stage (regenerated when its arguments change;
            see stage_data for when that makes trained models stale).
  campaign  encoder candidates x denoiser sizes, <= --campaign_budget s of training per run, K = 3;
            picks the default by subtle-bucket accuracy per CPU-minute.
  default   the product default (invad-train's defaults) per category with --budget s: the K table
            (1, 2, 3, 5, 10, 50), the reconstruction baseline (S = 10, r = 1..9), the per-pixel
            Gaussian baseline.
  ablation  the default without the filter bank's periodic-texture channels (--budget s), and
            with and without its fine-detail (Laplacian) channels (--ablation_budget s), K = 3:
            what those channels are worth per category, and (against the default stage) what the
            longer training is worth.
  report    writes docs/accuracy.md from the record.
Every inversion report is made under one image score rule (--score_rule, invad-train's default); a
model calibrated under another is re-calibrated (invad-train --calibrate_only, on normal images no
model trained on: work/calib) and re-evaluated, not retrained.

Usage: scripts/accuracy.py [--stages data,default,ablation,campaign,report] [--work build/accuracy]
                           [--redo MODEL,...]  (after a code change the arguments do not show)
Binaries come from build/release (make test builds them).
"""
import argparse
import csv
import json
import math
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "build", "release", "tools")
DATAGEN = os.path.join(BIN, "datagen", "invad-datagen")
TRAIN = os.path.join(BIN, "train", "invad-train")
EVAL = os.path.join(BIN, "eval", "invad-eval")
RUNS = os.path.join(ROOT, "docs", "accuracy-runs.json")

ENCODERS = ["filter_bank", "conv_random", "conv_ae"]
DENOISERS = {"small": ["--dit_hidden", "64", "--dit_depth", "2", "--dit_heads", "4"],
             "medium": ["--dit_hidden", "128", "--dit_depth", "3", "--dit_heads", "4"]}
K_TABLE = [1, 2, 3, 5, 10, 50]
RECON_POINTS = 10
ROUND_PART = 0.9  # core::kRoundPartThreshold: --filter_rotational=auto's threshold
POSE_PARTS, POSE_VARIANCE = 0.9, 0.8  # tools::kPosePartFraction, kPoseVarianceRatio (--pose auto)
LATTICE = 0.9  # core::kLatticeFraction: --filter_lattice=auto's threshold
CALIB = 20  # fresh normal images per category for re-calibrating models of an older score rule


def log(msg):
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def run(cmd, log_path):
    with open(log_path, "w") as f:
        t0 = time.time()
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT)
        elapsed = time.time() - t0
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}; see {log_path}")
    return elapsed


def read_json(path):
    with open(path) as f:
        return json.load(f)


def latest_version(model_dir):
    versions = [int(v) for v in os.listdir(model_dir) if v.isdigit()]
    return os.path.join(model_dir, str(max(versions)))


def trained(work, name):
    model = os.path.join(work, "models", name)
    return os.path.isdir(model) and any(v.isdigit() for v in os.listdir(model))


def git_commit():
    """HEAD of this checkout, with "+dirty" when tracked files differ from it."""
    try:
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "diff", "--quiet", "HEAD", "--", ".",
                                ":!" + os.path.relpath(RUNS, ROOT)]).returncode != 0
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


class Store:
    """The study's results, committed as docs/accuracy-runs.json so the study resumes on a fresh
    checkout (build/ does not survive one) and docs/accuracy.md regenerates from it: per trained
    model its invad-train arguments and bundle metadata, per evaluation its model, invad-eval
    arguments and report (the report.json without its absolute paths). A record whose arguments
    differ from what the study would run now is stale and dropped (with the reports of a dropped
    or retrained model); so is everything when the data set's datagen arguments differ."""

    def __init__(self, path, stamp):
        self.path = path
        old = read_json(path) if os.path.exists(path) else {}
        fresh = old.get("data") == stamp
        if old and not fresh:
            log(f"{os.path.relpath(path, ROOT)} was made from other data: starting it afresh")
        self.models = old.get("models", {}) if fresh else {}
        self.reports = old.get("reports", {}) if fresh else {}
        self.stamp = stamp

    def save(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"data": self.stamp, "models": self.models, "reports": self.reports}, f,
                      indent=1, sort_keys=True)
            f.write("\n")
        os.replace(tmp, self.path)

    def drop_model(self, name):
        self.models.pop(name, None)
        for r in [r for r, rec in self.reports.items() if rec["model"] == name]:
            del self.reports[r]


class Model:
    """A model of the study, trained only when an evaluation it serves is not on record."""

    def __init__(self, a, name, data, args):
        self.a, self.name, self.data, self.args = a, name, data, args
        rec = a.store.models.get(name)
        if rec is not None and rec["args"] != args:
            log(f"{name}: recorded with other arguments, dropping its records")
            a.store.drop_model(name)
        self._version = None

    def known(self, runs):
        """Whether the report stage alone can use it: trained in the work folder, or every one of
        `runs` [(name, invad-eval args[, score rule])] on record for it."""
        return self.in_work() or all(recorded(self.a, self, *run) for run in runs)

    def in_work(self):
        """Whether the work folder holds it, trained with these arguments."""
        args_path = os.path.join(self.a.work, "models", self.name, "study_args.json")
        return (trained(self.a.work, self.name) and os.path.exists(args_path) and
                read_json(args_path)["args"] == self.args)

    def path(self):
        """Its version folder, training it first when the work folder lacks it."""
        if self._version is None:
            model = os.path.join(self.a.work, "models", self.name)
            args_path = os.path.join(model, "study_args.json")
            if trained(self.a.work, self.name) and not self.in_work():
                log(f"{self.name}: trained with other arguments, training it again")
                shutil.rmtree(model)
            if not trained(self.a.work, self.name):
                # A new instance: the reports of the recorded one (another step count) go.
                self.a.store.drop_model(self.name)
                os.makedirs(model, exist_ok=True)
                log(f"train {self.name}")
                run([TRAIN, "--data", self.data, "--out", model, "--progress=false", "--resume"] +
                    self.args, os.path.join(model, "train.log"))
                with open(args_path, "w") as f:  # the instance tells its reports apart
                    json.dump({"args": self.args, "instance": time.time_ns()}, f)
            self._version = self.calibrated(self.a.score_rule)
            self.instance = read_json(args_path)["instance"]
            rec = self.a.store.models.get(self.name)
            if rec is not None and rec.get("instance") != self.instance:
                # The work folder holds another instance than the record's (same arguments,
                # another training): its reports are redone, never mixed with the record's.
                log(f"{self.name}: the work folder's model is not the recorded one, "
                    "re-evaluating it")
                self.a.store.drop_model(self.name)
            rec = self.a.store.models.get(self.name)
            meta = bundle_metadata(self._version)
            if rec is not None and "recalibrated_from_version" in meta:
                rec["meta"].update({k: v for k, v in meta.items() if k.startswith("recalibrat")})
                self.a.store.save()
            if self.name not in self.a.store.models:
                self.a.store.models[self.name] = {"args": self.args,
                                                  "meta": meta,
                                                  "instance": self.instance,
                                                  "commit": git_commit(), "env": machine()}
                self.a.store.save()
        return self._version

    def calibrated(self, rule):
        """Its latest version folder calibrated under `rule`; when it has none (trained under
        another rule), the same weights re-calibrated under it on normal images it never saw
        (calibration_data) as its next version."""
        model = os.path.join(self.a.work, "models", self.name)
        versions = sorted((int(v) for v in os.listdir(model) if v.isdigit()), reverse=True)
        for v in versions:
            if score_rule(os.path.join(model, str(v))) == rule:
                return os.path.join(model, str(v))
        calib = os.path.join(self.a.calib, os.path.basename(self.data))
        log(f"{self.name}: re-calibrating under score rule {rule}")
        # positional_max_norm's per-location statistics: on the category's training images.
        positions = ["--position_data", self.data] if rule == "positional_max_norm" else []
        run([TRAIN, "--calibrate_only", "--model", os.path.join(model, str(versions[0])),
             "--data", calib, "--score_rule", rule, "--progress=false"] + positions,
            os.path.join(model, f"calibrate_{rule}.log"))
        return latest_version(model)

    @property
    def meta(self):
        if self.name not in self.a.store.models:
            self.path()
        return self.a.store.models[self.name]["meta"]


def machine():
    """What a model was trained on: figures differ by up to 1.6x with OpenBLAS's kernel
    (docs/benchmarks.md)."""
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu": cpu,
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "")}


def bundle_metadata(version):
    meta = {}
    with open(os.path.join(version, "config.pbtxt")) as f:
        lines = f.read().split("metadata {")[1:]
    for block in lines:
        k = block.split('key: "')[1].split('"')[0]
        v = block.split('value: "')[1].split('"')[0]
        meta[k] = v
    return meta


def recorded(a, model, name, args, rule=None):
    """Whether report `name` is on record for this model and these invad-eval arguments, and (in
    inversion mode) made under score rule `rule` (default: the study's; a record without one:
    diff_sq_norm)."""
    rec = a.store.reports.get(name)
    return (rec is not None and rec["model"] == model.name and rec["args"] == args and
            (not inversion(args) or
             rec["report"].get("score_rule", "diff_sq_norm") == (rule or a.score_rule)))


def evaluate(a, name, model, data, args, rule=None):
    """The report of evaluation `name`: on record, or from work/reports/<name>, or run now; with
    `rule`, of the model's version calibrated under that score rule instead of the study's."""
    rule = rule or a.score_rule
    if recorded(a, model, name, args, rule):
        return a.store.reports[name]["report"]
    out = os.path.join(a.work, "reports", name)
    report = os.path.join(out, "report.json")
    version = model.path()  # trains it if needed, which drops stale reports
    if rule != a.score_rule:
        version = model.calibrated(rule)
    instance = os.path.join(out, "study_instance.json")
    if os.path.exists(report) and (
            not os.path.exists(instance) or read_json(instance) != model.instance or
            (inversion(args) and read_json(report).get("score_rule") != rule)):
        os.remove(report)  # made by another instance of the model, or under another rule
    if not os.path.exists(report):
        os.makedirs(out, exist_ok=True)
        log(f"eval {name}")
        run([EVAL, "--model", version, "--data", data, "--out", out, "--progress=false",
             "--overlays", "3"] + args, os.path.join(out, "eval.log"))
        with open(instance, "w") as f:
            json.dump(model.instance, f)
    r = {k: v for k, v in read_json(report).items() if k not in ("model", "data")}
    a.store.reports[name] = {"model": model.name, "args": args, "report": r,
                             "commit": git_commit()}
    a.store.save()
    return r


def evaluate_all(a, model, data, runs):
    """{name: report} for `runs` [(name, invad-eval args[, score rule])] of one model. When any
    is not on record the model is made ready first (trained if the work folder lacks it, which
    drops its recorded reports), so the reports returned all come from one instance of the
    model."""
    if not all(recorded(a, model, *run) for run in runs):
        model.path()
    return {run[0]: evaluate(a, run[0], model, data, *run[1:]) for run in runs}


def cat_metric(report, cat, bucket, metric):
    v = report["categories"][cat].get(bucket, {}).get(metric)
    return float("nan") if v is None else v


def mean(values):
    values = [v for v in values if v == v]
    return sum(values) / len(values) if values else float("nan")


def stage_data(a):
    """Generates the study's data set. invad-datagen seeds every image from (seed, category,
    split, index), so each category's images depend only on the seed and the split sizes: a
    category not generated yet is added beside the others, and a run naming fewer categories
    (--categories wood) leaves the rest alone. A different test split regenerates the data and
    the reports but keeps the trained models (their training images are the same); only a
    different seed or training count makes the models stale."""
    data = os.path.join(a.work, "data")
    stamp_path = os.path.join(a.work, "datagen.json")
    wanted = sorted(set(a.categories.split(",")) | set(a.campaign_categories.split(",")))
    stamp = {"seed": a.seed, "train": a.train, "test_good": a.test_good,
             "test_per_defect": a.test_per_defect}
    a.stamp = stamp
    old = read_json(stamp_path) if os.path.exists(stamp_path) else None
    have = old.pop("categories", []) if old else []
    if os.path.isdir(data) and old != stamp:
        # Without a stamp (data from before stamps) nothing proves the models stale: keep them.
        changed_train = old is not None and any(old.get(k) != stamp[k] for k in ("seed", "train"))
        stale = ["data", "reports"] + (["models"] if changed_train else [])
        log(f"datagen arguments changed: removing {', '.join(stale)}")
        for d in stale:
            shutil.rmtree(os.path.join(a.work, d), ignore_errors=True)
        have = []
    missing = [c for c in wanted if c not in have]
    if missing:
        log(f"datagen {','.join(missing)}")
        run([DATAGEN, "--out", data, "--seed", str(a.seed), "--train", str(a.train),
             "--test_good", str(a.test_good), "--test_per_defect", str(a.test_per_defect),
             "--categories", ",".join(missing)],
            os.path.join(a.work, "datagen.log"))
        with open(stamp_path, "w") as f:
            json.dump(dict(stamp, categories=sorted(set(have) | set(missing))), f)
    calibration_data(a, wanted)
    return data


def calibration_data(a, cats):
    """work/calib/<category>/train/good: CALIB normal images no model of the study trained on (the
    training split's images a.train … a.train + CALIB − 1 of the same datagen seed; invad-datagen
    seeds each image by its index, so images 0 … a.train − 1 are the study's own). Models trained
    calibrated under another score rule than the one asked for are re-calibrated on them
    (Model.calibrated)."""
    a.calib = os.path.join(a.work, "calib")
    stamp_path = os.path.join(a.calib, "datagen.json")
    stamp = {"seed": a.seed, "train": a.train, "calib": CALIB}
    old = read_json(stamp_path) if os.path.exists(stamp_path) else {}
    have = old.pop("categories", [])
    if old != stamp:
        have = []
    missing = [c for c in cats if c not in have]
    if not missing:
        return
    src = os.path.join(a.work, "calib_src")
    shutil.rmtree(src, ignore_errors=True)
    log(f"datagen calibration images {','.join(missing)}")
    run([DATAGEN, "--out", src, "--seed", str(a.seed), "--train", str(a.train + CALIB),
         "--test_good", "1", "--test_per_defect", "0", "--categories", ",".join(missing)],
        os.path.join(a.work, "calib_datagen.log"))
    for c in missing:
        dst = os.path.join(a.calib, c, "train", "good")
        shutil.rmtree(os.path.join(a.calib, c), ignore_errors=True)
        os.makedirs(dst)
        for i in range(a.train, a.train + CALIB):
            shutil.copy(os.path.join(src, c, "train", "good", f"{i:03d}.png"), dst)
    shutil.rmtree(src)
    with open(stamp_path, "w") as f:
        json.dump(dict(stamp, categories=sorted(set(have) | set(missing))), f)


RULES = ["positional_max_norm", "max_norm", "diff_sq_norm"]


def score_rule(version):
    """The image score rule a version folder's calibration uses (invad-train --score_rule)."""
    with open(os.path.join(version, "config.pbtxt")) as f:
        text = f.read()
    for r in RULES[:-1]:
        if f"score_rule: {r.upper()}" in text:
            return r
    return "diff_sq_norm"


def other_rules(a):
    return [r for r in RULES if r != a.score_rule]


def inversion(args):
    return "--mode" not in args or args[args.index("--mode") + 1] == "inversion"


def stage_campaign(a, data, existing_only=False):
    """existing_only: collect the trained runs (evaluating any without a report), train nothing
    (the report stage alone)."""
    rows = []
    for size in a.campaign_denoisers.split(","):  # small first: the cheapest lands first
        dit = DENOISERS[size]
        for enc in ENCODERS:
            for cat in a.campaign_categories.split(","):
                name = f"campaign_{enc}_{size}_{cat}"
                # The campaign compares encoder families; the filter bank runs without its
                # Laplacian and periodic channels (as when the campaign was first run), which the
                # ablation stage measures on the default model.
                extra = (["--filter_laplacian=false", "--filter_periodic=false"]
                         if enc == "filter_bank" else [])
                model = Model(a, name, os.path.join(data, cat),
                              ["--encoder", enc, "--time_budget", str(a.campaign_budget),
                               "--allowed_steps", "3", "--seed", str(a.seed)] + dit + extra)
                runs = [(name, ["--steps", "3"])]
                if existing_only and not model.known(runs):
                    continue
                rep = evaluate_all(a, model, os.path.join(data, cat), runs)[name]
                meta = model.meta
                rows.append({"encoder": enc, "denoiser": size, "category": cat,
                             "train_s": float(meta.get("train_seconds", "nan")),
                             "threads": int(meta.get("threads", "2")),
                             "denoiser_steps": int(meta.get("denoiser_steps", "0")),
                             "encoder_steps": int(meta.get("encoder_steps", "0")),
                             "loss": float(meta.get("loss_last_tenth", "nan")),
                             "ms": rep["ms_per_image"], "images": rep["images"],
                             "i_all": cat_metric(rep, cat, "all", "I-AUROC"),
                             "i_subtle": cat_metric(rep, cat, "subtle", "I-AUROC"),
                             "p_all": cat_metric(rep, cat, "all", "P-AUROC"),
                             "p_subtle": cat_metric(rep, cat, "subtle", "P-AUROC")})
    return rows


def default_training(a, budget=None):
    """invad-train's arguments for the default model of the study (its defaults otherwise)."""
    return ["--time_budget", str(budget or a.budget), "--seed", str(a.seed),
            "--allowed_steps", ",".join(map(str, K_TABLE))]


def stage_default(a, data, existing_only=False):
    """existing_only: the trained categories only (evaluating what lacks a report), train nothing."""
    res = {}
    for cat in a.categories.split(","):
        d = os.path.join(data, cat)
        model = Model(a, f"default_{cat}", d, default_training(a))
        runs = [(f"default_{cat}_k{k}", ["--steps", str(k)]) for k in K_TABLE]
        runs += [(f"default_{cat}_recon_r{noise}",
                  ["--mode", "reconstruction", "--steps", str(RECON_POINTS), "--noise_index",
                   str(noise)]) for noise in range(1, RECON_POINTS)]
        runs += [(f"baseline_{cat}", ["--mode", "pixel_gaussian"])]
        # K = 3 under the other image score rules (the same weights, calibrated under each).
        runs += [(f"default_{cat}_k3_{r}", ["--steps", "3"], r) for r in other_rules(a)]
        if existing_only and not model.known(runs):
            continue
        reps = evaluate_all(a, model, d, runs)
        r = {"meta": model.meta,
             "k": {k: reps[f"default_{cat}_k{k}"] for k in K_TABLE},
             "recon": {n: reps[f"default_{cat}_recon_r{n}"] for n in range(1, RECON_POINTS)},
             "baseline": reps[f"baseline_{cat}"],
             "other_rule": {r: reps[f"default_{cat}_k3_{r}"] for r in other_rules(a)}}
        res[cat] = r
    return res


def stage_ablation(a, data, existing_only=False):
    """The default without its periodic-texture channels at the default's --budget, and with and
    without the Laplacian channels at --ablation_budget (with the default's own budget too, the
    latter also shows what the longer training buys). existing_only: the trained runs only, train
    nothing."""
    res = {}
    # The default without its periodic-texture channels, at the default's budget (the default is
    # the run with them); then every category's run with the Laplacian channels first: they are
    # also the budget comparison's.
    # Then, where the default turned the rotational channels on (round parts), the default
    # without them; where it turned pose normalisation on, the default without it; where it
    # turned the lattice channels on (periodic textures), the default without them.
    # Where it kept only the residual channels (a lattice finer than a cell), the default with
    # every channel; there the Laplacian and periodic channels are off already, so their
    # ablations would repeat the default.
    variants = [("noper", a.budget, ["--filter_periodic=false"]),
                ("norot", a.budget, ["--filter_rotational=false"]),
                ("nopose", a.budget, ["--pose=none"]),
                ("nolat", a.budget, ["--filter_lattice=false"]),
                ("nores", a.budget, ["--filter_residual_only=false"]),
                ("nopix", a.budget, ["--filter_pixel_norm=false"]),
                ("lap", a.ablation_budget, []),
                ("nolap", a.ablation_budget, ["--filter_laplacian=false"])]
    for variant, budget, extra in variants:
        for cat in a.categories.split(","):
            if variant in ("noper", "nolap") and residual_part(a, cat):
                continue
            if variant == "nores" and not residual_part(a, cat):
                continue
            if variant == "norot" and not round_part(a, cat):
                continue
            if variant == "nopose" and not posed_part(a, cat):
                continue
            if variant == "nolat" and not lattice_texture(a, cat):
                continue
            if variant == "nopix" and not pixel_part(a, cat):
                continue
            name = f"ablation_{variant}_{cat}"
            d = os.path.join(data, cat)
            model = Model(a, name, d, default_training(a, budget) + extra)
            runs = [(name, ["--steps", "3"])]
            if existing_only and not model.known(runs):
                continue
            k3 = evaluate_all(a, model, d, runs)[name]
            res.setdefault(cat, {})[variant] = {"meta": model.meta, "k3": k3}
    return res


def round_part(a, cat):
    """Whether the category's default model (on record) has the rotational channels on: invad-train
    --filter_rotational=auto found one round part in its training images."""
    rec = a.store.models.get(f"default_{cat}")
    return rec is not None and float(rec["meta"].get("foreground_roundness", 0)) >= ROUND_PART


def lattice_texture(a, cat):
    """Whether the category's default model (on record) has the lattice channels on: invad-train
    --filter_lattice=auto found a lattice in its training images."""
    rec = a.store.models.get(f"default_{cat}")
    return rec is not None and float(rec["meta"].get("lattice_fraction", 0)) >= LATTICE


def residual_part(a, cat):
    """Whether the category's default model (on record) keeps only the residual channels
    (invad-train --filter_residual_only=auto records its decision as metadata residual_only)."""
    rec = a.store.models.get(f"default_{cat}")
    return rec is not None and rec["meta"].get("residual_only") == "on"


def posed_part(a, cat):
    """Whether the category's default model (on record) normalises the pose: invad-train --pose
    auto found one part in its training images and the canonical pose made them more alike."""
    rec = a.store.models.get(f"default_{cat}")
    if rec is None or "pose_variance_ratio" not in rec["meta"]:
        return False
    m = rec["meta"]
    return (float(m["pose_part_fraction"]) >= POSE_PARTS and
            float(m["pose_variance_ratio"]) <= POSE_VARIANCE)


def pixel_part(a, cat):
    """Whether the category's default model (on record) has the pixel-standardised channels on
    (invad-train --filter_pixel_norm=auto records its decision as metadata pixel_norm)."""
    rec = a.store.models.get(f"default_{cat}")
    return rec is not None and rec["meta"].get("pixel_norm") == "on"


def fmt(v, digits=3):
    return "–" if v != v else f"{v:.{digits}f}"


def test_counts(category_dir):
    """Normal, defective and subtle test images of one category, from datagen's labels.csv."""
    with open(os.path.join(category_dir, "labels.csv")) as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "test"]
    subtle = [r for r in rows if r["difficulty"] == "subtle"]
    return {"good": sum(r["label"] == "0" for r in rows),
            "defective": sum(r["label"] == "1" for r in rows),
            "subtle": len(subtle),
            "contrast": (min(float(r["contrast"]) for r in subtle),
                         max(float(r["contrast"]) for r in subtle)),
            "area_pct": (100 * min(float(r["area_fraction"]) for r in subtle),
                         100 * max(float(r["area_fraction"]) for r in subtle))}


def auroc_se(auc, positives, negatives):
    """Hanley & McNeil (1982): standard error of an AUROC of `auc` at these sample sizes."""
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) +
           (negatives - 1) * (q2 - auc * auc)) / (positives * negatives)
    return math.sqrt(var)


def with_without(on, off, cat):
    """An ablation row's values: I-AUROC, subtle I-AUROC and P-AUROC of two reports, each pair
    as (with, without)."""
    return [cat_metric(r, cat, bucket, metric)
            for bucket, metric in (("all", "I-AUROC"), ("subtle", "I-AUROC"), ("all", "P-AUROC"))
            for r in (on, off)]


def ablation_table(w, pairs, total, lead=()):
    """Writes a with/without table — I-AUROC, subtle I-AUROC, P-AUROC — for `pairs` {category:
    (report with, report without, leading cells)}, `lead` naming the leading columns, then its
    mean row and the partial-stage line; returns each category's I-AUROC change."""
    head = list(lead) + ["I-AUROC with", "without", "subtle I-AUROC with", "without",
                         "P-AUROC with", "without"]
    w("| category | " + " | ".join(head) + " |")
    w("|" + "---|" * (len(head) + 1))
    cols = {i: [] for i in range(6)}
    delta = {}
    for c, (on, off, cells) in pairs.items():
        vals = with_without(on, off, c)
        for i, v in enumerate(vals):
            cols[i].append(v)
        delta[c] = vals[0] - vals[1]
        w(f"| {c} | " + "".join(f"{x} | " for x in cells) + " | ".join(fmt(v) for v in vals) + " |")
    w("| **mean** | " + "| " * len(lead) + " | ".join(fmt(mean(cols[i])) for i in range(6)) +
      " |\n")
    w(partial(len(pairs), total))
    return delta


def default_against(w, default, ablation, variant, cats, total):
    """ablation_table of the default model (K = 3) against an ablation variant trained with the
    default's budget, leading with both training times."""
    return ablation_table(
        w, {c: (default[c]["k"][3], ablation[c][variant]["k3"],
                [default[c]["meta"].get("train_seconds"),
                 ablation[c][variant]["meta"].get("train_seconds")]) for c in cats},
        total, lead=["train s with", "without"])


def measured(default, cats, key, digits=3):
    """Each category's default model's metadata `key` (an automatic rule's measurement), "–" where
    the model predates it."""
    return ", ".join(f"{c} {fmt(float(default[c]['meta'].get(key, 'nan')), digits)}"
                     for c in cats if c in default)


def feature_against(w, a, default, ablation, counts, variant, flag, on, verb, obj):
    """Where an automatic feature is on (`on(a, category)`): the default against the same training
    without it (the ablation `variant`, trained with `flag`), the I-AUROC changes, then
    localisation and the subtle bucket per category. Nothing when no such ablation is on record."""
    cats = [c for c in a.categories.split(",") if default and c in default and ablation and
            variant in ablation.get(c, {})]
    if not cats:
        return
    total = len([c for c in a.categories.split(",") if c in default and on(a, c)])
    w(f"Where {verb} on, the default model against the same training without {obj} ({flag}), "
      f"both `--time_budget {a.budget}` and the same seed, K = 3:\n")
    gain = default_against(w, default, ablation, variant, cats, total)
    se = auroc_se(0.9, counts["defective"], counts["good"])

    def versus(c, bucket, metric):
        return (f"{fmt(cat_metric(default[c]['k'][3], c, bucket, metric))} against "
                f"{fmt(cat_metric(ablation[c][variant]['k3'], c, bucket, metric))}")

    w("Changes in I-AUROC: " + ", ".join(f"{c} {d:+.3f}" for c, d in gain.items()) +
      f", against a standard error of about ±{se:.3f} for one category. With and without: " +
      "; ".join(f"{c} AUPRO {versus(c, 'all', 'AUPRO')}, subtle I-AUROC "
                f"{versus(c, 'subtle', 'I-AUROC')}, subtle P-AUROC {versus(c, 'subtle', 'P-AUROC')}"
                for c in cats) + ".\n")


def partial(done, total):
    """The line a table of a stage still in progress gets (empty when complete)."""
    if done >= total:
        return ""
    return (f"{done} of {total} categories done (the means are over those); the script resumes "
            "the rest.\n")


def write_report(a, campaign, default, ablation):
    cats = a.categories.split(",")
    out = []
    w = out.append
    w("# Accuracy (offline, synthetic data)\n")
    w("Generated by `scripts/accuracy.py` (issue 3); every number below comes from its record of "
      "trained models and invad-eval reports, `docs/accuracy-runs.json` (committed; the script "
      "resumes from it and retrains only what it lacks). Re-run: `make test` (builds the tools), then "
      f"`scripts/accuracy.py --categories {a.categories} --budget {a.budget} --campaign_categories "
      f"{a.campaign_categories} --campaign_budget {a.campaign_budget}`.\n")
    counts = test_counts(os.path.join(a.work, "data", cats[0]))
    envs = sorted({(e["cores"], e["cpu"], e["OPENBLAS_CORETYPE"] or "unset (OpenBLAS detects the CPU)")
                   for e in (m.get("env") for m in a.store.models.values()) if e})
    w("Machine (as recorded with the models): " + ("; ".join(
        f"{n} cores, {cpu}, `OPENBLAS_CORETYPE` {ob}" for n, cpu, ob in envs) or "not recorded") +
      ". "
      f"Data: `invad-datagen --seed {a.seed} --train {a.train} --test_good {a.test_good} "
      f"--test_per_defect {a.test_per_defect} --categories {a.categories}` (per category "
      f"{counts['good']} normal and {counts['defective']} defective test images, "
      f"{counts['subtle']} of them subtle: mean contrast <= 15 grey levels, area <= 0.5 %). "
      "Metrics: invad-eval (exact AUROC/AP/F1max, AUPRO to FPR 0.3; pixel metrics at the network "
      "resolution). Buckets: *subtle* = the normal test images plus the subtle defects; *all* = "
      "every test image. Standard error of one category's I-AUROC (Hanley–McNeil) at these counts: "
      f"±{auroc_se(0.9, counts['defective'], counts['good']):.3f} near 0.9 for *all*, "
      f"±{auroc_se(0.75, counts['subtle'], counts['good']):.3f} near 0.75 for *subtle*; a "
      "six-category mean has about 1/√6 of that.\n")
    if default:
        w("## The default model\n")
        m0 = default[cats[0]]["meta"]
        w(f"invad-train's defaults (encoder `{m0.get('encoder')}`, DiT width/depth from "
          "`tools/train/trainer.h`), one model per category, `--time_budget "
          f"{a.budget}`, K = 3. The budget keeps a margin under the issue's 10 minutes: "
          "invad-train converts it into a step count once, after a timing phase, and this VM's "
          "speed drifts by ~15 % over minutes (at 520 s one category trained 604 s).\n")
        w("| category | train images | denoiser steps | train s | I-AUROC | P-AUROC | AUPRO | "
          "I-AUROC subtle | P-AUROC subtle | ms/img |")
        w("|---|---|---|---|---|---|---|---|---|---|")
        keys = ["I-AUROC", "P-AUROC", "AUPRO"]
        sums = {}
        for c in cats:
            r = default[c]["k"][3]
            vals = [cat_metric(r, c, "all", k) for k in keys] + [
                cat_metric(r, c, "subtle", "I-AUROC"), cat_metric(r, c, "subtle", "P-AUROC")]
            for i, v in enumerate(vals):
                sums.setdefault(i, []).append(v)
            meta = default[c]["meta"]
            w(f"| {c} | {meta.get('train_images')} | {meta.get('denoiser_steps')} | "
              f"{meta.get('train_seconds')} | " + " | ".join(fmt(v) for v in vals) +
              f" | {r['ms_per_image']:.1f} |")
        w("| **mean** | | | | " + " | ".join(fmt(mean(sums[i])) for i in range(5)) + " | |\n")
        over = {c: default[c]["meta"] for c in cats
                if float(default[c]["meta"].get("train_seconds", "0")) > 600}
        if over:
            w("Over the issue's 10 minutes: " + ", ".join(
                f"{c} trained {m.get('train_seconds')} s ({m.get('denoiser_steps')} steps; its "
                f"timing phase measured {float(m.get('timed_step_ms', 'nan')):.0f} ms per step)"
                for c, m in over.items()) +
              ". invad-train converts a time budget into a step count once, after timing a few "
              "steps (as issue 3 asks, so a resumed run repeats it exactly); when the machine runs "
              "slower after that phase than during it, the budget overruns. The other categories' "
              "timing phases measured " + ", ".join(
                  f"{float(default[c]['meta'].get('timed_step_ms', 'nan')):.0f}" for c in cats
                  if c not in over) + " ms per step.\n")
        mi, mp = mean(sums[0]), mean(sums[1])
        obvious = mean([cat_metric(default[c]["k"][3], c, "obvious", "I-AUROC") for c in cats])
        weak = [c for c in cats if cat_metric(default[c]["k"][3], c, "all", "I-AUROC") < 0.97]
        # Within half a unit of the third decimal the rounded mean would read as the target itself.
        w(f"Issue 3's targets: mean I-AUROC >= 0.97 — **{'met' if mi >= 0.97 else 'not met'}** "
          f"({fmt(mi, 4 if abs(mi - 0.97) < 5e-4 else 3)}); mean P-AUROC >= 0.95 — "
          f"**{'met' if mp >= 0.95 else 'not met'}** "
          f"({fmt(mp)}). Obvious defects: mean I-AUROC {fmt(obvious)}. " +
          ("Below 0.97: " + ", ".join(
              f"{c} {fmt(cat_metric(default[c]['k'][3], c, 'all', 'I-AUROC'))} (subtle "
              f"{fmt(cat_metric(default[c]['k'][3], c, 'subtle', 'I-AUROC'))})" for c in weak) +
           f". What is left is the subtle bucket ({counts['contrast'][0]:.0f}–"
           f"{counts['contrast'][1]:.0f} grey levels over {counts['area_pct'][0]:.2f}–"
           f"{counts['area_pct'][1]:.2f} % of the image in {cats[0]}) "
           "where the normal image has strong structure of its own at the defect's scale: the "
           "washer's ripple, rims and the edges of its rim notch (in the canonical pose, with the "
           "rotational and pixel-standardised channels, its maps find the subtle defects — subtle "
           "P-AUROC " +
           (fmt(cat_metric(default['washer']['k'][3], 'washer', 'subtle', 'P-AUROC'))
            if 'washer' in default else '–') +
           " — but a 1-px scratch or crack, or a small bite out of the rim, still moves a part's "
           "image score about as much as normal parts vary), the grid's pixel noise (σ = 6 grey "
           "levels, what the lattice channels leave of the pattern), in which a subtle 1-px "
           "scratch or crack of 8–13 grey levels gives an 11-px line filter about 5 noise SDs, "
           "about what the noise itself reaches somewhere in a 256² image" +
           (", the tile's grout lines and shade steps" if "tile" in weak else "") +
           ". A 16×16-pixel cell's statistics move more with that structure than "
           "with such a defect. See the periodic-texture, lattice, round-part, pose and fine-detail "
           "ablations, the training budget, what was tried and dropped and the encoder comparison "
           "below.\n"
           if weak else "\n"))

        w("**Another test split.** Outside this script's record: the pose study's default "
          "models (before the lattice channels) scored on a development split from another "
          "datagen seed (`invad-datagen --seed 12 --train 1 --test_good 80 --test_per_defect "
          "20`, the same sizes; commands in `scripts/probes/score_components.py`), K = 3: mean "
          "I-AUROC 0.958 against 0.939 on this split — grid 0.921 (0.892 here), metal 0.966 "
          "(0.957), tile 0.958 (0.955), washer 0.907 (0.829), wood 1.000, carpet 0.999. One split "
          "of 80 normal and 120 defective images per category moves a category's I-AUROC by up "
          "to 0.08 (the washer); a target of 0.97 is read on this split, not on the luckier one. "
          "On that split the anomaly map's maximum as the image score beat the fused Diff and "
          "‖z_T‖² score of then on metal, tile and the washer and lost on grid and carpet (mean "
          "0.963 against 0.958; scripts/probes/score_components.py): that is where the score "
          "rule `max_norm` was chosen, and on the same split its successor, invad-train's "
          "default `positional_max_norm` (Image score rule below); this split measures them. The "
          "default models of this page on that split (the same commands, each model's "
          "positional_max_norm version), K = 3: mean I-AUROC 0.976 (subtle 0.939) — grid 0.960, "
          "wood 1.000, metal 0.968, carpet 0.998, tile 0.990, washer 0.937; their max_norm "
          "versions: 0.974 (subtle 0.935) — grid 0.962, wood 1.000, metal 0.971, carpet 0.998, "
          "tile 0.985, washer 0.929.\n")
        score_rule_section(w, a, default, cats)
        w("## Against a simple baseline\n")
        w("Per-pixel Gaussian (`invad-eval --mode pixel_gaussian`): mean and standard deviation of "
          "every pixel over the category's normal training images, map = max over channels of "
          "|x − μ|/σ blurred with σ = 4 px, image score = map maximum.\n")
        w("| category | InvAD I-AUROC | baseline I-AUROC | InvAD P-AUROC | baseline P-AUROC | "
          "InvAD subtle I-AUROC | baseline subtle I-AUROC |")
        w("|---|---|---|---|---|---|---|")
        for c in cats:
            inv, base = default[c]["k"][3], default[c]["baseline"]
            w(f"| {c} | {fmt(cat_metric(inv, c, 'all', 'I-AUROC'))} | "
              f"{fmt(cat_metric(base, c, 'all', 'I-AUROC'))} | "
              f"{fmt(cat_metric(inv, c, 'all', 'P-AUROC'))} | "
              f"{fmt(cat_metric(base, c, 'all', 'P-AUROC'))} | "
              f"{fmt(cat_metric(inv, c, 'subtle', 'I-AUROC'))} | "
              f"{fmt(cat_metric(base, c, 'subtle', 'I-AUROC'))} |")
        w("")

        w("## Inversion steps K\n")
        w("Mean over categories; every K calibrated (at training time, or re-calibrated: Image "
          "score rule). ms/img is model time (encode + K denoiser calls + scoring) at batch 16 on "
          "2 threads.\n")
        w("| K | I-AUROC | P-AUROC | subtle I-AUROC | ms/img |")
        w("|---|---|---|---|---|")
        for k in K_TABLE:
            reps = [(c, default[c]["k"][k]) for c in cats]
            w(f"| {k} | {fmt(mean([cat_metric(r, c, 'all', 'I-AUROC') for c, r in reps]))} | "
              f"{fmt(mean([cat_metric(r, c, 'all', 'P-AUROC') for c, r in reps]))} | "
              f"{fmt(mean([cat_metric(r, c, 'subtle', 'I-AUROC') for c, r in reps]))} | "
              f"{mean([r['ms_per_image'] for _, r in reps]):.1f} |")
        w("")

        w("## Inversion against the reconstruction baseline\n")
        w(f"Reconstruction (method.md §7, corrected variant): S = {RECON_POINTS} respaced points, "
          "noise to index r, denoise back; NFE = r + 1. Same trained denoisers.\n")
        w("| method | NFE | I-AUROC | P-AUROC | subtle I-AUROC |")
        w("|---|---|---|---|---|")
        recon = {}
        for noise in range(1, RECON_POINTS):
            reps = [(c, default[c]["recon"][noise]) for c in cats]
            recon[noise] = (mean([cat_metric(r, c, 'all', 'I-AUROC') for c, r in reps]),
                            mean([cat_metric(r, c, 'all', 'P-AUROC') for c, r in reps]),
                            mean([cat_metric(r, c, 'subtle', 'I-AUROC') for c, r in reps]))
        inv = {}
        for k in K_TABLE:
            reps = [(c, default[c]["k"][k]) for c in cats]
            inv[k] = (mean([cat_metric(r, c, 'all', 'I-AUROC') for c, r in reps]),
                      mean([cat_metric(r, c, 'all', 'P-AUROC') for c, r in reps]),
                      mean([cat_metric(r, c, 'subtle', 'I-AUROC') for c, r in reps]))
        w(f"| inversion K = 3 | 3 | {' | '.join(fmt(v) for v in inv[3])} |")
        w(f"| reconstruction r = 2 (equal NFE) | 3 | {' | '.join(fmt(v) for v in recon[2])} |")
        best_k = max(K_TABLE, key=lambda k: inv[k][0])
        best_r = max(recon, key=lambda r: recon[r][0])
        w(f"| inversion, best K = {best_k} | {best_k} | {' | '.join(fmt(v) for v in inv[best_k])} |")
        w(f"| reconstruction, best r = {best_r} | {best_r + 1} | "
          f"{' | '.join(fmt(v) for v in recon[best_r])} |")
        w("\nEvery r: " + ", ".join(f"r={r}: {fmt(recon[r][0])}" for r in recon) + " (I-AUROC).\n")

    per_cats = [c for c in cats if ablation and "noper" in ablation.get(c, {}) and
                default and c in default]
    if per_cats:
        w("## Periodic texture: the filter bank's periodic channels\n")
        w("The default filter bank adds four channels per cell (`invad-train --filter_periodic`, "
          "default `auto`: on unless it keeps only its residual channels): the grey image minus the mean of its neighbours one dominant period "
          "away along x and y (each image's periods from its own autocorrelation, 4 px to half "
          "the image), blurred with σ = 1.5 and 3 px, by mean and maximum magnitude. A woven or "
          "tiled pattern cancels there and leaves the pixel noise; a local defect does not, and "
          "the cell statistics no longer swing with the pattern's phase. Below, the default model "
          "against the same training without them (`--filter_periodic=false`), both "
          f"`--time_budget {a.budget}` and the same seed, K = 3.\n")
        residual = [c for c in cats if residual_part(a, c)]
        gain = default_against(w, default, ablation, "noper", per_cats,
                               len(cats) - len(residual))
        se = auroc_se(0.9, counts["defective"], counts["good"])
        lattice_on = [c for c in per_cats if lattice_texture(a, c)]
        w("Changes in I-AUROC: " + ", ".join(f"{c} {d:+.3f}" for c, d in gain.items()) +
          f", against a standard error of about ±{se:.3f} for one category. On textures without "
          "a period (metal, carpet) or with a period longer than a cell (tile, 60–68 px; wood) "
          "the channels add little. " +
          (f"Where the lattice channels are on ({', '.join(lattice_on)}) both runs have them, "
           "and the periodic channels add nothing measurable either: the lattice template "
           "cancels a lattice's pattern better than the integer lags do. " if lattice_on else "") +
          (f"Not in this table: {', '.join(residual)}, where the default keeps only the residual "
           "channels (periodic ones off; Residual channels only, below). Before the lattice "
           "channels existed the grid gained +0.048 from the periodic channels (the pose study's "
           "record, 0.892 against 0.843).\n" if residual else "\n"))

    if default:
        w("## Periodic textures on a lattice: the filter bank's lattice channels\n")
        w("With `invad-train --filter_lattice=auto` (the default) the filter bank adds four "
          "channels per cell when the training images show a lattice: each image's two lattice "
          "vectors to a fraction of a pixel (its normalised autocorrelation's first peak on each "
          "axis, ≥ 0.8 of the zero lag, refined at its farthest multiple), the grey image minus "
          "the mean of its eight lattice neighbours (bicubic), then that residual's 3×3 box mean "
          "and its largest mean along an 11-px line in 16 orientations (a matched filter for 1-px "
          "scratches and cracks), by mean and maximum magnitude. The periodic channels' integer "
          "lags leave the pattern wherever its period is not a whole number of pixels or the weave "
          "is tilted (the grid: 11–14 px, ±0.02 rad); the lattice template cancels it to the pixel "
          "noise. *Lattice fraction* = the share of the training images with a lattice; the "
          f"channels go on at >= {LATTICE}. Per category (default models; – = trained before "
          "invad-train recorded it, with the channels off): " +
          measured(default, cats, "lattice_fraction") + ".\n")
        feature_against(w, a, default, ablation, counts, "nolat", "`--filter_lattice=false`",
                        lattice_texture, "they are", "them")
        if any(residual_part(a, c) for c in cats):
            w("Without the lattice channels the filter bank keeps all its channels (the "
              "residual-only rule below needs a lattice): where that rule is on, this comparison "
              "includes both.\n")
        lat_ms = ", ".join(f"{c} {default[c]['k'][3]['ms_per_image']:.1f}" +
                           (" (residual channels only)" if residual_part(a, c) else "")
                           for c in cats if c in default and lattice_texture(a, c))
        w("The step counts a time budget buys vary by up to 20 % between runs (invad-train times "
          "a few steps on this VM, then fixes the count), enough to swamp a change of 0.01–0.02. At "
          "equal step counts (outside the record: `invad-train --seed 11 --allowed_steps 3 "
          "--steps N` with and without the channels, N = the pose study's default's count, "
          "2612 grid, 3164 tile; `invad-eval --steps 3`): grid 0.902 against 0.892 I-AUROC "
          "(subtle 0.755 against 0.730; AUPRO 0.874 against 0.846), tile 0.968 against 0.955 "
          "(subtle 0.920 against 0.888; AUPRO 0.917 against 0.938). Cost: invad-eval's model time "
          f"at K = 3 with the channels, ms/img: {lat_ms} (the pose study's grid and tile models "
          "without them: 20.6 and 19.4); the filter bank alone: docs/benchmarks.md.\n")
        stale = [f"{v} {c}" for c in cats if lattice_texture(a, c)
                 for v in (("lap",) if residual_part(a, c) else ("noper", "lap", "nolap"))
                 if "lattice_fraction" not in (a.store.models.get(f"ablation_{v}_{c}") or
                                               {"meta": {"lattice_fraction": 0}})["meta"]]
        if stale:
            w("These ablation runs predate the lattice channels and were trained without them "
              "(the same arguments then meant that): " + ", ".join(stale) + ". Their comparisons "
              "with the default of those categories include the lattice channels' effect; "
              "`scripts/accuracy.py --redo` retrains them.\n")

    if default:
        w("## Residual channels only: fine lattices and round parts in a canonical pose\n")
        w("With `invad-train --filter_residual_only=auto` (the default) the filter bank keeps only "
          "its residual channels where a residual already holds what is left of the normal image "
          "at pixel resolution: where the lattice channels are on and the lattice is finer than a "
          "latent cell (its longer lattice vector, median over the training images, shorter than "
          "the 16-px cell), and where the pixel-standardised channels are on (a round part in a "
          "canonical pose). Then there are no Gaussian-derivative statistics, no cell mean and "
          "standard deviation, and (`--filter_laplacian` and `--filter_periodic` auto) no "
          "Laplacian or periodic channels: the grid keeps its four lattice channels, the washer "
          "its four rotational and four pixel-standardised ones. A cell of the fine lattice holds "
          "a period of the pattern or more, so those statistics swing with the pattern's phase "
          "inside it; on the posed part they follow its rims, ripple and notch, which the "
          "rotational residual cancels and each pixel's own normal spread absorbs. A faint 1-px "
          "scratch moves one or two of 46–50 channels, and the other channels' normal swing sets "
          "a latent location's norm. Per category (default models' metadata: lattice period, px, "
          "– = no lattice or trained before invad-train measured it): " +
          ", ".join(f"{c} {default[c]['meta'].get('lattice_period', '–')}" for c in cats
                    if c in default) + "; residual channels only: " +
          ", ".join(f"{c} {default[c]['meta'].get('residual_only', '–')}" for c in cats
                    if c in default) + ". Models that predate the rule keep every channel, as "
          "the rule decides for them: measured on their training images (`invad-train --steps "
          "1`), tile lattice period 65.0 px, residual channels off; wood, metal, carpet no "
          "lattice, off.\n")
        feature_against(w, a, default, ablation, counts, "nores",
                        "`--filter_residual_only=false`, every channel", residual_part, "it is",
                        "it")
        w("Where that came from (outside the record): the default models' latents (z0, "
          "standardised per channel) on this test split, scored by the largest latent-location "
          "norm over chosen channels (no denoiser). Grid: all 46 channels 0.916 I-AUROC (the "
          "model's z_T: 0.922), the four lattice channels alone 0.953 (subtle 1-px cracks and "
          "scratches 0.50 against 0.69). Washer: all 50 channels 0.806 (z_T: 0.914), the "
          "rotational and pixel-standardised ones 0.864, where the denoiser adds more. Tile "
          "(lattice period 60–68 px, coarser than a cell): the lattice channels alone 0.861 "
          "against the default's 0.966, whose denoiser reads the pattern's context from the other "
          "channels — the rule leaves it alone. Before adopting it, at the default's step counts "
          "and seed (`invad-train --steps N --seed 11 --allowed_steps 3`, N = 2831 grid, 2736 "
          "washer; `invad-eval --steps 3`): grid 0.956 against 0.922 I-AUROC (subtle 0.891 "
          "against 0.804, AUPRO 0.911 against 0.875), washer 0.927 against 0.914 (subtle 0.818 "
          "against 0.784, AUPRO 0.916 against 0.863); on the development split of another datagen "
          "seed (Another test split, above) grid 0.962 against 0.923, washer 0.928 against 0.907 "
          "(AUPRO 0.914 against 0.855). Model time falls without the other channels: 17.8 "
          "against 28.1 ms/img (grid), 17.5 against 28.8 (washer) in those probes. The runs "
          "without it above are these categories' previous default models, trained when these "
          "arguments were invad-train's defaults (moved in the record, each with a `note`).\n")

    if default:
        w("## Round parts: the filter bank's rotational channels\n")
        w("With `invad-train --filter_rotational=auto` (the default) the filter bank adds four "
          "channels per cell when the training images show one round part: the grey image minus "
          "the mean of its rotations by ±20° about the part's centroid, blurred with σ = 1.5 and "
          "3 px, by mean and maximum magnitude. Rings, rims and one-sided shading cancel there "
          "whatever the part's pose; a local defect does not. *Roundness* = the median over the "
          "training images of the IoU of the foreground (two-class threshold, the class off the "
          "border) with its own 20° turn, 0 when the foreground touches the border (a texture); "
          f"the channels go on at >= {ROUND_PART}. Per category (default models; – = trained "
          "before invad-train recorded it, with the channels off): " +
          measured(default, cats, "foreground_roundness") + ".\n")
        feature_against(w, a, default, ablation, counts, "norot", "`--filter_rotational=false`",
                        round_part, "they are", "them")
        if any(pixel_part(a, c) for c in cats):
            w("Without the rotational channels the pixel-standardised channels (below), which "
              "standardise the rotational residual, are off too, and so the filter bank keeps "
              "every channel (residual channels only, above): where those are on, this "
              "comparison includes all three.\n")

    if default:
        w("## Parts at any pose: pose normalisation\n")
        w("With `invad-train --pose auto` (the default) every image of a part that comes at any "
          "angle is turned into a canonical pose as the last preprocessing step, in training, "
          "calibration, evaluation and serving alike: rotated about the part's centroid so that its "
          "intensity moment points along +x, centroid to the centre; anomaly maps go back into the "
          "image's frame before pixel metrics (docs/training.md). A pose marker (the washer's rim "
          "notch, at a random angle in every image) then lands in the same cells in every image, "
          "where the denoiser learns it as normal. `auto` turns it on when one part is found in "
          f">= {POSE_PARTS:.0%} of the training images and the canonical pose leaves <= "
          f"{POSE_VARIANCE} of their variance (8×8 block means). Per category (default models; "
          "part fraction / variance ratio; – = trained before invad-train measured it): " +
          ", ".join(f"{c} {fmt(float(default[c]['meta'].get('pose_part_fraction', 'nan')), 2)} / "
                    f"{fmt(float(default[c]['meta'].get('pose_variance_ratio', 'nan')))}"
                    for c in cats if c in default) + ".\n")
        feature_against(w, a, default, ablation, counts, "nopose", "`--pose=none`", posed_part,
                        "it is", "it")
        if any(pixel_part(a, c) for c in cats):
            w("Without pose normalisation `--filter_pixel_norm=auto` leaves the pixel-standardised "
              "channels (below) off, and so the filter bank keeps every channel (residual "
              "channels only, above): where they are on, this comparison includes both.\n")

    if default:
        w("## Round parts in a canonical pose: pixel-standardised channels\n")
        w("With `invad-train --filter_pixel_norm=auto` (the default) the filter bank adds four "
          "channels per cell where both the rotational channels and pose normalisation are on: "
          "two detectors of the rotational residual — its 3×3 box mean magnitude and its largest "
          "mean along an 11-px line in 16 orientations — each standardised pixel by pixel with "
          "the mean and standard deviation of the (pose-normalised) training images at that pixel "
          "(stored in the bundle, `encoder_pixel_stats.safetensors`), 3×3 box-blurred, by cell "
          "mean and maximum. A cell that holds part of the rim or the notch's edge has a large, "
          "varying residual there, which sets its raw statistics; against each pixel's own normal "
          "spread, a faint defect in the quiet rest of the cell stands out (a PaDiM-like "
          "per-position model, at pixel resolution, of a residual that is already near zero). "
          "Per category (default models' metadata `pixel_norm`; – = trained before invad-train "
          "had them, off): " + ", ".join(f"{c} {default[c]['meta'].get('pixel_norm', '–')}"
                                         for c in cats if c in default) + ".\n")
        feature_against(w, a, default, ablation, counts, "nopix", "`--filter_pixel_norm=false`",
                        pixel_part, "they are", "them")
        if any(pixel_part(a, c) and residual_part(a, c) for c in cats):
            w("Without them `--filter_residual_only=auto` keeps every channel (residual channels "
              "only, above): where both are on, this comparison includes both.\n")
        stale = [f"{v} {c}" for c in cats if pixel_part(a, c)
                 for v in (("lap",) if residual_part(a, c) else ("noper", "lap", "nolap"))
                 if "pixel_norm" not in (a.store.models.get(f"ablation_{v}_{c}") or
                                         {"meta": {"pixel_norm": ""}})["meta"]]
        if stale:
            w("These ablation runs predate the pixel-standardised channels and were trained "
              "without them (the same arguments then meant that): " + ", ".join(stale) + ". "
              "Their comparisons with the default of that category include the channels' effect; "
              "`scripts/accuracy.py --redo` retrains them.\n")

    ab_cats = [c for c in cats if ablation and "lap" in ablation.get(c, {}) and
               "nolap" in ablation.get(c, {})]
    if ab_cats:
        se = auroc_se(0.9, counts["defective"], counts["good"])
        w("## Fine detail: the filter bank's Laplacian channels\n")
        w("The default filter bank adds two channels per cell: the mean magnitude of the grey "
          "image's discrete Laplacian (no smoothing) and the peak of its energy blurred with "
          "σ = 1.5 px (`invad-train --filter_laplacian`, default `auto`: on unless it keeps only "
          "its residual channels). Below, the default's "
          "training with and without them (`--filter_laplacian=false`), both with "
          f"`--time_budget {a.ablation_budget}` and the same seed, K = 3.\n")
        residual = [c for c in cats if residual_part(a, c)]
        delta = ablation_table(
            w, {c: (ablation[c]["lap"]["k3"], ablation[c]["nolap"]["k3"], []) for c in ab_cats},
            len(cats) - len(residual))
        if residual:
            w(f"Not in this table: {', '.join(residual)}, where the default keeps only the "
              "residual channels, Laplacian ones off (Residual channels only, above).\n")
        others = ", ".join(f"{c} {d:+.3f}" for c, d in delta.items() if c != "carpet")
        if "carpet" in delta:
            w("Where it matters: carpet is white noise blurred with σ = 1.3 px, so it has almost "
              "no energy at the finest scale, while a defect's edge is a sharp step. The "
              "Gaussian-derivative scales (σ ≥ 1 px) average that step away together with the "
              "noise; the unsmoothed Laplacian keeps it (carpet I-AUROC change "
              f"{delta['carpet']:+.3f}). Elsewhere the changes are {others} I-AUROC, against a "
              f"standard error of about ±{se:.3f} for one category (see Data above).\n")
        else:
            w(f"Changes in I-AUROC: {others}, against a standard error of about ±{se:.3f} for one "
              "category (see Data above). On the earlier split the channels mattered most for "
              "carpet (white noise blurred with σ = 1.3 px: almost no energy at the finest scale, "
              "while a defect's edge is a sharp step), whose run here is pending.\n")

    if not ab_cats:
        w("## Fine detail (Laplacian channels) and training budget\n")
        w("Pending on this test split: the ablation stage's runs (with and without the channels, "
          f"`--time_budget {a.ablation_budget}`) are not trained yet; "
          "`scripts/accuracy.py --stages ablation,report` adds both sections. On the earlier split "
          "(20 normal and 30 defective test images per category, 240 s) the channels took carpet "
          "from 0.737 to 1.000 I-AUROC and the six-category mean from 0.867 to 0.913; a 540-s "
          "probe on tile (this split, same seed) gave 0.949 against 0.896 at 240 s.\n")

    budget_cats = [c for c in cats if ablation and "lap" in ablation.get(c, {}) and
                   default and c in default]
    if budget_cats:
        w("## Training budget\n")
        w(f"The same training (the default, same seed) with `--time_budget {a.ablation_budget}` "
          f"(the ablation's runs) and `--time_budget {a.budget}` (the default model above), K = 3. "
          "The denoiser's step count is what the budget buys on this machine.\n")
        w(f"| category | steps {a.ablation_budget} s | steps {a.budget} s | I-AUROC "
          f"{a.ablation_budget} s | {a.budget} s | subtle I-AUROC {a.ablation_budget} s | "
          f"{a.budget} s |")
        w("|---|---|---|---|---|---|---|")
        cols = {i: [] for i in range(4)}
        for c in budget_cats:
            short, full = ablation[c]["lap"], default[c]
            vals = [cat_metric(short["k3"], c, "all", "I-AUROC"),
                    cat_metric(full["k"][3], c, "all", "I-AUROC"),
                    cat_metric(short["k3"], c, "subtle", "I-AUROC"),
                    cat_metric(full["k"][3], c, "subtle", "I-AUROC")]
            for i, v in enumerate(vals):
                cols[i].append(v)
            w(f"| {c} | {short['meta'].get('denoiser_steps')} | "
              f"{full['meta'].get('denoiser_steps')} | " + " | ".join(fmt(v) for v in vals) + " |")
        w("| **mean** | | | " + " | ".join(fmt(mean(cols[i])) for i in range(4)) + " |\n")
        w(partial(len(budget_cats), len(cats)))

    if default:
        w("## Tried and dropped\n")
        w("Outside this script, one run each, K = 3, on the study's earlier, smaller test split (20 "
          "normal and 30 defective images per category), against the default of then "
          "(`--time_budget 240`; grid 0.863, tile 0.882, washer 0.780 I-AUROC on that split):\n")
        w("- Describing each cell relative to its image's median cell (\"image context\", "
          "doubling the channels; an experimental encoder option, not kept; 1500 denoiser steps; "
          "before the Laplacian channels, whose default of then had grid 0.823, tile 0.923): "
          "grid 0.848, tile 0.837 I-AUROC.")
        w("- Finer cells (`invad-train --seed 11 --allowed_steps 3 --time_budget 240 --latent_size "
          "32 --dit_patch 2`, then `invad-eval --steps 3`): grid 0.717 (the denoiser reaches "
          "ε-loss 0.255 instead of 0.138 in the budget), washer 0.442.")
        w("- More normal training images: the washer with 400 instead of 120 (`invad-datagen "
          "--seed 11 --train 400 --test_good 20 --test_per_defect 5`: same test images, the first "
          "120 training images the same), `--time_budget 240`: 0.795 (subtle 0.487) against "
          "0.780 (0.450) — within the standard error; what limits the washer is not the number "
          "of examples.")
        w("\nOn this test split, `--time_budget 240`, same seed, K = 3, against the Laplacian "
          "ablation's runs with the channels (the default's training at 240 s; the washer's probe "
          "with its rotational channels):\n")
        w("- Compressed magnitude channels (an experimental encoder option, not kept: every "
          "channel but the cell means as its square root, or as log(0.02 + x), so that rims, "
          "edges and pose markers weigh less after the per-channel standardisation): square root "
          "grid 0.893, tile 0.905, metal 0.948, washer 0.827 I-AUROC against 0.891, 0.907, 0.950, "
          "0.820 linear; log on the washer 0.799. Within the standard error everywhere; the "
          "washer's pixel metrics rose (subtle P-AUROC 0.835 square root, 0.822 log, against "
          "0.75) but its image score is still set by the notch.\n")
        w("On this test split, against the default models of the pose-normalisation study "
          "(grid 0.892, washer 0.829 I-AUROC; the same step counts and seed, `--steps 2612` grid, "
          "`--steps 2453` washer, `--allowed_steps 3`, K = 3):\n")
        w("- Whitening the latent channels after the per-channel standardisation (an "
          "experimental option, not kept: the inverse square root of the channels' correlation "
          "over the training images, eigenvalues floored at 0.01, so a cell's norm is the "
          "Mahalanobis distance of its features): grid 0.881 with the lattice channels (0.902 "
          "without whitening; subtle 0.701 against 0.755), washer 0.832 (subtle 0.581 against "
          "0.573). The features are far from Gaussian (cell maxima), and the low-variance "
          "directions it amplifies carry more noise than defect.")
        w("\nOn this test split, against the grid's default of before the residual-only rule "
          "(0.922 I-AUROC, 2831 steps; the same step count and seed, `--allowed_steps 3`, "
          "K = 3):\n")
        w("- Only the Laplacian and periodic channels off, the derivative and mean/SD channels "
          "kept (`--filter_laplacian=false --filter_periodic=false`, 40 channels): 0.923 (subtle "
          "0.809). The 240-s ablation's gain without the Laplacian channels (0.944 against 0.919) "
          "did not hold at the default's steps; what dilutes the lattice channels is the whole "
          "cell-statistics block, which residual channels only removes.\n")

    if campaign:
        total = len(ENCODERS) * len(DENOISERS) * len(a.campaign_categories.split(","))
        w("## Encoder comparison (the default, chosen by measurement)\n")
        w(f"Each run: one category, `--time_budget {a.campaign_budget}` of training (the "
          "autoencoder gets a quarter of it), K = 3. CPU-minutes = training seconds × threads / 60 "
          "+ scoring the test set. Value = (subtle I-AUROC − 0.5) per CPU-minute, the pick's "
          "criterion; chance level scores 0.\n")
        w("| encoder | denoiser | categories | encoder steps | denoiser steps | final ε-loss | I-AUROC "
          "| P-AUROC | subtle I-AUROC | subtle P-AUROC | CPU-min | value |")
        w("|---|---|---|---|---|---|---|---|---|---|---|---|")
        groups = {}
        for row in campaign:
            groups.setdefault((row["encoder"], row["denoiser"]), []).append(row)
        best = None
        for (enc, size), rows in groups.items():
            cpu = mean([r["train_s"] * r["threads"] / 60 + r["ms"] * r["images"] / 1000 * r["threads"] / 60
                        for r in rows])
            sub = mean([r["i_subtle"] for r in rows])
            value = (sub - 0.5) / cpu if cpu > 0 else float("nan")
            if best is None or value > best[2]:
                best = (enc, size, value)
            w(f"| {enc} | {size} | {len(rows)} | {mean([r['encoder_steps'] for r in rows]):.0f} | "
              f"{mean([r['denoiser_steps'] for r in rows]):.0f} | {fmt(mean([r['loss'] for r in rows]))} | "
              f"{fmt(mean([r['i_all'] for r in rows]))} | "
              f"{fmt(mean([r['p_all'] for r in rows]))} | {fmt(sub)} | "
              f"{fmt(mean([r['p_subtle'] for r in rows]))} | {cpu:.2f} | {fmt(value)} |")
        w(f"\nPick by the criterion: **{best[0]}**, {best[1]} denoiser" +
          (f" ({len(campaign)} of {total} runs done; the script resumes the rest).\n"
           if len(campaign) < total else ".\n"))
        w("Denoisers: small = DiT width 64, depth 2; medium = width 128, depth 3 (4 heads, patch 1). "
          "Encoders: `filter_bank` = Gaussian-derivative filter-bank statistics (no weights; here "
          "without the Laplacian and periodic channels, see the ablations; with the rotational "
          "channels where `--filter_rotational=auto` turns them on and pose normalisation where "
          "`--pose auto` does, the washer; its runs predate the pixel-standardised channels and "
          "have none); `conv_random` = the native conv encoder with fixed random weights; `conv_ae` = the same "
          "encoder trained as an autoencoder on the normal images, then frozen. Final ε-loss = mean "
          "training loss of the last tenth of the steps: the conv encoders' 224-channel latents "
          "stay near 0.74 (the denoiser learns little of them), and the autoencoder gets few steps "
          "of its quarter of the budget at 256 px — a fair rerun needs channel-matched conv "
          "encoders and a longer autoencoder budget.\n")
    path = os.path.join(ROOT, "docs", "accuracy.md")
    with open(path, "w") as f:
        f.write("\n".join(out))
    log(f"wrote {path}")
    if default and all(c in default for c in cats):
        write_benchmarks_k(a, default, cats)


def score_rule_section(w, a, default, cats):
    """The default models at K = 3 under each image score rule (the same weights)."""
    have = [c for c in cats if "other_rule" in default[c]]
    if not have:
        return
    rules = [a.score_rule] + [r for r in other_rules(a) if all(
        isinstance(default[c]["other_rule"], dict) and r in default[c]["other_rule"]
        for c in have)]
    w("## Image score rule\n")
    w("invad-train calibrates one image score per bundle (`--score_rule`, docs/training.md): "
      "`positional_max_norm`, the latent norm map's maximum after standardising each location by "
      "the mean and spread of the training images' maps there, as a robust z-score against the "
      "held-out normal images; `max_norm`, the raw map's maximum, likewise; or `diff_sq_norm`, "
      "the reference's Diff and ‖z_T‖² terms summed (method.md §5; docs/adr/0005). The default "
      "models above use `" + a.score_rule + "`; below, the same weights calibrated under each "
      "rule, K = 3. Pixel metrics do not depend on the image score.\n")
    metrics = [("all", "I-AUROC", "I-AUROC"), ("subtle", "I-AUROC", "subtle I-AUROC"),
               ("all", "I-AP", "I-AP")]
    w("| category | " + " | ".join(f"{label} {r}" if k == 0 else r
                                   for _, _, label in metrics for k, r in enumerate(rules)) + " |")
    w("|---" * (1 + len(metrics) * len(rules)) + "|")
    cols = {}
    for c in have:
        by_rule = {a.score_rule: default[c]["k"][3], **default[c]["other_rule"]}
        vals = [cat_metric(by_rule[r], c, bucket, m) for bucket, m, _ in metrics for r in rules]
        for i, v in enumerate(vals):
            cols.setdefault(i, []).append(v)
        w(f"| {c} | " + " | ".join(fmt(v) for v in vals) + " |")
    w("| **mean** | " + " | ".join(fmt(mean(cols[i])) for i in range(len(cols))) + " |\n")
    fresh = (f"{CALIB} normal images none of them trained on (`work/calib/<category>`: the "
             f"datagen seed's training images {a.train}–{a.train + CALIB - 1})")
    w("‖z_T‖² sums the noise of every latent location, so a defect that lifts one location's norm "
      "moves it little; the map's maximum is where a local defect shows. Normal maps are not "
      "equally quiet everywhere: the border cells see the filters' padding and, on a lattice, "
      "fewer lattice neighbours (tile: the training images' norm spread is 0.51–0.57 at the "
      "border against 0.33 inside; metal 0.26–0.29 against 0.24), and on a part in a canonical "
      "pose the normal mean itself moves from location to location (washer: ±0.07 around 0.96 "
      "inside), so under `max_norm` their normal swing competes with a defect elsewhere. "
      "`positional_max_norm` "
      "divides each location's excess over its normal mean by sqrt(½ its variance + ½ the mean "
      "variance over the locations) — shrunk, so that a location's few samples cannot make it "
      "hair-trigger — from the training images' maps (invad-train fits them after training, per "
      "allowed K and category; a latent height × width of each in the manifest, 16×16 here). "
      "Every model of this page was "
      "trained before that rule and re-calibrated under it, not retrained: `invad-train "
      "--calibrate_only --model MODEL_DIR --data work/calib/<category> --score_rule "
      "positional_max_norm --position_data work/data/<category>` (positions from the category's "
      f"{a.train} training images; image statistics and thresholds on {fresh}), as a new "
      "version; `max_norm` and `diff_sq_norm` are that model's versions calibrated under them "
      "(at training time or re-calibrated the same way). The I-AUROC of `max_norm` and "
      "`positional_max_norm` does not depend on the robust z-score (monotone); the thresholded "
      "metrics (precision, recall, FPR at the calibrated threshold) do. Where this rule was "
      "chosen (outside the record, before it was adopted: the default models' z_T dumped by a "
      "temporary build of invad-eval, the rule computed in Python): on the development split "
      "of another datagen seed (Another test split, above), with position statistics from the "
      "120 training images, mean I-AUROC 0.9756 against max_norm's 0.9742 (this split: 0.9724 "
      "against 0.9698); unshrunk 0.9749 (0.9723), the mean alone without the scale 0.9748 "
      "(0.9705); from 20 images (the calibration set) 0.9715 (0.9704), below max_norm: "
      "positions need the training set, not a calibration set. Smoothing the map (2×2 mean) or "
      "averaging its top 2 or 4 locations lost (0.969–0.973 there).\n")


def write_benchmarks_k(a, default, cats):
    """docs/benchmarks.md's section "K steps and inversion vs reconstruction", from the record:
    means over the categories of the default models' K table and reconstruction runs."""
    def avg(runs, bucket, metric):
        return mean([cat_metric(runs(c), c, bucket, metric) for c in cats])

    f = fmt
    inv = {k: (avg(lambda c: default[c]["k"][k], "all", "I-AUROC"),
               avg(lambda c: default[c]["k"][k], "all", "P-AUROC"),
               avg(lambda c: default[c]["k"][k], "subtle", "I-AUROC"),
               mean([default[c]["k"][k]["ms_per_image"] for c in cats])) for k in K_TABLE}
    rec = {r: (avg(lambda c: default[c]["recon"][r], "all", "I-AUROC"),
               avg(lambda c: default[c]["recon"][r], "all", "P-AUROC"),
               avg(lambda c: default[c]["recon"][r], "subtle", "I-AUROC"))
           for r in range(1, RECON_POINTS)}
    bk = max(K_TABLE, key=lambda k: inv[k][0])
    br = max(rec, key=lambda r: rec[r][0])
    env = a.store.models[f"default_{cats[0]}"].get("env", {}).get("OPENBLAS_CORETYPE") or "unset"
    day = max(m["meta"].get("trained_at", "")[:10] for n, m in a.store.models.items()
              if n.startswith("default_"))
    step = (inv[50][3] - inv[10][3]) / 40 if 10 in inv and 50 in inv else float("nan")
    out = ["## K steps and inversion vs reconstruction", "",
           f"Command: `scripts/accuracy.py --categories {a.categories} --budget {a.budget} "
           f"--campaign_categories {a.campaign_categories} --campaign_budget {a.campaign_budget}` "
           "(it writes this section; docs/accuracy.md has the full tables, "
           f"docs/accuracy-runs.json the reports); trained up to {day}, "
           f"{a.store.models[f'default_{cats[0]}'].get('env', {}).get('cores', '?')} cores, "
           f"`OPENBLAS_CORETYPE` {env}, the default model (filter bank with its Laplacian and "
           "periodic-texture channels; for the tile its lattice channels too, for the grid its "
           "lattice channels alone; for the washer its rotational and pixel-standardised "
           f"channels and pose normalisation; {a.budget} s of training per category), "
           f"{default[cats[0]]['k'][3]['images']} test images per category. Mean over "
           f"{len(cats)} synthetic categories, every K calibrated (docs/accuracy.md); ms/img = model "
           "time (encode + K denoiser calls + scoring) at batch 16, 2 threads.", "",
           "| K | I-AUROC | P-AUROC | subtle I-AUROC | ms/img |", "|---|---|---|---|---|"]
    out += [f"| {k} | {f(inv[k][0])} | {f(inv[k][1])} | {f(inv[k][2])} | {inv[k][3]:.1f} |"
            for k in K_TABLE]
    out += ["", f"Cost grows with K (one denoiser call per step, ~{step:.1f} ms per step per image "
            f"from K = 10 to 50), while detection peaks at K = {bk} ({f(inv[bk][0])}"
            f"{'' if bk == 3 else f'; K = 3: {f(inv[3][0])}'}) and is {f(inv[10][0])} at K = 10 and {f(inv[50][0])} at 50: the "
            "few-step inversion is the right trade. Against the reconstruction baseline "
            "(method.md §7, same trained denoisers, S = 10 respaced points, noise to index r and "
            "denoise back, NFE = r + 1):", "",
            "| method | NFE | I-AUROC | P-AUROC | subtle I-AUROC |", "|---|---|---|---|---|",
            f"| inversion K = 3 | 3 | {' | '.join(f(v) for v in inv[3][:3])} |",
            f"| reconstruction r = 2 (equal NFE) | 3 | {' | '.join(f(v) for v in rec[2])} |",
            f"| inversion, best K = {bk} | {bk} | {' | '.join(f(v) for v in inv[bk][:3])} |",
            f"| reconstruction, best r = {br} | {br + 1} | {' | '.join(f(v) for v in rec[br])} |",
            "", f"At equal model calls inversion detects better (I-AUROC "
            f"{inv[3][0] - rec[2][0]:+.3f}); reconstruction peaks at r = {br} and then gets worse "
            "as r grows (" + ", ".join(f"r={r}: {f(rec[r][0])}" for r in rec) +
            ", I-AUROC) while costing r + 1 calls.", ""]
    path = os.path.join(ROOT, "docs", "benchmarks.md")
    with open(path) as fh:
        text = fh.read()
    begin = text.index("## K steps and inversion vs reconstruction")
    end = text.index("\n## ", begin + 1) + 1
    with open(path, "w") as fh:
        fh.write(text[:begin] + "\n".join(out) + "\n" + text[end:])
    log(f"wrote {path} (K section)")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--stages", default="data,default,ablation,campaign,report")
    p.add_argument("--work", default=os.path.join(ROOT, "build", "accuracy"))
    p.add_argument("--categories", default="grid,wood,metal,carpet,tile,washer",
                   help="categories of the default model's study")
    p.add_argument("--campaign_categories", default="grid,wood,carpet,washer")
    p.add_argument("--budget", type=int, default=480,
                   help="training seconds per default model (80 %% of the 10 minutes allowed: "
                   "the step count is fixed after a short timing phase and this VM's speed "
                   "drifts ~15 %% over minutes; 520 overran to 604 s once)")
    p.add_argument("--ablation_budget", type=int, default=240,
                   help="training seconds per model of the ablation stage")
    p.add_argument("--campaign_budget", type=int, default=90, help="training seconds per campaign run")
    p.add_argument("--campaign_denoisers", default="small,medium",
                   help="denoiser sizes the campaign stage trains, in this order")
    p.add_argument("--train", type=int, default=120, help="normal training images per category")
    p.add_argument("--test_good", type=int, default=80, help="normal test images per category")
    p.add_argument("--test_per_defect", type=int, default=20,
                   help="test images per defect kind and category (6 kinds, 40 %% subtle)")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--score_rule", default="positional_max_norm",
                   help="the image score rule of every model's calibration (invad-train's "
                   "default); a model calibrated under another is re-calibrated on fresh normal "
                   "images (work/calib) and re-evaluated, not retrained")
    p.add_argument("--runs", default=RUNS,
                   help="the study's record of trained models and reports (committed)")
    p.add_argument("--redo", default="",
                   help="models (comma-separated names) to train and evaluate again although "
                   "their arguments did not change: after a code change that alters what the "
                   "same arguments train (the named stages redo them)")
    a = p.parse_args()
    a.runs = os.path.abspath(a.runs)
    a.work = os.path.abspath(a.work)
    os.makedirs(a.work, exist_ok=True)
    stages = a.stages.split(",")
    data = stage_data(a)
    a.store = Store(a.runs, a.stamp)
    for name in filter(None, a.redo.split(",")):
        log(f"{name}: redone on request, dropping its records and work folder")
        a.store.drop_model(name)
        shutil.rmtree(os.path.join(a.work, "models", name), ignore_errors=True)
    if a.redo:
        a.store.save()
    report = "report" in stages

    def collect(stage, fn):
        """A named stage trains; an unnamed one is only collected, and only for the report."""
        return fn(a, data, existing_only=stage not in stages) if stage in stages or report else None

    default = collect("default", stage_default)
    ablation = collect("ablation", stage_ablation)
    campaign = collect("campaign", stage_campaign)
    if report:
        write_report(a, campaign, default, ablation)


if __name__ == "__main__":
    main()
