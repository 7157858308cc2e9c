"""Every SCIM route but discovery authenticates first: handlers call auth.scim_caller
themselves, so a route that forgot to would answer without a token. This walks the app's
routes and asks each without one."""

from __future__ import annotations

import uuid

from litestar.testing import TestClient

from scimledger.http.app import create_app
from scimledger.http.responses import SCIM_BASE_PATH
from scimledger.http.services import Services

# Discovery is public (RFC 7644 section 4 lets a client read it before authenticating), and
# so is the API's OpenAPI document (it describes the API, it holds no data).
PUBLIC = ("/ServiceProviderConfig", "/ResourceTypes", "/Schemas", "/openapi.json")


def test_every_scim_route_answers_401_without_a_token(services: Services) -> None:
    app = create_app(services)
    some_id = str(uuid.uuid4())
    asked = []
    with TestClient(app=app, base_url="http://scim.test") as client:
        for route in app.routes:
            path = route.path
            if not path.startswith(SCIM_BASE_PATH) or path[len(SCIM_BASE_PATH) :].startswith(
                PUBLIC
            ):
                continue
            concrete = path.replace("{user_id:str}", some_id).replace("{group_id:str}", some_id)
            for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
                response = client.request(method, concrete, json={})
                asked.append((method, path))
                assert response.status_code == 401, (method, path, response.text)
                assert response.headers["www-authenticate"] == 'Bearer realm="scimledger"'
    assert len(asked) == 15, asked  # 7 on users, 7 on groups, and /.search
