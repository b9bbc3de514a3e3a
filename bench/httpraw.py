"""A minimal asyncio HTTP/1.1 keep-alive client (Content-Length and chunked bodies): much
lighter per request than a full client library, so the generator processes stay cheap."""

from __future__ import annotations

import asyncio


class HTTPError(Exception):
    pass


class Conn:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    def send_head(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> None:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    async def read_head(self) -> tuple[int, dict[str, str]]:
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for ln in lines[1:]:
            if ":" in ln:
                k, v = ln.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        return status, headers

    async def read_chunk(self) -> bytes:
        """One chunk of a chunked body; b'' at the end."""
        size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
        data = await self.reader.readexactly(size + 2)
        return data[:-2]

    async def request(self, method: str, path: str, headers: dict[str, str], body: bytes = b""
                      ) -> tuple[int, bytes]:
        if self.writer is None:
            await self.open()
        self.send_head(method, path, headers, body)
        status, h = await self.read_head()
        if h.get("transfer-encoding") == "chunked":
            parts = []
            while chunk := await self.read_chunk():
                parts.append(chunk)
            data = b"".join(parts)
        else:
            data = await self.reader.readexactly(int(h.get("content-length", "0")))
        if h.get("connection") == "close":
            self.close()
        return status, data


class Pool:
    def __init__(self, host: str, port: int, size: int) -> None:
        self.free: asyncio.Queue[Conn] = asyncio.Queue()
        for _ in range(size):
            self.free.put_nowait(Conn(host, port))

    async def request(self, method: str, path: str, headers: dict[str, str], body: bytes = b""
                      ) -> tuple[int | str, bytes]:
        conn = await self.free.get()
        try:
            return await conn.request(method, path, headers, body)
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
            conn.close()
            return type(exc).__name__, b""
        finally:
            self.free.put_nowait(conn)

    def close(self) -> None:
        while not self.free.empty():
            self.free.get_nowait().close()
