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
    listing's parameters; tests/test_streams_*.py test them."""
    return not query or "stream" not in query
