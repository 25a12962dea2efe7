# syntax=docker/dockerfile:1
# Build stage: install the locked runtime dependencies into a virtual environment.
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY requirements-prod.lock ./
RUN /opt/venv/bin/pip install --require-hashes -r requirements-prod.lock

# Runtime stage: the venv, the migrations, an unprivileged user. No compiler, no cache.
FROM python:3.11-slim AS runtime
ENV PATH="/opt/venv/bin:$PATH" PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    ENVIRONMENT=production PORT=8000 WORKERS=2
RUN useradd --system --uid 10001 --home-dir /srv/tremplin tremplin
WORKDIR /srv/tremplin
COPY --from=build /opt/venv /opt/venv
# The code runs from the work directory, beside the migrations it needs.
COPY alembic.ini ./
COPY alembic ./alembic
COPY app ./app
USER tremplin
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD python -c "import os,urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\",\"8000\")}/healthz', timeout=2)"
# Migrations run as their own one-shot command (`python -m app migrate`), never here.
# WORKERS uvicorn processes; production refuses SQLite's default or a missing key.
CMD ["sh", "-c", "exec python -m app serve --host 0.0.0.0 --port ${PORT} --workers ${WORKERS}"]
