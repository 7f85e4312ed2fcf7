#!/usr/bin/env python3
"""Cuts an official OpenAPI description down to the operations a plugin uses.

The full GitHub description is 7 MB and takes Prism ~20 s and ~300 MB to
load; the tests only need the operations the plugin calls, with every schema,
parameter, response and example they reference (followed transitively), so
the pruned file is still the official text for those operations.

    prune.py FULL.json OPS.txt OUT.json

OPS.txt lists one `METHOD /path/{template}` per line; `#` starts a comment.
"""

import json
import sys


def refs(node, found):
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            found.add(ref)
        for value in node.values():
            refs(value, found)
    elif isinstance(node, list):
        for value in node:
            refs(value, found)


def resolve(spec, ref):
    node = spec
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def main():
    full, ops_file, out = sys.argv[1:4]
    with open(full) as f:
        spec = json.load(f)
    wanted = {}
    with open(ops_file) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            method, path = line.split(None, 1)
            item = spec["paths"].get(path)
            if item is None or method.lower() not in item:
                sys.exit(f"{method} {path} is not in {full}")
            entry = wanted.setdefault(path, {})
            entry[method.lower()] = item[method.lower()]
            if "parameters" in item:
                entry["parameters"] = item["parameters"]
    pruned = {k: v for k, v in spec.items() if k not in ("paths", "components", "webhooks", "x-webhooks", "tags")}
    pruned["paths"] = wanted
    # Follow references to a fixed point.
    seen, todo = set(), set()
    refs(wanted, todo)
    components = {}
    while todo:
        ref = todo.pop()
        if ref in seen:
            continue
        seen.add(ref)
        parts = ref[2:].split("/")
        if parts[0] != "components" or len(parts) != 3:
            continue
        node = resolve(spec, ref)
        components.setdefault(parts[1], {})[parts[2].replace("~1", "/").replace("~0", "~")] = node
        refs(node, todo)
    if "securitySchemes" in spec.get("components", {}):
        components["securitySchemes"] = spec["components"]["securitySchemes"]
    pruned["components"] = {k: dict(sorted(v.items())) for k, v in sorted(components.items())}
    with open(out, "w") as f:
        json.dump(pruned, f, indent=1, sort_keys=False)
        f.write("\n")


if __name__ == "__main__":
    main()
