#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""One HTTPS keep-alive connection held open, a GET on it for every line read from stdin.

usage: held_https.py HOST PORT

Prints, for the connection's first GET and for each line after it, one line:
"STATUS LOCAL_PORT", or "error WHAT" and exits 1 when the request fails. The connection is
never opened again: a server that closed it makes the next GET fail instead of silently
reconnecting (http.client would), so LOCAL_PORT stays the same as long as GETs succeed.
"""
import http.client
import ssl
import sys


def get(conn):
    conn.request("GET", "/")
    resp = conn.getresponse()
    resp.read()
    return resp.status


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    host, port = sys.argv[1], int(sys.argv[2])
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection(host, port, timeout=10, context=ctx)
    try:
        conn.connect()
        conn.auto_open = 0
        local_port = conn.sock.getsockname()[1]
        print(get(conn), local_port, flush=True)
        for _ in sys.stdin:
            print(get(conn), local_port, flush=True)
    except (OSError, http.client.HTTPException) as e:
        print("error", type(e).__name__, e, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
