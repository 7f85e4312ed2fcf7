"""A toolhost plugin in Python: one tool, `hello`.

componentize-py builds this module against wit/world.wit; the class `Tools`
implements the exported `tools` interface. Only the standard library is
available unless you vendor pure-Python packages next to this file.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports.types import (
    Annotations,
    Caller,
    Content_Text,
    ToolDefinition,
    ToolError_InvalidArguments,
    ToolError_UnknownTool,
    ToolOutput,
)


class Tools(exports.Tools):
    def list_tools(self) -> list[ToolDefinition]:
        return [
            ToolDefinition(
                name="hello",
                title=None,
                description="Greets someone by name.",
                input_schema=json.dumps(
                    {
                        "type": "object",
                        "properties": {"name": {"type": "string"}},
                        "required": ["name"],
                    }
                ),
                output_schema=None,
                annotations=Annotations(read_only=True, destructive=False, idempotent=True, open_world=False),
            )
        ]

    def call_tool(self, caller: Caller, name: str, arguments: str) -> ToolOutput:
        if name != "hello":
            raise Err(ToolError_UnknownTool(name))
        try:
            args = json.loads(arguments)
        except ValueError as e:
            raise Err(ToolError_InvalidArguments(str(e)))
        return ToolOutput(content=[Content_Text(f"Hello, {args['name']}!")], structured_content=None, is_error=False)
