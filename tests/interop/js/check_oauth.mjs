// The TypeScript SDK signing in to toolhost with the client_credentials
// grant (`ClientCredentialsProvider`), discovering the authorization server
// from the 401 challenge, then calling `whoami`.
//
// Usage: NODE_EXTRA_CA_CERTS=CERT_PEM node check_oauth.mjs URL CLIENT_ID CLIENT_SECRET

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ClientCredentialsProvider } from "@modelcontextprotocol/sdk/client/auth-extensions.js";

async function main(url, clientId, clientSecret) {
  const provider = new ClientCredentialsProvider({
    clientId,
    clientSecret,
    scope: "read",
    expectedIssuer: new URL(url).origin,
  });
  const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
  const client = new Client({ name: "toolhost-oauth-interop", version: "1.0.0" });
  await client.connect(transport);
  try {
    const result = await client.callTool({ name: "whoami", arguments: {} });
    const who = result.structuredContent ?? {};
    if (result.isError || who.subject !== clientId || JSON.stringify(who.scopes) !== '["read"]') {
      throw new Error(`whoami: ${JSON.stringify(result)}`);
    }
    console.log(`client ${clientId} with scopes ${who.scopes.join(" ")}`);
  } finally {
    await client.close();
  }
}

if (process.argv.length !== 5) {
  console.error("usage: node check_oauth.mjs URL CLIENT_ID CLIENT_SECRET");
  process.exit(2);
}
try {
  await main(...process.argv.slice(2));
  console.log("OK typescript oauth (client)");
} catch (error) {
  console.error(`FAIL typescript oauth (client): ${error?.stack ?? error}`);
  process.exit(1);
}
