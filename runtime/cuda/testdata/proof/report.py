#!/usr/bin/env python3
"""The results file of .ci/gpu-proof: OUT/gpu-proof.json and its markdown
twin OUT/gpu-proof.md, both rewritten (and synced) after every step so
that a run cut short still returns what finished. Standard library only.

  report.py init OUT MODE                 start a new results file
  report.py step OUT NAME STATUS SECONDS [--note TEXT] [--log FILE] [--kind machine|tests|bench|log]
                                          record one step (STATUS: ok, FAIL, skipped, timeout)
  report.py attach OUT KEY FILE.json      attach ours.json or torch.json
  report.py set OUT KEY VALUE             set a top-level field (a string)
"""

import json
import os
import re
import sys
import time


def paths(out):
    return os.path.join(out, "gpu-proof.json"), os.path.join(out, "gpu-proof.md")


def load(out):
    with open(paths(out)[0]) as f:
        return json.load(f)


def write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save(out, r):
    jp, mp = paths(out)
    write(jp, json.dumps(r, indent=2) + "\n")
    write(mp, markdown(r))


def tail(path, n):
    try:
        with open(path, errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    return lines[-n:]


TEST_LINE = re.compile(r"^\s*--- (PASS|FAIL|SKIP): (\S+) \(([\d.]+)s\)")
BENCH_LINE = re.compile(r"^(Benchmark\S+)\s+(\d+)\s+(.*)$")


def parse_tests(path):
    counts, failed, skipped, top = {"PASS": 0, "FAIL": 0, "SKIP": 0}, [], [], []
    for line in tail(path, 100000):
        m = TEST_LINE.match(line)
        if not m:
            continue
        verdict, name, secs = m.groups()
        counts[verdict] += 1
        if "/" not in name:
            top.append({"test": name, "verdict": verdict, "seconds": float(secs)})
        if verdict == "FAIL":
            failed.append(name)
        elif verdict == "SKIP" and "/" not in name:
            skipped.append(name)
    return {"passed": counts["PASS"], "failed": counts["FAIL"], "skipped": counts["SKIP"],
            "failed_tests": failed[:40], "skipped_tests": skipped, "top_level": top}


def parse_bench(path):
    out = []
    for line in tail(path, 100000):
        m = BENCH_LINE.match(line.strip())
        if not m:
            continue
        name, n, rest = m.groups()
        metrics = {}
        parts = rest.split()
        for v, unit in zip(parts[0::2], parts[1::2]):
            try:
                metrics[unit] = float(v)
            except ValueError:
                pass
        out.append({"name": name, "n": int(n), "metrics": metrics})
    return out


def cmd_init(out, mode):
    os.makedirs(out, exist_ok=True)
    save(out, {"mode": mode, "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "steps": []})


def cmd_step(out, name, status, seconds, note="", log=None, kind="log"):
    r = load(out)
    step = {"name": name, "status": status, "seconds": round(float(seconds), 1)}
    if note:
        step["note"] = note
    if log:
        if kind == "tests":
            step["tests"] = parse_tests(log)
        elif kind == "bench":
            step["benchmarks"] = parse_bench(log)
        step["log_tail"] = tail(log, 60 if kind == "machine" else 25)
    r["steps"] = [s for s in r["steps"] if s["name"] != name] + [step]
    save(out, r)


def cmd_attach(out, key, path):
    r = load(out)
    try:
        with open(path) as f:
            r[key] = json.load(f)
    except (OSError, ValueError) as e:
        r[key] = {"error": str(e)}
    save(out, r)


def cmd_set(out, key, value):
    r = load(out)
    r[key] = value
    save(out, r)


def fmt_ms(t):
    if not t:
        return "-"
    return "%.2f ms (%.0f/s)" % (t["ms"], t["images_per_s"])


def fmt_cmp(c):
    if not c:
        return "-"
    if "error" in c:
        return c["error"]
    return "%.2g %s" % (c["normalized"], "ok" if c["ok"] else "**OUTSIDE**")


def markdown(r):
    lines = ["# GPU proof (%s), %s" % (r["mode"], r["started"]), ""]
    for key in ("machine", "cuda", "kit", "build", "verdict"):
        if key in r:
            lines.append("- %s: %s" % (key, r[key]))
    lines += ["", "| step | status | seconds | note |", "|---|---|---|---|"]
    for s in r["steps"]:
        note = s.get("note", "")
        if "tests" in s:
            t = s["tests"]
            note = ("%d passed, %d failed, %d skipped. " % (t["passed"], t["failed"], t["skipped"]) + note).strip()
        lines.append("| %s | %s | %s | %s |" % (s["name"], s["status"], s["seconds"], note.replace("|", "/")))
    for s in r["steps"]:
        if s.get("tests", {}).get("failed_tests"):
            lines += ["", "Failed in %s: %s" % (s["name"], ", ".join(s["tests"]["failed_tests"]))]
    benches = [b for s in r["steps"] for b in s.get("benchmarks", [])]
    if benches:
        lines += ["", "## Benchmarks (ours)", "", "| benchmark | ms/op | images/s | other |", "|---|---|---|---|"]
        for b in benches:
            m = dict(b["metrics"])
            ns = m.pop("ns/op", None)
            ips = m.pop("images/s", None)
            other = ", ".join("%g %s" % (v, k) for k, v in m.items())
            lines.append("| %s | %s | %s | %s |" % (b["name"], "%.2f" % (ns / 1e6) if ns else "-",
                                                   "%.0f" % ips if ips else "-", other))
    ours, torch = r.get("ours") or {}, r.get("torch") or {}
    if ours.get("models"):
        lines += ["", "## Against PyTorch (%s; torch %s on %s)" % (ours.get("gpu", "?"), torch.get("torch", "-"), torch.get("gpu", "-")),
                  "",
                  "Normalized difference: the largest |ours - torch| over the largest |torch|. Times are means after a first run;"
                  " ours are host to host (inputs up, outputs down; the training step's optimizer on the host, the weights up again),"
                  " torch's stay on the device.",
                  "",
                  "| model | batch | mode | forward ours | forward torch | diff | train step ours | train step torch | loss ours / torch | weights diff |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for name, m in ours["models"].items():
            tm = torch.get("models", {}).get(name, {})
            for mode, o in m["modes"].items():
                t = tm.get("modes", {}).get(mode, {})
                loss = "%s / %s" % ("%.6g" % o["loss"] if o.get("loss") is not None else "-",
                                    "%.6g" % t["loss"] if t.get("loss") is not None else "-")
                lines.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                    name, m["batch"], mode, fmt_ms(o.get("forward")), fmt_ms(t.get("forward")),
                    fmt_cmp(t.get("compare_forward")), fmt_ms(o.get("train_step")), fmt_ms(t.get("train_step")),
                    loss, fmt_cmp(t.get("compare_trained"))))
                if o.get("error"):
                    lines.append("| | | | error: %s | | | | | | |" % o["error"].replace("|", "/"))
        if torch and not torch.get("tf32_counted", True):
            lines += ["", "torch ran on the CPU, which has no TF32: its TF32 rows are f32, not counted."]
        if "torchvision_resnet18" in torch.get("models", {}).get("resnet18", {}):
            c = torch["models"]["resnet18"]["torchvision_resnet18"]
            lines += ["", "The hand-written torch ResNet-18 against torchvision's, same weights: %s." % fmt_cmp(c)]
    for s in r["steps"]:
        if s.get("log_tail") and (s["status"] != "ok" or s["name"] == "machine"):
            lines += ["", "### %s (%s): end of its log" % (s["name"], s["status"]), "", "```"] + s["log_tail"] + ["```"]
    return "\n".join(lines) + "\n"


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    cmd, out, rest = argv[1], argv[2], argv[3:]
    if cmd == "init":
        cmd_init(out, rest[0])
    elif cmd == "step":
        opts, pos = {}, []
        it = iter(rest)
        for a in it:
            if a.startswith("--"):
                opts[a[2:]] = next(it)
            else:
                pos.append(a)
        cmd_step(out, pos[0], pos[1], pos[2], opts.get("note", ""), opts.get("log"), opts.get("kind", "log"))
    elif cmd == "attach":
        cmd_attach(out, rest[0], rest[1])
    elif cmd == "set":
        cmd_set(out, rest[0], " ".join(rest[1:]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
