#!/usr/bin/env python3
"""Login answer times for a wrong password and for an unknown email, interleaved, against
a running palisade (the baseline says they must not tell the two apart).

Start the server with the auth tier and the lockout out of the way, e.g.
  PALISADE_RATE_LIMIT_AUTH=1000000/1s PALISADE_LOCKOUT_THRESHOLD=100 PORT=3996 palisade serve
then: bench/login_timing.py [base_url=http://127.0.0.1:3996] [pairs=60]
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
    a = post("/api/v1/auth/login", {"email": "timing@example.com", **wrong})
    b = post("/api/v1/auth/login", {"email": f"nobody{i}@example.com", **wrong})
    same = (a[1], a[2]["code"], a[2]["title"]) == (b[1], b[2]["code"], b[2]["title"])
    assert same and a[1] == 401, (a, b)
    known.append(a[0])
    unknown.append(b[0])


def q(xs):
    d = statistics.quantiles(xs, n=10)
    return f"{d[0] * 1000:.1f} / {d[4] * 1000:.1f} / {d[8] * 1000:.1f}"


print(f"wrong password  ms p10/p50/p90: {q(known)}")
print(f"unknown email   ms p10/p50/p90: {q(unknown)}")
diff = (statistics.median(known) - statistics.median(unknown)) * 1000
print(f"median difference: {diff:.2f} ms ({diff / (statistics.median(known) * 1000) * 100:.1f} %)")
