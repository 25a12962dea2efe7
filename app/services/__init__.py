"""The rules. Services flush, never commit; they know nothing of HTTP."""
