"""The competency framework: the three blocks of the AFPOLS "Gardien d'immeubles"
certification (RNCP40892). Every competency code of the service is defined here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

MIN_LEVEL = 0
MAX_LEVEL = 3


class CompetencyBlock(StrEnum):
    TECHNICAL_MANAGEMENT = "technical_management"
    COMMON_AREAS_UPKEEP = "common_areas_upkeep"
    TENANT_RELATIONS = "tenant_relations"


@dataclass(frozen=True, slots=True)
class Competency:
    code: str
    block: CompetencyBlock
    label: str


COMPETENCIES: tuple[Competency, ...] = (
    Competency(
        "building_surveillance",
        CompetencyBlock.TECHNICAL_MANAGEMENT,
        "Surveillance of buildings and equipment",
    ),
    Competency("safety_rounds", CompetencyBlock.TECHNICAL_MANAGEMENT, "Safety rounds"),
    Competency(
        "fault_diagnosis",
        CompetencyBlock.TECHNICAL_MANAGEMENT,
        "Spotting faults and judging their urgency",
    ),
    Competency(
        "works_follow_up", CompetencyBlock.TECHNICAL_MANAGEMENT, "Ordering and following works"
    ),
    Competency("cleaning_hygiene", CompetencyBlock.COMMON_AREAS_UPKEEP, "Cleaning and hygiene"),
    Competency("waste_management", CompetencyBlock.COMMON_AREAS_UPKEEP, "Waste and bulky items"),
    Competency("eco_practices", CompetencyBlock.COMMON_AREAS_UPKEEP, "Eco-responsible practices"),
    Competency(
        "tenant_welcome", CompetencyBlock.TENANT_RELATIONS, "Welcome and information of tenants"
    ),
    Competency(
        "lease_procedures",
        CompetencyBlock.TENANT_RELATIONS,
        "Lease-related procedures: entries, exits, inventories, visits",
    ),
    Competency("social_prevention", CompetencyBlock.TENANT_RELATIONS, "Social prevention"),
    Competency("mediation", CompetencyBlock.TENANT_RELATIONS, "Handling incivilities, mediation"),
)

COMPETENCY_CODES: tuple[str, ...] = tuple(c.code for c in COMPETENCIES)
COMPETENCY_BY_CODE: dict[str, Competency] = {c.code: c for c in COMPETENCIES}

RNCP_CODE_PATTERN = r"^RNCP[0-9]{4,6}$"
AFPOLS_CARETAKER_RNCP = "RNCP40892"
