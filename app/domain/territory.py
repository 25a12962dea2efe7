"""An observer's territory: national, one region, or one département.

One textual form everywhere (the API client's `territory` field, the OpenID Connect
claim, the database column): `national`, `region:<code>` or `departement:<code>`,
with the INSEE codes of app.domain.geography.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from app.domain.geography import DEPARTEMENT_REGION, DEPARTEMENTS, REGIONS

TERRITORY_PATTERN = r"^(?:national|region:[0-9]{2}|departement:(?:[0-9]{2}|2[AB]|97[1-6]))$"


class TerritoryLevel(StrEnum):
    NATIONAL = "national"
    REGION = "region"
    DEPARTEMENT = "departement"


@dataclass(frozen=True, slots=True)
class Territory:
    level: TerritoryLevel
    code: str | None = None

    def __str__(self) -> str:
        return self.level.value if self.code is None else f"{self.level.value}:{self.code}"

    @property
    def region(self) -> str | None:
        """The region the territory lies in (None for national)."""
        if self.level is TerritoryLevel.REGION:
            return self.code
        if self.level is TerritoryLevel.DEPARTEMENT and self.code is not None:
            return DEPARTEMENT_REGION[self.code]
        return None


NATIONAL = Territory(TerritoryLevel.NATIONAL)


def parse_territory(text: str) -> Territory:
    """`national`, `region:84` or `departement:69`; ValueError for anything else."""
    level, _, code = text.strip().partition(":")
    if level == TerritoryLevel.NATIONAL and not code:
        return NATIONAL
    if level == TerritoryLevel.REGION and code in REGIONS:
        return Territory(TerritoryLevel.REGION, code)
    if level == TerritoryLevel.DEPARTEMENT and code in DEPARTEMENTS:
        return Territory(TerritoryLevel.DEPARTEMENT, code)
    raise ValueError("a territory is `national`, `region:<code>` or `departement:<code>`")
