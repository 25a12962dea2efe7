"""`make demo`: the two programmes' real calendar, loaded once, answering the press
release's figures through the API (the queries README.md shows)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from app import migrations
from app.demo import load_demo
from app.domain.enums import Phase, Role
from app.main import create_app
from tests.conftest import client_as, make_settings


@pytest.fixture(scope="module")
async def demo(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}"
    await asyncio.to_thread(migrations.upgrade, url)
    settings = make_settings(url)
    assert (await load_demo(settings)).startswith("demo dataset loaded")
    assert "already loaded" in await load_demo(settings)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        maker = application.state.sessionmaker
        async with await client_as(application, maker, Role.ADMIN) as admin:
            yield admin


async def get(admin: httpx.AsyncClient, path: str, **params: object) -> dict[str, object]:
    response = await admin.get(path, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def test_lyon_since_2013(demo: httpx.AsyncClient) -> None:
    lyon = {"departement": "69", "from": "2013-01-01", "to": "2016-06-07"}
    funnel = await get(demo, "/v1/stats/funnel", **lyon)
    assert (funnel["entered"], funnel["hired"]) == (70, 40)
    outcomes = await get(demo, "/v1/stats/outcomes", **lyon)
    assert outcomes["retention_12m"] == {"due": 40, "followed_up": 40, "in_post": 40, "rate": 1.0}


@pytest.mark.parametrize("year", [2013, 2014, 2015])
async def test_three_rouen_years(demo: httpx.AsyncClient, year: int) -> None:
    rouen = {"departement": "76", "year": year}
    assert (await get(demo, "/v1/stats/funnel", **rouen))["entered"] == 14
    outcomes = await get(demo, "/v1/stats/outcomes", **rouen)
    assert outcomes["training_hours"] == {"total": 14 * 350, "per_person": 350}


async def test_the_2016_objective(demo: httpx.AsyncClient) -> None:
    (objective,) = (await get(demo, "/v1/objectives", year=2016))["items"]  # type: ignore[misc]
    assert (objective["scope"], objective["target"]) == ("national", 100)
    progress = await get(demo, f"/v1/objectives/{objective['id']}/progress")
    # Rouen's 2015 cohort (12 hired in September 2016) and Lyon's last four hires.
    assert (progress["hires"], progress["share"]) == (16, 0.16)


async def test_rankings_have_people_today(demo: httpx.AsyncClient) -> None:
    jobs = (await get(demo, "/v1/vacancies", kind="job", status="open"))["items"]
    assert jobs
    ranked = [await get(demo, f"/v1/vacancies/{job['id']}/matches") for job in jobs]  # type: ignore[union-attr]
    assert any(r["items"] for r in ranked)


async def test_everyone_is_fictional(demo: httpx.AsyncClient) -> None:
    structures = (await get(demo, "/v1/structures", limit=200))["items"]
    assert len(structures) == 19  # type: ignore[arg-type]
    assert all(s["name"].endswith("(fictional)") for s in structures)  # type: ignore[union-attr]
    people = (await get(demo, "/v1/candidates", limit=200))["items"]
    assert all(p["email"].endswith("@example.org") for p in people)  # type: ignore[union-attr]
    phases = {p["phase"] for p in people}  # type: ignore[union-attr]
    assert phases == {phase.value for phase in Phase}
