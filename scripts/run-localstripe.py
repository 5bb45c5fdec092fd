#!/usr/bin/env python3
"""localstripe (a Stripe-compatible test server, PyPI `localstripe`) on 127.0.0.1 only,
with its state in a file of the caller's choosing.

localstripe itself listens on every interface and keeps its state in
/tmp/localstripe.pickle, shared by every instance on the machine; the tests start it
through this launcher instead, one private server per test.

Usage: run-localstripe.py --port PORT --state FILE
"""

import argparse
import pickle
import socket

from aiohttp import web
from localstripe import resources, server


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", required=True)
    args = parser.parse_args()

    def load(store):
        try:
            with open(args.state, "rb") as f:
                old = pickle.load(f)
        except FileNotFoundError:
            return
        store.clear()
        store.update(old)

    def dump(store):
        with open(args.state, "wb") as f:
            pickle.dump(store, f, protocol=pickle.HIGHEST_PROTOCOL)

    resources.Store.try_load_from_disk = load
    resources.Store.dump_to_disk = dump
    resources.store.try_load_from_disk()

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    web.run_app(server.app, sock=sock, print=None)


if __name__ == "__main__":
    main()
