// A toolhost plugin in C: one tool, `c_add`, adding two integers.
//
// Build: `bash plugins/examples/build.sh`. plugin.h and plugin.c (the
// bindings) are generated from wit/world.wit into the build directory; this
// file implements the two exported functions they declare. Returned strings
// must be heap-allocated (plugin_string_dup): the bindings free them after the
// host has copied the result.

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin.h"

// JSON numbers the sum of two of which still fits in int64: the schema keeps
// arguments to the range doubles represent exactly, as JSON clients use.
#define LIMIT 9007199254740991LL

static void set_text_output(exports_toolhost_plugin_tools_tool_output_t *ret, const char *text) {
    ret->content.len = 1;
    ret->content.ptr = calloc(1, sizeof(toolhost_plugin_types_content_t));
    ret->content.ptr[0].tag = TOOLHOST_PLUGIN_TYPES_CONTENT_TEXT;
    plugin_string_dup(&ret->content.ptr[0].val.text, text);
    ret->structured_content.is_some = false;
    ret->is_error = false;
}

static bool fail(exports_toolhost_plugin_tools_tool_error_t *err, uint8_t tag, const char *message) {
    err->tag = tag;
    // Every case of tool-error carries a string in the same place.
    plugin_string_dup(&err->val.invalid_arguments, message);
    return false;
}

// ---- A minimal JSON reader: validates the whole text, picks out the two
// top-level integer members `a` and `b`. Never reads past `end`; nesting is
// bounded so hostile input cannot exhaust the stack.

typedef struct {
    const uint8_t *p, *end;
} cursor;

static void ws(cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

// A string; on success *start/*len give its raw (unescaped) contents.
static bool string(cursor *c, const uint8_t **start, size_t *len) {
    if (c->p >= c->end || *c->p != '"') return false;
    const uint8_t *s = ++c->p;
    while (c->p < c->end && *c->p != '"') {
        if (*c->p < 0x20) return false;
        if (*c->p == '\\') {
            if (++c->p >= c->end) return false;
        }
        c->p++;
    }
    if (c->p >= c->end) return false;
    *start = s;
    *len = (size_t)(c->p - s);
    c->p++;
    return true;
}

// A number; *is_int and *value are set when it is an integer within LIMIT,
// however written (JSON Schema counts 3.0 and 3e2 as integers too).
static bool number(cursor *c, bool *is_int, long long *value) {
    bool negative = false, integral = true;
    long long v = 0;
    if (c->p < c->end && *c->p == '-') negative = true, c->p++;
    if (c->p >= c->end || *c->p < '0' || *c->p > '9') return false;
    if (*c->p == '0' && c->p + 1 < c->end && c->p[1] >= '0' && c->p[1] <= '9') return false;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        if (v > LIMIT) integral = false;  // too big: keep scanning, stop counting
        else v = v * 10 + (*c->p - '0');
        c->p++;
    }
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        if (c->p >= c->end || *c->p < '0' || *c->p > '9') return false;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') integral &= *c->p++ == '0';
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        bool down = false;
        int e = 0;
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-')) down = *c->p++ == '-';
        if (c->p >= c->end || *c->p < '0' || *c->p > '9') return false;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            if (e < 100) e = e * 10 + (*c->p - '0');
            c->p++;
        }
        if (v != 0 && down) integral = false;
        for (; v != 0 && !down && e > 0 && integral; e--) {
            if (v > LIMIT / 10) integral = false;
            else v *= 10;
        }
    }
    *is_int = integral && v <= LIMIT;
    *value = negative ? -v : v;
    return true;
}

static bool literal(cursor *c, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0) return false;
    c->p += n;
    return true;
}

static bool value(cursor *c, int depth);

static bool members(cursor *c, int depth, bool array) {
    c->p++;  // '{' or '['
    ws(c);
    char close = array ? ']' : '}';
    if (c->p < c->end && *c->p == close) return c->p++, true;
    for (;;) {
        ws(c);
        if (!array) {
            const uint8_t *k;
            size_t n;
            if (!string(c, &k, &n)) return false;
            ws(c);
            if (c->p >= c->end || *c->p++ != ':') return false;
        }
        if (!value(c, depth + 1)) return false;
        ws(c);
        if (c->p >= c->end) return false;
        if (*c->p == ',') { c->p++; continue; }
        if (*c->p == close) return c->p++, true;
        return false;
    }
}

static bool value(cursor *c, int depth) {
    bool is_int;
    long long v;
    const uint8_t *s;
    size_t n;
    if (depth > 32) return false;
    ws(c);
    if (c->p >= c->end) return false;
    switch (*c->p) {
        case '{': return members(c, depth, false);
        case '[': return members(c, depth, true);
        case '"': return string(c, &s, &n);
        case 't': return literal(c, "true");
        case 'f': return literal(c, "false");
        case 'n': return literal(c, "null");
        default: return number(c, &is_int, &v);
    }
}

// Parses `{"a": INT, "b": INT, ...}`; returns NULL or an error message.
static const char *parse_args(const plugin_string_t *json, long long *a, long long *b) {
    cursor c = {json->ptr, json->ptr + json->len};
    bool have_a = false, have_b = false;
    ws(&c);
    if (c.p >= c.end || *c.p != '{') return "arguments must be a JSON object";
    c.p++;
    ws(&c);
    if (c.p < c.end && *c.p == '}') {
        c.p++;
    } else {
        for (;;) {
            const uint8_t *k;
            size_t n;
            ws(&c);
            if (!string(&c, &k, &n)) return "arguments are not valid JSON";
            ws(&c);
            if (c.p >= c.end || *c.p++ != ':') return "arguments are not valid JSON";
            ws(&c);
            bool is_a = n == 1 && k[0] == 'a', is_b = n == 1 && k[0] == 'b';
            if (is_a || is_b) {
                bool is_int;
                long long v;
                if (!number(&c, &is_int, &v)) return "`a` and `b` must be numbers";
                if (!is_int) return "`a` and `b` must be integers between -9007199254740991 and 9007199254740991";
                if (is_a) *a = v, have_a = true;
                else *b = v, have_b = true;
            } else if (!value(&c, 1)) {
                return "arguments are not valid JSON";
            }
            ws(&c);
            if (c.p < c.end && *c.p == ',') { c.p++; continue; }
            if (c.p < c.end && *c.p == '}') { c.p++; break; }
            return "arguments are not valid JSON";
        }
    }
    ws(&c);
    if (c.p != c.end) return "arguments are not valid JSON";
    if (!have_a || !have_b) return "`a` and `b` are required";
    return NULL;
}

// ---- The exported interface.

static void define(exports_toolhost_plugin_tools_tool_definition_t *d, const char *name, const char *title,
                   const char *description, const char *input_schema) {
    memset(d, 0, sizeof *d);
    plugin_string_dup(&d->name, name);
    d->title.is_some = true;
    plugin_string_dup(&d->title.val, title);
    plugin_string_dup(&d->description, description);
    plugin_string_dup(&d->input_schema, input_schema);
    d->output_schema.is_some = false;
    d->annotations.read_only = true;
    d->annotations.idempotent = true;
}

void exports_toolhost_plugin_tools_list_tools(exports_toolhost_plugin_tools_list_tool_definition_t *ret) {
    ret->len = 1;
    ret->ptr = calloc(ret->len, sizeof *ret->ptr);
    define(&ret->ptr[0], "c_add", "Add two integers (C)", "Adds two integers and returns the sum.",
           "{\"type\":\"object\",\"properties\":{"
           "\"a\":{\"type\":\"integer\",\"minimum\":-9007199254740991,\"maximum\":9007199254740991},"
           "\"b\":{\"type\":\"integer\",\"minimum\":-9007199254740991,\"maximum\":9007199254740991}},"
           "\"required\":[\"a\",\"b\"]}");
}

bool exports_toolhost_plugin_tools_call_tool(exports_toolhost_plugin_tools_caller_t *caller, plugin_string_t *name,
                                             plugin_string_t *arguments,
                                             exports_toolhost_plugin_tools_tool_output_t *ret,
                                             exports_toolhost_plugin_tools_tool_error_t *err) {
    bool ok;
    long long a = 0, b = 0;
    const char *problem;
    // The parameters are ours to free, whatever the outcome.
    if (!(name->len == 5 && memcmp(name->ptr, "c_add", 5) == 0)) {
        ok = fail(err, TOOLHOST_PLUGIN_TYPES_TOOL_ERROR_UNKNOWN_TOOL, "no such tool in this plugin");
    } else if ((problem = parse_args(arguments, &a, &b)) != NULL) {
        ok = fail(err, TOOLHOST_PLUGIN_TYPES_TOOL_ERROR_INVALID_ARGUMENTS, problem);
    } else {
        char sum[32];
        snprintf(sum, sizeof sum, "%lld", a + b);  // |a|, |b| <= 2^53: no overflow
        set_text_output(ret, sum);
        ok = true;
    }
    exports_toolhost_plugin_tools_caller_free(caller);
    plugin_string_free(name);
    plugin_string_free(arguments);
    return ok;
}
