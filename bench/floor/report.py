#!/usr/bin/env python3
"""Summarises bench/run.sh's measurements: medians over rounds, one table, one JSON file.

Ratios between sides are paired: each round's ratio is taken between figures measured
back to back in that round, and the median of those per-round ratios is reported. A
slow or fast round (the machine's other load drifts) then moves both sides of its ratio
alike instead of skewing one side's median against the other's.
"""
import json
import os
import statistics
import sys
from collections import defaultdict

tsv, rss_out, out_path = sys.argv[1], sys.argv[2], sys.argv[3]
rounds, probes, conc, sched = (int(x) for x in sys.argv[4:8])

vals = defaultdict(list)
by_round = defaultdict(dict)
for line in open(tsv):
    rnd, chain, side, metric, value = line.rstrip("\n").split("\t")
    vals[(chain, side, metric)].append(float(value))
    by_round[(chain, side, metric)][rnd] = float(value)
med = {k: statistics.median(v) for k, v in vals.items()}


def get(chain, side, metric):
    return med.get((chain, side, metric))


def ratio(a, b):
    return round(a / b, 2) if a is not None and b else None


def paired(chain, side, base):
    """The median over rounds of side / base CPU per probe, each from the same round."""
    a = by_round.get((chain, side, "cpu_us_per_probe"), {})
    b = by_round.get((chain, base, "cpu_us_per_probe"), {})
    per_round = [a[r] / b[r] for r in a if b.get(r)]
    return round(statistics.median(per_round), 2) if per_round else None


result = {
    "machine": {
        "cpus": os.cpu_count(),
        "model": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), ""),
        "loadavg": open("/proc/loadavg").read().split()[:3],
    },
    "rounds": rounds, "probes_per_side": probes, "concurrency": conc, "scheduled_targets": sched,
    "chains": {},
    "raw": {"|".join(k): v for k, v in vals.items()},
}
for chain in ("ecdsa", "rsa"):
    c = {}
    for side in ("floor", "certwatch", "certwatch_sched", "blackbox"):
        c[side] = {m: get(chain, side, m) for m in ("cpu_us_per_probe", "probes_per_s", "failed", "rss_mb", "startup_ms")
                   if get(chain, side, m) is not None}
    c["ratios"] = {
        "certwatch_probe/floor": paired(chain, "certwatch", "floor"),
        "certwatch_sched/floor": paired(chain, "certwatch_sched", "floor"),
        "certwatch_probe/blackbox": paired(chain, "certwatch", "blackbox"),
        "certwatch_sched/blackbox": paired(chain, "certwatch_sched", "blackbox"),
        "blackbox/floor": paired(chain, "blackbox", "floor"),
    }
    c["ratios_of_medians"] = {
        "certwatch_sched/floor": ratio(get(chain, "certwatch_sched", "cpu_us_per_probe"),
                                       get(chain, "floor", "cpu_us_per_probe")),
        "certwatch_probe/floor": ratio(get(chain, "certwatch", "cpu_us_per_probe"),
                                       get(chain, "floor", "cpu_us_per_probe")),
    }
    result["chains"][chain] = c
result["hwm_mb"] = {"certwatch_probe_server": get("all", "certwatch", "hwm_mb"),
                    "blackbox": get("all", "blackbox", "hwm_mb")}

# bench/rss.sh rows: targets filled failed RSS0 RSS HWM RSS' HWM' p50 p99 cpu body exit stop
# [gz-p50 gz-p99 gz-body]
scale = []
for line in open(rss_out):
    f = line.split()
    if len(f) in (14, 17) and f[0].isdigit():
        row = {"targets": int(f[0]), "filled_s": f[1].rstrip("s"), "failed": int(f[2]),
               "rss_mb": f[4], "hwm_mb": f[7], "metrics_p50_ms": float(f[8]),
               "metrics_p99_ms": float(f[9]), "body_mb": float(f[11])}
        if len(f) == 17:
            row.update({"metrics_gzip_p50_ms": float(f[14]), "metrics_gzip_p99_ms": float(f[15]),
                        "gzip_body_mb": float(f[16])})
        scale.append(row)
result["scale"] = scale

with open(out_path, "w") as fh:
    json.dump(result, fh, indent=2)
    fh.write("\n")


def fmt(x, spec=".0f"):
    return "-" if x is None else format(x, spec)


print()
print(f"certwatch vs floor vs blackbox_exporter: median of {rounds} interleaved round(s), "
      f"{probes} probes per side, concurrency {conc}; {result['machine']['cpus']} CPUs "
      f"{result['machine']['model']}, load {' '.join(result['machine']['loadavg'])}")
print(f"{'chain':6} {'side':26} {'CPU us/probe':>12} {'probes/s':>9} {'failed':>6} {'RSS MB':>7} {'/floor':>7} {'/blackbox':>9}")
names = {"floor": "floor (bare rustls loop)", "certwatch": "certwatch /probe",
         "certwatch_sched": f"certwatch scheduled ({sched})", "blackbox": "blackbox_exporter /probe"}
for chain, c in result["chains"].items():
    for side in ("floor", "certwatch", "certwatch_sched", "blackbox"):
        s = c[side]
        cpu = s.get("cpu_us_per_probe")
        to_floor = 1.0 if side == "floor" else paired(chain, side, "floor")
        to_bb = 1.0 if side == "blackbox" else paired(chain, side, "blackbox")
        print(f"{chain:6} {names[side]:26} {fmt(cpu):>12} {fmt(s.get('probes_per_s')):>9} {fmt(s.get('failed')):>6} "
              f"{fmt(s.get('rss_mb'), '.1f'):>7} {fmt(to_floor, '.2f'):>7} {fmt(to_bb, '.2f'):>9}")
for chain, c in result["chains"].items():
    if "startup_ms" in c["certwatch_sched"]:
        print(f"certwatch start-up to first /metrics answer ({chain}, {sched} targets): "
              f"{c['certwatch_sched']['startup_ms']:.0f} ms")
print(f"peak RSS of the /probe servers: certwatch {fmt(result['hwm_mb']['certwatch_probe_server'], '.1f')} MB, "
      f"blackbox_exporter {fmt(result['hwm_mb']['blackbox'], '.1f')} MB")
if scale:
    print(f"{'targets':>8} {'filled':>7} {'RSS MB':>7} {'HWM MB':>7} {'/metrics p50 ms':>15} {'p99 ms':>7} {'body MB':>8} "
          f"{'gzip p50':>8} {'p99':>6} {'MB':>6}  (bench/rss.sh, ECDSA, 3 certs)")
    for s in scale:
        print(f"{s['targets']:>8} {s['filled_s']:>6}s {s['rss_mb']:>7} {s['hwm_mb']:>7} {s['metrics_p50_ms']:>15.1f} "
              f"{s['metrics_p99_ms']:>7.1f} {s['body_mb']:>8.2f} {fmt(s.get('metrics_gzip_p50_ms'), '.1f'):>8} "
              f"{fmt(s.get('metrics_gzip_p99_ms'), '.1f'):>6} {fmt(s.get('gzip_body_mb'), '.2f'):>6}")
print("CPU us/probe: server process utime+stime per probe (floor: the client loop's own process);")
print("/floor, /blackbox: ratio of CPU per probe, the median of the per-round ratios. JSON: " + out_path)
