"""What a name, a title or an address line may hold: one line of text that shows.

A candidate named by a line break, an escape sequence or a zero-width space looks blank,
or breaks the one-line places it is shown in (lists, CSV cells, a landlord's screen).
Leading and trailing white space is trimmed before this applies (InputModel).
"""

from __future__ import annotations

# Never inside: C0 and C1 control characters (line feed, tab, escape...), the Unicode
# line and paragraph separators, and the bidirectional embeddings, overrides and isolates
# (they make a name read otherwise than it is stored, in lists and CSV cells alike; the
# left-to-right and right-to-left marks that mixed-script names use stay allowed).
_ALLOWED = r"[^\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
# At least one character that shows: not a space, a control, a soft hyphen, a zero-width
# or bidirectional mark, a byte order mark, or a blank that fonts draw as nothing (the
# Hangul fillers, the Braille blank, the Mongolian vowel separator).
_VISIBLE = (
    r"[^\x00-\x20\x7f-\xa0\u00ad\u115f\u1160\u180e\u2000-\u200f\u2028-\u202f"
    r"\u205f-\u206f\u2800\u3000\u3164\ufeff\uffa0]"
)

# The same expression for the API (Rust regex), the spec (ECMA-262) and clients.
ONE_LINE_PATTERN = f"^{_ALLOWED}*{_VISIBLE}{_ALLOWED}*$"
ONE_LINE_MESSAGE = (
    "one line of visible text: no line breaks, tabs or other control characters, "
    "and not only invisible characters"
)
