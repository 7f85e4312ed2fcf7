"""A toolhost plugin in Python, built with componentize-py.

Build: `bash plugins/examples/build.sh` (or, with componentize-py installed,
`componentize-py -d wit -w plugin componentize app -o python.wasm` run with this
directory on the path). The class name `Tools` is what componentize-py looks
for: it implements the exported `tools` interface of wit/world.wit.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host
from wit_world.imports.types import (
    Annotations,
    Caller,
    Content_Text,
    ToolDefinition,
    ToolError_InvalidArguments,
    ToolError_UnknownTool,
    ToolOutput,
)

WORD_COUNT_INPUT = {
    "type": "object",
    "properties": {"text": {"type": "string", "description": "The text to count."}},
    "required": ["text"],
    "additionalProperties": False,
}

WORD_COUNT_OUTPUT = {
    "type": "object",
    "properties": {
        "words": {"type": "integer"},
        "lines": {"type": "integer"},
        "chars": {"type": "integer"},
    },
    "required": ["words", "lines", "chars"],
}

CONFIG_INPUT = {
    "type": "object",
    "properties": {"key": {"type": "string", "description": "The [config] key to read."}},
    "required": ["key"],
    "additionalProperties": False,
}

READ_ONLY = Annotations(read_only=True, destructive=False, idempotent=True, open_world=False)


def text(value: str, structured=None) -> ToolOutput:
    return ToolOutput(
        content=[Content_Text(value)],
        structured_content=None if structured is None else json.dumps(structured),
        is_error=False,
    )


def word_count(args: dict) -> ToolOutput:
    body = args["text"]
    counts = {
        "words": len(body.split()),
        "lines": len(body.splitlines()),
        "chars": len(body),
    }
    summary = f"{counts['words']} words, {counts['lines']} lines, {counts['chars']} characters"
    return text(summary, counts)


def config(args: dict) -> ToolOutput:
    value = host.config(args["key"])
    host.log(host.LogLevel.DEBUG, f"py_config read {args['key']!r}")
    return text("unset" if value is None else value)


HANDLERS = {"py_word_count": word_count, "py_config": config}


class Tools(exports.Tools):
    def list_tools(self) -> list[ToolDefinition]:
        return [
            ToolDefinition(
                name="py_word_count",
                title="Word count (Python)",
                description="Counts the words, lines and characters of a text.",
                input_schema=json.dumps(WORD_COUNT_INPUT),
                output_schema=json.dumps(WORD_COUNT_OUTPUT),
                annotations=READ_ONLY,
            ),
            ToolDefinition(
                name="py_config",
                title="Read a config value (Python)",
                description="Returns the value of a key in this plugin's sidecar [config] table, or 'unset'.",
                input_schema=json.dumps(CONFIG_INPUT),
                output_schema=None,
                annotations=READ_ONLY,
            ),
        ]

    def call_tool(self, caller: Caller, name: str, arguments: str) -> ToolOutput:
        handler = HANDLERS.get(name)
        if handler is None:
            raise Err(ToolError_UnknownTool(name))
        try:
            args = json.loads(arguments)
        except ValueError as e:
            raise Err(ToolError_InvalidArguments(f"arguments are not JSON: {e}"))
        if not isinstance(args, dict):
            raise Err(ToolError_InvalidArguments("arguments must be a JSON object"))
        return handler(args)
