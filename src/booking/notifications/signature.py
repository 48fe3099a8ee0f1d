"""Twilio webhook signatures (``X-Twilio-Signature``).

Twilio signs every webhook (status callbacks, inbound messages) with HMAC-SHA1 of
the full URL it called followed by the sorted POST parameters, keyed by the
account's auth token. ``url`` must be the public URL Twilio called, scheme, host,
path and query included, not the URL the app sees behind a proxy.
"""

from __future__ import annotations

from collections.abc import Mapping

from twilio.request_validator import RequestValidator

SIGNATURE_HEADER = "X-Twilio-Signature"


def twilio_signature_valid(
    auth_token: str, url: str, params: Mapping[str, str], signature: str | None
) -> bool:
    """True when ``signature`` is Twilio's signature of ``url`` and ``params``.

    ``params`` is the form body as received; a multi-dict (``getall``) is used
    as such, so repeated keys are checked the way Twilio signs them.
    """
    if not signature or not auth_token:
        # RequestValidator.validate would raise TypeError on None.
        return False
    return bool(RequestValidator(auth_token).validate(url, params, signature))


def sign_twilio_request(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """The ``X-Twilio-Signature`` Twilio would send for this request."""
    return str(RequestValidator(auth_token).compute_signature(url, params))
