"""Matching: rankings both ways and assignments, over app.domain.matching.

rows.py decodes database rows, store.py keeps every candidate's features in memory in
step with the database, context.py reads what placements say of the pairs at hand,
rankings.py and assignments.py answer the API, offload.py keeps their CPU work off the
event loop. Suggestions only: nothing here decides for a person; proposals are made
only when an administrator asks for them.
"""

from app.services.matching.assignments import (
    AssignedPair,
    Assignment,
    AssignmentScope,
    UnfilledPositions,
    assign,
)
from app.services.matching.rankings import Ranking, candidate_matches, vacancy_matches
from app.services.matching.weights import weights_from

__all__ = [
    "AssignedPair",
    "Assignment",
    "AssignmentScope",
    "Ranking",
    "UnfilledPositions",
    "assign",
    "candidate_matches",
    "vacancy_matches",
    "weights_from",
]
