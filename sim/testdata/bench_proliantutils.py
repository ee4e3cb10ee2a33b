#!/usr/bin/python3
"""Inspect simulated nodes with proliantutils from a thread pool; print nodes/s.

Usage: bench_proliantutils.py INVENTORY.json [--threads 200] [--limit N]

INVENTORY is what `lightsout sim --inventory` (or sim.Sim.WriteInventory)
writes. Each node gets an IloClient (host "127.0.0.1:PORT", port None, the
simulator's CA), then get_essential_properties() and get_server_capabilities().
Prints one JSON line: {"nodes", "errors", "seconds", "nodes_per_s", "first_error"}.
"""
import argparse
import concurrent.futures
import json
import time

from proliantutils.ilo import client, ipmi

# nic_capacity would shell out to ipmitool ~130 times per Gen8 node; the
# benchmark measures the iLO protocols only.
ipmi.get_nic_capacity = lambda *a, **k: None


def inspect(node):
    di = node["driver_info"]
    host = "%s:%d" % (di["ilo_address"], di["client_port"])
    ilo = client.IloClient(host, di["ilo_username"], di["ilo_password"],
                           timeout=60, port=None, cacert=di.get("ilo_verify_ca"))
    props = ilo.get_essential_properties()
    caps = ilo.get_server_capabilities()
    return props, caps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("inventory")
    ap.add_argument("--threads", type=int, default=200)
    ap.add_argument("--limit", type=int, default=0)
    a = ap.parse_args()
    with open(a.inventory) as f:
        nodes = json.load(f)
    if a.limit:
        nodes = nodes[:a.limit]
    errors, first = 0, None
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=a.threads) as pool:
        futs = [pool.submit(inspect, n) for n in nodes]
        for fut in concurrent.futures.as_completed(futs):
            try:
                fut.result()
            except Exception as e:  # noqa
                errors += 1
                if first is None:
                    first = "%s: %s" % (type(e).__name__, e)
    secs = time.monotonic() - start
    ok = len(nodes) - errors
    print(json.dumps({"nodes": len(nodes), "errors": errors, "seconds": round(secs, 3),
                      "nodes_per_s": round(ok / secs, 2) if secs else 0, "first_error": first}), flush=True)


if __name__ == "__main__":
    main()
