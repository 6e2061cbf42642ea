"""Schemathesis hooks of the fuzzing suite (Tests/fuzz/run.sh).

Long-polls: the document bounds every `wait` to 60 s (the master holds a request that long when
nothing happens), and a fuzzer that sends 60 over and over would spend the suite's budget waiting.
Just before each call, a `wait` the master would accept and hold (a number in (0.1, 60]) is
lowered to 0.1 s: the hold path still runs, and every other value the fuzzer makes (negative,
above 60, not a number, missing) goes out as generated and must be refused with a 400.

Log follow: `GET /v1/tasks/{id}/logs?follow=true` streams while the run (or, for a queued task,
its next run) may still write, until 50 s of silence; no parameter bounds that. The fuzzer's
`follow=true` goes out as `follow=false` (the same read, not held); any other value of `follow`
goes out as generated. Following itself is tested by EndToEndTests/LiveLogTests and the
dashboard's browser suite.
"""

import schemathesis
# Imported here, once, before the workers start: Schemathesis imports its ASGI transport lazily on
# the first call, and two workers doing that at once trip CPython 3.11's compiler
# ("SystemError: AST constructor recursion depth mismatch").
import schemathesis.transport.asgi  # noqa: F401

CAP = 0.1
LIMIT = 60


def _capped(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return CAP if CAP < value <= LIMIT else value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return str(CAP) if CAP < number <= LIMIT else value
    return value


@schemathesis.hook
def before_call(context, case, kwargs):
    method, path = case.operation.method.upper(), case.operation.path
    if method == "GET" and path in ("/v1/agents/{id}/commands", "/v1/changes"):
        if isinstance(case.query, dict) and "wait" in case.query:
            case.query["wait"] = _capped(case.query["wait"])
    elif method == "GET" and path == "/v1/tasks/{id}/logs":
        if isinstance(case.query, dict) and "follow" in case.query:
            follow = case.query["follow"]
            if isinstance(follow, list):
                case.query["follow"] = ["false" if value in (True, "true") else value for value in follow]
            elif follow in (True, "true"):
                case.query["follow"] = "false"
    elif method == "POST" and path == "/v1/agents/{id}/claim":
        if isinstance(case.body, dict) and "wait" in case.body:
            case.body["wait"] = _capped(case.body["wait"])
    elif method == "POST" and path == "/v1/agents/{id}/exchange":
        # Both the claim and the talkback poll hold the exchange: the longer of their waits.
        for part in ("claim", "talkback"):
            poll = case.body.get(part) if isinstance(case.body, dict) else None
            if isinstance(poll, dict) and "wait" in poll:
                poll["wait"] = _capped(poll["wait"])
