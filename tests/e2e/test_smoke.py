from litestar.testing import TestClient


def test_empty_list_answers_200(client: TestClient) -> None:  # type: ignore[type-arg]
    response = client.get("/scim/v2/Users", params={"startIndex": 1, "count": 2})
    assert response.status_code == 200
    assert response.json() == {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": 0,
        "itemsPerPage": 0,
        "startIndex": 1,
        "Resources": [],
    }
