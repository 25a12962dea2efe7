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
    FILLED = "filled"  # set by the service: every position accepted or started
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


# Placements that hold one of the vacancy's positions.
POSITION_HOLDING_STATUSES = (PlacementStatus.ACCEPTED, PlacementStatus.STARTED)

# A landlord reads a person's full profile while one of its placements for them is in
# one of these: the hire or mission is agreed or under way. After a completion or an
# end it keeps its placement records, not the live profile.
LANDLORD_FULL_VIEW_STATUSES = POSITION_HOLDING_STATUSES

# A landlord sees a person proposed to it while a placement is open or after it was
# accepted; not after a rejection, a withdrawal or an expiry.
LANDLORD_VISIBLE_STATUSES = (
    PlacementStatus.PROPOSED,
    PlacementStatus.INTERVIEW,
    PlacementStatus.ACCEPTED,
    PlacementStatus.STARTED,
    PlacementStatus.COMPLETED,
    PlacementStatus.ENDED,
)

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


class ObjectiveScope(StrEnum):
    """What a recruitment objective covers; each but national names one reference."""

    NATIONAL = "national"
    REGION = "region"
    DEPARTEMENT = "departement"
    LANDLORD = "landlord"
    STRUCTURE = "structure"


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


class DistanceBand(StrEnum):
    """How far a person is from a vacancy, for callers that may not locate the person."""

    UNDER_5_KM = "under_5_km"
    FROM_5_TO_15_KM = "5_to_15_km"
    FROM_15_TO_30_KM = "15_to_30_km"
    OVER_30_KM = "over_30_km"


class TransitionReason(StrEnum):
    """Why a candidate's path moved. Health is deliberately not a reason: it would be
    health data (DOMAIN.md lists it; personal_circumstances covers it without saying)."""

    # leaving the path (any active phase -> exited)
    OTHER_JOB = "other_job"
    OTHER_TRAINING = "other_training"
    MOVED_AWAY = "moved_away"
    PERSONAL_CIRCUMSTANCES = "personal_circumstances"
    DROPPED_OUT = "dropped_out"
    NOT_SUITED = "not_suited"
    # stepping back (securing -> support, support -> recruitment)
    FAILED_EXAM = "failed_exam"
    MISSION_BROKE_DOWN = "mission_broke_down"
    # coming back (exited -> recruitment)
    RE_ENTRY = "re_entry"
    # set by the service when a job placement starts (securing -> employed)
    JOB_STARTED = "job_started"
    # set by the service when a started job ends (employed -> securing)
    JOB_ENDED = "job_ended"
    OTHER = "other"


class ActivityType(StrEnum):
    # recruitment
    WORK_TRIAL = "work_trial"  # mise en situation professionnelle (PMSMP)
    TEST_MISSION = "test_mission"
    REPLACEMENT = "replacement"
    PROJECT_EVALUATION = "project_evaluation"
    # support
    TRAINING = "training"
    WORK_MISSION = "work_mission"  # paid mission at a landlord, carried by the SIAE
    TUTORING = "tutoring"
    WORK_STUDY_CONTRACT = "work_study_contract"  # contrat de professionnalisation
    SKILLS_ASSESSMENT = "skills_assessment"
    INTERVIEW_SIMULATION = "interview_simulation"
    # securing
    CERTIFICATION_EXAM = "certification_exam"
    HIRING_SUPPORT = "hiring_support"
    ONBOARDING_SUPPORT = "onboarding_support"


class ActivityOutcome(StrEnum):
    POSITIVE = "positive"
    NEGATIVE = "negative"
    PENDING = "pending"


class TrainingMode(StrEnum):
    INTERNAL = "internal"
    EXTERNAL = "external"


class PlacementEndReason(StrEnum):
    """Why a placement left the open states without completing."""

    RESIGNED = "resigned"
    DISMISSED = "dismissed"
    TRIAL_PERIOD_ENDED = "trial_period_ended"
    CONTRACT_ENDED = "contract_ended"
    NOT_SUITED = "not_suited"
    CANDIDATE_DECLINED = "candidate_declined"
    POSITION_FILLED = "position_filled"
    OTHER = "other"
