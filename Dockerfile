# Production-like image: the API by default; the same image runs the worker
# (`booking worker`) and migrations (`booking migrate`). See compose.yaml.
#
# Every command needs only the documented environment variables (DATABASE_URL,
# REDIS_URL, BOOKING_SECRET_KEY, ...; see README "Configuration").
# HEALTHCHECK is part of the Docker image format: `docker build` keeps it, podman
# keeps it only with `podman build --format docker`.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    BOOKING_MIGRATIONS_DIR=/app/piccolo_migrations

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY piccolo_migrations ./piccolo_migrations
# The code stays root-owned (read-only to the service); /app itself is the user's
# home and writable, for anything a library caches under $HOME.
RUN pip install --editable . \
    && useradd --system --uid 10001 --home-dir /app --no-create-home booking \
    && chown booking:booking /app

USER booking
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"
CMD ["booking", "api", "--host", "0.0.0.0", "--port", "8000", "--quiet"]
