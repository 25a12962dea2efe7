"""What a name, a title or an address line may hold: one line of text that shows.

A candidate named by a line break, an escape sequence or a zero-width space looks blank,
or breaks the one-line places it is shown in (lists, CSV cells, a landlord's screen).
Leading and trailing white space is trimmed before this applies (InputModel).
"""

from __future__ import annotations

# Never inside: C0 and C1 control characters (line feed, tab, escape...) and the Unicode
# line and paragraph separators.
_ALLOWED = r"[^\x00-\x1f\x7f-\x9f\u2028\u2029]"
# At least one character that shows: not a space, a control, a soft hyphen, a zero-width
# or bidirectional mark, or a byte order mark.
_VISIBLE = r"[^\x00-\x20\x7f-\xa0\u00ad\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000\ufeff]"

# The same expression for the API (Rust regex), the spec (ECMA-262) and clients.
ONE_LINE_PATTERN = f"^{_ALLOWED}*{_VISIBLE}{_ALLOWED}*$"
ONE_LINE_MESSAGE = (
    "one line of visible text: no line breaks, tabs or other control characters, "
    "and not only invisible characters"
)
