"""The export of everything Tremplin holds about a person (GDPR right of access)."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, Field

from app.schemas.access import AuditEvent
from app.schemas.activities import Activity
from app.schemas.candidates import Candidate
from app.schemas.pathway import CandidateTransition
from app.schemas.placements import Placement, PlacementTransition


class FollowUp(BaseModel):
    placement_id: uuid.UUID
    milestone_months: int = Field(description="6 or 12.")
    on: dt.date
    in_post: bool
    recorded_at: dt.datetime


class ExportedPlacement(Placement):
    history: list[PlacementTransition]


class CandidateExport(BaseModel):
    """One document: the profile, the path's history, activities, placements with their
    moves, the retention follow-ups, and who accessed the record (the audit journal)."""

    exported_at: dt.datetime
    candidate: Candidate
    transitions: list[CandidateTransition]
    activities: list[Activity]
    placements: list[ExportedPlacement]
    follow_ups: list[FollowUp]
    accesses: list[AuditEvent] = Field(
        description="Every access to the record, from the journal, this export included."
    )
