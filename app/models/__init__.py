"""ORM models. Importing this package registers every table on Base.metadata."""

from app.models.access import ApiClient, AuditEvent, IdempotencyKey
from app.models.base import Base
from app.models.candidate import Candidate, CandidateChange
from app.models.integration import (
    FollowUpReminder,
    JobRun,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from app.models.objective import Objective
from app.models.pathway import Activity, CandidateTransition, Event, PlacementTransition
from app.models.placement import Placement
from app.models.structure import Structure
from app.models.vacancy import Vacancy

__all__ = [
    "Activity",
    "ApiClient",
    "AuditEvent",
    "Base",
    "Candidate",
    "CandidateChange",
    "CandidateTransition",
    "Event",
    "FollowUpReminder",
    "IdempotencyKey",
    "JobRun",
    "Objective",
    "Placement",
    "PlacementTransition",
    "Structure",
    "Vacancy",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookSubscription",
]
