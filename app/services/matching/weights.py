"""The scorer's weights, from the settings (`MATCHING_WEIGHT_<criterion>`)."""

from __future__ import annotations

from app.config import Settings
from app.domain.matching import CRITERIA_RULES, Weights


def weights_from(settings: Settings) -> Weights:
    """Each criterion's weight is the setting named after it (its default otherwise)."""
    return Weights(
        {
            rule.name: float(getattr(settings, f"matching_weight_{rule.name}", rule.default_weight))
            for rule in CRITERIA_RULES
        },
        training_hours_target=settings.pathway_min_training_hours,
        waiting_days_target=settings.matching_waiting_days_target,
    )
