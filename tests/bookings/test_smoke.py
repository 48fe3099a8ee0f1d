from tests.support import World, at


async def test_book_and_read_back(world: World) -> None:
    client = world.client("front_desk")
    response = await client.post(
        f"/v1/businesses/{world.business_id}/bookings",
        json=world.booking_body(at(2, 10), staff=world.staff[0]),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "confirmed"
    read = await client.get(f"/v1/bookings/{body['id']}")
    assert read.status_code == 200
    assert read.headers["etag"] == '"1"'
