"""Command line: `python -m app <command>` (or the `tremplin` console script)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

import yaml

from app.config import get_settings


def _openapi_yaml() -> str:
    from app.main import create_app

    spec = create_app().openapi()
    return yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=100)


def cmd_openapi(args: argparse.Namespace) -> int:
    text = _openapi_yaml()
    if args.check:
        path = Path(args.check)
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            print(f"{path} differs from the served spec: run `make openapi`.", file=sys.stderr)
            return 1
        print(f"{path} matches the served spec.")
        return 0
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from app import migrations

    if args.revision.startswith("-") or args.downgrade:
        migrations.downgrade(revision=args.revision)
    else:
        migrations.upgrade(revision=args.revision)
    return 0


def cmd_alembic_check(_args: argparse.Namespace) -> int:
    """`alembic check` on a throwaway SQLite database (or on DATABASE_URL with --here)."""
    from app import migrations

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/check.db"
        migrations.upgrade(url)
        migrations.check(url)
    print("alembic check: models and migrations agree.")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = get_settings()
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port or settings.port,
        proxy_headers=True,
        log_level="info",
    )
    return 0


def cmd_demo(_args: argparse.Namespace) -> int:
    from app.demo import load_demo

    summary = asyncio.run(load_demo(get_settings()))
    print(summary)
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="tremplin", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the API with uvicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=None, help="default: $PORT or 8000")
    serve.set_defaults(func=cmd_serve)

    migrate = sub.add_parser("migrate", help="apply migrations to DATABASE_URL")
    migrate.add_argument("revision", nargs="?", default="head")
    migrate.add_argument("--downgrade", action="store_true", help="go down to REVISION")
    migrate.set_defaults(func=cmd_migrate)

    spec = sub.add_parser("openapi", help="print, write or check the OpenAPI spec")
    group = spec.add_mutually_exclusive_group()
    group.add_argument("--output", help="write the spec to this file")
    group.add_argument("--check", help="exit 1 if this file differs from the served spec")
    spec.set_defaults(func=cmd_openapi)

    check = sub.add_parser("alembic-check", help="fail if models and migrations disagree")
    check.set_defaults(func=cmd_alembic_check)

    demo = sub.add_parser("demo", help="load the fictional demo dataset (idempotent)")
    demo.set_defaults(func=cmd_demo)

    args = parser.parse_args(argv)
    sys.exit(args.func(args))
