// Interop check with the official TypeScript SDK (@modelcontextprotocol/sdk
// 1.x, session era only), run with the system Node.
//
// Usage: NODE_EXTRA_CA_CERTS=CERT_PEM node check_sdk.mjs URL
// Node's fetch reads NODE_EXTRA_CA_CERTS at start-up, which is how users
// trust the generated certificate, so the test does the same.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ElicitRequestSchema, McpError } from "@modelcontextprotocol/sdk/types.js";

const SHA256_ABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const EXPECTED_TOOLS = ["hash", "test_simple_text", "test_tool_with_progress", "test_error_handling"];
const MISSING_TOOL = "no_such_tool_interop";
const ELICIT_ANSWER = { username: "interop-user", email: "e@x" };

class CheckFailed extends Error {}

function expect(condition, reason) {
  if (!condition) throw new CheckFailed(reason);
}

const texts = (result) => (result.content ?? []).filter((b) => b.type === "text").map((b) => b.text);
const show = (value) => JSON.stringify(value);

async function main(url) {
  const client = new Client(
    { name: "toolhost-interop", version: "1.0.0" },
    { capabilities: { elicitation: { form: {} } } },
  );
  const asked = [];
  client.setRequestHandler(ElicitRequestSchema, async (request) => {
    asked.push(request.params.message);
    return { action: "accept", content: ELICIT_ANSWER };
  });
  // The bearer token the test harness minted.
  const token = process.env.TOOLHOST_TOKEN;
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
  await client.connect(transport);
  try {
    expect(transport.sessionId, "the server returned no Mcp-Session-Id");
    const version = client.getServerVersion();

    const names = [];
    let cursor;
    do {
      const page = await client.listTools(cursor ? { cursor } : {});
      names.push(...page.tools.map((t) => t.name));
      cursor = page.nextCursor;
    } while (cursor);
    const missing = EXPECTED_TOOLS.filter((t) => !names.includes(t));
    expect(missing.length === 0, `tools/list lacks ${missing}; got ${names}`);

    let result = await client.callTool({ name: "hash", arguments: { input: "abc", algorithm: "sha256" } });
    expect(!result.isError, `hash failed: ${show(result)}`);
    expect(
      texts(result).some((t) => t.includes(SHA256_ABC)) || show(result.structuredContent ?? null).includes(SHA256_ABC),
      `hash result lacks the SHA-256 of 'abc': ${show(result)}`,
    );

    const progress = [];
    result = await client.callTool({ name: "test_tool_with_progress", arguments: {} }, undefined, {
      onprogress: (p) => progress.push(p),
    });
    expect(!result.isError, `test_tool_with_progress failed: ${show(result)}`);
    expect(progress.length >= 3, `expected >= 3 progress notifications, got ${show(progress)}`);

    result = await client.callTool({ name: "test_error_handling", arguments: {} });
    expect(result.isError === true, `test_error_handling: isError is not true: ${show(result)}`);

    try {
      result = await client.callTool({ name: MISSING_TOOL, arguments: {} });
      expect(result.isError === true, `calling ${MISSING_TOOL} succeeded: ${show(result)}`);
      console.log(`unknown tool refused with an error result: ${texts(result)}`);
    } catch (error) {
      if (error instanceof CheckFailed || !(error instanceof McpError)) throw error;
      console.log(`unknown tool refused: ${error.code} ${error.message}`);
    }

    result = await client.callTool({ name: "test_elicitation", arguments: { message: "hi" } });
    expect(asked.length > 0, `the elicitation handler never ran; result: ${show(result)}`);
    expect(
      !result.isError && texts(result).join(" ").includes(ELICIT_ANSWER.username),
      `test_elicitation result does not carry the answer: ${show(result)}`,
    );

    result = await client.callTool({ name: "test_simple_text", arguments: {} });
    expect(!result.isError && texts(result).length > 0, `test_simple_text after errors: ${show(result)}`);
    console.log(
      `server ${show(version)}; ${names.length} tools; progress ${show(progress.map((p) => p.progress))}`,
    );
  } finally {
    // DELETE ends the session; a failure here must not hide the real result.
    await transport.terminateSession().catch(() => {});
    await client.close();
  }
}

if (process.argv.length !== 3) {
  console.error("usage: node check_sdk.mjs URL");
  process.exit(2);
}
try {
  await main(process.argv[2]);
  console.log("OK typescript sdk");
} catch (error) {
  console.error(error instanceof CheckFailed ? "" : error);
  console.error(`FAIL typescript sdk: ${error.message}`);
  process.exit(1);
}
