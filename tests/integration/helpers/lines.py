# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""What the line-based test servers in this directory share."""


def lines_of(conn):
    """The newline-ended lines a stream socket brings, until it closes or fails."""
    buf = b""
    while True:
        try:
            chunk = conn.recv(4096)
        except OSError:
            return
        if not chunk:
            return
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            yield line
