"""Checks shared by the Python interop clients (both SDK majors).

Kept free of `mcp` imports so the 1.x and 2.x scripts can both use it; each
script adapts its SDK's result objects to plain values before checking.
"""

import os
import sys

SHA256_ABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
# One tool from each bundled plugin, so a listing that lost a plugin fails.
EXPECTED_TOOLS = ("hash", "test_simple_text", "test_tool_with_progress", "test_error_handling")
MISSING_TOOL = "no_such_tool_interop"
ELICIT_ANSWER = {"username": "interop-user", "email": "e@x"}


def auth_headers():
    """The bearer token the test harness minted, as request headers."""
    token = os.environ.get("TOOLHOST_TOKEN")
    return {"Authorization": f"Bearer {token}"} if token else {}


class CheckFailed(Exception):
    pass


def expect(condition, reason):
    if not condition:
        raise CheckFailed(reason)


def check_tool_names(names):
    missing = [t for t in EXPECTED_TOOLS if t not in names]
    expect(not missing, f"tools/list lacks {missing}; got {sorted(names)}")


def texts(content):
    """The text of every text block, from SDK objects of either major version."""
    return [getattr(block, "text", "") for block in content if getattr(block, "type", None) == "text"]


def run(label, main):
    """Runs `main` (a coroutine function) and turns the outcome into an exit status."""
    import asyncio

    try:
        asyncio.run(main())
    except CheckFailed as failure:
        print(f"FAIL {label}: {failure}", file=sys.stderr)
        sys.exit(1)
    except BaseException as error:  # an SDK exception is a failure to report, not a crash
        if isinstance(error, (KeyboardInterrupt, SystemExit)):
            raise
        import traceback

        traceback.print_exc()
        print(f"FAIL {label}: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
    print(f"OK {label}")
