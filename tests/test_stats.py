"""Figures from the history: the two programmes of the founding press release replayed
through the API with their real dates, objectives, `as_of`, CSV and masking."""

from __future__ import annotations

import csv
import io
import math
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.enums import Role
from tests.access_helpers import is_problem
from tests.conftest import client_as, create_api_client, get_token, http_client
from tests.factories import create_structure
from tests.history import Programme, at, ok

LYON_PERIOD = {"from": "2013-01-01", "to": "2016-06-07"}


def csv_figures(response: httpx.Response) -> dict[str, tuple[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["figure", "value", "masked"]
    return {name: (value, masked) for name, value, masked in rows[1:]}


async def replay_lyon(admin: httpx.AsyncClient) -> Programme:
    """Since 2013: 70 people entered the caretaker path, 40 were hired, all still in post
    at 12 months; the 30 others left, for the reasons people leave."""
    lyon = await Programme.make(
        admin, positions=40, postcode="69008", commune_insee="69388", commune_name="Lyon"
    )
    first = date(2013, 3, 4)
    reasons = ["other_job", "other_training", "moved_away", "dropped_out", "not_suited"]
    for i in range(70):
        entered = first + timedelta(days=16 * i)
        if i < 40:
            await lyon.hired_path(entered, entered + timedelta(days=180))
        else:
            await lyon.exited_path(entered, entered + timedelta(days=60), reasons[i % 5])
    return lyon


async def test_the_lyon_path_replayed_with_its_real_dates(client: httpx.AsyncClient) -> None:
    lyon = await replay_lyon(client)
    query = {**LYON_PERIOD, "structure_id": lyon.structure_id}

    funnel = await ok(await client.get("/v1/stats/funnel", params=query))
    assert (funnel["entered"], funnel["hired"]) == (70, 40)
    assert (funnel["reached_support"], funnel["reached_securing"]) == (70, 40)
    assert funnel["exited"] == 30
    assert funnel["exited_by_reason"]["other_job"] == 6
    assert sum(v for v in funnel["exited_by_reason"].values()) == 30
    assert funnel["in_phase"] == {
        "recruitment": 0,
        "support": 0,
        "securing": 0,
        "employed": 40,
        "exited": 30,
    }
    assert funnel["masked"] == []
    assert funnel["period"] == {
        "from": "2013-01-01",
        "to": "2016-06-07",
        "as_of": funnel["period"]["as_of"],
    }

    outcomes = await ok(await client.get("/v1/stats/outcomes", params=query))
    assert outcomes["hires"] == 40
    assert outcomes["retention_12m"] == {"due": 40, "followed_up": 40, "in_post": 40, "rate": 1.0}
    assert outcomes["retention_6m"] == {"due": 40, "followed_up": 40, "in_post": 40, "rate": 1.0}
    assert outcomes["hire_rate"] == round(40 / 70, 4)
    assert outcomes["median_days_to_hire"] == 180

    # The same figures as CSV, asked either way.
    as_csv = csv_figures(await client.get("/v1/stats/funnel", params={**query, "format": "csv"}))
    assert as_csv["entered"] == ("70", "false")
    assert as_csv["hired"] == ("40", "false")
    assert as_csv["in_phase.employed"] == ("40", "false")
    by_accept = await client.get("/v1/stats/outcomes", params=query, headers={"Accept": "text/csv"})
    outcome_rows = csv_figures(by_accept)
    assert outcome_rows["retention_12m.due"] == ("40", "false")
    assert outcome_rows["retention_12m.in_post"] == ("40", "false")
    assert outcome_rows["retention_12m.rate"] == ("1.0", "false")

    # Half-way, mid-2014, the path had fewer entries and hires: the dates count.
    mid = await ok(
        await client.get(
            "/v1/stats/funnel",
            params={"from": "2013-01-01", "to": "2014-06-30", "structure_id": lyon.structure_id},
        )
    )
    entered_by_mid = sum(
        1 for i in range(70) if date(2013, 3, 4) + timedelta(days=16 * i) <= date(2014, 6, 30)
    )
    hired_by_mid = sum(
        1 for i in range(40) if date(2013, 3, 4) + timedelta(days=16 * i + 180) <= date(2014, 6, 30)
    )
    assert (mid["entered"], mid["hired"]) == (entered_by_mid, hired_by_mid)

    monthly = await ok(await client.get("/v1/stats/monthly", params=query))
    assert monthly["months"][0]["month"] == "2013-01"
    assert monthly["months"][-1]["month"] == "2016-06"
    assert sum(m["entries"] for m in monthly["months"]) == 70
    assert sum(m["hires"] for m in monthly["months"]) == 40
    monthly_csv = await client.get("/v1/stats/monthly", params={**query, "format": "csv"})
    rows = list(csv.reader(io.StringIO(monthly_csv.text)))
    assert rows[0] == ["month", "entries", "hires", "masked"]
    assert sum(int(r[1]) for r in rows[1:]) == 70


async def test_one_rouen_year_of_work_study_contracts(client: httpx.AsyncClient) -> None:
    """14 people on a contrat de professionnalisation, 350 hours of training each."""
    rouen = await Programme.make(client)
    for i in range(14):
        entered = date(2014, 9, 1) + timedelta(days=i)
        person = await rouen.person(entered)
        activities = f"/v1/candidates/{person}/activities"
        for activity in (
            {
                "type": "work_trial",
                "occurred_on": str(entered + timedelta(days=2)),
                "outcome": "positive",
            },
            {
                "type": "project_evaluation",
                "occurred_on": str(entered + timedelta(days=9)),
                "outcome": "positive",
            },
        ):
            await ok(await client.post(activities, json=activity), 201)
        await ok(
            await client.post(
                f"/v1/candidates/{person}/transitions",
                json={"to": "support", "effective_at": at(entered + timedelta(days=14))},
            )
        )
        for activity in (
            {"type": "work_study_contract", "occurred_on": str(entered + timedelta(days=21)),
             "end_on": str(entered + timedelta(days=385)), "landlord_id": rouen.landlord_id,
             "rncp_code": "RNCP40892"},
            {"type": "training", "occurred_on": str(entered + timedelta(days=28)),
             "end_on": str(entered + timedelta(days=380)), "hours": 350,
             "training_mode": "external", "certifying": True, "rncp_code": "RNCP40892"},
        ):  # fmt: skip
            await ok(await client.post(activities, json=activity), 201)
    # Someone who entered the year after is not in the 2014 figures.
    await rouen.person(date(2015, 9, 1))

    query = {"year": 2014, "structure_id": rouen.structure_id}
    funnel = await ok(await client.get("/v1/stats/funnel", params=query))
    assert (funnel["entered"], funnel["reached_support"]) == (14, 14)
    assert funnel["in_phase"]["support"] == 14
    outcomes = await ok(await client.get("/v1/stats/outcomes", params=query))
    assert outcomes["training_hours"] == {"total": 14 * 350, "per_person": 350}
    assert outcomes["hires"] == 0
    later = await ok(await client.get("/v1/stats/funnel", params={**query, "year": 2015}))
    assert later["entered"] == 1


async def test_objective_progress(client: httpx.AsyncClient) -> None:
    programme = await Programme.make(client)
    for i in range(7):  # 7 hires in 2016
        await programme.hired_path(
            date(2015, 9, 1) + timedelta(days=i), date(2016, 2, 1) + timedelta(days=10 * i)
        )
    for i in range(3):  # and 3 in 2015, which do not count
        await programme.hired_path(
            date(2015, 1, 5) + timedelta(days=i), date(2015, 6, 1) + timedelta(days=i)
        )
    objective = await ok(
        await client.post(
            "/v1/objectives", json={"year": 2016, "target": 100, "scope": "national"}
        ),
        201,
    )
    progress = await ok(await client.get(f"/v1/objectives/{objective['id']}/progress"))
    assert (progress["target"], progress["hires"], progress["share"]) == (100, 7, 0.07)
    assert progress["projected"] == 7  # the year is over: what it reached
    assert progress["masked"] == []

    as_csv = csv_figures(
        await client.get(f"/v1/objectives/{objective['id']}/progress", params={"format": "csv"})
    )
    assert as_csv["hires"] == ("7", "false")
    assert as_csv["share"] == ("0.07", "false")

    # This year's objective, at this year's pace: 3 hires so far, projected to December.
    today = date.today()
    current = await ok(
        await client.post(
            "/v1/objectives",
            json={"year": today.year, "target": 10, "scope": "departement", "departement": "76"},
        ),
        201,
    )
    for i in range(3):
        await programme.hired_path(today - timedelta(days=400 + i), today, follow_ups=False)
    progress = await ok(await client.get(f"/v1/objectives/{current['id']}/progress"))
    elapsed = (today - date(today.year, 1, 1)).days + 1
    length = (date(today.year, 12, 31) - date(today.year, 1, 1)).days + 1
    assert progress["hires"] == 3
    assert progress["projected"] == math.floor(3 * length / elapsed + 0.5)
    # Before the year began there was no pace to project from.
    early = await ok(
        await client.get(
            f"/v1/objectives/{current['id']}/progress",
            params={"as_of": at(date(today.year - 1, 12, 31))},
        )
    )
    assert (early["hires"], early["projected"]) == (0, None)

    duplicate = await client.post(
        "/v1/objectives", json={"year": 2016, "target": 90, "scope": "national"}
    )
    assert is_problem(duplicate, 409)


async def test_as_of_shows_what_the_database_knew(client: httpx.AsyncClient) -> None:
    programme = await Programme.make(client)
    person = await programme.person(date(2014, 3, 3))
    period = {"year": 2014, "structure_id": programme.structure_id}

    before_move = datetime.now(UTC)
    await programme.move(person, "support", date(2014, 4, 1))
    after_move = datetime.now(UTC)
    then = await ok(
        await client.get("/v1/stats/funnel", params={**period, "as_of": before_move.isoformat()})
    )
    now = await ok(
        await client.get("/v1/stats/funnel", params={**period, "as_of": after_move.isoformat()})
    )
    assert (
        then["reached_support"],
        then["in_phase"]["recruitment"],
        then["in_phase"]["support"],
    ) == (0, 1, 0)
    assert (now["reached_support"], now["in_phase"]["recruitment"], now["in_phase"]["support"]) == (
        1,
        0,
        1,
    )

    # A person imported today with a 2014 start: unknown before the import, counted after.
    before_import = datetime.now(UTC)
    await programme.person(date(2014, 11, 20))
    after_import = datetime.now(UTC)
    then = await ok(
        await client.get("/v1/stats/funnel", params={**period, "as_of": before_import.isoformat()})
    )
    now = await ok(
        await client.get("/v1/stats/funnel", params={**period, "as_of": after_import.isoformat()})
    )
    assert (then["entered"], now["entered"]) == (1, 2)
    monthly = await ok(
        await client.get("/v1/stats/monthly", params={**period, "as_of": before_import.isoformat()})
    )
    assert [m["entries"] for m in monthly["months"] if m["month"] == "2014-11"] == [0]

    # Follow-ups and hires are dated by their recording too.
    start = date(2015, 3, 2)
    before_hire = datetime.now(UTC)
    await programme.hired_path(date(2014, 6, 2), start)
    after_hire = datetime.now(UTC)
    hired = {"year": 2015, "structure_id": programme.structure_id}
    then = await ok(
        await client.get("/v1/stats/outcomes", params={**hired, "as_of": before_hire.isoformat()})
    )
    now = await ok(
        await client.get("/v1/stats/outcomes", params={**hired, "as_of": after_hire.isoformat()})
    )
    assert (then["hires"], now["hires"]) == (0, 1)
    assert (then["retention_12m"]["followed_up"], now["retention_12m"]["followed_up"]) == (0, 1)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2016-06-01", "to": "2016-01-01"}, "from"),
        ({"year": 2016, "from": "2016-01-01"}, "year"),
        ({"year": 2016, "to": "2016-12-31"}, "year"),
        ({"as_of": "2999-01-01T00:00:00Z"}, "as_of"),
        ({"as_of": "2016-01-01T00:00:00"}, "as_of"),
        ({"year": 1999}, "year"),
        ({"from": "1990-01-01"}, "from"),
        ({"departement": "00"}, "departement"),
        ({"region": "99"}, "region"),
        ({"format": "xml"}, "format"),
        ({"period": "2016"}, "period"),
    ],
    ids=lambda v: str(v) if isinstance(v, str) else "-".join(f"{k}={x}" for k, x in v.items()),
)
@pytest.mark.parametrize("figure", ["funnel", "outcomes", "monthly"])
async def test_invalid_queries_are_422(
    client: httpx.AsyncClient, figure: str, params: dict[str, Any], field: str
) -> None:
    refused = await client.get(f"/v1/stats/{figure}", params=params)
    assert is_problem(refused, 422), refused.text
    assert field in {e["loc"][-1] for e in refused.json()["errors"]}, refused.json()


@pytest.mark.parametrize("kind", ["insertion", "partner"])
@pytest.mark.parametrize("figure", ["funnel", "outcomes", "monthly"])
async def test_a_landlord_filter_naming_another_kind_is_a_conflict(
    client: httpx.AsyncClient, figure: str, kind: str
) -> None:
    """As an objective's landlord_id: 409 `wrong-reference-kind`; an unknown id is a 422."""
    other = await create_structure(client, kind)
    objective = await client.post(
        "/v1/objectives",
        json={"year": 2016, "target": 14, "scope": "landlord", "landlord_id": other["id"]},
    )
    assert is_problem(objective, 409), objective.text
    refused = await client.get(f"/v1/stats/{figure}", params={"landlord_id": other["id"]})
    assert is_problem(refused, 409), refused.text
    wanted = ("type", "field", "expected_kind")
    assert {k: refused.json()[k] for k in wanted} == {k: objective.json()[k] for k in wanted}
    csv_asked = await client.get(
        f"/v1/stats/{figure}", params={"landlord_id": other["id"], "format": "csv"}
    )
    assert is_problem(csv_asked, 409), csv_asked.text
    unknown = await client.get(f"/v1/stats/{figure}", params={"landlord_id": str(uuid.uuid4())})
    assert is_problem(unknown, 422), unknown.text
    assert [e["loc"] for e in unknown.json()["errors"]] == [["query", "landlord_id"]]
    landlord = await create_structure(client, "landlord")
    await ok(await client.get(f"/v1/stats/{figure}", params={"landlord_id": landlord["id"]}))


@pytest.mark.parametrize("kind", ["landlord", "partner"])
@pytest.mark.parametrize("figure", ["funnel", "outcomes", "monthly"])
async def test_a_structure_filter_naming_another_kind_is_a_conflict(
    client: httpx.AsyncClient, figure: str, kind: str
) -> None:
    """`structure_id` names an insertion structure: a landlord's or a partner's id is a 409
    (it answered 200 with zeros), an unknown id a 422."""
    other = await create_structure(client, kind)
    refused = await client.get(f"/v1/stats/{figure}", params={"structure_id": other["id"]})
    assert is_problem(refused, 409), refused.text
    body = refused.json()
    assert (body["field"], body["expected_kind"]) == ("structure_id", "insertion")
    assert body["type"] == "urn:tremplin:problem:wrong-reference-kind"
    unknown = await client.get(
        f"/v1/stats/{figure}", params={"structure_id": str(uuid.uuid4()), "format": "csv"}
    )
    assert is_problem(unknown, 422), unknown.text
    assert [e["loc"] for e in unknown.json()["errors"]] == [["query", "structure_id"]]
    insertion = await create_structure(client, "insertion")
    await ok(await client.get(f"/v1/stats/{figure}", params={"structure_id": insertion["id"]}))


@pytest.mark.parametrize("figure", ["funnel", "outcomes", "monthly"])
async def test_a_caller_who_may_not_read_structures_learns_no_kind_from_the_figures(
    client: httpx.AsyncClient,
    app: FastAPI,
    sessionmaker: async_sessionmaker[AsyncSession],
    figure: str,
) -> None:
    """An observer may not read structures: a filter naming a structure of another kind
    answers exactly as an unknown id does (the 409 would tell it the id is a structure,
    and which kind). So does a token without `structures:read`. Who reads structures
    anyway (insertion staff here) keeps the precise 409."""
    insertion = await create_structure(client, "insertion")
    landlord = await create_structure(client, "landlord")
    partner = await create_structure(client, "partner")
    staff = await create_api_client(sessionmaker, Role.INSERTION, insertion["id"])
    async with http_client(app) as anonymous:
        narrow = await get_token(anonymous, staff, scope="stats:read")
        full = await get_token(anonymous, staff)
    observer = await client_as(app, sessionmaker, Role.OBSERVER)
    async with observer, http_client(app, narrow) as stats_only, http_client(app, full) as broad:
        for caller in (observer, stats_only):
            for field, other in (
                ("structure_id", landlord),
                ("structure_id", partner),
                ("landlord_id", insertion),
                ("landlord_id", partner),
            ):
                unknown = await caller.get(f"/v1/stats/{figure}", params={field: str(uuid.uuid4())})
                assert is_problem(unknown, 422), unknown.text
                named = await caller.get(f"/v1/stats/{figure}", params={field: other["id"]})
                assert named.status_code == unknown.status_code, named.text
                assert named.headers["content-type"] == unknown.headers["content-type"]
                assert named.json() == unknown.json()
                assert "kind" not in named.text
            await ok(
                await caller.get(f"/v1/stats/{figure}", params={"landlord_id": landlord["id"]})
            )
        assert (await broad.get(f"/v1/structures/{landlord['id']}")).json()["kind"] == "landlord"
        precise = await broad.get(f"/v1/stats/{figure}", params={"landlord_id": partner["id"]})
        assert is_problem(precise, 409), precise.text
        assert precise.json()["type"] == "urn:tremplin:problem:wrong-reference-kind"
        # Neither of the first two may read the structure itself.
        assert (await stats_only.get(f"/v1/structures/{landlord['id']}")).status_code == 403
        assert (await observer.get(f"/v1/structures/{landlord['id']}")).status_code == 403


async def test_objective_progress_refuses_a_future_as_of(client: httpx.AsyncClient) -> None:
    objective = await ok(
        await client.post(
            "/v1/objectives", json={"year": 2016, "target": 100, "scope": "national"}
        ),
        201,
    )
    refused = await client.get(
        f"/v1/objectives/{objective['id']}/progress", params={"as_of": "2999-01-01T00:00:00Z"}
    )
    assert is_problem(refused, 422)


async def test_an_observer_gets_a_masked_figure_for_three_hires(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    small = await Programme.make(client)
    for i in range(3):
        await small.hired_path(
            date(2015, 1, 5) + timedelta(days=i), date(2015, 9, 1) + timedelta(days=i)
        )
    for i in range(6):  # more people entered than were hired: that count is shown
        await small.person(date(2015, 2, 2) + timedelta(days=i))
    query = {"year": 2015, "structure_id": small.structure_id}

    async with await client_as(app, sessionmaker, Role.OBSERVER) as observer:
        funnel = await ok(await observer.get("/v1/stats/funnel", params=query))
        outcomes = await ok(await observer.get("/v1/stats/outcomes", params=query))
        as_csv = csv_figures(
            await observer.get("/v1/stats/funnel", params={**query, "format": "csv"})
        )
    assert funnel["entered"] == 9
    assert funnel["hired"] is None
    assert "hired" in funnel["masked"]
    assert as_csv["hired"] == ("", "true")
    assert as_csv["entered"] == ("9", "false")
    assert outcomes["hires"] is None
    # A rate from a masked count is masked too.
    assert outcomes["hire_rate"] is None
    assert "hire_rate" in outcomes["masked"]
    assert outcomes["median_days_to_hire"] is None
    # The admin sees the same figures unmasked.
    admin = await ok(await client.get("/v1/stats/funnel", params=query))
    assert (admin["hired"], admin["masked"]) == (3, [])


async def test_who_sees_which_figures(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Each role counts its own share: a structure its people, a landlord its hires, an
    observer its territory; filters outside one's share count nobody."""
    rouen = await Programme.make(client)
    lyon = await Programme.make(client, postcode="69008", commune_insee="69388")
    for i in range(5):
        await rouen.hired_path(
            date(2015, 1, 5) + timedelta(days=i), date(2015, 9, 1) + timedelta(days=i)
        )
    for i in range(6):
        await lyon.hired_path(
            date(2015, 1, 5) + timedelta(days=i),
            date(2015, 9, 1) + timedelta(days=i),
            postcode="69008",
            commune_insee="69388",
        )
    year = {"year": 2015}

    async def hired(role: Role, structure: str | None = None, **extra: Any) -> Any:
        fields = {"territory": extra.pop("territory")} if "territory" in extra else {}
        credentials = await create_api_client(sessionmaker, role, structure, **fields)
        async with http_client(app) as anonymous:
            token = await get_token(anonymous, credentials)
        async with http_client(app, token) as caller:
            got = await ok(await caller.get("/v1/stats/funnel", params={**year, **extra}))
        return got["hired"]

    assert await hired(Role.ADMIN) == 11
    assert await hired(Role.INSERTION, rouen.structure_id) == 5
    assert await hired(Role.INSERTION, rouen.structure_id, structure_id=lyon.structure_id) == 0
    assert await hired(Role.LANDLORD, lyon.landlord_id) == 6
    assert await hired(Role.OBSERVER, territory="departement:69") == 6
    assert await hired(Role.OBSERVER, territory="region:28") == 5
    assert await hired(Role.OBSERVER) == 11


async def test_hidden_filters_are_refused(
    client: httpx.AsyncClient, app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    partner = await Programme.make(client)
    async with await client_as(app, sessionmaker, Role.LANDLORD, partner.landlord_id) as landlord:
        refused = await landlord.get(
            "/v1/stats/funnel", params={"structure_id": partner.structure_id}
        )
    assert is_problem(refused, 422)
    assert ["query", "structure_id"] in [e["loc"] for e in refused.json()["errors"]]


async def test_median_days_to_hire_of_an_even_number_of_hires(client: httpx.AsyncClient) -> None:
    programme = await Programme.make(client)
    for days in (100, 201, 150, 400):
        entered = date(2015, 1, 5)
        await programme.hired_path(entered, entered + timedelta(days=days), follow_ups=False)
    outcomes = await ok(
        await client.get(
            "/v1/stats/outcomes", params={"year": 2015, "structure_id": programme.structure_id}
        )
    )
    # Hired in 2015: after 100, 150 and 201 days (the fourth in 2016); entered: all four.
    assert outcomes["median_days_to_hire"] == 150
    assert outcomes["hire_rate"] == 0.75
    both = await ok(
        await client.get(
            "/v1/stats/outcomes",
            params={
                "from": "2015-01-01",
                "to": "2016-12-31",
                "structure_id": programme.structure_id,
            },
        )
    )
    assert both["median_days_to_hire"] == (150 + 201) / 2
    assert both["hire_rate"] == 1.0


async def test_people_who_left_twice_count_once_with_their_last_reason(
    client: httpx.AsyncClient,
) -> None:
    programme = await Programme.make(client)
    back_again = await programme.exited_path(date(2015, 1, 5), date(2015, 3, 2), "moved_away")
    still_out = await programme.exited_path(date(2015, 1, 6), date(2015, 3, 3), "moved_away")
    for person, days in ((back_again, (5, 6, 7)), (still_out, (5, 6))):
        steps = [
            ("recruitment", {"reason": "re_entry"}),
            ("exited", {"reason": "dropped_out"}),
            ("recruitment", {"reason": "re_entry"}),
        ][: len(days)]
        for (to, extra), month in zip(steps, days, strict=True):
            await programme.move(person, to, date(2015, month, 1), **extra)
    funnel = await ok(
        await client.get(
            "/v1/stats/funnel", params={"year": 2015, "structure_id": programme.structure_id}
        )
    )
    assert funnel["exited"] == 2
    assert funnel["exited_by_reason"]["dropped_out"] == 2
    assert funnel["exited_by_reason"]["moved_away"] == 0
    assert (funnel["in_phase"]["recruitment"], funnel["in_phase"]["exited"]) == (1, 1)
    # Before the second exits, both had left once, for the first reason.
    spring = await ok(
        await client.get(
            "/v1/stats/funnel",
            params={
                "from": "2015-01-01",
                "to": "2015-04-30",
                "structure_id": programme.structure_id,
            },
        )
    )
    assert (spring["exited"], spring["exited_by_reason"]["moved_away"]) == (2, 2)


@pytest.mark.parametrize(
    ("accept", "kind"),
    [
        (None, "json"),
        ("text/csv", "csv"),
        ("text/csv, application/json;q=0.9", "csv"),
        ("text/csv;q=0.1, application/json", "json"),
        ("text/csv;q=0, */*", "json"),
        ("application/json, text/csv", "json"),
        ("text/*, application/json;q=0.5", "csv"),
        ("text/csv, */*;q=0.5", "csv"),
        ("text/csv;q=nonsense, application/json;q=0.2", "json"),
    ],
)
async def test_csv_or_json_by_the_weights_of_accept(
    client: httpx.AsyncClient, accept: str | None, kind: str
) -> None:
    headers = {} if accept is None else {"Accept": accept}
    response = await client.get("/v1/stats/funnel", params={"year": 2026}, headers=headers)
    assert response.status_code == 200, response.text
    expected = "text/csv" if kind == "csv" else "application/json"
    assert response.headers["content-type"].startswith(expected)
    # One URL, two representations: caches must keep them apart.
    assert response.headers["vary"] == "Accept"
