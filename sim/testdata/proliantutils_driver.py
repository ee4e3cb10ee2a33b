#!/usr/bin/python3
"""Drive one simulated iLO with Debian's python3-proliantutils.

Usage: proliantutils_driver.py '{"host": "127.0.0.1:PORT", "user": ..., "password": ..., "cacert": ...}'

Reads one JSON request per line on stdin, {"op": "<IloClient method>", "args": [...]},
and answers one JSON line per request: {"ok": true, "result": ...} or
{"ok": false, "error": "<exception class>", "message": "..."}.
The special op "reconnect" builds a new IloClient with {"password": ...}.
"""
import json
import sys
import time
import types

from proliantutils.ilo import client, common, ipmi

# reset_ilo polls with 10 s/5 s sleeps; the simulator's iLO comes back fast.
_real_sleep = time.sleep
common.time = types.SimpleNamespace(sleep=lambda s: _real_sleep(min(s, 0.05)))
# nic_capacity needs an IPMI FRU responder, which is out of scope.
ipmi.get_nic_capacity = lambda *a, **k: None


def connect(cfg, password):
    return client.IloClient(cfg["host"], cfg["user"], password, timeout=30,
                            port=None, cacert=cfg.get("cacert"))


def main():
    cfg = json.loads(sys.argv[1])
    try:
        ilo = connect(cfg, cfg["password"])
        print(json.dumps({"ok": True, "result": ilo.model}), flush=True)
    except Exception as e:  # noqa
        print(json.dumps({"ok": False, "error": type(e).__name__, "message": str(e)}), flush=True)
        return
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        req = json.loads(line)
        op, args = req["op"], req.get("args", [])
        try:
            if op == "reconnect":
                ilo = connect(cfg, args[0])
                res = ilo.model
            else:
                res = getattr(ilo, op)(*args)
            out = {"ok": True, "result": res}
        except Exception as e:  # noqa
            out = {"ok": False, "error": type(e).__name__, "message": str(e)}
        print(json.dumps(out, default=str), flush=True)


if __name__ == "__main__":
    main()
