// A toolhost plugin in JavaScript, built with ComponentizeJS (StarlingMonkey).
//
// Build: `bash plugins/examples/build.sh`. The exported `tools` object
// implements the `tools` interface of wit/world.wit; WIT names become
// camelCase, records are plain objects, variants are `{ tag, val }`, an
// `option` is a value or `undefined`, and a `result` is the return value (ok)
// or a thrown `{ tag, val }` tool-error (err).
//
// `fetch` goes out through wasi:http, so the host applies the plugin's sidecar
// `[network]` grant to every request: with no sidecar, nothing gets out.

import { log } from 'toolhost:plugin/host@0.1.0';

const readOnly = { readOnly: true, destructive: false, idempotent: true, openWorld: false };

const definitions = [
  {
    name: 'js_reverse',
    title: 'Reverse text (JavaScript)',
    description: 'Reverses a text, character by character (Unicode code points).',
    inputSchema: JSON.stringify({
      type: 'object',
      properties: { text: { type: 'string', description: 'The text to reverse.' } },
      required: ['text'],
      additionalProperties: false,
    }),
    outputSchema: undefined,
    annotations: readOnly,
  },
  {
    name: 'js_fetch',
    title: 'Fetch a URL (JavaScript)',
    description:
      'GETs a URL and returns the HTTP status and body. Only destinations the operator allows in the sidecar are reachable.',
    inputSchema: JSON.stringify({
      type: 'object',
      properties: { url: { type: 'string', description: 'An http:// or https:// URL.' } },
      required: ['url'],
      additionalProperties: false,
    }),
    outputSchema: undefined,
    annotations: { ...readOnly, openWorld: true },
  },
];

function text(value) {
  return { content: [{ tag: 'text', val: value }], structuredContent: undefined, isError: false };
}

function toolError(tag, message) {
  // ComponentizeJS turns a thrown value into the `err` case of the result.
  return { tag, val: message };
}

async function reverse(args) {
  return text([...args.text].reverse().join(''));
}

async function fetchUrl(args) {
  let url;
  try {
    url = new URL(args.url);
  } catch {
    throw toolError('invalid-arguments', `not a URL: ${args.url}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw toolError('invalid-arguments', `only http and https URLs are supported, not ${url.protocol}`);
  }
  log('debug', `js_fetch GET ${url.origin}`);
  let response;
  try {
    response = await fetch(url.href);
  } catch (e) {
    // The host's refusal (no [network] grant, a destination not on the
    // allow list, a private address) arrives here as a failed fetch.
    const reason = e && e.cause ? `${e.message}: ${e.cause}` : String(e && e.message ? e.message : e);
    throw toolError('upstream', `GET ${url.href} failed (the host may have refused it; check the sidecar's [network] allow list): ${reason}`);
  }
  const body = await response.text();
  return text(`${response.status}\n${body}`);
}

const handlers = { js_reverse: reverse, js_fetch: fetchUrl };

export const tools = {
  listTools() {
    return definitions;
  },

  async callTool(caller, name, argumentsJson) {
    const handler = handlers[name];
    if (!handler) {
      throw toolError('unknown-tool', name);
    }
    let args;
    try {
      args = JSON.parse(argumentsJson);
    } catch (e) {
      throw toolError('invalid-arguments', `arguments are not JSON: ${e.message}`);
    }
    if (args === null || typeof args !== 'object' || Array.isArray(args)) {
      throw toolError('invalid-arguments', 'arguments must be a JSON object');
    }
    return handler(args);
  },
};

