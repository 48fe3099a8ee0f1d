"""compose.yaml and the Dockerfile keep the properties the container path relies on.

The image and services are run for real with podman by scripts/podman-smoke.sh (a
local aid: no container engine in CI); this checks what can be checked statically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return document


def test_compose_is_valid_yaml_with_the_five_services() -> None:
    services = _compose()["services"]
    assert set(services) == {"db", "redis", "migrate", "api", "worker"}
    assert services["migrate"]["command"] == ["booking", "migrate"]
    assert services["worker"]["command"] == ["booking", "worker"]
    assert services["api"]["command"][:2] == ["booking", "api"]


def test_a_dead_worker_is_restarted_and_never_takes_the_api_down() -> None:
    services = _compose()["services"]
    assert services["worker"]["restart"] == "unless-stopped"
    assert services["api"]["restart"] == "unless-stopped"
    for name, service in services.items():
        assert "worker" not in service.get("depends_on", {}), name
    # The image's health check probes the API port, which the worker does not serve.
    assert services["worker"]["healthcheck"] == {"disable": True}


def test_dockerfile_keeps_healthcheck_and_a_writable_home() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "HEALTHCHECK" in text
    assert "/health" in text
    assert "USER booking" in text
    assert "chown booking:booking /app" in text
    assert "PICCOLO_CONF" not in text  # the package sets it itself (booking/__init__.py)
