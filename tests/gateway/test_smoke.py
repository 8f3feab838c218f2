from aleph.client import GatewayClient


async def test_owner_can_ping_and_see_health(owner: GatewayClient) -> None:
    assert owner.principal == {"id": "owner", "role": "owner"}
    pong = await owner.call("system.ping")
    assert pong["time"].endswith("Z")
    health = await owner.call("system.health")
    assert health["clients"]["connected"] == 1
