"""The production deployment validates (issue 20; docs/design.md#beyond-one-machine;
docs/adr/027).

- deploy/kubernetes/: every core resource against Kubernetes 1.33's schema, strictly (an
  unknown field is an error), with kubernetes-validate; CloudNativePG's resources (Cluster,
  ScheduledBackup, the Barman Cloud plugin's ObjectStore) have no schema on PyPI, so what
  this deployment relies on in them is checked field by field, and their Kubernetes parts
  (resources, metadata, secret references) against Kubernetes' own schemas; then what no
  schema sees: every pod non-root on a read-only root with no capability, every secret a
  file that a pod mounts, every setting named one the service knows, every selector
  matching the pods it means.
- deploy/compose.yaml: against the Compose specification (check-jsonschema's copy), and
  the same checks of its services; its Caddyfile with `caddy validate` where Caddy is
  installed (Debian's package).
- the systemd units: `systemd-analyze verify` (no unknown directive) and `systemd-analyze
  security --offline` (exposure at most 2.0 of 10), with the hardening issue 20 names.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import referencing
import yaml
from kubernetes_validate.utils import SchemaNotFoundError, schema_contents

from service.runtime.settings import Settings, known_variables

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBE = DEPLOY / "kubernetes"
KUBERNETES = "1.33.0"  # the version named in deploy/README.md
CRD_GROUPS = ("postgresql.cnpg.io/", "barmancloud.cnpg.io/")
# Secrets made by someone other than this deployment: CloudNativePG's CA for its servers,
# cert-manager's certificate for the ingress.
MADE_ELSEWHERE = {"mappa-db-ca", "mappa-record-tls"}
# Variables in the pods' environment that are not the service's settings.
NOT_SETTINGS = {"PYTHONDONTWRITEBYTECODE"}
VENV_BIN = Path(sys.executable).parent


def _documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _manifests() -> dict[str, list[dict]]:
    return {
        str(p.relative_to(KUBE)): _documents(p)
        for p in sorted(KUBE.rglob("*.yaml"))
        if p.name != "kustomization.yaml"
    }


def _all() -> list[dict]:
    return [d for docs in _manifests().values() for d in docs]


def _kind(kind: str) -> list[dict]:
    return [d for d in _all() if d["kind"] == kind]


def _one(kind: str, name: str) -> dict:
    [found] = [d for d in _kind(kind) if d["metadata"]["name"] == name]
    return found


def _pod_templates() -> dict[str, dict]:
    out = {}
    for d in _all():
        if d["kind"] in ("Deployment", "Job"):
            out[d["metadata"]["name"]] = d["spec"]["template"]
    return out


def _validate_part(data: dict, schema_name: str) -> None:
    """A Kubernetes type inside a custom resource, against Kubernetes' own schema of it."""
    folder = f"kubernetes-json-schema/v{KUBERNETES}-local-strict"
    schema = schema_contents(f"{folder}/{schema_name}.json", KUBERNETES)
    definitions = schema_contents(f"{folder}/_definitions.json", KUBERNETES)
    registry = referencing.Registry().with_resources(
        [
            (r.id(), r)
            for r in (
                referencing.Resource.from_contents(schema),
                referencing.Resource.from_contents(definitions),
            )
            if r.id()
        ]
    )
    registry = referencing.Resource.from_contents(schema) @ registry
    jsonschema.Draft202012Validator(schema, registry=registry).validate(data)


# -- Kubernetes: schemas ------------------------------------------------------------------


@pytest.mark.parametrize("name", list(_manifests()))
def test_every_core_resource_validates_strictly_against_kubernetes_1_33(name):
    for document in _manifests()[name]:
        if document["apiVersion"].startswith(CRD_GROUPS):
            with pytest.raises(SchemaNotFoundError):  # said, not hidden: checked below
                kubernetes_validate.validate(document, KUBERNETES, strict=True)
            continue
        kubernetes_validate.validate(document, KUBERNETES, strict=True)


def test_the_validator_is_strict_a_misspelt_field_is_refused():
    deployment = _one("Deployment", "mappa-record-api")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["readOnlyRootFilesytem"] = True
    with pytest.raises(kubernetes_validate.ValidationError, match="readOnlyRootFilesytem"):
        kubernetes_validate.validate(deployment, KUBERNETES, strict=True)


def test_kustomization_applies_every_manifest_but_the_examples():
    listed = yaml.safe_load((KUBE / "kustomization.yaml").read_text())["resources"]
    wanted = [
        n for n in _manifests() if not n.startswith("restore/") and n != "secrets.example.yaml"
    ]
    assert sorted(listed) == sorted(wanted)


# -- Kubernetes: CloudNativePG, field by field --------------------------------------------


def test_the_database_is_three_instances_with_synchronous_replication():
    cluster = _one("Cluster", "mappa-db")["spec"]
    assert cluster["instances"] == 3
    sync = cluster["postgresql"]["synchronous"]
    assert sync["method"] in ("any", "first") and sync["number"] >= 1
    assert sync["dataDurability"] == "required"
    assert cluster["postgresql"]["parameters"]["synchronous_commit"] == "on"
    assert cluster["affinity"]["podAntiAffinityType"] == "required"
    _validate_part(cluster["resources"], "resourcerequirements-v1")
    _validate_part(_one("Cluster", "mappa-db")["metadata"], "objectmeta-meta-v1")


def test_the_database_has_roles_for_the_owner_and_a_login_without_ddl():
    cluster = _one("Cluster", "mappa-db")["spec"]
    assert cluster["bootstrap"]["initdb"]["owner"] == "mappa_owner"
    assert (
        "CREATE ROLE mappa_app NOLOGIN" in cluster["bootstrap"]["initdb"]["postInitApplicationSQL"]
    )
    [service] = cluster["managed"]["roles"]
    assert service["login"] and not service["superuser"] and not service["createrole"]
    assert set(service["inRoles"]) == {"mappa_app", "pg_monitor"}
    secrets = {s["metadata"]["name"] for s in _kind("Secret")}
    assert service["passwordSecret"]["name"] in secrets
    assert cluster["bootstrap"]["initdb"]["secret"]["name"] in secrets


def test_backups_are_continuous_with_point_in_time_recovery():
    cluster = _one("Cluster", "mappa-db")["spec"]
    [plugin] = cluster["plugins"]
    assert plugin["name"] == "barman-cloud.cloudnative-pg.io" and plugin["isWALArchiver"]
    store = _one("ObjectStore", plugin["parameters"]["barmanObjectName"])["spec"]
    assert re.fullmatch(r"^[1-9][0-9]*[dwm]$", store["retentionPolicy"])  # the plugin's rule
    assert store["configuration"]["destinationPath"].startswith("s3://")
    for ref in store["configuration"]["s3Credentials"].values():
        _validate_part(ref, "secretkeyselector-v1")
        assert ref["name"] in {s["metadata"]["name"] for s in _kind("Secret")}
    assert store["configuration"]["wal"]["encryption"] == "AES256"
    [scheduled] = _kind("ScheduledBackup")
    assert scheduled["spec"]["cluster"]["name"] == "mappa-db"
    assert scheduled["spec"]["method"] == "plugin"
    assert len(scheduled["spec"]["schedule"].split()) == 6  # CloudNativePG's: seconds first
    restored = _one("Cluster", "mappa-db-restored")["spec"]
    source = restored["bootstrap"]["recovery"]["source"]
    [external] = [c for c in restored["externalClusters"] if c["name"] == source]
    assert external["plugin"]["parameters"]["barmanObjectName"] == "mappa-backups"
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\+00",
        (restored["bootstrap"]["recovery"]["recoveryTarget"]["targetTime"]),
    )


# -- Kubernetes: what no schema sees -------------------------------------------------------


@pytest.mark.parametrize("name", list(_pod_templates()))
def test_every_pod_is_non_root_read_only_without_capabilities_and_bounded(name):
    pod = _pod_templates()[name]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] >= 1000
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    for container in pod["containers"]:
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        assert {"cpu", "memory"} <= set(container["resources"]["limits"])
        for variable in container.get("env", []):
            assert "valueFrom" not in variable, "a secret in the environment, not a file"


def test_the_api_runs_two_or_more_replicas_with_probes_that_spare_a_failover():
    api = _one("Deployment", "mappa-record-api")
    assert api["spec"]["replicas"] >= 2
    [container] = api["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    # Liveness must not ask the database: a failover would restart every pod at once.
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert _one("Deployment", "mappa-record-projections")["spec"]["replicas"] >= 1
    assert (
        _one("Job", "mappa-record-migrate-0-1-0")["spec"]["template"]["spec"]["restartPolicy"]
        == "Never"
    )


def _settings_of(config: dict[str, str]) -> set[str]:
    return {k for k in config if k not in NOT_SETTINGS}


def test_every_setting_is_one_the_service_knows_and_secrets_are_files():
    known = known_variables() | {"DATABASE_URL", "DATABASE_URL_FILE"}
    config = _one("ConfigMap", "mappa-record-config")["data"]
    assert _settings_of(config) <= known, _settings_of(config) - known
    for template in _pod_templates().values():
        for container in template["spec"]["containers"]:
            names = {v["name"] for v in container.get("env", [])}
            assert names - NOT_SETTINGS <= known
    for secret in ("DATABASE_URL", "MAPPA_CIPHER_KEY", "MAPPA_MIGRATE_URL"):
        assert secret not in config  # as files only
    assert config["MAPPA_REQUIRE_SYNC_STANDBY"] == "true"
    assert config["MAPPA_RUN_PROJECTIONS"] == "false"


@pytest.mark.parametrize("name", list(_pod_templates()))
def test_every_file_a_setting_names_is_mounted_from_a_secret_that_exists(name):
    config = _one("ConfigMap", "mappa-record-config")["data"]
    template = _pod_templates()[name]["spec"]
    [container] = template["containers"]
    files = {k: v for k, v in config.items() if k.endswith("_FILE")}
    files |= {
        v["name"]: v["value"] for v in container.get("env", []) if v["name"].endswith("_FILE")
    }
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in template["volumes"]}
    secrets = {s["metadata"]["name"]: s for s in _kind("Secret")} | dict.fromkeys(MADE_ELSEWHERE)
    configmaps = {c["metadata"]["name"]: c for c in _kind("ConfigMap")}
    for variable, path in files.items():
        [mount] = [m for m in mounts if path.startswith(m + "/")]
        volume = volumes[mounts[mount]]
        key = path[len(mount) + 1 :]
        if "secret" in volume:
            assert volume["secret"]["secretName"] in secrets, variable
            secret = secrets[volume["secret"]["secretName"]]
            if secret is not None:
                assert key in secret["stringData"], (variable, key)
            assert volume["secret"]["defaultMode"] in (0o400, 0o444)
        else:
            assert key in configmaps[volume["configMap"]["name"]]["data"], variable
    for volume in volumes.values():  # and every secret mounted exists
        if "secret" in volume:
            assert volume["secret"]["secretName"] in secrets


def test_the_database_urls_are_libpq_urls_the_service_takes_with_tls_verified():
    for name in ("mappa-database-url", "mappa-migrate-url"):
        url = _one("Secret", name)["stringData"]["url"]
        assert Settings._libpq_url(url) == url
        assert "sslmode=verify-full" in url and "target_session_attrs=read-write" in url
        assert "sslrootcert=/run/secrets/mappa/db-ca/ca.crt" in url
        assert "@mappa-db-rw." in url  # the service CloudNativePG moves to the new primary


def _matches(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def test_selectors_find_the_pods_they_mean():
    pods = {
        d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"]
        for d in _kind("Deployment")
    }
    service = _one("Service", "mappa-record-api")
    assert [
        n
        for n, labels in pods.items()
        if _matches({"matchLabels": service["spec"]["selector"]}, labels)
    ] == ["mappa-record-api"]
    for pdb in _kind("PodDisruptionBudget"):
        assert (
            len([n for n, labels in pods.items() if _matches(pdb["spec"]["selector"], labels)]) == 1
        )
    backend = _one("Ingress", "mappa-record")["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend["service"]["name"] == "mappa-record-api"
    assert backend["service"]["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
    ingress = _one("Ingress", "mappa-record")["spec"]
    assert ingress["tls"][0]["hosts"] == [ingress["rules"][0]["host"]]


def test_network_policies_let_the_service_reach_the_database_and_dns_only():
    deny = _one("NetworkPolicy", "mappa-record-default-deny")["spec"]
    assert sorted(deny["policyTypes"]) == ["Egress", "Ingress"]
    assert "ingress" not in deny and "egress" not in deny
    egress = _one("NetworkPolicy", "mappa-record-to-database")["spec"]["egress"]
    peers = [peer for rule in egress for peer in rule["to"]]
    assert {json.dumps(p, sort_keys=True) for p in peers} == {
        json.dumps(
            {"podSelector": {"matchLabels": {"cnpg.io/cluster": "mappa-db"}}}, sort_keys=True
        ),
        json.dumps(
            {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                },
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            },
            sort_keys=True,
        ),
    }
    for pod in _pod_templates().values():
        assert _matches(
            _one("NetworkPolicy", "mappa-record-default-deny")["spec"]["podSelector"],
            pod["metadata"]["labels"],
        )
    api_in = _one("NetworkPolicy", "mappa-record-api-from-ingress")["spec"]["ingress"]
    assert [p["port"] for rule in api_in for p in rule["ports"]] == [8000]


# -- Compose -------------------------------------------------------------------------------


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def _check_jsonschema(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(VENV_BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_compose_validates_against_the_compose_specification(tmp_path):
    ok = _check_jsonschema(DEPLOY / "compose.yaml")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    wrong = tmp_path / "compose.yaml"
    wrong.write_text(
        (DEPLOY / "compose.yaml").read_text().replace("read_only: true", "readonly: true", 1)
    )
    refused = _check_jsonschema(wrong)
    assert refused.returncode != 0 and "readonly" in refused.stdout


def test_compose_runs_a_synchronous_standby_replicas_and_tls_at_the_proxy():
    services = _compose()["services"]
    primary = " ".join(services["db-primary"]["command"])
    assert "synchronous_standby_names=FIRST 1 (db_standby)" in primary
    assert "application_name=db_standby" in (DEPLOY / "compose/standby.sh").read_text()
    assert services["api"]["deploy"]["replicas"] >= 2
    assert services["projections"]["deploy"]["replicas"] >= 1
    assert services["migrate"]["environment"]["MAPPA_MIGRATE_URL_FILE"].startswith("/run/secrets/")
    known = known_variables() | {"DATABASE_URL_FILE"}
    for name in ("api", "projections", "migrate"):
        service = services[name]
        assert service["read_only"] and service["cap_drop"] == ["ALL"]
        assert service["user"].split(":")[0] != "0"
        assert set(service["environment"]) - NOT_SETTINGS <= known
        assert not any(k in service["environment"] for k in ("DATABASE_URL", "MAPPA_CIPHER_KEY"))
    assert services["db-primary"]["networks"] == ["backend"]
    assert _compose()["networks"]["backend"]["internal"] is True
    caddyfile = (DEPLOY / "compose/Caddyfile").read_text()
    assert "name api" in caddyfile and "port 8000" in caddyfile
    assert "health_uri /health/ready" in caddyfile
    assert "tls internal" not in caddyfile and "http://" not in caddyfile.split("{", 2)[2]
    url = (DEPLOY / "compose/secrets.md").read_text()
    assert "@db-primary:5432,db-standby:5432/mappa?target_session_attrs=read-write" in url


@pytest.mark.skipif(shutil.which("caddy") is None, reason="Caddy is not installed here")
def test_the_caddyfile_is_one_caddy_accepts():
    result = subprocess.run(
        [
            "caddy",
            "validate",
            "--adapter",
            "caddyfile",
            "--config",
            str(DEPLOY / "compose/Caddyfile"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and "Valid configuration" in result.stdout + result.stderr


# -- systemd -------------------------------------------------------------------------------

UNITS = ("mappa-record.service", "mappa-record-projections.service", "mappa-record-migrate.service")
SYSTEMD = shutil.which("systemd-analyze")


def _unit_here(name: str, tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this environment's mappa-record, which exists."""
    text = (
        (DEPLOY / name)
        .read_text()
        .replace("/srv/mappa-record/.venv/bin/mappa-record", str(VENV_BIN / "mappa-record"))
    )
    path = tmp_path / name
    path.write_text(text)
    return path


def _directives(name: str) -> list[tuple[str, str]]:
    return [
        tuple(line.split("=", 1))
        for line in (DEPLOY / name).read_text().splitlines()
        if "=" in line and not line.startswith("#")
    ]


@pytest.mark.parametrize("name", UNITS)
def test_units_are_hardened_and_take_secrets_as_credentials(name):
    directives = _directives(name)
    keys = {k for k, _ in directives}
    assert {"MemoryMax", "TasksMax", "TimeoutStopSec", "CapabilityBoundingSet"} <= keys
    assert ("CapabilityBoundingSet", "") in directives
    assert ("NoNewPrivileges", "yes") in directives
    assert ("ProtectSystem", "strict") in directives
    credentials = {v.split(":", 1)[0] for k, v in directives if k == "LoadCredential"}
    assert {"database-url", "cipher-key", "checkpoint-key"} <= credentials
    environment = dict(v.split("=", 1) for k, v in directives if k == "Environment")
    assert environment["DATABASE_URL_FILE"] == "%d/database-url"
    assert set(environment) - NOT_SETTINGS <= known_variables() | {"DATABASE_URL_FILE"}
    assert not {"DATABASE_URL", "MAPPA_CIPHER_KEY", "MAPPA_MIGRATE_URL"} & set(environment)
    if name == "mappa-record-migrate.service":
        assert "migrate-url" in credentials
    else:
        assert "migrate-url" not in credentials  # the owner's URL stays with the migration


@pytest.mark.skipif(SYSTEMD is None, reason="systemd-analyze is not installed here")
@pytest.mark.parametrize("name", UNITS)
def test_systemd_accepts_every_directive_and_rates_the_exposure_low(name, tmp_path):
    unit = _unit_here(name, tmp_path)
    verified = subprocess.run(
        [SYSTEMD, "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert verified.returncode == 0 and not (verified.stdout + verified.stderr).strip(), (
        verified.stdout + verified.stderr
    )
    rated = subprocess.run(
        [SYSTEMD, "security", "--offline=yes", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    exposure = float(re.search(r"Overall exposure level for \S+: ([\d.]+)", rated.stdout).group(1))
    assert exposure <= 2.0, rated.stdout[-3000:]
    print(f"\n{name}: systemd-analyze security exposure {exposure} of 10")
