"""Schemathesis hooks for tests/test_openapi.py (loaded through SCHEMATHESIS_HOOKS).

The document's `Id` pattern lists every printable code point of the server's Python
(some 700 ranges, 144,000 characters), and Hypothesis enumerates them each time it
builds a strategy from it: about a minute per run. The same characters drawn by
Unicode category (what `str.isprintable` admits: letters, marks, numbers,
punctuation, symbols and the space) take no time; schemathesis still checks every
value it draws against the pattern.
"""

import schemathesis
from hypothesis import strategies as st

PRINTABLE = st.characters(
    categories=("L", "M", "N", "P", "S"), include_characters=" ", exclude_characters="/"
)
schemathesis.openapi.format("burrow-id", st.text(PRINTABLE, min_size=1))


@schemathesis.hook
def filter_query(ctx: schemathesis.HookContext, query: dict[str, object] | None) -> bool:
    """No streams (`stream=`): a valid one never ends, and a stream takes few of the
    listing's parameters; tests/test_streams_*.py test them. No PUT of a subscription's
    stored document (`document=true`), whose body is not the order the schema gives, nor
    a `marker` with `subscriptions=true`, which is `ACCOUNT/QUEUE/NAME` there, not an id:
    tests/test_http_backend.py tests them."""
    if not query:
        return True
    flagged = {name for name in ("document", "subscriptions") if _true(query.get(name))}
    storing = (
        "document" in flagged
        and ctx.operation is not None
        and ctx.operation.method.lower() == "put"
    )
    paged = "subscriptions" in flagged and "marker" in query
    return "stream" not in query and not storing and not paged


def _true(value: object) -> bool:
    return isinstance(value, str) and value.lower() == "true"
