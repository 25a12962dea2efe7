"""Closed vocabularies of the domain (DOMAIN.md), shared by models and schemas."""

from __future__ import annotations

from enum import StrEnum


class StructureKind(StrEnum):
    INSERTION = "insertion"
    LANDLORD = "landlord"
    PARTNER = "partner"


class InsertionSubKind(StrEnum):
    AI = "AI"
    ACI = "ACI"
    EI = "EI"
    ETTI = "ETTI"
    EITI = "EITI"
    GEIQ = "GEIQ"


class LandlordSubKind(StrEnum):
    OPH = "OPH"
    ESH = "ESH"
    COOP_HLM = "COOP_HLM"
    SEM = "SEM"
    OTHER = "other"


class PartnerSubKind(StrEnum):
    FRANCE_TRAVAIL = "france_travail"
    PLIE = "plie"
    MISSION_LOCALE = "mission_locale"
    CAP_EMPLOI = "cap_emploi"
    DEPARTEMENT = "departement"
    TRAINING_BODY = "training_body"
    OPCO = "opco"
    STATE_SERVICE = "state_service"
    HLM_ASSOCIATION = "hlm_association"
    OTHER = "other"


SUB_KINDS: dict[StructureKind, frozenset[str]] = {
    StructureKind.INSERTION: frozenset(InsertionSubKind),
    StructureKind.LANDLORD: frozenset(LandlordSubKind),
    StructureKind.PARTNER: frozenset(PartnerSubKind),
}
ALL_SUB_KINDS: tuple[str, ...] = tuple(
    sorted({str(v) for values in SUB_KINDS.values() for v in values})
)


class Phase(StrEnum):
    RECRUITMENT = "recruitment"
    SUPPORT = "support"
    SECURING = "securing"
    EMPLOYED = "employed"
    EXITED = "exited"


class CertificationStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    HELD = "held"


class VacancyKind(StrEnum):
    JOB = "job"
    MISSION = "mission"


class ContractType(StrEnum):
    CDI = "cdi"
    CDD = "cdd"
    PROFESSIONALISATION = "professionalisation"
    APPRENTICESHIP = "apprenticeship"
    MISSION = "mission"


JOB_CONTRACT_TYPES = frozenset(
    {
        ContractType.CDI,
        ContractType.CDD,
        ContractType.PROFESSIONALISATION,
        ContractType.APPRENTICESHIP,
    }
)


class MissionType(StrEnum):
    TEST_MISSION = "test_mission"
    REPLACEMENT = "replacement"
    WORK_MISSION = "work_mission"


class VacancyStatus(StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class PlacementStatus(StrEnum):
    PROPOSED = "proposed"
    INTERVIEW = "interview"
    ACCEPTED = "accepted"
    STARTED = "started"
    COMPLETED = "completed"
    ENDED = "ended"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


OPEN_PLACEMENT_STATUSES = (
    PlacementStatus.PROPOSED,
    PlacementStatus.INTERVIEW,
    PlacementStatus.ACCEPTED,
    PlacementStatus.STARTED,
)


class Appellation(StrEnum):
    """ROME K2501 appellations relevant to the partnership."""

    GARDIEN_IMMEUBLE = "15228"
    EMPLOYE_IMMEUBLE = "14797"
    GARDIEN_POLYVALENT = "15229"
    TECHNICIEN_PROXIMITE = "19918"
    CHARGE_USAGERS_HABITAT_SOCIAL = "11890"


class Role(StrEnum):
    """Who calls the API (DOMAIN.md, "Who may see what")."""

    ADMIN = "admin"  # national federation staff
    INSERTION = "insertion"  # staff of an insertion structure
    LANDLORD = "landlord"  # staff of a social landlord
    PRESCRIBER = "prescriber"  # France Travail, PLIE, mission locale...
    OBSERVER = "observer"  # state services, funders: aggregated statistics only


# The structure kind a role's structure must have; admins and observers may be national.
ROLE_STRUCTURE_KIND: dict[Role, StructureKind | None] = {
    Role.ADMIN: None,
    Role.INSERTION: StructureKind.INSERTION,
    Role.LANDLORD: StructureKind.LANDLORD,
    Role.PRESCRIBER: StructureKind.PARTNER,
    Role.OBSERVER: None,
}


class ActorKind(StrEnum):
    CLIENT = "client"  # an API client (OAuth2 client credentials)
    USER = "user"  # a person signed in through the OpenID Connect provider
    SYSTEM = "system"  # a command run on the server (demo loader, maintenance)


class AuditAction(StrEnum):
    READ = "read"
    LIST = "list"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


class CandidateView(StrEnum):
    """Which fields of a candidate a caller gets."""

    FULL = "full"
    REDUCED = "reduced"  # landlord before a placement is accepted
    REFERRAL = "referral"  # prescriber: the person they referred, phase and outcome
