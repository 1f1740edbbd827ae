def test_index_lists_stories(client, story):
    response = client.get("/")
    assert response.status_code == 200
    assert b"Election night" in response.data


def test_live_server_serves_api(live_server):
    import requests

    server, token = live_server
    response = requests.post(
        server.url + "/api/articles",
        json={"title": "Smoke"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert response.status_code == 201, response.text
    assert response.json()["slug"] == "smoke"
