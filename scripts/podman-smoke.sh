#!/usr/bin/env bash
# LOCAL VERIFICATION AID, NOT CI: build the image and run compose.yaml's services with
# podman, translated by hand into `podman run` commands (podman-compose does not run
# compose.yaml faithfully: `${VAR:-}` passed literally, `service_healthy` ignored).
#
#   scripts/podman-smoke.sh           build, run db + redis + migrate + api + worker, check, clean up
#   KEEP=1 scripts/podman-smoke.sh    leave the pod running (remove: podman pod rm -f booking-smoke)
#
# Checks: the image keeps HEALTHCHECK and runs as a user that can write /app; migrate
# waits for a database that is still starting; /ready answers 200 and counts the
# worker's heartbeat ("1 alive"); the worker's metrics port answers inside the pod and
# the API's /metrics only a bearer of the metrics token; a partner books through curl
# (hold, confirm); the worker prints the confirmation SMS (console sender); a worker
# that dies is restarted (its heartbeat comes back) while the API keeps answering.
# The services get compose.yaml's environment (JSON logs, metrics token, the worker's
# metrics port).
#
# Needs podman (Debian: apt-get install -y podman debootstrap runc) and base images
# under the names the Dockerfile/compose use. Where no image registry is reachable,
#   scripts/podman-smoke.sh --build-standins
# first builds local stand-ins: a debootstrapped bookworm, then
# python:3.11-slim-bookworm, postgres:15.10-bookworm and redis:7.4-bookworm on top of
# it from Debian packages. Everything (rootfs, Containerfiles, containers.conf) lives
# in $PODMAN_WORK (/var/tmp/podman-work), podman's images in its own storage: nothing
# in the checkout. CONTAINERS_CONF defaults to $PODMAN_WORK/containers.conf (runc,
# ulimits this kind of host needs).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PODMAN_WORK=${PODMAN_WORK:-/var/tmp/podman-work}
if [ -z "${CONTAINERS_CONF:-}" ] && [ -f "$PODMAN_WORK/containers.conf" ]; then
    export CONTAINERS_CONF="$PODMAN_WORK/containers.conf"
fi

POD=booking-smoke
IMAGE=${IMAGE:-localhost/booking:smoke}
HTTP_PORT=${HTTP_PORT:-18000}
POSTGRES_PASSWORD=smoke-pg-password
BOOKING_SECRET_KEY=smoke-secret-key
METRICS_TOKEN=smoke-metrics-token
PHONE=+393339990077
API="http://127.0.0.1:$HTTP_PORT"

say() { printf '\npodman-smoke: %s\n' "$*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

cleanup() {
    if [ "${KEEP:-0}" = 1 ]; then
        say "left running (KEEP=1): podman pod rm -f $POD"
    else
        podman pod rm -f "$POD" >/dev/null 2>&1 || true
        podman volume rm -f booking-smoke-pgdata booking-smoke-redisdata >/dev/null 2>&1 || true
    fi
}

wait_until() {  # wait_until SECONDS DESCRIPTION COMMAND...
    local seconds=$1 what=$2
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || fail "$what (not within ${seconds}s)"
        sleep 1
    done
}

build_standins() {
    mkdir -p "$PODMAN_WORK/standins/python" "$PODMAN_WORK/standins/postgres" "$PODMAN_WORK/standins/redis"
    if [ ! -f "$PODMAN_WORK/containers.conf" ]; then
        printf '[engine]\nruntime = "runc"\n\n[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n' \
            >"$PODMAN_WORK/containers.conf"
    fi
    export CONTAINERS_CONF="$PODMAN_WORK/containers.conf"
    if ! podman image exists localhost/bookworm-base; then
        [ -d "$PODMAN_WORK/rootfs/usr" ] \
            || debootstrap --variant=minbase bookworm "$PODMAN_WORK/rootfs" http://deb.debian.org/debian
        tar -C "$PODMAN_WORK/rootfs" -c . | podman import - localhost/bookworm-base
    fi
    local std="$PODMAN_WORK/standins"
    # pip in the image build reaches PyPI through this host's extra CAs, if it has any.
    cp /usr/local/share/ca-certificates/*.crt "$std/python/" 2>/dev/null || true
    cat >"$std/python/Containerfile" <<'EOF_PY'
FROM localhost/bookworm-base
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv ca-certificates passwd && rm -rf /var/lib/apt/lists/*
COPY . /usr/local/share/ca-certificates/
RUN rm -f /usr/local/share/ca-certificates/Containerfile && update-ca-certificates \
    && python3 -m venv /usr/local
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt
CMD ["python3"]
EOF_PY
    cat >"$std/postgres/entrypoint.sh" <<'EOF_EP'
#!/bin/sh
# Honours POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB like the official image.
set -e
PGDATA=${PGDATA:-/var/lib/postgresql/data}
BIN=/usr/lib/postgresql/15/bin
mkdir -p "$PGDATA" /run/postgresql
chown -R postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  printf '%s' "${POSTGRES_PASSWORD:?}" > /tmp/pwfile
  chown postgres /tmp/pwfile
  runuser -u postgres -- $BIN/initdb -D "$PGDATA" -U "${POSTGRES_USER:-postgres}" \
      --pwfile=/tmp/pwfile --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f /tmp/pwfile
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  runuser -u postgres -- $BIN/pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  runuser -u postgres -- psql -v ON_ERROR_STOP=1 -U "${POSTGRES_USER:-postgres}" -d postgres \
      -c "CREATE DATABASE \"${POSTGRES_DB:-${POSTGRES_USER:-postgres}}\"" >/dev/null
  runuser -u postgres -- $BIN/pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  echo "stand-in postgres: initialised $PGDATA"
fi
exec runuser -u postgres -- $BIN/postgres -D "$PGDATA" -c listen_addresses='*'
EOF_EP
    chmod +x "$std/postgres/entrypoint.sh"
    cat >"$std/postgres/Containerfile" <<'EOF_PG'
FROM localhost/bookworm-base
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      postgresql-15 && rm -rf /var/lib/apt/lists/*
ENV PATH=/usr/lib/postgresql/15/bin:$PATH
COPY entrypoint.sh /usr/local/bin/docker-entrypoint.sh
EXPOSE 5432
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
EOF_PG
    cat >"$std/redis/Containerfile" <<'EOF_RD'
FROM localhost/bookworm-base
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      redis-server && rm -rf /var/lib/apt/lists/* && mkdir -p /data
WORKDIR /data
EXPOSE 6379
CMD ["redis-server", "--protected-mode", "no"]
EOF_RD
    podman build --pull=never -t docker.io/library/python:3.11-slim-bookworm "$std/python"
    podman build --pull=never -t docker.io/library/postgres:15.10-bookworm "$std/postgres"
    podman build --pull=never -t docker.io/library/redis:7.4-bookworm "$std/redis"
}

if [ "${1:-}" = "--build-standins" ]; then
    build_standins
    say "stand-ins built; now run scripts/podman-smoke.sh"
    exit 0
fi

say "podman build --format docker (keeps HEALTHCHECK) -t $IMAGE"
podman build --pull=never --format docker -t "$IMAGE" .
healthcheck="$(podman image inspect "$IMAGE" --format '{{json .Config.Healthcheck}}')"
printf 'image HEALTHCHECK: %s\n' "$healthcheck"
case "$healthcheck" in *"/health"*) ;; *) fail "HEALTHCHECK missing from the image" ;; esac
podman run --rm "$IMAGE" sh -c 'id; touch /app/.write-test && rm /app/.write-test && echo "/app writable by $(id -un)"' \
    || fail "/app is not writable by the image's user"

podman pod rm -f "$POD" >/dev/null 2>&1 || true
trap cleanup EXIT

# compose's network: one pod, services reach each other as db / redis (as in compose.yaml).
podman pod create --name "$POD" -p "127.0.0.1:$HTTP_PORT:8000" \
    --add-host db:127.0.0.1 --add-host redis:127.0.0.1 >/dev/null
APP_ENV=(
    -e "DATABASE_URL=postgresql://booking:$POSTGRES_PASSWORD@db:5432/booking"
    -e "REDIS_URL=redis://redis:6379/0"
    -e "BOOKING_SECRET_KEY=$BOOKING_SECRET_KEY"
    -e "BOOKING_PUBLIC_BASE_URL=http://localhost:$HTTP_PORT"
    -e "BOOKING_LOG_FORMAT=json"
    -e "BOOKING_METRICS_TOKEN=$METRICS_TOKEN"
)
WORKER_ENV=(-e "BOOKING_WORKER_METRICS_PORT=9108" -e "BOOKING_WORKER_METRICS_HOST=0.0.0.0")

workers_alive() {  # /ready's checks.workers says "1 alive" (or more)
    curl -fsS "$API/ready" | python3 -c 'import json, sys; w = json.load(sys.stdin)["checks"].get("workers", ""); print(w); sys.exit(0 if w.endswith(" alive") and not w.startswith("none") else 1)'
}

say "migrate first, while the database does not exist yet (it must wait)"
podman run -d --pod "$POD" --name booking-smoke-migrate "${APP_ENV[@]}" "$IMAGE" booking migrate >/dev/null

say "db (postgres:15.10-bookworm), redis (redis:7.4-bookworm)"
sleep 3
podman run -d --pod "$POD" --name booking-smoke-db \
    -e POSTGRES_USER=booking -e "POSTGRES_PASSWORD=$POSTGRES_PASSWORD" -e POSTGRES_DB=booking \
    -v booking-smoke-pgdata:/var/lib/postgresql/data docker.io/library/postgres:15.10-bookworm >/dev/null
podman run -d --pod "$POD" --name booking-smoke-redis -v booking-smoke-redisdata:/data \
    docker.io/library/redis:7.4-bookworm redis-server --appendonly yes >/dev/null

migrate_rc="$(podman wait booking-smoke-migrate)"
# Read the log once: `podman logs | grep -q` fails under pipefail (grep closes the pipe).
migrate_log="$(podman logs booking-smoke-migrate 2>&1)"
printf '%s\n' "$migrate_log" | grep -v '^ *- ' || true
[ "$migrate_rc" = 0 ] || fail "booking migrate exited $migrate_rc"
case "$migrate_log" in *"waiting up to"*) ;; *) fail "migrate did not report waiting for the database" ;; esac

say "api and worker (restart unless-stopped, as in compose.yaml)"
podman run -d --pod "$POD" --name booking-smoke-api --restart unless-stopped "${APP_ENV[@]}" \
    "$IMAGE" booking api --host 0.0.0.0 --port 8000 --workers 2 --quiet >/dev/null
podman run -d --pod "$POD" --name booking-smoke-worker --restart unless-stopped "${APP_ENV[@]}" \
    "${WORKER_ENV[@]}" "$IMAGE" booking worker >/dev/null

wait_until 60 "/ready answers 200" curl -fsS "$API/ready"
printf '/ready: %s\n' "$(curl -sS -o /dev/null -w '%{http_code}' "$API/ready")"
podman healthcheck run booking-smoke-api && echo "podman healthcheck run booking-smoke-api: healthy"

say "the worker is alive: its heartbeat in /ready, its metrics port inside the pod"
wait_until 60 "/ready counts a live worker" workers_alive
printf '/ready checks.workers: %s\n' "$(workers_alive)"
wait_until 30 "the worker's metrics port answers" podman exec booking-smoke-api python -c \
    "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9108/metrics', timeout=2)"
podman exec booking-smoke-api python -c \
    "import urllib.request; t = urllib.request.urlopen('http://127.0.0.1:9108/metrics', timeout=2).read().decode(); print('worker /metrics:', len(t.splitlines()), 'lines')"
metrics_anon="$(curl -sS -o /dev/null -w '%{http_code}' "$API/metrics")"
metrics_token="$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $METRICS_TOKEN" "$API/metrics")"
echo "API /metrics: $metrics_anon without the token, $metrics_token with it"
[ "$metrics_token" = 200 ] || fail "/metrics refused the metrics token"
[ "$metrics_anon" != 200 ] || fail "/metrics answered a caller without the token"

say "a business (booking seed) and a partner key (booking key create), inside the image"
BIZ="$(podman exec booking-smoke-api booking seed | sed -n 's/^demo business: //p')"
[ -n "$BIZ" ] || fail "booking seed printed no business"
KEY="$(podman exec booking-smoke-api booking key create --kind partner --partner-name 'Smoke Test' \
    --business "$BIZ" --scope availability:read --scope bookings:read --scope bookings:write \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["key"])')"
echo "business $BIZ, partner key ${KEY:0:16}..."

say "a partner booking through curl: services, availability, hold, confirm"
AUTH=(-H "Authorization: Bearer $KEY")
SERVICE="$(curl -fsS "${AUTH[@]}" "$API/v1/businesses/$BIZ/services" \
    | python3 -c 'import json, sys; d = json.load(sys.stdin); d = d.get("items", d) if isinstance(d, dict) else d; print(d[0]["id"])')"
SLOT="$(curl -fsS -G "${AUTH[@]}" "$API/v1/businesses/$BIZ/availability" \
    --data-urlencode "service_id=$SERVICE" \
    --data-urlencode "from=$(date -u -d tomorrow +%FT00:00:00Z)" \
    --data-urlencode "to=$(date -u -d '8 days' +%FT00:00:00Z)" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["slots"][0]["starts_at"])')"
HOLD="$(curl -fsS "${AUTH[@]}" -H 'Content-Type: application/json' -H "Idempotency-Key: smoke-hold-$SLOT" \
    "$API/v1/businesses/$BIZ/holds" -d '{"service_id":"'"$SERVICE"'","starts_at":"'"$SLOT"'"}')"
HOLD_ID="$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["hold"]["id"])' "$HOLD")"
TOKEN="$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["hold_token"])' "$HOLD")"
BOOKING="$(curl -fsS "${AUTH[@]}" -H 'Content-Type: application/json' -H "Idempotency-Key: smoke-confirm-$SLOT" \
    "$API/v1/holds/$HOLD_ID/confirm" \
    -d '{"hold_token":"'"$TOKEN"'","customer":{"name":"Smoke Tester","phone":"'"$PHONE"'","locale":"en"}}')"
REF="$(python3 -c 'import json, sys; b = json.loads(sys.argv[1]); print(b["reference_code"], b["status"])' "$BOOKING")"
echo "booked: $REF at $SLOT"

say "the worker prints the confirmation SMS (console sender)"
wait_until 60 "SMS to $PHONE in the worker log" sh -c "podman logs booking-smoke-worker 2>&1 | grep -q 'To:   $PHONE'"
podman logs booking-smoke-worker 2>&1 | grep -A1 "To:   $PHONE"

say "a worker that dies is restarted; the API keeps answering"
before="$(podman inspect booking-smoke-worker --format '{{.RestartCount}}')"
kill -KILL "$(podman inspect booking-smoke-worker --format "{{.State.Pid}}")"  # a crash, not a stop
wait_until 60 "worker restarted" sh -c \
    "[ \"\$(podman inspect booking-smoke-worker --format '{{.RestartCount}}')\" -gt $before ] \
     && [ \"\$(podman inspect booking-smoke-worker --format '{{.State.Running}}')\" = true ]"
echo "worker restarts: $before -> $(podman inspect booking-smoke-worker --format '{{.RestartCount}}')"
curl -fsS -o /dev/null "$API/ready" && echo "/ready still 200"
wait_until 60 "the restarted worker's heartbeat" workers_alive
printf '/ready checks.workers after the restart: %s\n' "$(workers_alive)"

say "OK"
