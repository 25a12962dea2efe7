"""A fictional demo dataset modelled on the two programmes of the founding press release.

Every person and organisation here is invented. Phone numbers are in the range
ARCEP reserves for fiction (06 39 98 xx xx), emails on example.org, and SIRETs are
made up (valid checksums, assigned to nobody we know of).
"""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db import create_engine, create_sessionmaker, session_scope
from app.domain.competencies import AFPOLS_CARETAKER_RNCP, COMPETENCY_CODES
from app.domain.identifiers import luhn_valid
from app.models import Structure
from app.progress import Progress
from app.schemas.activities import ActivityCreate
from app.schemas.candidates import CandidateCreate
from app.schemas.pathway import TransitionRequest
from app.schemas.placements import PlacementCreate, PlacementTransitionRequest
from app.schemas.structures import StructureCreate
from app.schemas.vacancies import VacancyCreate
from app.services import activities, candidates, pathway, placements, structures, vacancies
from app.services.auth import SYSTEM_ACTOR

DEMO_SIREN_PREFIX = "99999"
ROUEN_PEOPLE = 14  # a year of Interm'Aide Emploi's programme
LYON_PEOPLE = 12  # every demo SIRET starts with it: easy to spot, easy to purge

# (postcode, INSEE code, commune name, latitude, longitude)
ROUEN_AREA = [
    ("76000", "76540", "Rouen", 49.4431, 1.0993),
    ("76140", "76498", "Le Petit-Quevilly", 49.4236, 1.0581),
    ("76300", "76681", "Sotteville-lès-Rouen", 49.4097, 1.0900),
    ("76130", "76451", "Mont-Saint-Aignan", 49.4630, 1.0890),
    ("76160", "76212", "Darnétal", 49.4447, 1.1503),
]
LYON_AREA = [
    ("69008", "69388", "Lyon 8e Arrondissement", 45.7340, 4.8690),
    ("69100", "69266", "Villeurbanne", 45.7719, 4.8902),
    ("69200", "69259", "Vénissieux", 45.6975, 4.8859),
    ("69120", "69256", "Vaulx-en-Velin", 45.7786, 4.9225),
    ("69500", "69029", "Bron", 45.7386, 4.9131),
]
FIRST_NAMES = [
    "Amina", "Bruno", "Chloé", "Djibril", "Élodie", "Farid", "Gaëlle", "Hugo", "Inès",
    "Jordan", "Karima", "Lucas", "Maëlys", "Nassim", "Océane", "Patrice", "Rania",
    "Samuel", "Tiphaine", "Yanis", "Zoé", "Mehdi", "Sandrine", "Kevin", "Nadia", "Thierry",
]  # fmt: skip
LAST_NAMES = [
    "Aubépine", "Bourrache", "Camomille", "Dauphinelle", "Églantine", "Fougère",
    "Genêt", "Houblon", "Iris", "Jacinthe", "Lavande", "Mauve", "Nigelle", "Orchis",
    "Pervenche", "Réglisse", "Sauge", "Tilleul", "Verveine", "Yucca",
]  # fmt: skip


def demo_siret(index: int) -> str:
    base = f"{DEMO_SIREN_PREFIX}{index:08d}"
    return next(base + str(d) for d in range(10) if luhn_valid(base + str(d)))


def _place(area: list[tuple[str, str, str, float, float]], i: int) -> dict[str, Any]:
    postcode, insee, name, lat, lon = area[i % len(area)]
    return {
        "postcode": postcode,
        "commune_insee": insee,
        "commune_name": name,
        "latitude": lat,
        "longitude": lon,
    }


async def _structure(
    session: AsyncSession, index: int, kind: str, sub_kind: str, name: str, place: dict[str, Any]
) -> Structure:
    data = StructureCreate.model_validate(
        {
            "kind": kind,
            "sub_kind": sub_kind,
            "name": f"{name} (fictional)",
            "siret": demo_siret(index),
            "address_line": f"{10 + index} rue de l'Exemple",
            **place,
        }
    )
    return await structures.create(session, data)


async def _programme(
    session: AsyncSession,
    settings: Settings,
    rng: random.Random,
    *,
    offset: int,
    area: list[tuple[str, str, str, float, float]],
    siae: tuple[str, str],
    landlords: list[tuple[str, str]],
    partners: list[tuple[str, str]],
    people: int,
    progress: Progress,
) -> dict[str, int]:
    siae_row = await _structure(session, offset, "insertion", siae[0], siae[1], _place(area, 0))
    landlord_rows = [
        await _structure(session, offset + 1 + i, "landlord", sub, name, _place(area, i))
        for i, (sub, name) in enumerate(landlords)
    ]
    partner_rows = [
        await _structure(session, offset + 20 + i, "partner", sub, name, _place(area, i))
        for i, (sub, name) in enumerate(partners)
    ]
    referrers = [p for p in partner_rows if p.sub_kind in {"france_travail", "plie"}]
    today = date.today()
    people_rows = []
    for i in range(people):
        first = FIRST_NAMES[(offset + i) % len(FIRST_NAMES)]
        last = LAST_NAMES[(offset * 3 + i) % len(LAST_NAMES)]
        levels = {code: rng.randint(0, 2) for code in COMPETENCY_CODES}
        payload = {
            "first_name": first,
            "last_name": last,
            "birth_date": (today - timedelta(days=365 * rng.randint(19, 55))).isoformat(),
            "email": f"{first.lower()}.{last.lower()}.{offset + i}@example.org",
            "phone": f"06 39 98 {(offset + i) // 100 % 100:02d} {(offset + i) % 100:02d}",
            **_place(area, i),
            "structure_id": str(siae_row.id),
            "referrer_id": str(referrers[i % len(referrers)].id) if referrers else None,
            "max_commute_km": rng.choice([10, 15, 20, 30]),
            "has_driving_licence": rng.random() < 0.5,
            "accepts_onsite_housing": rng.random() < 0.3,
            "available_from": (today + timedelta(days=rng.randint(0, 60))).isoformat(),
            "competencies": levels,
            "certifications": (
                [{"rncp_code": AFPOLS_CARETAKER_RNCP, "status": "in_progress"}]
                if rng.random() < 0.4
                else []
            ),
            "consent_to_share": rng.random() < 0.85,
        }
        people_rows.append(
            (
                await candidates.create(
                    session, SYSTEM_ACTOR, CandidateCreate.model_validate(payload)
                )
            )[0]
        )
        progress.advance()
    vacancy_rows = []
    for i, landlord in enumerate(landlord_rows):
        is_mission = i % 2 == 1
        payload = {
            "landlord_id": str(landlord.id),
            "title": "Mission de remplacement de gardien"
            if is_mission
            else "Gardien d'immeuble, résidence du parc",
            "kind": "mission" if is_mission else "job",
            "mission_type": "replacement" if is_mission else None,
            "contract_type": "mission" if is_mission else "cdi",
            "appellation_code": "15228",
            "weekly_hours": 35,
            "positions": 1 + i % 2,
            **_place(area, i + 1),
            "onsite_housing": i % 3 == 0,
            "required_competencies": {"cleaning_hygiene": 1, "tenant_welcome": 1},
            "required_certification": None if is_mission else AFPOLS_CARETAKER_RNCP,
            "start_date": (today + timedelta(days=30 + 7 * i)).isoformat(),
            "end_date": (today + timedelta(days=60 + 7 * i)).isoformat() if is_mission else None,
            "status": "open",
        }
        vacancy_rows.append(
            await vacancies.create(session, SYSTEM_ACTOR, VacancyCreate.model_validate(payload))
        )
        progress.advance()
    # Missions are for people in recruitment or support who agreed to share their profile.
    missions = [v for v in vacancy_rows if v.kind.value == "mission"]
    willing = [p for p in people_rows if p.consent_to_share]
    proposals = 0
    for vacancy, person in zip(missions, willing, strict=False):
        await placements.create(
            session,
            SYSTEM_ACTOR,
            PlacementCreate(candidate_id=person.id, vacancy_id=vacancy.id, notes="Demo proposal."),
        )
        proposals += 1
    # One person walks the whole path to a hire, so that every phase, history and
    # event has an example.
    jobs = [v for v in vacancy_rows if v.kind.value == "job"]
    hired = willing[-1]
    if jobs and hired not in willing[: len(missions)]:
        await _walk_to_hire(session, settings, hired.id, landlord_rows[0].id, jobs[0].id)
        proposals += 1
    return {
        "structures": 1 + len(landlord_rows) + len(partner_rows),
        "candidates": len(people_rows),
        "vacancies": len(vacancy_rows),
        "placements": proposals,
    }


async def _walk_to_hire(
    session: AsyncSession,
    settings: Settings,
    candidate_id: uuid.UUID,
    landlord_id: uuid.UUID,
    job_id: uuid.UUID,
) -> None:
    """recruitment -> support -> securing -> employed, through the services' own rules."""
    today = date.today()

    async def record(**activity: Any) -> None:
        data = TypeAdapter(ActivityCreate).validate_python(activity)
        await activities.create(session, SYSTEM_ACTOR, candidate_id, data)

    async def move(phase: str) -> None:
        await pathway.transition(
            session, SYSTEM_ACTOR, settings, candidate_id, TransitionRequest(to=phase), None
        )

    def ago(days: int) -> str:
        return (today - timedelta(days=days)).isoformat()

    await record(type="work_trial", occurred_on=ago(300), outcome="positive")
    await record(type="project_evaluation", occurred_on=ago(290), outcome="positive")
    await move("support")
    await record(type="training", occurred_on=ago(250), hours=175, training_mode="external",
                 certifying=True, rncp_code=AFPOLS_CARETAKER_RNCP)  # fmt: skip
    await record(type="work_mission", occurred_on=ago(200), landlord_id=landlord_id,
                 outcome="positive")  # fmt: skip
    await record(type="skills_assessment", occurred_on=ago(150), outcome="positive",
                 competency_levels={"cleaning_hygiene": 3, "tenant_welcome": 2})  # fmt: skip
    await move("securing")
    await record(type="certification_exam", occurred_on=ago(100), rncp_code=AFPOLS_CARETAKER_RNCP,
                 outcome="positive")  # fmt: skip
    placement = await placements.create(
        session, SYSTEM_ACTOR, PlacementCreate(candidate_id=candidate_id, vacancy_id=job_id)
    )
    for step in ("accepted", "started"):
        await placements.transition(
            session, SYSTEM_ACTOR, placement.id, PlacementTransitionRequest(to=step), None
        )


async def load_demo(settings: Settings) -> str:
    """Load the dataset once; a second run finds it and changes nothing."""
    engine = create_engine(settings)
    try:
        async with session_scope(create_sessionmaker(engine)) as session:
            existing = await session.scalar(
                select(func.count())
                .select_from(Structure)
                .where(Structure.siret.like(f"{DEMO_SIREN_PREFIX}%"))
            )
            if existing:
                return f"demo dataset already loaded ({existing} demo structures)"
            rng = random.Random(2016)  # noqa: S311 - demo data, not security
            # One step per candidate and per vacancy (one per landlord) of both programmes.
            progress = Progress("demo", total=ROUEN_PEOPLE + LYON_PEOPLE + 7 + 4)
            rouen = await _programme(
                session,
                settings,
                rng,
                offset=100,
                area=ROUEN_AREA,
                siae=("AI", "Tremplin Seine Insertion, Hauts de Rouen"),
                landlords=[
                    (sub, f"Habitat Normand {n}")
                    for n, sub in enumerate(
                        ["OPH", "ESH", "ESH", "OPH", "COOP_HLM", "SEM", "ESH"], start=1
                    )
                ],
                partners=[
                    ("france_travail", "Agence France Travail Rouen Est"),
                    ("plie", "PLIE de l'agglomération rouennaise"),
                    ("training_body", "Institut de formation des métiers du logement"),
                    ("hlm_association", "Association régionale Hlm de Normandie"),
                ],
                people=ROUEN_PEOPLE,
                progress=progress,
            )
            lyon = await _programme(
                session,
                settings,
                rng,
                offset=200,
                area=LYON_AREA,
                siae=("ETTI", "Passerelles Rhône Emploi"),
                landlords=[
                    (sub, f"Rhône Logis {n}")
                    for n, sub in enumerate(["OPH", "ESH", "ESH", "SEM"], start=1)
                ],
                partners=[
                    ("france_travail", "Agence France Travail Lyon 8"),
                    ("mission_locale", "Mission locale de l'Est lyonnais"),
                ],
                people=LYON_PEOPLE,
                progress=progress,
            )
            progress.close()
    finally:
        await engine.dispose()
    totals = {k: rouen[k] + lyon[k] for k in rouen}
    return "demo dataset loaded: " + ", ".join(f"{v} {k}" for k, v in totals.items())
