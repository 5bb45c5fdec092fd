#!/usr/bin/env python3
"""Answer times for an account that exists and for one that does not, interleaved, against
a running palisade (neither may tell the two apart): a login with a wrong password
against an unknown email (mode `login`, the default), or a forgotten-password request
for a registered address against an unregistered one (mode `forgot`).

Start the server with the auth tier and the lockout out of the way, e.g.
  PALISADE_RATE_LIMIT_AUTH=1000000/1s PALISADE_LOCKOUT_THRESHOLD=100 PORT=3996 palisade serve
then: bench/login_timing.py [base_url=http://127.0.0.1:3996] [pairs=60] [login|forgot]
Prints p10/p50/p90 of each and the difference of the medians. Use a fresh server per run:
after 100 failures in an hour the account is locked, and a locked account's answer is
a third path. Loopback only.
"""
import json
import statistics
import sys
import time
import urllib.error
import urllib.request

BASE = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:3996"
PAIRS = int(sys.argv[2]) if len(sys.argv) > 2 else 60
MODE = sys.argv[3] if len(sys.argv) > 3 else "login"
assert MODE in ("login", "forgot"), "mode: login or forgot"
PASSWORD = "a long benchmark passphrase 4711"
assert BASE.startswith("http://127.0.0.1"), "loopback only"


def post(path, body):
    req = urllib.request.Request(BASE + path, data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(req) as r:
            status, answer = r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        status, answer = e.code, json.loads(e.read())
    return time.perf_counter() - start, status, answer


post("/api/v1/auth/register", {"email": "timing@example.com", "password": PASSWORD, "name": "T"})
wrong = {"password": "wrong password 1234"}
for _ in range(3):
    post("/api/v1/auth/login", {"email": "timing@example.com", **wrong})
known, unknown = [], []
for i in range(PAIRS):
    if MODE == "login":
        a = post("/api/v1/auth/login", {"email": "timing@example.com", **wrong})
        b = post("/api/v1/auth/login", {"email": f"nobody{i}@example.com", **wrong})
        same = (a[1], a[2]["code"], a[2]["title"]) == (b[1], b[2]["code"], b[2]["title"])
        assert same and a[1] == 401, (a, b)
    else:
        # Past the third request the address's hourly mail cap holds: the answer must
        # not change for that either.
        a = post("/api/v1/auth/password/forgot", {"email": "timing@example.com"})
        b = post("/api/v1/auth/password/forgot", {"email": f"nobody{i}@example.com"})
        assert a[1] == b[1] == 202 and a[2] == b[2], (a, b)
    known.append(a[0])
    unknown.append(b[0])


def q(xs):
    d = statistics.quantiles(xs, n=10)
    return f"{d[0] * 1000:.1f} / {d[4] * 1000:.1f} / {d[8] * 1000:.1f}"


first, second = ("wrong password", "unknown email") if MODE == "login" else ("known address", "unknown address")
print(f"{first:<15} ms p10/p50/p90: {q(known)}")
print(f"{second:<15} ms p10/p50/p90: {q(unknown)}")
diff = (statistics.median(known) - statistics.median(unknown)) * 1000
print(f"median difference: {diff:.2f} ms ({diff / (statistics.median(known) * 1000) * 100:.1f} %)")
