"""Checks for official identifiers (SIRET) and contact details (phone numbers)."""

from __future__ import annotations

import re

# La Poste's establishments share the SIREN 356000000; their SIRETs do not pass Luhn
# and are checked instead by the sum of their digits being a multiple of 5.
LA_POSTE_SIREN = "356000000"


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def siret_valid(siret: str) -> bool:
    if len(siret) != 14 or not siret.isascii() or not siret.isdigit():
        return False
    if luhn_valid(siret):
        return True
    return siret.startswith(LA_POSTE_SIREN) and sum(int(c) for c in siret) % 5 == 0


_SEPARATORS = re.compile(r"[\s.\-()]")
_E164 = re.compile(r"^\+[1-9][0-9]{7,14}$")
_FRENCH_NATIONAL = re.compile(r"^0[1-9][0-9]{8}$")


def normalise_phone(raw: str) -> str | None:
    """E.164 form of a phone number, or None if it is not one.

    French national numbers (0X XX XX XX XX) become +33XXXXXXXXX; other numbers
    must be given in international form.
    """
    compact = _SEPARATORS.sub("", raw)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    if _FRENCH_NATIONAL.match(compact):
        return "+33" + compact[1:]
    if compact.startswith("+330"):
        compact = "+33" + compact[4:]
    if _E164.match(compact):
        if compact.startswith("+33") and len(compact) != 12:
            return None
        return compact
    return None
