"""Interop check with the official Python SDK, 1.x (`mcp<2`), which speaks
only the session era (initialize handshake, `Mcp-Session-Id`).

Usage: check_mcp1.py URL CERT_PEM
"""

import ssl
import sys
from datetime import timedelta

import httpx
import mcp.types as types
from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client
from mcp.shared.exceptions import McpError

from common import (
    auth_headers,
    ELICIT_ANSWER,
    MISSING_TOOL,
    SHA256_ABC,
    check_tool_names,
    expect,
    run,
    texts,
)


def client_factory(cert):
    """An `httpx_client_factory` that trusts the server's generated certificate.

    1.x builds its own httpx client from the headers, timeout and auth it is
    given; the factory is the documented hook for TLS settings.
    """

    def factory(headers=None, timeout=None, auth=None):
        return httpx.AsyncClient(
            headers=headers,
            timeout=timeout if timeout is not None else httpx.Timeout(30.0, read=60.0),
            auth=auth,
            verify=ssl.create_default_context(cafile=cert),
        )

    return factory


asked = []


async def on_elicit(_context, params):
    asked.append(params.message)
    return types.ElicitResult(action="accept", content=ELICIT_ANSWER)


async def main(url, cert):
    async with streamablehttp_client(
        url,
        headers={"User-Agent": "toolhost-interop", **auth_headers()},
        timeout=30,
        sse_read_timeout=60,
        httpx_client_factory=client_factory(cert),
    ) as (read, write, get_session_id):
        async with ClientSession(
            read, write, read_timeout_seconds=timedelta(seconds=60), elicitation_callback=on_elicit
        ) as session:
            init = await session.initialize()
            expect(get_session_id(), "the server returned no Mcp-Session-Id")

            names = []
            cursor = None
            while True:
                page = await session.list_tools(cursor=cursor) if cursor else await session.list_tools()
                names += [tool.name for tool in page.tools]
                cursor = page.nextCursor
                if cursor is None:
                    break
            check_tool_names(names)

            result = await session.call_tool("hash", {"input": "abc", "algorithm": "sha256"})
            expect(not result.isError, f"hash failed: {result}")
            expect(any(SHA256_ABC in t for t in texts(result.content)) or SHA256_ABC in str(result.structuredContent),
                   f"hash result lacks the SHA-256 of 'abc': {result}")

            progress = []

            async def on_progress(value, total, message):
                progress.append((value, total, message))

            result = await session.call_tool("test_tool_with_progress", {}, progress_callback=on_progress)
            expect(not result.isError, f"test_tool_with_progress failed: {result}")
            expect(len(progress) >= 3, f"expected >= 3 progress notifications, got {progress}")

            result = await session.call_tool("test_error_handling", {})
            expect(result.isError, f"test_error_handling: isError is not true: {result}")

            try:
                result = await session.call_tool(MISSING_TOOL, {})
            except McpError as error:
                print(f"unknown tool refused: {error.error.code} {error.error.message}")
            else:
                expect(result.isError, f"calling {MISSING_TOOL} succeeded: {result}")
                print(f"unknown tool refused with an error result: {texts(result.content)}")

            result = await session.call_tool("test_elicitation", {"message": "hi"})
            expect(asked, f"the elicitation callback never ran; result: {result}")
            joined = " ".join(texts(result.content))
            expect(not result.isError and ELICIT_ANSWER["username"] in joined,
                   f"test_elicitation result does not carry the answer: {result}")

            result = await session.call_tool("test_simple_text", {})
            expect(not result.isError and texts(result.content), f"test_simple_text after errors: {result}")
            print(f"protocol {init.protocolVersion}; {len(names)} tools; progress {[p[0] for p in progress]}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: check_mcp1.py URL CERT_PEM")
    url, cert = sys.argv[1:]
    run("python mcp 1.x", lambda: main(url, cert))
