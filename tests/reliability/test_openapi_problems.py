"""The OpenAPI document describes the error bodies the API really sends (problem+json)."""


def test_every_documented_error_response_is_problem_json(client):
    schema = client.get("/openapi.json").json()
    errors = [
        (path, method, code, response)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        for code, response in operation["responses"].items()
        if code.startswith(("4", "5"))
    ]
    assert errors, "no error responses documented"
    for path, method, code, response in errors:
        assert list(response["content"]) == ["application/problem+json"], (path, method, code)
