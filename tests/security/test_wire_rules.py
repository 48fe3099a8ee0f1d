"""Finding 11 of issue 18: the OpenAPI document and OPTIONS say what the server does.

Each test walks the app's whole route table or OpenAPI document, not a hand list:
* every request body's schemas are closed (``additionalProperties: false``) exactly where
  the msgspec Struct behind them refuses unknown fields;
* OPTIONS on every route lists every method the route serves, and the others answer 405;
* every ``date-time`` query parameter refuses a number (``from=1234567890``) with a 400
  problem instead of reading it as a Unix time.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import msgspec
from litestar.routes import HTTPRoute

from booking.app import create_app
from booking.wire_rules import forbids_unknown_fields
from tests.support import World, at

PARAM = re.compile(r"\{(\w+):(\w+)\}")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _structs(type_info: Any, seen: set[type]) -> None:
    """Every Struct class reachable from a msgspec type description."""
    if isinstance(type_info, msgspec.inspect.StructType):
        if type_info.cls in seen:
            return
        seen.add(type_info.cls)
    for value in _slots(type_info):
        _walk(value, seen)


def _slots(obj: Any) -> list[Any]:
    return [getattr(obj, name) for name in getattr(type(obj), "__struct_fields__", ())]


def _walk(value: Any, seen: set[type]) -> None:
    if isinstance(value, msgspec.inspect.Type):
        _structs(value, seen)
    elif isinstance(value, msgspec.inspect.Field):
        _walk(value.type, seen)
    elif isinstance(value, (tuple, list)):
        for item in value:
            _walk(item, seen)


def _refs(node: Any, components: dict[str, Any], found: set[str]) -> None:
    """Every component schema a schema reaches, through any depth of references."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if name not in found:
                found.add(name)
                _refs(components[name], components, found)
        for value in node.values():
            _refs(value, components, found)
    elif isinstance(node, list):
        for item in node:
            _refs(item, components, found)


def test_request_schemas_are_closed_exactly_where_the_server_refuses_unknown_fields() -> None:
    app = create_app()
    document = app.openapi_schema.to_schema()
    components = document["components"]["schemas"]
    checked: dict[str, bool] = {}
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            data = handler.parsed_fn_signature.parameters.get("data")
            if data is None or not handler.include_in_schema:
                continue
            for method in handler.http_methods:
                operation = document["paths"][route.path_format][method.lower()]
                reached: set[str] = set()
                _refs(operation.get("requestBody", {}), components, reached)
                structs: set[type] = set()
                _structs(msgspec.inspect.type_info(data.annotation), structs)
                for struct in structs:
                    fields = {f.encode_name for f in msgspec.inspect.type_info(struct).fields}
                    matches = [
                        name
                        for name in reached
                        if (name == struct.__name__ or name.endswith("_" + struct.__name__))
                        and set(components[name].get("properties", {})) == fields
                    ]
                    assert len(matches) == 1, (method, route.path, struct, sorted(reached))
                    schema = components[matches[0]]
                    closed = schema.get("additionalProperties") is False
                    assert closed == forbids_unknown_fields(struct), (matches[0], struct)
                    checked[matches[0]] = closed
    assert sum(checked.values()) >= 30, checked  # most request bodies are strict
    # A closed schema is the server's real behaviour: Litestar decodes bodies with msgspec,
    # which refuses an unknown member of exactly these Structs.
    for struct in _all_structs(app):
        try:
            msgspec.json.decode(b'{"surely_not_a_member": 1}', type=struct)
            refused = False
        except msgspec.ValidationError as error:
            refused = "unknown field" in str(error)
        assert refused == forbids_unknown_fields(struct), struct


def _all_structs(app: Any) -> list[type]:
    found: set[type] = set()
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            for handler in route.route_handlers:
                data = handler.parsed_fn_signature.parameters.get("data")
                if data is not None:
                    _structs(msgspec.inspect.type_info(data.annotation), found)
    return sorted(found, key=lambda cls: cls.__name__)


async def test_an_unknown_member_is_refused_where_the_schema_is_closed(world: World) -> None:
    body = {"service_id": str(world.cut), "starts_at": at(4, 10).isoformat(), "surprise": 1}
    answer = await world.client("front_desk").post(
        f"/v1/businesses/{world.business_id}/holds", json=body
    )
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    document = create_app().openapi_schema.to_schema()
    operation = document["paths"]["/v1/businesses/{business_id}/holds"]["post"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert schema["additionalProperties"] is False


def _fill(template: str, world: World) -> str:
    def one(match: re.Match[str]) -> str:
        name, kind = match.group(1), match.group(2)
        if name == "business_id":
            return str(world.business_id)
        if name == "staff_id":
            return str(world.staff[0])
        if kind == "uuid":
            return str(uuid.uuid4())
        if kind == "date":
            return "2030-01-07"
        return "x"

    return PARAM.sub(one, template)


async def test_options_lists_every_method_of_every_route(world: World) -> None:
    app = create_app()
    wrong = []
    async with httpx.AsyncClient(
        base_url=world.base_url,
        headers={"Authorization": f"Bearer {world.keys['admin']}"},
        timeout=30,
    ) as client:
        for route in app.routes:
            if not isinstance(route, HTTPRoute):
                continue
            path = _fill(route.path, world)
            answer = await client.options(path)
            allow = set(answer.headers.get("allow", "").split(", "))
            if answer.status_code != 204 or allow != set(route.methods):
                wrong.append(f"{route.path}: {answer.status_code} {allow} != {route.methods}")
            for method in METHODS:
                if method not in route.methods:
                    refused = await client.request(method, path)
                    if refused.status_code != 405:
                        wrong.append(f"{method} {route.path}: {refused.status_code}")
    assert wrong == [], "\n".join(wrong)


def _time_queries(document: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(method, path template, name) of every date-time query parameter."""
    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") != "query":
                    continue
                schema = parameter.get("schema", {})
                formats = {schema.get("format")} | {
                    option.get("format") for option in schema.get("oneOf", [])
                }
                if "date-time" in formats:
                    found.append((method.upper(), path, parameter["name"]))
    return found


async def test_a_number_for_a_date_time_query_is_refused_everywhere(world: World) -> None:
    app = create_app()
    document = app.openapi_schema.to_schema()
    templates = {route.path_format: route.path for route in app.routes}
    cases = _time_queries(document)
    assert {name for _, _, name in cases} >= {"from", "to"}
    assert len(cases) >= 8, cases
    client = world.client("manager")
    for method, path, name in cases:
        url = _fill(templates[path], world)
        for number in ("1234567890", "1e9", "-5", "12.5"):
            answer = await client.request(method, url, params={name: number})
            assert answer.status_code == 400, (path, name, number, answer.text)
            assert answer.headers["content-type"].startswith("application/problem+json")
            problem = answer.json()
            assert problem["type"] == "/problems/malformed-request"
            assert {"type", "title", "status", "detail"} <= set(problem)
            assert [error["key"] for error in problem["errors"]] == [name], problem
        # An RFC 3339 value is not refused for that parameter.
        answer = await client.request(method, url, params={name: at(3, 9).isoformat()})
        if answer.status_code == 400:
            assert all(e.get("key") != name for e in answer.json().get("errors", [])), answer.text
