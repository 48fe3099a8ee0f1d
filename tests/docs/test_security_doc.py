"""docs/security.md names every limit setting of booking.settings, and how to rotate each secret."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIMIT_WORDS = ("LIMIT", "MAX", "TIMEOUT", "SECONDS", "BYTES", "DEPTH", "POOL", "OUTBOUND")


def test_every_limit_setting_is_in_the_security_doc() -> None:
    settings = (ROOT / "src/booking/settings.py").read_text()
    doc = (ROOT / "docs/security.md").read_text()
    names = set(re.findall(r'"(BOOKING_[A-Z_]+)"', settings))
    limits = {name for name in names if any(word in name for word in LIMIT_WORDS)}
    assert len(limits) >= 10
    missing = sorted(name for name in limits if f"`{name}`" not in doc)
    assert not missing, f"limits not in docs/security.md: {missing}"


def test_the_security_doc_has_the_threat_model_and_rotation() -> None:
    doc = (ROOT / "docs/security.md").read_text()
    for heading in ("## Threat model", "**Assets.**", "**Actors.**", "**Trust boundaries.**"):
        assert heading in doc
    for secret in (
        "BOOKING_PREVIOUS_SECRET_KEY",
        "BOOKING_ENCRYPTION_KEYS",
        "rotate-secret",
        "booking key revoke",
        "booking reseal-secrets",
        "CalDAV passwords",
    ):
        assert secret in doc, secret
