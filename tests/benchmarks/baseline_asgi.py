"""The bare baseline for lookups: one ASGI function answering `GET /Users?filter=userName eq
"..."` with the same indexed query on the same read-model table, through psycopg's async
pool, and nothing else (no framework, no authentication beyond comparing the header, no
read-your-writes). Lookups through scimledger are measured against it in the same run.

Run (run_load.py does this): SCIMLEDGER_BASELINE_DATABASE=postgresql://... \\
    SCIMLEDGER_BASELINE_ORG=<org id> SCIMLEDGER_BASELINE_TOKEN=<token> \\
    .venv/bin/uvicorn tests.benchmarks.baseline_asgi:app --port 8001 --no-access-log
(or: python -m tests.benchmarks.baseline_asgi PORT, with the same variables).
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any
from urllib.parse import parse_qs

import msgspec
from psycopg_pool import AsyncConnectionPool

_FILTER = re.compile(r'^\s*userName\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$', re.IGNORECASE)
_QUERY = (
    "SELECT id, attributes, active, version, created, last_modified"
    " FROM scim_users WHERE org_id = %s AND user_name_norm = %s"
)
_encode = msgspec.json.encode

_pools: list[AsyncConnectionPool] = []  # the one pool, once started
ORG = os.environ.get("SCIMLEDGER_BASELINE_ORG", "")
AUTHORIZATION = f"Bearer {os.environ.get('SCIMLEDGER_BASELINE_TOKEN', '')}".encode()


async def _respond(send: Any, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/scim+json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                pool = AsyncConnectionPool(
                    os.environ["SCIMLEDGER_BASELINE_DATABASE"], min_size=8, max_size=8, open=False
                )
                await pool.open(wait=True)
                _pools.append(pool)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for pool in _pools:
                    await pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    if dict(scope["headers"]).get(b"authorization") != AUTHORIZATION:
        await _respond(send, 401, b'{"status":"401"}')
        return
    given = parse_qs(scope["query_string"].decode()).get("filter", [""])[0]
    match = _FILTER.match(given)
    if scope["path"] != "/scim/v2/Users" or match is None:
        await _respond(send, 400, b'{"status":"400"}')
        return
    async with _pools[0].connection() as connection:
        cursor = await connection.execute(_QUERY, (ORG, match.group(1).lower()))
        rows = await cursor.fetchall()
    resources = []
    for user_id, attributes, active, version, created, last_modified in rows:
        resource = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": user_id}
        resource.update(json.loads(attributes))
        resource["active"] = active
        resource["meta"] = {
            "resourceType": "User",
            "created": created,
            "lastModified": last_modified,
            "version": f'W/"{version}"',
        }
        resources.append(resource)
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": len(resources),
        "itemsPerPage": len(resources),
        "startIndex": 1,
        "Resources": resources,
    }
    await _respond(send, 200, _encode(body))


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=False, log_level="warning")
