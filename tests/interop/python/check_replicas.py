"""The official Python SDK (1.x, session era) through a round-robin
balancer in front of several toolhost replicas: it initializes, calls, then
waits while the test kills the replica its session began on, and calls on.
A call that meets the dead connection is retried once, as a client's normal
retry; the session itself must survive (any replica takes it up).

Usage: check_replicas.py URL CERT_PEM
Prints `SESSION <id>` and waits for a line on stdin before going on.
"""

import ssl
import sys
from datetime import timedelta

import httpx
from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client

from common import SHA256_ABC, auth_headers, expect, run, texts


def client_factory(cert):
    def factory(headers=None, timeout=None, auth=None):
        return httpx.AsyncClient(
            headers=headers,
            timeout=timeout if timeout is not None else httpx.Timeout(30.0, read=60.0),
            auth=auth,
            verify=ssl.create_default_context(cafile=cert),
        )

    return factory


async def hash_abc(session):
    result = await session.call_tool("hash", {"input": "abc", "algorithm": "sha256"})
    expect(not result.isError, f"hash failed: {result}")
    expect(any(SHA256_ABC in t for t in texts(result.content)) or SHA256_ABC in str(result.structuredContent),
           f"hash result lacks the SHA-256 of 'abc': {result}")


async def main(url, cert):
    async with streamablehttp_client(
        url,
        headers={"User-Agent": "toolhost-interop-replicas", **auth_headers()},
        timeout=10,
        sse_read_timeout=30,
        httpx_client_factory=client_factory(cert),
    ) as (read, write, get_session_id):
        async with ClientSession(read, write, read_timeout_seconds=timedelta(seconds=15)) as session:
            init = await session.initialize()
            session_id = get_session_id()
            expect(session_id, "the server returned no Mcp-Session-Id")
            for _ in range(3):
                await hash_abc(session)
            print(f"SESSION {session_id}", flush=True)
            sys.stdin.readline()
            retried = 0
            for _ in range(5):
                try:
                    await hash_abc(session)
                except Exception as error:  # the dead replica's connection
                    retried += 1
                    expect(retried <= 1, f"more than one call failed after the kill: {error!r}")
                    print(f"retrying after {type(error).__name__}", flush=True)
                    await hash_abc(session)
            expect(get_session_id() == session_id, "the session id changed")
            print(f"protocol {init.protocolVersion}; retried {retried}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: check_replicas.py URL CERT_PEM")
    url, cert = sys.argv[1:]
    run("python replicas", lambda: main(url, cert))
