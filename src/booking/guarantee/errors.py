"""Refusals of the guarantee (mapped to RFC 9457 by the one handler for DomainError)."""

from __future__ import annotations

from booking.errors import DomainError


class OfferClosed(DomainError):
    code = "offer-closed"
    status = 409
    title = "The offer is no longer open"


class OfferExpired(DomainError):
    code = "offer-expired"
    status = 410
    title = "The offer has expired"
