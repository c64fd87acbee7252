#!/usr/bin/env python3
"""Load driver for bench/run.sh: GET URL N times with C in flight (standard library only).

Prints one JSON line: requests, ok (HTTP 200 and a probe_success ... 1 sample), failed,
wall seconds. Used alike for certwatch's and blackbox_exporter's /probe.
"""
import concurrent.futures
import json
import re
import sys
import time
import urllib.request

SUCCESS = re.compile(rb"^(certwatch_)?probe_success(\{[^}]*\})? 1(\.0)?$", re.M)


def one(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status == 200 and bool(SUCCESS.search(r.read()))
    except Exception:  # noqa: BLE001 - any failure counts as one
        return False


def main():
    url, n, c = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=c) as pool:
        results = list(pool.map(one, [url] * n))
    wall = time.monotonic() - t0
    ok = sum(results)
    print(json.dumps({"requests": n, "ok": ok, "failed": n - ok, "wall_s": round(wall, 3)}))


if __name__ == "__main__":
    main()
