// A toolhost plugin in JavaScript: one tool, `hello`.
//
// ComponentizeJS builds this module against wit/world.wit. WIT names become
// camelCase, records are objects, variants are `{ tag, val }`, and a `result`
// is the return value (ok) or a thrown `{ tag, val }` tool-error (err).
// `fetch` works too, through the host's wasi:http checks (grant destinations
// in the sidecar's [network]).

export const tools = {
  listTools() {
    return [
      {
        name: 'hello',
        title: undefined,
        description: 'Greets someone by name.',
        inputSchema: JSON.stringify({
          type: 'object',
          properties: { name: { type: 'string' } },
          required: ['name'],
        }),
        outputSchema: undefined,
        annotations: { readOnly: true, destructive: false, idempotent: true, openWorld: false },
      },
    ];
  },

  callTool(caller, name, argumentsJson) {
    if (name !== 'hello') {
      throw { tag: 'unknown-tool', val: name };
    }
    const args = JSON.parse(argumentsJson);
    return {
      content: [{ tag: 'text', val: `Hello, ${args.name}!` }],
      structuredContent: undefined,
      isError: false,
    };
  },
};
