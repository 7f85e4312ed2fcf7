"""Interop check with the official Python SDK, 2.x (`mcp>=2`).

Usage: check_mcp2.py URL CERT_PEM MODE, where MODE is `legacy` (the
initialize handshake, a session-era session) or `auto` (the SDK probes
`server/discover` and should settle on the stateless 2026-07-28 protocol).
"""

import ssl
import sys

import httpx2
import mcp_types as types
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS

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


async def on_elicit(_context, params):
    # Record what the server asked so the test can tell a lost question from a wrong answer.
    on_elicit.asked.append(getattr(params, "message", None))
    return types.ElicitResult(action="accept", content=ELICIT_ANSWER)


on_elicit.asked = []


async def main(url, cert, mode):
    http = httpx2.AsyncClient(
        headers=auth_headers(),
        verify=ssl.create_default_context(cafile=cert),
        timeout=httpx2.Timeout(30.0, read=60.0),
    )
    async with http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(transport, mode=mode, elicitation_callback=on_elicit) as client:
            version = client.protocol_version
            if mode == "legacy":
                expect(version in HANDSHAKE_PROTOCOL_VERSIONS, f"legacy mode negotiated {version}")
            else:
                expect(version in MODERN_PROTOCOL_VERSIONS, f"auto mode fell back to {version}, not the stateless era")

            listing = await client.list_tools()
            names = [tool.name for tool in listing.tools]
            cursor = listing.next_cursor
            while cursor is not None:
                page = await client.list_tools(cursor=cursor)
                names += [tool.name for tool in page.tools]
                cursor = page.next_cursor
            check_tool_names(names)

            result = await client.call_tool("hash", {"input": "abc", "algorithm": "sha256"})
            expect(not result.is_error, f"hash failed: {result}")
            expect(any(SHA256_ABC in t for t in texts(result.content)) or SHA256_ABC in str(result.structured_content),
                   f"hash result lacks the SHA-256 of 'abc': {result}")

            progress = []

            async def on_progress(value, total, message):
                progress.append((value, total, message))

            result = await client.call_tool("test_tool_with_progress", {}, progress_callback=on_progress)
            expect(not result.is_error, f"test_tool_with_progress failed: {result}")
            expect(len(progress) >= 3, f"expected >= 3 progress notifications, got {progress}")

            result = await client.call_tool("test_error_handling", {})
            expect(result.is_error, f"test_error_handling: isError is not true: {result}")

            try:
                result = await client.call_tool(MISSING_TOOL, {})
            except MCPError as error:
                print(f"unknown tool refused: {error.code} {error}")
            else:
                expect(result.is_error, f"calling {MISSING_TOOL} succeeded: {result}")
                print(f"unknown tool refused with an error result: {texts(result.content)}")

            result = await client.call_tool("test_elicitation", {"message": "hi"})
            expect(on_elicit.asked, f"the elicitation callback never ran; result: {result}")
            joined = " ".join(texts(result.content))
            expect(not result.is_error and ELICIT_ANSWER["username"] in joined,
                   f"test_elicitation result does not carry the answer: {result}")

            # The session (or the stateless client) still works after the failures above.
            result = await client.call_tool("test_simple_text", {})
            expect(not result.is_error and texts(result.content), f"test_simple_text after errors: {result}")
            print(f"protocol {version}; {len(names)} tools; progress {[p[0] for p in progress]}")


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[3] not in ("legacy", "auto"):
        sys.exit("usage: check_mcp2.py URL CERT_PEM legacy|auto")
    url, cert, mode = sys.argv[1:]
    run(f"python mcp 2.x ({mode})", lambda: main(url, cert, mode))
