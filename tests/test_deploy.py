"""The deployment files hold: the example config passes, the manifests are valid, images pin.

No container engine or cluster runs here, so everything is checked offline: the
Kubernetes manifests against the API schemas shipped by `kubernetes-validate`, the compose
file with the compose-spec parser, the Dockerfile and locks against the repository.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
import tomllib
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from compose_spec import PyCompose
from packaging.requirements import Requirement

import adapters
from gateway.cli import preflight
from gateway.config.load import read_settings
from gateway.config.settings import ConnectionSettings
from gateway.errors import ConfigError
from tests.support import CURSOR_SECRET

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
EXAMPLE = DEPLOY / "connections.example.toml"
MANIFESTS = sorted((DEPLOY / "k8s").glob("*.yaml"))
# The oldest Kubernetes still commonly run, and the newest the schemas know.
K8S_VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]


def example_variables() -> set[str]:
    """The environment variables the example's `[secrets]` tables name."""
    doc = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    return {
        var
        for table in doc["connections"].values()
        for var in table["secrets"].values()
    }


def example_env() -> dict[str, str]:
    """Random values for every variable the example names, plus the gateway's own."""
    return {
        **{name: secrets.token_urlsafe(16) for name in example_variables()},
        "GATEWAY_CONFIG": str(EXAMPLE),
        "GATEWAY_CURSOR_SECRET": CURSOR_SECRET,
    }


def test_example_connections_pass_check_config():
    """deploy/connections.example.toml passes the full check with dummy credentials."""
    settings = preflight.check(example_env())
    assert sorted(c.provider for c in settings.connections) == sorted(
        adapters.known_providers()
    )


def test_example_documents_every_key_of_every_provider():
    """Every connection key, and every provider's secrets and options, appear in it."""
    doc = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    text = EXAMPLE.read_text(encoding="utf-8")
    for f in dataclasses.fields(ConnectionSettings):
        if f.name != "id":
            pattern = rf"^#?\s*{f.name}\b|\.{f.name}\]"
            assert re.search(pattern, text, re.MULTILINE), f.name
    for table in doc["connections"].values():
        keys = adapters.load_keys(table["provider"])
        assert set(table.get("secrets", {})) == keys.secrets, table["provider"]
        assert set(table.get("options", {})) == keys.options, table["provider"]


def test_env_example_names_only_variables_the_gateway_reads():
    """deploy/gateway.env.example has no unknown variable; its placeholders are refused."""
    env = {}
    for line in (
        (DEPLOY / "gateway.env.example").read_text(encoding="utf-8").splitlines()
    ):
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name] = value
    env["GATEWAY_CONFIG"] = str(EXAMPLE)
    _settings, problems = read_settings(env, adapters.known_providers())
    assert not [p for p in problems if "unknown" in p]
    assert any(
        p.startswith("GATEWAY_CURSOR_SECRET: is a placeholder") for p in problems
    )
    assert example_variables() <= set(env)


def test_example_secret_manifest_is_refused_as_it_stands():
    """The Secret example's placeholders would stop the gateway at start, not run it."""
    docs = list(yaml.safe_load_all((DEPLOY / "k8s/secret.example.yaml").read_text()))
    gateway = next(
        d for d in docs if d["metadata"]["name"] == "invoice-gateway-secrets"
    )
    env = {**example_env(), **gateway["stringData"]}
    with pytest.raises(ConfigError) as info:
        preflight.check(env)
    text = "\n".join(info.value.problems)
    assert "GATEWAY_CURSOR_SECRET: is a placeholder" in text
    assert "REDIS_URL: its password is a placeholder" in text


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_kubernetes_manifests_are_valid(path, version):
    """Each manifest validates strictly (no unknown fields) against the API schemas."""
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_kubernetes_validation_catches_a_misspelt_field():
    """The validation is not vacuous: a typo in a manifest is an error."""
    doc = yaml.safe_load((DEPLOY / "k8s/service.yaml").read_text(encoding="utf-8"))
    doc["spec"]["selectr"] = doc["spec"].pop("selector")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSIONS[0], strict=True)


def test_kubernetes_set_has_gateway_redis_and_policies():
    """Gateway, Redis, ConfigMap and Secret examples and a NetworkPolicy for each side."""
    kinds = {
        (d["kind"], d["metadata"]["name"])
        for path in MANIFESTS
        for d in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if d
    }
    for wanted in [
        ("Deployment", "invoice-gateway"),
        ("StatefulSet", "invoice-gateway-redis"),
        ("ConfigMap", "invoice-gateway-connections"),
        ("Secret", "invoice-gateway-secrets"),
        ("NetworkPolicy", "invoice-gateway"),
        ("NetworkPolicy", "invoice-gateway-redis"),
        ("HorizontalPodAutoscaler", "invoice-gateway"),
        ("PodDisruptionBudget", "invoice-gateway"),
    ]:
        assert wanted in kinds


def compose() -> dict:
    """deploy/compose.yaml, parsed."""
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


def test_compose_file_is_valid_compose():
    """compose.yaml parses under the compose specification (unknown keys refused)."""
    parsed = PyCompose.from_yaml((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    assert sorted(parsed.service_names()) == ["gateway", "redis"]
    with pytest.raises(ValueError, match="portz"):
        PyCompose.from_yaml("services:\n  a:\n    image: x:1\n    portz: [80]\n")


def test_compose_redis_has_an_acl_user_a_password_from_env_and_aof():
    """Redis starts through the ACL script with its password from the environment; AOF on."""
    redis = compose()["services"]["redis"]
    assert redis["entrypoint"] == ["/usr/local/bin/acl-entrypoint.sh"]
    assert (
        "./redis/acl-entrypoint.sh:/usr/local/bin/acl-entrypoint.sh:ro"
        in redis["volumes"]
    )
    assert redis["environment"]["REDIS_GATEWAY_PASSWORD"].startswith(
        "${REDIS_GATEWAY_PASSWORD:?"
    )
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert "ports" not in redis
    gateway = compose()["services"]["gateway"]
    assert gateway["environment"]["REDIS_URL"].startswith(
        "redis://invoice-gateway:${REDIS_GATEWAY_PASSWORD:?"
    )


def test_compose_publishes_the_api_but_not_metrics():
    """Only the API port reaches the host; /metrics has its own, unpublished port."""
    gateway = compose()["services"]["gateway"]
    metrics_port = gateway["environment"]["GATEWAY_METRICS_PORT"]
    assert gateway["ports"] == ["8080:8080"]
    assert not [p for p in gateway["ports"] if metrics_port in p]


def images() -> list[str]:
    """Every image the compose file and the manifests run."""
    found = [s["image"] for s in compose()["services"].values()]
    for path in MANIFESTS:
        text = path.read_text(encoding="utf-8")
        found += re.findall(r"^\s*image:\s*(\S+)", text, re.MULTILINE)
    return found


def test_images_have_versioned_tags():
    """No `:latest` and no untagged image anywhere: a rollout runs what was tested."""
    for image in images():
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        assert re.fullmatch(r"v?\d+(\.\d+)+(-[\w.]+)?", tag), image
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert any(i.endswith(f"invoice-gateway:{version}") for i in images())


def dockerignore_allows(path: str) -> bool:
    """Whether the build context keeps `path` (the allow-list style .dockerignore)."""
    allowed = False
    for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        rule = line.strip()
        if not rule or rule.startswith("#"):
            continue
        negate = rule.startswith("!")
        pattern = rule.lstrip("!").rstrip("/")
        if rule.lstrip("!") == "*" or path == pattern or path.startswith(pattern + "/"):
            allowed = negate
    return allowed


def test_dockerfile_copies_only_what_the_context_keeps_and_uses_the_locks():
    """COPY sources survive .dockerignore; locks go in with hashes; no fixed health port."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    for line in re.findall(r"^COPY (?!--from)(.+)$", text, re.MULTILINE):
        for source in line.split()[:-1]:
            assert (ROOT / source).exists(), source
            assert dockerignore_allows(source), source
    for forbidden in (".venv", "tests", ".git", "deploy/gateway.env"):
        assert not dockerignore_allows(forbidden), forbidden
    assert "--require-hashes --no-deps -r requirements.lock" in text
    assert "--require-hashes --no-deps -r build.lock" in text
    healthcheck = text[text.index("HEALTHCHECK") :]
    assert "8080" not in healthcheck.split("ENTRYPOINT")[0]
    assert '"invoice-gateway", "healthcheck"' in healthcheck


def locked(path: Path) -> dict[str, str]:
    """`name -> version` of a hashed lock file, every entry checked to carry hashes."""
    text = path.read_text(encoding="utf-8")
    pins = {}
    for block in re.split(r"\n(?=[a-z0-9])", text.split("\n", 2)[2]):
        match = re.match(r"([a-z0-9][a-z0-9._-]*)==([^\s;\\]+)", block)
        assert match, block
        assert "--hash=sha256:" in block, match.group(1)
        pins[match.group(1)] = match.group(2)
    return pins


def test_locks_pin_every_declared_requirement():
    """Each runtime dependency and the build backend are pinned, hashed and in range."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    for lock, wanted in (
        ("requirements.lock", project["project"]["dependencies"]),
        ("build.lock", project["build-system"]["requires"]),
    ):
        pins = locked(DEPLOY / lock)
        for spec in wanted:
            req = Requirement(spec)
            name = re.sub(r"[-_.]+", "-", req.name).lower()
            assert name in pins, (lock, name)
            assert req.specifier.contains(pins[name]), (lock, name, pins[name])
