"""A fictional demo dataset: the two programmes of the founding press release, with their
real calendar, imported through the services' own rules.

- Lyon, since 2013: 70 people entered the caretaker path, 40 were hired, all 40 still in
  post at 12 months (GET /v1/stats/funnel?departement=69&from=2013-01-01&to=2016-06-07).
- Rouen, three years (2013, 2014, 2015): 14 people a year on a contrat de
  professionnalisation with 350 hours of certifying training, most hired on a CDI about a
  year later (GET /v1/stats/outcomes?departement=76&year=2014).
- A national objective of 100 hires for 2016.
- Today, in each programme, people in every phase (some in securing, who agreed to share
  their profile), open jobs and missions, and a few proposals: rankings have candidates.

Every person and organisation is invented. Phone numbers are in the range ARCEP reserves
for fiction (06 39 98 xx xx), emails on example.org, and SIRETs are made up (valid
checksums, assigned to nobody we know of).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db import create_engine, create_sessionmaker, session_scope
from app.domain.competencies import AFPOLS_CARETAKER_RNCP, COMPETENCY_CODES
from app.domain.enums import ObjectiveScope
from app.domain.identifiers import luhn_valid
from app.models import Structure, Vacancy
from app.progress import Progress
from app.schemas.activities import ActivityCreate
from app.schemas.candidates import CandidateCreate
from app.schemas.objectives import ObjectiveCreate
from app.schemas.pathway import TransitionRequest
from app.schemas.placements import (
    FollowUpCreate,
    PlacementCreate,
    PlacementTransitionRequest,
)
from app.schemas.placements import _months_later as months_later
from app.schemas.structures import StructureCreate
from app.schemas.vacancies import VacancyCreate
from app.services import (
    activities,
    candidates,
    objectives,
    pathway,
    placements,
    structures,
    vacancies,
)
from app.services.auth import SYSTEM_ACTOR

DEMO_SIREN_PREFIX = "99999"  # every demo SIRET starts with it: easy to spot, easy to purge

# The figures README.md shows after `make demo` (tests/test_demo.py checks them).
LYON_PERIOD = (date(2013, 1, 1), date(2016, 6, 7))
LYON_ENTERED, LYON_HIRED = 70, 40
ROUEN_YEARS = (2013, 2014, 2015)
ROUEN_PER_YEAR, ROUEN_TRAINING_HOURS = 14, 350
ROUEN_NOT_HIRED = (4, 11)  # of each cohort: the others are hired about a year later

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
EXIT_REASONS = ["other_job", "other_training", "moved_away", "dropped_out", "not_suited"]
Area = list[tuple[str, str, str, float, float]]


def demo_siret(index: int) -> str:
    base = f"{DEMO_SIREN_PREFIX}{index:08d}"
    return next(base + str(d) for d in range(10) if luhn_valid(base + str(d)))


def _place(area: Area, i: int) -> dict[str, Any]:
    postcode, insee, name, lat, lon = area[i % len(area)]
    return {
        "postcode": postcode,
        "commune_insee": insee,
        "commune_name": name,
        "latitude": lat,
        "longitude": lon,
    }


def _at(day: date) -> datetime:
    return datetime.combine(day, time(9), tzinfo=UTC)


@dataclass
class Programme:
    """One SIAE's programme, imported as the structure would: each step on its day."""

    session: AsyncSession
    settings: Settings
    rng: random.Random
    area: Area
    offset: int
    siae: Structure | None = None
    landlords: list[Structure] = field(default_factory=list)
    referrers: list[Structure] = field(default_factory=list)
    counts: dict[str, int] = field(
        default_factory=lambda: (
            dict.fromkeys(("structures", "candidates", "vacancies"), 0) | {"placements": 0}
        )
    )
    people: int = 0
    progress: Progress | None = None

    async def structures(
        self,
        siae: tuple[str, str],
        landlords: list[tuple[str, str]],
        partners: list[tuple[str, str]],
    ) -> None:
        self.siae = await self._structure(0, "insertion", *siae)
        self.landlords = [
            await self._structure(1 + i, "landlord", sub, name)
            for i, (sub, name) in enumerate(landlords)
        ]
        made = [
            await self._structure(20 + i, "partner", sub, name)
            for i, (sub, name) in enumerate(partners)
        ]
        self.referrers = [
            p for p in made if p.sub_kind in {"france_travail", "plie", "mission_locale"}
        ]

    async def _structure(self, index: int, kind: str, sub_kind: str, name: str) -> Structure:
        data = StructureCreate.model_validate(
            {
                "kind": kind,
                "sub_kind": sub_kind,
                "name": f"{name} (fictional)",
                "siret": demo_siret(self.offset + index),
                "address_line": f"{10 + index} rue de l'Exemple",
                **_place(self.area, index),
            }
        )
        self.counts["structures"] += 1
        return await structures.create(self.session, data)

    async def vacancy(
        self,
        landlord: Structure,
        *,
        job: bool,
        start: date,
        positions: int = 1,
        mission_type: str = "replacement",
        title: str | None = None,
    ) -> Vacancy:
        payload = {
            "landlord_id": str(landlord.id),
            "title": title
            or ("Gardien d'immeuble, résidence du parc" if job else "Mission de gardien"),
            "kind": "job" if job else "mission",
            "mission_type": None if job else mission_type,
            "contract_type": "cdi" if job else "mission",
            "appellation_code": "15228",
            "weekly_hours": 35,
            "positions": positions,
            **_place(self.area, self.counts["vacancies"] + 1),
            "required_competencies": {"cleaning_hygiene": 1, "tenant_welcome": 1},
            "required_certification": AFPOLS_CARETAKER_RNCP if job else None,
            "start_date": start.isoformat(),
            "end_date": None if job else (start + timedelta(days=30)).isoformat(),
            "status": "open",
        }
        self.counts["vacancies"] += 1
        return await vacancies.create(
            self.session, SYSTEM_ACTOR, VacancyCreate.model_validate(payload)
        )

    async def person(
        self, entered: date, *, consent: bool = True, in_progress: bool = False
    ) -> uuid.UUID:
        assert self.siae is not None
        n = self.offset + self.people
        self.people += 1
        first, last = FIRST_NAMES[n % len(FIRST_NAMES)], LAST_NAMES[(n * 7) % len(LAST_NAMES)]
        birth_year = entered.year - self.rng.randint(20, 50)
        payload = {
            "first_name": first,
            "last_name": last,
            "birth_date": date(
                birth_year, self.rng.randint(1, 12), self.rng.randint(1, 28)
            ).isoformat(),
            "email": f"{first.lower()}.{last.lower()}.{n}@example.org",
            "phone": f"06 39 98 {n // 100 % 100:02d} {n % 100:02d}",
            **_place(self.area, n),
            "structure_id": str(self.siae.id),
            "referrer_id": str(self.referrers[n % len(self.referrers)].id)
            if self.referrers
            else None,
            "max_commute_km": self.rng.choice([15, 20, 30]),
            "has_driving_licence": self.rng.random() < 0.5,
            "accepts_onsite_housing": self.rng.random() < 0.3,
            "competencies": {code: self.rng.randint(0, 1) for code in COMPETENCY_CODES},
            "certifications": (
                [{"rncp_code": AFPOLS_CARETAKER_RNCP, "status": "in_progress"}]
                if in_progress
                else []
            ),
            "consent_to_share": consent,
            "entered_at": _at(entered).isoformat(),
        }
        self.counts["candidates"] += 1
        created, _ = await candidates.create(
            self.session, SYSTEM_ACTOR, CandidateCreate.model_validate(payload)
        )
        if self.progress is not None:
            self.progress.advance()
        return created.id

    async def activity(self, person: uuid.UUID, day: date, **fields: Any) -> None:
        data = TypeAdapter(ActivityCreate).validate_python(
            {"occurred_on": day.isoformat(), **fields}
        )
        await activities.create(self.session, SYSTEM_ACTOR, person, data)

    async def move(
        self, person: uuid.UUID, phase: str, day: date, reason: str | None = None
    ) -> None:
        request = TransitionRequest.model_validate(
            {"to": phase, "reason": reason, "effective_at": _at(day)}
        )
        await pathway.transition(self.session, SYSTEM_ACTOR, self.settings, person, request, None)

    async def recruitment(self, person: uuid.UUID, entered: date) -> None:
        await self.activity(
            person,
            entered + timedelta(days=3),
            type="work_trial",
            outcome="positive",
            end_on=(entered + timedelta(days=7)).isoformat(),
        )
        await self.activity(
            person, entered + timedelta(days=10), type="project_evaluation", outcome="positive"
        )
        await self.move(person, "support", entered + timedelta(days=16))

    async def support(
        self,
        person: uuid.UUID,
        start: date,
        *,
        hours: float,
        landlord: Structure,
        work_study: bool,
        securing: date | None,
    ) -> None:
        if work_study:
            await self.activity(
                person,
                start + timedelta(days=5),
                type="work_study_contract",
                end_on=(start + timedelta(days=370)).isoformat(),
                landlord_id=str(landlord.id),
                rncp_code=AFPOLS_CARETAKER_RNCP,
            )
        await self.activity(
            person,
            start + timedelta(days=12),
            type="training",
            hours=hours,
            end_on=(start + timedelta(days=360 if work_study else 120)).isoformat(),
            training_mode="external",
            certifying=True,
            rncp_code=AFPOLS_CARETAKER_RNCP,
        )
        await self.activity(
            person,
            start + timedelta(days=60),
            type="work_mission",
            outcome="positive",
            landlord_id=str(landlord.id),
            hours=140,
            end_on=(start + timedelta(days=80)).isoformat(),
        )
        if securing is None:
            return
        await self.activity(
            person,
            securing - timedelta(days=10),
            type="skills_assessment",
            outcome="positive",
            competency_levels={
                "cleaning_hygiene": 3,
                "tenant_welcome": 2,
                "safety_rounds": 2,
                "waste_management": 2,
            },
        )
        await self.move(person, "securing", securing)

    async def hire(self, person: uuid.UUID, vacancy: Vacancy, start: date) -> None:
        """Certified, proposed a month before the start, accepted, started, followed up."""
        await self.activity(
            person,
            start - timedelta(days=40),
            type="certification_exam",
            rncp_code=AFPOLS_CARETAKER_RNCP,
            outcome="positive",
        )
        placement = await placements.create(
            self.session,
            SYSTEM_ACTOR,
            PlacementCreate(
                candidate_id=person,
                vacancy_id=vacancy.id,
                proposed_at=_at(start - timedelta(days=30)),
            ),
        )
        for step, day in (("accepted", start - timedelta(days=14)), ("started", start)):
            await placements.transition(
                self.session,
                SYSTEM_ACTOR,
                placement.id,
                PlacementTransitionRequest(to=step, on=day),
                None,
            )
        for months in (6, 12):
            due = months_later(start, months)
            if due <= date.today():
                await placements.record_follow_up(
                    self.session, SYSTEM_ACTOR, placement.id, FollowUpCreate(at=due, in_post=True)
                )
        self.counts["placements"] += 1

    async def propose(self, person: uuid.UUID, vacancy: Vacancy) -> None:
        await placements.create(
            self.session, SYSTEM_ACTOR, PlacementCreate(candidate_id=person, vacancy_id=vacancy.id)
        )
        self.counts["placements"] += 1

    async def today(self, jobs: int, missions: list[str]) -> None:
        """People on the path now, in every phase, and vacancies open for them."""
        today = date.today()
        open_jobs = [
            await self.vacancy(
                self.landlords[i % len(self.landlords)], job=True, start=today + timedelta(days=45)
            )
            for i in range(jobs)
        ]
        open_missions = [
            await self.vacancy(
                self.landlords[(i + 1) % len(self.landlords)],
                job=False,
                mission_type=kind,
                start=today + timedelta(days=20),
            )
            for i, kind in enumerate(missions)
        ]
        landlord = self.landlords[0]
        securing = []
        for i in range(8):
            entered = today - timedelta(days=320 - 25 * i)
            person = await self.person(entered, consent=i != 6, in_progress=i < 3)
            if i >= 6:  # just arrived: still in recruitment
                await self.activity(
                    person, entered + timedelta(days=3), type="work_trial", outcome="positive"
                )
                if i == 7 and open_missions:
                    await self.propose(person, open_missions[0])
                continue
            await self.recruitment(person, entered)
            ready = entered + timedelta(days=200) if i < 3 else None
            await self.support(
                person,
                entered + timedelta(days=16),
                hours=175,
                landlord=landlord,
                work_study=False,
                securing=ready,
            )
            if ready is not None:
                securing.append(person)
        if open_jobs and securing:
            await self.propose(securing[0], open_jobs[0])


async def _lyon(
    session: AsyncSession, settings: Settings, rng: random.Random, progress: Progress
) -> Programme:
    lyon = Programme(session, settings, rng, LYON_AREA, offset=200, progress=progress)
    await lyon.structures(
        ("ETTI", "Passerelles Rhône Emploi"),
        [(sub, f"Rhône Logis {n}") for n, sub in enumerate(["OPH", "ESH", "ESH", "SEM"], start=1)],
        [
            ("france_travail", "Agence France Travail Lyon 8"),
            ("mission_locale", "Mission locale de l'Est lyonnais"),
        ],
    )
    jobs = [
        await lyon.vacancy(
            landlord,
            job=True,
            start=date(2013, 9, 2),
            positions=10,
            title="Gardiens d'immeuble, parcours 2013-2016",
        )
        for landlord in lyon.landlords
    ]
    first = date(2013, 3, 4)
    hired = [i for i in range(62) if i % 3 != 2][:LYON_HIRED]
    for i in range(LYON_ENTERED):
        entered = first + timedelta(days=16 * i)
        person = await lyon.person(entered)
        await lyon.recruitment(person, entered)
        landlord = lyon.landlords[i % len(lyon.landlords)]
        if i in hired:
            await lyon.support(
                person,
                entered + timedelta(days=16),
                hours=210,
                landlord=landlord,
                work_study=False,
                securing=entered + timedelta(days=140),
            )
            await lyon.hire(person, jobs[hired.index(i) % len(jobs)], entered + timedelta(days=185))
        elif i % 3 == 2:  # left during the path, for the reasons people leave
            left = entered + timedelta(days=45 + 7 * (i % 10))
            await lyon.move(person, "exited", left, EXIT_REASONS[i % 5])
        else:  # still on the path in June 2016; they left later
            await lyon.support(
                person,
                entered + timedelta(days=16),
                hours=120,
                landlord=landlord,
                work_study=False,
                securing=None,
            )
            await lyon.move(
                person, "exited", date(2016, 9, 5) + timedelta(days=9 * i), EXIT_REASONS[i % 5]
            )
    await lyon.today(jobs=2, missions=["replacement"])
    return lyon


async def _rouen(
    session: AsyncSession, settings: Settings, rng: random.Random, progress: Progress
) -> Programme:
    rouen = Programme(session, settings, rng, ROUEN_AREA, offset=100, progress=progress)
    await rouen.structures(
        ("AI", "Tremplin Seine Insertion, Hauts de Rouen"),
        [
            (sub, f"Habitat Normand {n}")
            for n, sub in enumerate(["OPH", "ESH", "ESH", "OPH", "COOP_HLM", "SEM", "ESH"], start=1)
        ],
        [
            ("france_travail", "Agence France Travail Rouen Est"),
            ("plie", "PLIE de l'agglomération rouennaise"),
            ("training_body", "Institut de formation des métiers du logement"),
            ("hlm_association", "Association régionale Hlm de Normandie"),
        ],
    )
    jobs = [
        await rouen.vacancy(
            landlord,
            job=True,
            start=date(2014, 9, 1),
            positions=6,
            title="Gardien d'immeuble en CDI, après contrat de professionnalisation",
        )
        for landlord in rouen.landlords
    ]
    hires = 0
    for year in ROUEN_YEARS:
        for i in range(ROUEN_PER_YEAR):
            entered = date(year, 9, 2) + timedelta(days=i)
            person = await rouen.person(entered)
            await rouen.recruitment(person, entered)
            landlord = rouen.landlords[i % len(rouen.landlords)]
            hired = i not in ROUEN_NOT_HIRED
            await rouen.support(
                person,
                entered + timedelta(days=16),
                hours=ROUEN_TRAINING_HOURS,
                landlord=landlord,
                work_study=True,
                securing=entered + timedelta(days=290) if hired else None,
            )
            if hired:
                await rouen.hire(person, jobs[hires % len(jobs)], entered + timedelta(days=375))
                hires += 1
            else:
                await rouen.move(
                    person, "exited", entered + timedelta(days=200), EXIT_REASONS[i % 5]
                )
    await rouen.today(jobs=2, missions=["test_mission", "work_mission"])
    return rouen


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
            # People of the two programmes, and the few of today each adds.
            with Progress("demo", total=None) as progress:
                programmes = [
                    await _rouen(session, settings, rng, progress),
                    await _lyon(session, settings, rng, progress),
                ]
            await objectives.create(
                session,
                ObjectiveCreate(
                    year=2016,
                    target=100,
                    scope=ObjectiveScope.NATIONAL,
                    label="Partenariat COORACE - USH : recrutements 2016",
                ),
            )
    finally:
        await engine.dispose()
    totals = {k: sum(p.counts[k] for p in programmes) for k in programmes[0].counts}
    return (
        "demo dataset loaded: " + ", ".join(f"{v} {k}" for k, v in totals.items()) + ", 1 objective"
    )
