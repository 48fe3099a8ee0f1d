"""HTTP for API keys: issue (secret shown once), list (never secrets), revoke."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from booking.access import service
from booking.access.guards import requires
from booking.access.principal import Principal
from booking.access.schemas import KeyCreate, KeyIssued, KeyOut, key_out

KEY_ADMINS = requires(kinds=("admin", "staff"))


class ApiKeyController(Controller):
    path = "/v1/api-keys"
    tags = ["access"]

    @post(
        summary="Issue an API key (the secret is in this answer only)",
        description=(
            "An admin issues partner, staff and app keys (admin keys only with the CLI). A "
            "manager issues staff and app keys for their own business. Partner keys name a "
            "partner (partner_id) or create one (partner_name)."
        ),
        status_code=201,
        opt=KEY_ADMINS,
    )
    async def create_key(
        self, data: JSONBody[KeyCreate], principal: NamedDependency[Principal]
    ) -> KeyIssued:
        issued, row = await service.issue_key(
            principal,
            service.KeyRequest(
                kind=data.kind,
                name=data.name,
                business_ids=tuple(data.business_ids),
                role=data.role,
                partner_id=data.partner_id,
                partner_name=data.partner_name,
                scopes=tuple(data.scopes),
                rate_limit_per_minute=data.rate_limit_per_minute,
            ),
        )
        return KeyIssued(key=issued.key, api_key=await key_out(row))

    @get(summary="Keys you manage (never their secrets)", opt=KEY_ADMINS)
    async def list_keys(
        self,
        principal: NamedDependency[Principal],
        include_revoked: FromQuery[bool] = False,
    ) -> list[KeyOut]:
        rows = await service.list_keys(principal, include_revoked=include_revoked)
        return [await key_out(row) for row in rows]

    @post(
        "/{key_id:uuid}/revoke",
        summary="Revoke a key (idempotent); it stops working at once on this server",
        status_code=200,
        opt=KEY_ADMINS,
    )
    async def revoke_key(
        self, key_id: FromPath[UUID], principal: NamedDependency[Principal]
    ) -> KeyOut:
        return await key_out(await service.revoke_key(principal, key_id))
