// A toolhost plugin in C: one tool, `hello`, which takes no arguments.
//
// plugin.h and the bindings' plugin.c are generated from wit/world.wit (see
// README.md). Strings returned to the host must be heap-allocated
// (plugin_string_dup): the bindings free them once the host has copied them.
// Arguments arrive as JSON text (already checked against the input schema);
// parse them with care and answer bad input with the invalid-arguments error.

#include <stdlib.h>
#include <string.h>

#include "plugin.h"

void exports_toolhost_plugin_tools_list_tools(exports_toolhost_plugin_tools_list_tool_definition_t *ret) {
    ret->len = 1;
    ret->ptr = calloc(1, sizeof *ret->ptr);
    exports_toolhost_plugin_tools_tool_definition_t *d = &ret->ptr[0];
    plugin_string_dup(&d->name, "hello");
    plugin_string_dup(&d->description, "Says hello from C.");
    plugin_string_dup(&d->input_schema, "{\"type\":\"object\",\"properties\":{}}");
    d->annotations.read_only = true;
    d->annotations.idempotent = true;
}

bool exports_toolhost_plugin_tools_call_tool(exports_toolhost_plugin_tools_caller_t *caller, plugin_string_t *name,
                                             plugin_string_t *arguments,
                                             exports_toolhost_plugin_tools_tool_output_t *ret,
                                             exports_toolhost_plugin_tools_tool_error_t *err) {
    bool ok = name->len == 5 && memcmp(name->ptr, "hello", 5) == 0;
    if (ok) {
        ret->content.len = 1;
        ret->content.ptr = calloc(1, sizeof *ret->content.ptr);
        ret->content.ptr[0].tag = TOOLHOST_PLUGIN_TYPES_CONTENT_TEXT;
        plugin_string_dup(&ret->content.ptr[0].val.text, "Hello from C!");
    } else {
        err->tag = TOOLHOST_PLUGIN_TYPES_TOOL_ERROR_UNKNOWN_TOOL;
        plugin_string_dup(&err->val.unknown_tool, "no such tool");
    }
    // The parameters are the callee's to free.
    exports_toolhost_plugin_tools_caller_free(caller);
    plugin_string_free(name);
    plugin_string_free(arguments);
    return ok;
}
