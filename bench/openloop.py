#!/usr/bin/env python3
"""Open-loop HTTP load at a fixed request rate, for bench/api.sh.

Request i is due at start + i / rate whatever happened to the earlier ones (a closed loop such as wrk's waits for
answers and so measures saturation, not latency under a given load). Each request goes out on an idle keep-alive
connection, or a new one when all are busy; latency is counted from the moment the request was due, so time spent
waiting for a connection counts too (no coordinated omission).

Usage: openloop.py URL RATE SECONDS [--method GET|POST|PUT] [--body JSON] [--header 'Name: value']...
Prints one JSON line: {"rate": …, "sent": …, "ok": …, "errors": …, "p50_ms": …, "p99_ms": …, "p999_ms": …,
"max_ms": …, "achieved_rate": …}.
"""

import argparse
import asyncio
import json
import sys
import time
from urllib.parse import urlsplit


class Conn:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer

    async def request(self, raw: bytes) -> int:
        self.writer.write(raw)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("closed")
        status = int(status_line.split()[1])
        length = 0
        chunked = False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value.strip())
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
        if chunked:
            while True:
                size = int((await self.reader.readline()).strip() or b"0", 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        elif length:
            await self.reader.readexactly(length)
        return status


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("rate", type=float)
    ap.add_argument("seconds", type=float)
    ap.add_argument("--method", default="GET")
    ap.add_argument("--body", default=None, help="JSON body; {i} is replaced by the request number")
    ap.add_argument("--header", action="append", default=[])
    a = ap.parse_args()
    u = urlsplit(a.url)
    host, port = u.hostname, u.port or 80
    path = u.path + (f"?{u.query}" if u.query else "")
    headers = "".join(f"{h}\r\n" for h in a.header)

    def raw(i: int) -> bytes:
        body = a.body.replace("{i}", str(i)).encode() if a.body else b""
        extra = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n" if a.body else ""
        head = f"{a.method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{headers}{extra}\r\n"
        return head.encode() + body

    idle: list[Conn] = []
    latencies: list[float] = []
    errors = 0
    ok = 0

    async def one(i: int, due: float) -> None:
        nonlocal errors, ok
        conn = idle.pop() if idle else Conn(*await asyncio.open_connection(host, port))
        try:
            status = await conn.request(raw(i))
        except (ConnectionError, asyncio.IncompleteReadError, ValueError, IndexError):
            errors += 1
            conn.writer.close()
            return
        latencies.append(time.perf_counter() - due)
        if 200 <= status < 300:
            ok += 1
        else:
            errors += 1
        idle.append(conn)

    total = int(a.rate * a.seconds)
    start = time.perf_counter() + 0.05
    tasks = []
    for i in range(total):
        due = start + i / a.rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    latencies.sort()

    def pct(p: float) -> float:
        if not latencies:
            return float("nan")
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 2)

    print(json.dumps({
        "rate": a.rate,
        "sent": total,
        "ok": ok,
        "errors": errors,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "p999_ms": pct(0.999),
        "max_ms": round(latencies[-1] * 1000, 2) if latencies else None,
        "achieved_rate": round(total / elapsed, 1),
    }))


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(130)
