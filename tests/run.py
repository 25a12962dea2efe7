"""`make test`: the suite on SQLite, and on PostgreSQL when a server answers.

With CI=true PostgreSQL is required: the run fails instead of skipping it.
The PostgreSQL database is created by the test session and dropped at its end.
"""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


async def _answers(url: str) -> bool:
    import asyncpg

    try:
        conn = await asyncpg.connect(url, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


def main() -> int:
    ci = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
    url = os.environ.get("TEST_POSTGRES_URL") or DEFAULT_POSTGRES
    if asyncio.run(_answers(url)):
        os.environ["TEST_POSTGRES_URL"] = url
        print(
            f"PostgreSQL answers at {url.split('@')[-1]}: the suite runs on SQLite and PostgreSQL."
        )
    elif ci:
        print(f"CI=true and PostgreSQL does not answer at {url.split('@')[-1]}.", file=sys.stderr)
        return 2
    else:
        os.environ.pop("TEST_POSTGRES_URL", None)
        print("PostgreSQL does not answer: the suite runs on SQLite only.")
    return pytest.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
