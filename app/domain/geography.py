"""French territorial codes: communes (INSEE), départements and regions (2016 map).

The département and region of an address are derived from its commune INSEE code,
so they can never disagree with it.
"""

from __future__ import annotations

import re

REGIONS: dict[str, str] = {
    "01": "Guadeloupe",
    "02": "Martinique",
    "03": "Guyane",
    "04": "La Réunion",
    "06": "Mayotte",
    "11": "Île-de-France",
    "24": "Centre-Val de Loire",
    "27": "Bourgogne-Franche-Comté",
    "28": "Normandie",
    "32": "Hauts-de-France",
    "44": "Grand Est",
    "52": "Pays de la Loire",
    "53": "Bretagne",
    "75": "Nouvelle-Aquitaine",
    "76": "Occitanie",
    "84": "Auvergne-Rhône-Alpes",
    "93": "Provence-Alpes-Côte d'Azur",
    "94": "Corse",
}

_DEPARTEMENTS_BY_REGION: dict[str, tuple[str, ...]] = {
    "84": ("01", "03", "07", "15", "26", "38", "42", "43", "63", "69", "73", "74"),
    "27": ("21", "25", "39", "58", "70", "71", "89", "90"),
    "53": ("22", "29", "35", "56"),
    "24": ("18", "28", "36", "37", "41", "45"),
    "94": ("2A", "2B"),
    "44": ("08", "10", "51", "52", "54", "55", "57", "67", "68", "88"),
    "32": ("02", "59", "60", "62", "80"),
    "11": ("75", "77", "78", "91", "92", "93", "94", "95"),
    "28": ("14", "27", "50", "61", "76"),
    "75": ("16", "17", "19", "23", "24", "33", "40", "47", "64", "79", "86", "87"),
    "76": ("09", "11", "12", "30", "31", "32", "34", "46", "48", "65", "66", "81", "82"),
    "52": ("44", "49", "53", "72", "85"),
    "93": ("04", "05", "06", "13", "83", "84"),
    "01": ("971",),
    "02": ("972",),
    "03": ("973",),
    "04": ("974",),
    "06": ("976",),
}

DEPARTEMENT_REGION: dict[str, str] = {
    dep: region for region, deps in _DEPARTEMENTS_BY_REGION.items() for dep in deps
}
DEPARTEMENTS: frozenset[str] = frozenset(DEPARTEMENT_REGION)

INSEE_COMMUNE_PATTERN = r"^(?:[0-9]{5}|2[AB][0-9]{3})$"
POSTCODE_PATTERN = r"^[0-9]{5}$"
DEPARTEMENT_PATTERN = r"^(?:[0-9]{2}|2[AB]|97[1-6])$"
_INSEE_RE = re.compile(INSEE_COMMUNE_PATTERN)


def departement_of_commune(insee_code: str) -> str | None:
    """The département of a commune INSEE code, or None when the code is not valid."""
    if not _INSEE_RE.match(insee_code):
        return None
    dep = insee_code[:3] if insee_code.startswith("97") else insee_code[:2]
    return dep if dep in DEPARTEMENTS else None


def region_of_departement(departement: str) -> str:
    return DEPARTEMENT_REGION[departement]
