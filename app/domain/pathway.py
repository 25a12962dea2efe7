"""The path's state machine, as one table. Guards are pure functions of a snapshot.

recruitment -> support -> securing -> employed, with steps back, exits and re-entry
(DOMAIN.md, "The path"). The service locks the candidate, builds the snapshot, asks
this module, and writes the phase, the history row and the event together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from app.domain.enums import ActivityType, Phase, TransitionReason

ACTIVE_PHASES = (Phase.RECRUITMENT, Phase.SUPPORT, Phase.SECURING)
# DOMAIN.md's "terminal and side states": left only by a placement's end or a re-entry.
END_STATES = (Phase.EMPLOYED, Phase.EXITED)

# The phase each kind of activity belongs to.
ACTIVITY_PHASE: dict[ActivityType, Phase] = {
    ActivityType.WORK_TRIAL: Phase.RECRUITMENT,
    ActivityType.TEST_MISSION: Phase.RECRUITMENT,
    ActivityType.REPLACEMENT: Phase.RECRUITMENT,
    ActivityType.PROJECT_EVALUATION: Phase.RECRUITMENT,
    ActivityType.TRAINING: Phase.SUPPORT,
    ActivityType.WORK_MISSION: Phase.SUPPORT,
    ActivityType.TUTORING: Phase.SUPPORT,
    ActivityType.WORK_STUDY_CONTRACT: Phase.SUPPORT,
    ActivityType.SKILLS_ASSESSMENT: Phase.SUPPORT,
    ActivityType.INTERVIEW_SIMULATION: Phase.SUPPORT,
    ActivityType.CERTIFICATION_EXAM: Phase.SECURING,
    ActivityType.HIRING_SUPPORT: Phase.SECURING,
    ActivityType.ONBOARDING_SUPPORT: Phase.SECURING,
}

# How far along the path a phase is; activities of a later phase are refused.
PHASE_RANK: dict[Phase, int] = {
    Phase.RECRUITMENT: 0,
    Phase.SUPPORT: 1,
    Phase.SECURING: 2,
    Phase.EMPLOYED: 3,
}

TRIAL_TYPES = frozenset(
    {ActivityType.WORK_TRIAL, ActivityType.TEST_MISSION, ActivityType.REPLACEMENT}
)

EXIT_REASONS = frozenset(
    {
        TransitionReason.OTHER_JOB,
        TransitionReason.OTHER_TRAINING,
        TransitionReason.MOVED_AWAY,
        TransitionReason.PERSONAL_CIRCUMSTANCES,
        TransitionReason.DROPPED_OUT,
        TransitionReason.NOT_SUITED,
        TransitionReason.OTHER,
    }
)
STEP_BACK_REASONS = frozenset(
    {TransitionReason.FAILED_EXAM, TransitionReason.MISSION_BROKE_DOWN, TransitionReason.OTHER}
)
RE_ENTRY_REASONS = frozenset({TransitionReason.RE_ENTRY, TransitionReason.OTHER})


@dataclass(frozen=True, slots=True)
class Thresholds:
    min_training_hours: float = 150
    min_positive_trials: int = 1
    min_positive_skills_assessments: int = 1
    min_completed_work_missions: int = 1


@dataclass(frozen=True, slots=True)
class PathSnapshot:
    """What the guards look at, read from the candidate's activities and placements."""

    positive_trials: int = 0
    project_validated: bool = False
    training_hours: float = 0
    positive_skills_assessments: int = 0
    completed_work_missions: int = 0
    started_job_placement: bool = False


@dataclass(frozen=True, slots=True)
class Unmet:
    code: str
    requirement: str
    have: float | None = None  # where the candidate stands, when it is a number


Guard = Callable[[PathSnapshot, Thresholds], list[Unmet]]


def _to_support(s: PathSnapshot, t: Thresholds) -> list[Unmet]:
    unmet = []
    if s.positive_trials < t.min_positive_trials:
        unmet.append(
            Unmet(
                "positive_trial",
                f"at least {t.min_positive_trials} work trial, test mission or replacement "
                "with a positive outcome",
                s.positive_trials,
            )
        )
    if not s.project_validated:
        unmet.append(
            Unmet("project_validated", "a project evaluation that validated the caretaker project")
        )
    return unmet


def _to_securing(s: PathSnapshot, t: Thresholds) -> list[Unmet]:
    unmet = []
    if s.training_hours < t.min_training_hours:
        unmet.append(
            Unmet(
                "training_hours",
                f"at least {t.min_training_hours:g} training hours",
                s.training_hours,
            )
        )
    if s.positive_skills_assessments < t.min_positive_skills_assessments:
        unmet.append(
            Unmet(
                "skills_assessment",
                f"at least {t.min_positive_skills_assessments} positive skills assessment",
                s.positive_skills_assessments,
            )
        )
    if s.completed_work_missions < t.min_completed_work_missions:
        unmet.append(
            Unmet(
                "work_mission",
                f"at least {t.min_completed_work_missions} completed work mission at a landlord",
                s.completed_work_missions,
            )
        )
    return unmet


def _to_employed(s: PathSnapshot, t: Thresholds) -> list[Unmet]:
    if s.started_job_placement:
        return []
    return [Unmet("job_started", "a job placement that has started (start the placement)")]


@dataclass(frozen=True, slots=True)
class Transition:
    description: str
    guard: Guard | None = None
    # When set, the transition needs one of these reasons.
    reasons: frozenset[TransitionReason] = field(default_factory=frozenset)
    # employed is reached only by starting a job placement, so that the candidate's
    # phase and the placement never disagree: no endpoint, not even a forced one.
    via_placement_only: bool = False


_EXIT = Transition("leaves the path", reasons=EXIT_REASONS)

MACHINE: dict[Phase, dict[Phase, Transition]] = {
    Phase.RECRUITMENT: {
        Phase.SUPPORT: Transition("recruitment validated: support begins", _to_support),
        Phase.EXITED: _EXIT,
    },
    Phase.SUPPORT: {
        Phase.SECURING: Transition("trained and assessed: securing begins", _to_securing),
        Phase.RECRUITMENT: Transition("back to recruitment", reasons=STEP_BACK_REASONS),
        Phase.EXITED: _EXIT,
    },
    Phase.SECURING: {
        Phase.EMPLOYED: Transition(
            "hired by a landlord (starting a job placement)",
            _to_employed,
            via_placement_only=True,
        ),
        Phase.SUPPORT: Transition("back to support", reasons=STEP_BACK_REASONS),
        Phase.EXITED: _EXIT,
    },
    Phase.EMPLOYED: {
        # A job that ends brings the person back to securing, with the placement's end:
        # the phase and the placements never disagree.
        Phase.SECURING: Transition(
            "the job ended: back to securing",
            reasons=frozenset({TransitionReason.JOB_ENDED}),
            via_placement_only=True,
        ),
    },
    Phase.EXITED: {
        Phase.RECRUITMENT: Transition("re-enters the path", reasons=RE_ENTRY_REASONS),
    },
}


def unmet_for(
    current: Phase, target: Phase, snapshot: PathSnapshot, thresholds: Thresholds
) -> list[Unmet] | None:
    """None if the table has no such transition; else the unmet requirements."""
    transition = MACHINE[current].get(target)
    if transition is None:
        return None
    return transition.guard(snapshot, thresholds) if transition.guard else []


def allowed_targets(current: Phase, snapshot: PathSnapshot, thresholds: Thresholds) -> list[Phase]:
    """Targets reachable now through the transitions endpoint (guards met)."""
    return [
        target
        for target, transition in MACHINE[current].items()
        if not transition.via_placement_only
        and not (transition.guard and transition.guard(snapshot, thresholds))
    ]


def requirements(current: Phase, target: Phase, thresholds: Thresholds) -> list[Unmet]:
    """Everything a transition's guard asks for (what an empty path lacks)."""
    transition = MACHINE[current][target]
    return transition.guard(PathSnapshot(), thresholds) if transition.guard else []
