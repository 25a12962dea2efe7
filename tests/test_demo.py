"""`make demo`: the fictional dataset loads through the services' rules, once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import func, select

from app import migrations
from app.db import create_engine, create_sessionmaker
from app.demo import load_demo
from app.domain.enums import Phase
from app.models import Candidate, CandidateTransition, Placement, Structure
from tests.conftest import make_settings


async def test_demo_loads_once_and_walks_someone_to_a_hire(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"
    await asyncio.to_thread(migrations.upgrade, url)
    settings = make_settings(url)
    assert (await load_demo(settings)).startswith("demo dataset loaded")
    assert "already loaded" in await load_demo(settings)
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            assert await session.scalar(select(func.count()).select_from(Structure)) == 19
            phases = dict(
                (
                    await session.execute(
                        select(Candidate.phase, func.count()).group_by(Candidate.phase)
                    )
                ).all()
            )
            assert phases[Phase.EMPLOYED] == 2
            assert sum(phases.values()) == 26
            # securing -> employed came with the job's start, in each programme.
            assert (
                await session.scalar(
                    select(func.count())
                    .select_from(CandidateTransition)
                    .where(CandidateTransition.to_phase == Phase.EMPLOYED)
                )
                == 2
            )
            assert await session.scalar(select(func.count()).select_from(Placement)) == 7
            names = (await session.scalars(select(Structure.name))).all()
            assert all(name.endswith("(fictional)") for name in names)
    finally:
        await engine.dispose()
