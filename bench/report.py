#!/usr/bin/python3
"""Turns the benchmark's raw numbers into its report (bench/README.md).

  bench/report.py --out DIR [--name NAME] FILE...

FILEs: the host half's JSON object (bench/api-bench.py) and the VM half's JSON lines
(<kernel>.bench.json and <kernel>.alt.bench.json from tests/vm/tests/95-bench.sh, the second
from bench/alternatives.sh), in any order. Writes DIR/NAME.md (tables,
then every raw number as JSON) and DIR/NAME.png (the freeze window against the set size, per
provider and kernel, with the floor; needs gnuplot), and prints a one-paragraph summary.
NAME defaults to <date>-<host>. Under TCG only ratios within one run mean anything: the report
gives the window as a ratio to the floor measured in the same runs."""

import argparse
import datetime
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys

PROVIDERS = ["dm-snapshot", "dm-thin", "lvm-classic", "lvm-thin"]


def load(files):
    """The API object, snapset's runs, and the comparisons' runs."""
    api, runs, alts = None, [], []
    for path in files:
        with open(path) as f:
            text = f.read().strip()
        if not text:
            continue
        if text.startswith("{") and "\n" not in text and '"getStatus"' in text:
            api = json.loads(text)
            continue
        for line in text.splitlines():
            if line.strip():
                r = json.loads(line)
                (alts if "alternative" in r else runs).append(r)
    return api, runs, alts


def med(values):
    return statistics.median(values) if values else None


def ms(usec):
    return "—" if usec is None else "%.1f" % (usec / 1000.0)


def spread(values):
    """median [min–max], in ms"""
    if not values:
        return "—"
    return "%s [%s–%s]" % (ms(med(values)), ms(min(values)), ms(max(values)))


def groups(runs):
    out = {}
    for r in runs:
        out.setdefault((r["kernel"], r["provider"], r["n"]), []).append(r)
    return out


def group_order(key):
    """(kernel, provider, N) groups: by kernel, then in PROVIDERS' order, then by N."""
    kernel, provider, n = key
    return kernel, PROVIDERS.index(provider) if provider in PROVIDERS else len(PROVIDERS), n


def snapset_table(runs):
    g = groups(runs)
    lines = ["| kernel | provider | N | runs | freeze window, ms | hold, ms | create, ms | delete, ms | "
             "writer's worst write, ms | floor, ms | floor in parallel, ms | window ÷ floor in parallel | "
             "snapshot kinds | VM slowness |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for kernel, provider, n in sorted(g, key=group_order):
        rs = g[(kernel, provider, n)]
        win = [r["freezeWindowUsec"] for r in rs]
        floor = [r["floorWindowUsec"] for r in rs]
        pfloor = floor_parallel(rs)
        ratio = med(win) / med(pfloor) if med(pfloor) else None
        kinds = sorted({k for r in rs for k in r.get("kinds", [])})
        lines.append("| %s | %s | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            kernel, provider, n, len(rs), spread(win), spread([r["holdUsec"] for r in rs]),
            spread([r["createUsec"] for r in rs]), spread([r["deleteUsec"] for r in rs]),
            spread([r["writerWorstUsec"] for r in rs]), spread(floor), spread(pfloor),
            "—" if ratio is None else "%.2f" % ratio, ", ".join(kinds),
            ", ".join(sorted({"%.2f" % r.get("slowness", 1) for r in rs}))))
    return "\n".join(lines)


def cpu_table(runs):
    """Where a create's and a delete's time goes: the CPU of udev (the dmsetup processes its dm
    rules start included) and of snapsetd, beside the wall time (runs before it was measured have
    none)."""
    g = groups([r for r in runs if "cpuUsec" in r])
    if not g:
        return None
    lines = ["| kernel | provider | N | runs | create, ms | udev CPU, ms | snapsetd CPU, ms | delete, ms | "
             "udev CPU, ms | snapsetd CPU, ms |", "|---|---|---|---|---|---|---|---|---|---|"]
    for kernel, provider, n in sorted(g, key=group_order):
        rs = g[(kernel, provider, n)]
        lines.append("| %s | %s | %d | %d | %s | %s | %s | %s | %s | %s |" % (
            kernel, provider, n, len(rs), spread([r["createUsec"] for r in rs]),
            spread([r["cpuUsec"]["udev"]["createUsec"] for r in rs]),
            spread([r["cpuUsec"]["snapsetd"]["createUsec"] for r in rs]), spread([r["deleteUsec"] for r in rs]),
            spread([r["cpuUsec"]["udev"]["deleteUsec"] for r in rs]),
            spread([r["cpuUsec"]["snapsetd"]["deleteUsec"] for r in rs])))
    return "\n".join(lines)


def floor_parallel(rs):
    """The floor with every step in parallel (runs before it was measured have none)."""
    return [r["floorParallelWindowUsec"] for r in rs if "floorParallelWindowUsec" in r]


def alt_table(alts):
    """What users script today, per kernel, approach, kind of volume and N."""
    g = {}
    for r in alts:
        if r["alternative"] != "fio":
            g.setdefault((r["kernel"], r["alternative"], r["kind"], r["n"]), []).append(r)
    lines = ["| kernel | approach | volumes | N | runs | freeze window, ms | total, ms | instants spread over, ms | "
             "writer's worst write, ms | outcome |", "|---|---|---|---|---|---|---|---|---|---|"]
    for key in sorted(g):
        kernel, alt, kind, n = key
        rs = g[key]
        outcome = "every snapshot made"
        failed = sum(r.get("failed", 0) for r in rs)
        if failed:
            left = next((r["leftBehind"] for r in rs if r.get("leftBehind")), "")
            err = next((r["error"] for r in rs if r.get("error")), "")
            outcome = "%d of %d lvcreate failed: %s%s" % (failed, sum(r.get("failed", 0) + r.get("created", 0) for r in rs),
                                                          " ".join(err.split()) or "?", "; left behind: " + left if left else "")
        if "spreadUsec" in rs[0]:
            spread_text = "%s–%s" % (ms(med([r["spreadMinUsec"] for r in rs])), ms(med([r["spreadUsec"] for r in rs])))
            outcome = "no single instant" if n > 1 else outcome
        else:
            spread_text = "no snapshot" if failed else "one instant"
        lines.append("| %s | %s | %s | %d | %d | %s | %s | %s | %s | %s |" % (
            kernel, alt, kind, n, len(rs), spread([r["windowUsec"] for r in rs if "windowUsec" in r]),
            spread([r["totalUsec"] for r in rs if "totalUsec" in r]), spread_text,
            spread([r["writerWorstUsec"] for r in rs]), outcome.replace("|", "/")))
    return "\n".join(lines)


def fio_table(alts):
    rows = [r for r in alts if r["alternative"] == "fio"]
    lines = ["| kernel | origin | snapshots | 4k random writes/s | p99 latency, µs | writes/s ÷ no snapshot |",
             "|---|---|---|---|---|---|"]
    base = {(r["kernel"], r["kind"]): r["iops"] for r in rows if r["snapshots"] == 0}
    for r in sorted(rows, key=lambda r: (r["kernel"], r["kind"], r["snapshots"])):
        b = base.get((r["kernel"], r["kind"]))
        lines.append("| %s | %s | %d | %.0f | %.0f | %s |" % (r["kernel"], r["kind"], r["snapshots"], r["iops"],
                                                           r["p99Usec"], "%.2f" % (r["iops"] / b) if b else "—"))
    return "\n".join(lines)


def thin_speedup(runs, alts):
    """Per kernel: snapset's lvm-thin create of the largest N the loop also ran, and the loop's total."""
    out = []
    for kernel in sorted({r["kernel"] for r in alts if r["alternative"] == "lvcreate-loop"}):
        loop = {}
        for r in alts:
            if r["kernel"] == kernel and r["alternative"] == "lvcreate-loop":
                loop.setdefault(r["n"], []).append(r["totalUsec"])
        for n in sorted(loop, reverse=True):
            mine = [r["createUsec"] for r in runs if r["kernel"] == kernel and r["provider"] == "lvm-thin" and r["n"] == n]
            if mine:
                out.append((kernel, n, med(loop[n]) / med(mine)))
                break
    return out


def growth(runs):
    """Per kernel and provider: the window at the largest N over the window at N=1."""
    g = groups(runs)
    out = []
    for kernel, provider in sorted({(k, p) for k, p, _ in g}):
        ns = sorted(n for k, p, n in g if (k, p) == (kernel, provider))
        if len(ns) < 2 or ns[0] != 1:
            continue
        first = med([r["freezeWindowUsec"] for r in g[(kernel, provider, 1)]])
        last = med([r["freezeWindowUsec"] for r in g[(kernel, provider, ns[-1])]])
        out.append((kernel, provider, ns[-1], last / first if first else None))
    return out


def api_table(api):
    lines = ["| what | result |", "|---|---|"]
    for s in api["getStatus"]:
        lines.append("| GetStatus round trip, %d client(s), %d calls | p50 %.0f µs, p99 %.0f µs, %d error(s) |" %
                     (s["clients"], s["calls"], s["p50Usec"] or 0, s["p99Usec"] or 0, s["errors"]))
    ls = api["listSnapshots"]
    if "receivedMedianMs" in ls:
        lines.append("| ListSnapshots of %d snapshots, until the last reply is in | median %.1f ms [%.1f–%.1f] |" %
                     (ls["snapshots"], ls["receivedMedianMs"], ls["receivedMinMs"], ls["receivedMaxMs"]))
    lines.append("| ListSnapshots of %d snapshots, every reply also parsed by Python's json | median %.1f ms [%.1f–%.1f] |" %
                 (ls["snapshots"], ls["medianMs"], ls["minMs"], ls["maxMs"]))
    anon = api.get("idleRssAnonKib")
    pss = api.get("idlePssKib")
    lines.append("| resident memory, idle | %.1f MiB%s%s |" % (
        api["idleRssKib"] / 1024.0,
        "" if anon is None else " (%.1f MiB of it the daemon's own, the rest shared library pages)" % (anon / 1024.0),
        "" if pss is None else "; proportional share (PSS) %.1f MiB" % (pss / 1024.0)))
    lines.append("| resident memory, %d snapshots loaded | %.1f MiB |" % (ls["snapshots"], api["loadedRssKib"] / 1024.0))
    lines.append("| peak resident memory, a set of 64 volumes | %.1f MiB (created in %.0f ms) |" %
                 (api["set64"]["peakRssKib"] / 1024.0, api["set64"]["createMs"]))
    return "\n".join(lines)


def plot(runs, png):
    """The freeze window (median) against N, per kernel and provider, and the floor."""
    gp = shutil.which("gnuplot")
    if not gp or not runs:
        return False
    g = groups(runs)
    series = sorted({(k, p) for k, p, _ in g})
    data, blocks = [], []
    for kernel, provider in series:
        rows = []
        for n in sorted(n for k, p, n in g if (k, p) == (kernel, provider)):
            rs = g[(kernel, provider, n)]
            floor = floor_parallel(rs) or [r["floorWindowUsec"] for r in rs]
            rows.append("%d %f %f" % (n, med([r["freezeWindowUsec"] for r in rs]) / 1000.0, med(floor) / 1000.0))
        data.append("\n".join(rows))
        blocks.append("%s %s" % (provider, kernel.split("-")[0]))
    plots = []
    for i, title in enumerate(blocks):
        plots.append("'-' index 0 using 1:2 with linespoints lw 2 title '%s'" % title)
        plots.append("'-' index 0 using 1:3 with lines dashtype 2 title 'floor (%s)'" % title)
    inline = "".join("%s\ne\n%s\ne\n" % (d, d) for d in data)
    script = ("set terminal pngcairo size 1000,600 noenhanced\nset output '%s'\n"
              "set title 'Freeze window (median) against set size; dashed: the floor in parallel, same runs'\n"
              "set xlabel 'volumes in the set'\nset ylabel 'ms'\nset logscale xy\nset key outside right\n"
              "set grid\nplot %s\n%s" % (png, ", ".join(plots), inline))
    r = subprocess.run([gp], input=script, text=True, capture_output=True)
    if r.returncode != 0:
        sys.stderr.write("report: gnuplot failed: %s\n" % r.stderr)
        return False
    return True


def summary(api, runs, alts):
    parts = []
    g = groups(runs)
    for kernel in sorted({k for k, _, _ in g}):
        ns = sorted({n for k, _, n in g if k == kernel})
        for n in (16, ns[-1]):
            if n not in ns:
                continue
            ratios = []
            for p in PROVIDERS:
                rs = g.get((kernel, p, n))
                if rs and floor_parallel(rs):
                    ratios.append("%s %.2f×" % (p, med([r["freezeWindowUsec"] for r in rs]) / med(floor_parallel(rs))))
            parts.append("On %s, N=%d, the freeze window is %s the floor (every step in parallel)." %
                         (kernel, n, ", ".join(ratios)))
            break
    for kernel, provider, n, ratio in growth(runs):
        if ratio is not None:
            parts.append("%s (%s) grows %.2f× from N=1 to N=%d." % (provider, kernel.split("-")[0], ratio, n))
    for kernel, n, speedup in thin_speedup(runs, alts):
        parts.append("A set of %d LVM thin volumes is created in %.2f× the time of a loop of lvcreate -s (%s), in one "
                     "instant instead of a spread." % (n, 1 / speedup, kernel.split("-")[0]))
    if api:
        s1, sn = api["getStatus"][0], api["getStatus"][-1]
        ls = api["listSnapshots"]
        parts.append("GetStatus: p50 %.0f µs alone, p99 %.0f µs with %d clients (%d errors); ListSnapshots of %d: "
                     "%s%.1f ms parsed; idle RSS %.1f MiB." % (
                         s1["p50Usec"], sn["p99Usec"], sn["clients"], sn["errors"], ls["snapshots"],
                         "%.1f ms received, " % ls["receivedMedianMs"] if "receivedMedianMs" in ls else "",
                         ls["medianMs"], api["idleRssKib"] / 1024.0))
    return " ".join(parts) or "No numbers."


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--name")
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    api, runs, alts = load(a.files)
    name = a.name or "%s-%s" % (datetime.date.today().isoformat(), socket.gethostname())
    os.makedirs(a.out, exist_ok=True)
    png = os.path.join(a.out, name + ".png")
    have_plot = plot(runs, png)
    text = summary(api, runs, alts)

    md = ["# snapset benchmark, %s" % name, "", text, ""]
    if runs:
        md += ["## Sets under a writer (VM, TCG: compare within a kernel's rows only)", "",
               "Each set holds N volumes of one provider, ext4 and xfs in turn; a writer appends to "
               "every volume with fsync throughout. The floor is bench-floor on the same volumes "
               "under the same writer: FIFREEZE all, suspend all, resume all, FITHAW all; one call after another, and "
               "with every step in parallel (threads started before the clock).", "",
               snapset_table(runs), ""]
        if have_plot:
            md += ["![freeze window against set size](%s)" % os.path.basename(png), ""]
        gr = growth(runs)
        if gr:
            md += ["Growth of the window from N=1 to the largest N: " +
                   "; ".join("%s %s %.2f× (N=%d)" % (p, k.split("-")[0], r, n) for k, p, n, r in gr if r), ""]
        cpu = cpu_table(runs)
        if cpu:
            md += ["### Where create and delete spend their time", "",
                   "The CPU time of systemd-udevd.service and of snapsetd.service during each (their cgroups' "
                   "usage). udev's includes the processes its rules start: for every uevent of a dm device that "
                   "libdm sends, Debian's dm rules run `dmsetup udevflags` (add, change) and `dmsetup "
                   "udevcomplete` (every event). The VM has 2 vCPUs.", "", cpu, ""]
    if alts:
        md += ["## What users script today (same boot, same volumes, same writer)", "",
               "fsfreeze+lvcreate: `fsfreeze -f` all, `lvcreate -s` each, `fsfreeze -u` all. lvcreate-loop and "
               "snapper: one snapshot after another without a freeze; each snapshot is its own instant, somewhere "
               "in the span given. dmsetup-script: the dm-snapshot recipe, one process per step "
               "(bench/alternatives.sh).", "", alt_table(alts), ""]
        if any(r["alternative"] == "fio" for r in alts):
            md += ["### Writes to an origin with snapshots (fio, 4k random, direct)", "", fio_table(alts), ""]
    if api:
        md += ["## The API (host, external test provider)", "", api_table(api), ""]
    md += ["## Raw numbers", "", "```json", json.dumps({"api": api, "runs": runs, "comparisons": alts}, indent=1),
           "```", ""]
    with open(os.path.join(a.out, name + ".md"), "w") as f:
        f.write("\n".join(md))
    print(text)


if __name__ == "__main__":
    main()
