def test_me(qiao_client):
    assert qiao_client.data("{ me { username isAdmin } }") == {
        "me": {"username": "admin", "isAdmin": True}
    }
