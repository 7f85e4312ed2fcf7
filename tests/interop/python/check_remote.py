"""mcp-remote, the stdio-to-remote proxy desktop clients use, in front of
toolhost, driven over stdio by the official Python SDK (2.x).

Usage: check_remote.py NODE PROXY_JS CERT_PEM CONFIG_DIR SUBJECT PROXY_ARGS...
Checks that the proxy signs in (with a static bearer header or its
client-credentials mode), lists the tools and calls `whoami`, which must
report SUBJECT.
"""

import sys

from mcp import Client
from mcp.client.stdio import StdioServerParameters

from common import check_tool_names, expect, run


async def main(node, proxy, cert, config_dir, subject, proxy_args):
    server = StdioServerParameters(
        command=node,
        args=[proxy, *proxy_args],
        env={"NODE_EXTRA_CA_CERTS": cert, "MCP_REMOTE_CONFIG_DIR": config_dir, "HOME": config_dir},
    )
    async with Client(server) as client:
        listing = await client.list_tools()
        check_tool_names([tool.name for tool in listing.tools])
        result = await client.call_tool("whoami", {})
        expect(not result.is_error, f"whoami failed: {result}")
        who = result.structured_content
        expect(who["subject"] == subject, f"mcp-remote signed in as {who}, not {subject}")
        print(f"mcp-remote as {who['subject']} ({' '.join(who['scopes'])})")


if __name__ == "__main__":
    if len(sys.argv) < 7:
        sys.exit("usage: check_remote.py NODE PROXY_JS CERT_PEM CONFIG_DIR SUBJECT PROXY_ARGS...")
    node, proxy, cert, config_dir, subject = sys.argv[1:6]
    run("mcp-remote", lambda: main(node, proxy, cert, config_dir, subject, sys.argv[6:]))
