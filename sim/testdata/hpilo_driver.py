"""Drive python-hpilo (Debian python3-hpilo) against one simulated iLO.

argv[1]: JSON {"host", "port", "user", "password"}. stdin: a JSON list of
calls [{"op": "get_uid_status", "args": []}, ...]. stdout: a JSON list with
one {"ok", "result"} or {"ok": false, "error", "message"} per call, in order.
"""
import json
import sys
import warnings

import hpilo

warnings.simplefilter("ignore")


def plain(v):
    if isinstance(v, tuple):
        return [plain(x) for x in v]
    if isinstance(v, list):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    return v


def main():
    cfg = json.loads(sys.argv[1])
    ilo = hpilo.Ilo(cfg["host"], login=cfg["user"], password=cfg["password"],
                    port=int(cfg["port"]), timeout=30)
    out = []
    for call in json.load(sys.stdin):
        try:
            res = getattr(ilo, call["op"])(*call.get("args", []))
            out.append({"ok": True, "result": plain(res)})
        except Exception as exc:  # reported to the Go test
            out.append({"ok": False, "error": type(exc).__name__, "message": str(exc)})
    json.dump(out, sys.stdout)


main()
