def test_a_registered_record_reads_back_with_its_etag(client, auth, register):
    nominal_id = register("police:kent")
    r = client.get(f"/v1/nominals/{nominal_id}", headers=auth("police:kent"))
    assert r.status_code == 200
    assert r.headers["etag"] == '"1"'
    assert [p["agency"] for p in r.json()["partners"]] == ["police:kent", "probation:midlands"]
