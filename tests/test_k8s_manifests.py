"""The Kubernetes manifests and the Dockerfile hold together and agree with the code.

Pure file parsing: no cluster, no kubectl, no docker, no network.
"""

from __future__ import annotations

import inspect
import json
import re
import shlex
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from aiohttp import web_runner
from sqlalchemy.engine import make_url

from bot.config import BUNDLED_POLICY, Settings, load_rules, load_settings
from scheduler.runner import STOP_GRACE_SECONDS

ROOT = Path(__file__).resolve().parents[1]
K8S_DIR = ROOT / "manifests" / "k8s"
DOCKERFILE = ROOT / "Dockerfile"
SECRET_TEMPLATE = "secret.example.yaml"

Document = dict[str, Any]

# Variables read by the cloud SDKs themselves rather than by Leash's Settings.
SDK_VARIABLES = frozenset(
    {
        "AZURE_CLIENT_ID",
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_FEDERATED_TOKEN_FILE",
        "AZURE_AUTHORITY_HOST",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "GOOGLE_CLOUD_PROJECT",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_STS_REGIONAL_ENDPOINTS",
    }
)
# Secret-template keys that are settings rather than secrets, so need no placeholder.
PLAIN_SECRET_KEYS = frozenset({"MICROSOFT_APP_TYPE"})
PLACEHOLDER = re.compile(r"CHANGE-ME|^0{8}-0{4}-0{4}-0{4}-0{12}$")
# A patch-level slim tag of the official image, optionally pinned by digest as well.
PINNED_PYTHON = re.compile(
    r"(?:docker\.io/(?:library/)?)?python:(\d+)\.(\d+)\.(\d+)-slim(?:-[a-z]+)?(?:@sha256:[0-9a-f]{64})?"
)


# Reading the manifests.


def _yaml_documents(path: Path) -> list[Document]:
    documents = [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]
    for document in documents:
        assert isinstance(document, dict), f"{path.name}: a YAML document is not a mapping"
    return documents


def _manifest_paths() -> list[Path]:
    return sorted(K8S_DIR.glob("*.yaml")) + sorted(K8S_DIR.glob("*.yml"))


@cache
def _objects() -> dict[tuple[str, str], Document]:
    """Every object in manifests/k8s (the Secret template included), by (kind, name)."""
    found: dict[tuple[str, str], Document] = {}
    for path in _manifest_paths():
        for document in _yaml_documents(path):
            key = (str(document.get("kind")), str(document.get("metadata", {}).get("name", "")))
            assert key not in found, f"{path.name}: {key} defined twice"
            found[key] = document
    return found


def _k8s(kind: str, name: str = "leash") -> Document:
    return _objects()[(kind, name)]


def _of_kind(kind: str) -> list[Document]:
    return [document for (found, _), document in _objects().items() if found == kind]


def _deployment() -> Document:
    (deployment,) = _of_kind("Deployment")
    return deployment


def _pod_template() -> Document:
    template: Document = _deployment()["spec"]["template"]
    return template


def _pod_spec() -> Document:
    spec: Document = _pod_template()["spec"]
    return spec


def _pod_labels() -> dict[str, str]:
    labels: dict[str, str] = _pod_template()["metadata"]["labels"]
    return labels


def _container() -> Document:
    containers = _pod_spec()["containers"]
    assert len(containers) == 1
    container: Document = containers[0]
    return container


def _env(container: Document) -> dict[str, Document]:
    return {item["name"]: item for item in container.get("env", [])}


def _port_names(container: Document) -> dict[str, int]:
    return {port["name"]: port["containerPort"] for port in container["ports"]}


def _names_a_container_port(port: object, container: Document) -> bool:
    names = _port_names(container)
    return port in names or port in names.values()


def _secret_template() -> Document:
    (secret,) = _yaml_documents(K8S_DIR / SECRET_TEMPLATE)
    assert secret["kind"] == "Secret"
    return secret


def _secret_data(secret: Document) -> dict[str, str]:
    """The Secret's keys and values (stringData; `data` would be base64, so keys only)."""
    data: dict[str, str] = dict(secret.get("stringData", {}))
    data.update({key: "" for key in secret.get("data", {}) if key not in data})
    return data


def _secret_refs(container: Document) -> Iterator[tuple[str, Document]]:
    """(variable, secretKeyRef) for each variable read from a Secret."""
    for item in container.get("env", []):
        ref = item.get("valueFrom", {}).get("secretKeyRef")
        if ref is not None:
            yield item["name"], ref


def _leash_variables() -> set[str]:
    """Every environment variable Settings reads: LEASH_<FIELD>, or the field's own alias."""
    names: set[str] = set()
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names.add(alias if isinstance(alias, str) else f"LEASH_{field_name.upper()}")
    return names


def _commented_env_names(path: Path) -> set[str]:
    """Variable names in commented-out `- name: X` lines (optional settings shown as examples)."""
    pattern = re.compile(r"^\s*#\s*-\s*name:\s*([A-Z][A-Z0-9_]*)\s*$")
    return {
        match.group(1)
        for line in path.read_text(encoding="utf-8").splitlines()
        if (match := pattern.match(line))
    }


# Reading the Dockerfile.


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined, comments out."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    joined = re.sub(r"\\\n", " ", text)
    found: list[tuple[str, str]] = []
    for raw in joined.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        op, _, args = line.partition(" ")
        found.append((op.upper(), args.strip()))
    return found


def _stages() -> list[list[tuple[str, str]]]:
    """The build stages, each starting with its FROM."""
    stages: list[list[tuple[str, str]]] = []
    for op, args in _instructions():
        if op == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((op, args))
    return stages


def _runtime_stage() -> list[tuple[str, str]]:
    return _stages()[-1]


def _global_args() -> dict[str, str]:
    """ARGs declared before the first FROM, with their defaults."""
    args: dict[str, str] = {}
    for op, value in _instructions():
        if op == "FROM":
            break
        if op == "ARG":
            name, _, default = value.partition("=")
            args[name] = default
    return args


def _base_image(from_args: str) -> str:
    """The image a FROM names, with ${ARG} resolved against the global ARG defaults."""
    image = from_args.split()[0]
    if image.startswith("--platform"):
        image = from_args.split()[1]
    return re.sub(r"\$\{?(\w+)\}?", lambda m: _global_args()[m.group(1)], image)


def _dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for op, args in _runtime_stage():
        if op == "ENV":
            for token in shlex.split(args):
                key, _, value = token.partition("=")
                env[key] = value
    return env


def _dockerfile_one(op: str) -> str:
    values = [args for found, args in _runtime_stage() if found == op]
    assert len(values) == 1, f"the runtime stage should have one {op}, has {len(values)}"
    return values[0]


# Every file parses and is a well-formed object.


def test_every_k8s_yaml_parses_into_objects() -> None:
    paths = _manifest_paths()
    assert {path.name for path in paths} >= {
        "namespace.yaml",
        "serviceaccount.yaml",
        "configmap.yaml",
        "deployment.yaml",
        "service.yaml",
        "poddisruptionbudget.yaml",
        "networkpolicy.yaml",
        "ingress.yaml",
        SECRET_TEMPLATE,
        "kustomization.yaml",
    }
    for path in paths:
        documents = _yaml_documents(path)
        assert documents, f"{path.name} is empty"
        for document in documents:
            assert {"apiVersion", "kind"} <= set(document), path.name


def test_every_object_is_named_and_namespaced() -> None:
    (namespace,) = _of_kind("Namespace")
    name = namespace["metadata"]["name"]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for (kind, _), document in _objects().items():
        if kind in ("Namespace", "Kustomization"):
            continue
        metadata = document["metadata"]
        assert metadata.get("name"), f"a {kind} has no name"
        assert metadata.get("namespace") == name, f"{kind}/{metadata['name']}: namespace"
    kinds = {kind for kind, _ in _objects()}
    expected = {"Deployment", "Service", "PodDisruptionBudget", "ConfigMap", "Secret"}
    expected |= {"Ingress", "NetworkPolicy"}
    assert expected | {"ServiceAccount", "Namespace"} <= kinds


def test_kustomization_lists_every_manifest_but_the_secret_template() -> None:
    kustomization = _k8s("Kustomization", "")
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed)), "a resource is listed twice"
    present = {
        path.name
        for path in _manifest_paths()
        if path.name != "kustomization.yaml" and not path.name.endswith(".example.yaml")
    }
    assert set(listed) == present
    assert SECRET_TEMPLATE not in listed
    assert "secretGenerator" not in kustomization


def test_kustomize_names_the_image_once_and_the_deployment_uses_that_name() -> None:
    images = _k8s("Kustomization", "")["images"]
    assert len(images) == 1, "the image is named in one kustomize `images:` entry"
    (image,) = images
    assert _container()["image"] == image["name"] == "leash"
    assert ":" not in image["name"], "the deployment names the image without tag or registry"
    assert image["newName"].rsplit("/", 1)[-1] == "leash"
    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "version"
    ]
    assert image.get("newTag") == version or re.fullmatch(
        r"sha256:[0-9a-f]{64}", str(image.get("digest", ""))
    ), "pin the image to this release's tag (or a digest)"
    for document in _objects().values():
        for container in (
            document.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
        ):
            assert container["image"] == image["name"], "an image named outside kustomize"


# References resolve.


def test_the_service_account_exists() -> None:
    pod = _pod_spec()
    _k8s("ServiceAccount", pod["serviceAccountName"])
    assert pod["automountServiceAccountToken"] is False


def test_selectors_match_the_pod_template() -> None:
    labels = _pod_labels().items()
    deployment = _deployment()["spec"]["selector"]
    assert deployment["matchLabels"].items() <= labels
    assert "matchExpressions" not in deployment
    service = _k8s("Service")["spec"]
    assert service["selector"].items() <= labels
    pdb = _k8s("PodDisruptionBudget")["spec"]["selector"]
    assert pdb["matchLabels"].items() <= labels
    for policy in _of_kind("NetworkPolicy"):
        assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels
    for spread in _pod_spec().get("topologySpreadConstraints", []):
        assert spread["labelSelector"]["matchLabels"].items() <= labels


def test_ports_name_a_container_port() -> None:
    container = _container()
    (http,) = container["ports"]
    assert http["name"] == "http"
    (service_port,) = _k8s("Service")["spec"]["ports"]
    assert _k8s("Service")["spec"]["type"] == "ClusterIP"
    assert service_port["port"] == 80
    assert _names_a_container_port(service_port["targetPort"], container)
    for policy in _of_kind("NetworkPolicy"):
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        for rule in policy["spec"]["ingress"]:
            assert rule["ports"], "an ingress rule without ports opens every port"
            for port in rule["ports"]:
                assert _names_a_container_port(port["port"], container)


def test_volumes_and_mounts_resolve() -> None:
    pod, container = _pod_spec(), _container()
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    mounted = {mount["name"] for mount in container["volumeMounts"]}
    assert mounted == set(volumes), "a mount without a volume, or a volume never mounted"
    secret = _secret_template()
    for volume in volumes.values():
        if "configMap" in volume:
            data = _k8s("ConfigMap", volume["configMap"]["name"])["data"]
            for item in volume["configMap"].get("items", []):
                assert item["key"] in data, item
        if "secret" in volume:
            assert volume["secret"]["secretName"] == secret["metadata"]["name"]
            for item in volume["secret"].get("items", []):
                assert item["key"] in _secret_data(secret), item


def test_env_references_resolve_to_the_config_map_and_the_secret_template() -> None:
    container, secret = _container(), _secret_template()
    keys = _secret_data(secret)
    refs = dict(_secret_refs(container))
    assert refs, "the Deployment reads nothing from the Secret"
    for variable, ref in refs.items():
        assert ref["name"] == secret["metadata"]["name"], variable
        assert ref["key"] in keys, f"{variable}: {ref['key']} is not in {SECRET_TEMPLATE}"
    assert {ref["key"] for ref in refs.values()} == set(keys), "a template key nobody reads"
    for item in container.get("env", []):
        ref = item.get("valueFrom", {}).get("configMapKeyRef")
        if ref is not None:
            assert ref["key"] in _k8s("ConfigMap", ref["name"])["data"], item["name"]
    for source in container.get("envFrom", []):
        if "secretRef" in source:
            assert source["secretRef"]["name"] == secret["metadata"]["name"]
        if "configMapRef" in source:
            _k8s("ConfigMap", source["configMapRef"]["name"])


# Production shape: replicas, disruption, spread, shutdown.


def test_replicas_roll_without_losing_capacity() -> None:
    spec = _deployment()["spec"]
    assert spec["replicas"] >= 2
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert spec["strategy"]["rollingUpdate"]["maxSurge"] >= 1
    min_available = _k8s("PodDisruptionBudget")["spec"]["minAvailable"]
    assert isinstance(min_available, int), "minAvailable as a count, not a percentage"
    assert 1 <= min_available < spec["replicas"]


def test_replicas_spread_across_nodes() -> None:
    pod = _pod_spec()
    spread = [
        constraint
        for constraint in pod.get("topologySpreadConstraints", [])
        if constraint["topologyKey"] == "kubernetes.io/hostname"
    ]
    anti = pod.get("affinity", {}).get("podAntiAffinity", {})
    terms = anti.get("requiredDuringSchedulingIgnoredDuringExecution", []) + [
        preferred["podAffinityTerm"]
        for preferred in anti.get("preferredDuringSchedulingIgnoredDuringExecution", [])
    ]
    anti_on_nodes = [term for term in terms if term["topologyKey"] == "kubernetes.io/hostname"]
    assert spread or anti_on_nodes, "nothing keeps the replicas off a single node"
    for constraint in spread:
        assert constraint["maxSkew"] == 1


def test_the_grace_period_covers_leash_s_drain() -> None:
    """preStop pause + aiohttp's request drain + the scheduler's two bounded waits."""
    pod, container = _pod_spec(), _container()
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pause = int(command[1])
    shutdown_timeout = inspect.signature(web_runner.BaseRunner.__init__).parameters[
        "shutdown_timeout"
    ]
    drain = pause + float(shutdown_timeout.default) + 2 * STOP_GRACE_SECONDS
    assert pod["terminationGracePeriodSeconds"] >= drain


def test_prometheus_scrapes_metrics_on_the_serving_port() -> None:
    annotations = _pod_template()["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert int(annotations["prometheus.io/port"]) == _port_names(_container())["http"]
    assert '"/metrics"' in (ROOT / "bot" / "http" / "server.py").read_text(encoding="utf-8")


# Probes, resources, security.


def test_probes_hit_healthz_and_readyz_on_the_serving_port() -> None:
    container = _container()
    paths = {"startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/readyz"}
    for probe, path in paths.items():
        check = container[probe]["httpGet"]
        assert check["path"] == path, probe
        assert _names_a_container_port(check["port"], container), probe
    startup = container["startupProbe"]
    # Start-up migrates (and may wait for another replica's migration): give it minutes.
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120


def test_resources_have_requests_and_limits() -> None:
    resources = _container()["resources"]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources[kind]), kind


def test_the_pod_runs_as_non_root_on_a_read_only_root_filesystem() -> None:
    pod, container = _pod_spec(), _container()
    pod_security, security = pod["securityContext"], container["securityContext"]

    def setting(key: str) -> Any:
        return security.get(key, pod_security.get(key))

    assert setting("runAsNonRoot") is True
    assert setting("runAsUser") == 10001
    assert setting("seccompProfile")["type"] == "RuntimeDefault"
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security.get("privileged", False) is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert not security["capabilities"].get("add")
    # With a read-only root, /tmp must be a writable emptyDir.
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    (tmp,) = [mount for mount in container["volumeMounts"] if mount["mountPath"] == "/tmp"]
    assert not tmp.get("readOnly", False)
    assert "emptyDir" in volumes[tmp["name"]]


# Settings: every variable is one Leash (or an SDK) reads, and the values are valid.


def test_every_env_var_names_a_leash_setting_or_an_sdk_variable() -> None:
    known = _leash_variables() | SDK_VARIABLES
    container = _container()
    set_here = set(_env(container)) | set(_secret_data(_secret_template()))
    examples = _commented_env_names(K8S_DIR / "deployment.yaml")
    assert examples, "the optional settings shown in comments were not found"
    unknown = (set_here | examples) - known
    assert not unknown, f"not variables Leash or its SDKs read: {sorted(unknown)}"


def test_leash_accepts_the_deployment_s_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Deployment's values and the Secret template's placeholders load as Settings."""
    for name in _leash_variables() | SDK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    container, secret = _container(), _secret_data(_secret_template())
    for name, item in _env(container).items():
        if "value" in item:
            monkeypatch.setenv(name, str(item["value"]))
    for name, ref in _secret_refs(container):
        monkeypatch.setenv(name, secret[ref["key"]])
    settings = load_settings()
    assert settings.cloud == "aws"
    assert settings.slack_enabled
    assert settings.teams_enabled
    assert make_url(settings.database_url).get_backend_name() == "postgresql"


def test_the_database_is_postgresql_from_the_secret() -> None:
    """No silent SQLite fallback: without the Secret's URL the pod does not start."""
    container = _container()
    variable = _env(container)["LEASH_DATABASE_URL"]
    assert "value" not in variable
    ref = variable["valueFrom"]["secretKeyRef"]
    assert ref.get("optional", False) is False
    url = make_url(_secret_data(_secret_template())[ref["key"]])
    assert url.get_backend_name() == "postgresql"
    assert url.get_driver_name() == "asyncpg"
    mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
    sqlite_dir = PurePosixPath(str(make_url(_dockerfile_env()["LEASH_DATABASE_URL"]).database))
    assert str(sqlite_dir.parent) not in mounts, "a SQLite volume on a multi-replica Deployment"


def test_the_secret_template_holds_only_placeholders() -> None:
    secret = _secret_template()
    assert secret["type"] == "Opaque"
    data = secret["stringData"]
    assert "data" not in secret
    for key in ("LEASH_DATABASE_URL", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"):
        assert key in data, key
    assert {"MICROSOFT_APP_PASSWORD", "AZURE_CLIENT_SECRET"} <= set(data)
    for key, value in data.items():
        if key not in PLAIN_SECRET_KEYS:
            assert PLACEHOLDER.search(str(value)), f"{key} does not look like a placeholder"


def test_the_policy_file_is_mounted_where_leash_reads_it(tmp_path: Path) -> None:
    container, pod = _container(), _pod_spec()
    policy_file = PurePosixPath(_env(container)["LEASH_POLICY_FILE"]["value"])
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == str(policy_file.parent)]
    assert mount["readOnly"] is True
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    config_map = _k8s("ConfigMap", volume["configMap"]["name"])
    paths = {item["path"]: item["key"] for item in volume["configMap"]["items"]}
    text = config_map["data"][paths[policy_file.name]]
    tomllib.loads(text)
    policy = tmp_path / "leash.toml"
    policy.write_text(text, encoding="utf-8")
    assert load_rules(policy) == load_rules(BUNDLED_POLICY), "differs from bot/leash.example.toml"


def test_the_service_account_carries_workload_identity_notes() -> None:
    text = (K8S_DIR / "serviceaccount.yaml").read_text(encoding="utf-8")
    annotations = _k8s("ServiceAccount")["metadata"]["annotations"]
    assert annotations["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    assert "iam.gke.io/gcp-service-account" in text
    assert "azure.workload.identity/client-id" in text


# The image.


def test_the_pod_and_the_image_agree_on_user_port_and_command() -> None:
    pod, container = _pod_spec(), _container()
    user, _, group = _dockerfile_one("USER").partition(":")
    assert user.isdigit(), "the image's USER must be a numeric uid (for runAsNonRoot)"
    assert int(user) != 0
    assert pod["securityContext"]["runAsUser"] == int(user)
    assert pod["securityContext"]["runAsGroup"] == int(group or user)
    image_env, env = _dockerfile_env(), _env(container)
    assert image_env["LEASH_HOST"] == env["LEASH_HOST"]["value"] == "0.0.0.0"  # noqa: S104
    port = int(env["LEASH_PORT"]["value"])
    assert int(image_env["LEASH_PORT"]) == port == int(_dockerfile_one("EXPOSE"))
    assert _port_names(container)["http"] == port
    assert json.loads(_dockerfile_one("ENTRYPOINT")) == ["leash"]
    assert json.loads(_dockerfile_one("CMD")) == container["args"] == ["serve", "--no-console"]


def test_the_dockerfile_builds_in_stages_from_a_pinned_slim_python() -> None:
    stages = _stages()
    assert len(stages) >= 2, "one stage: the build tools would ship in the image"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    minor = re.search(r">=\s*3\.(\d+)", project["project"]["requires-python"])
    assert minor is not None
    for stage in stages:
        image = _base_image(stage[0][1])
        match = PINNED_PYTHON.fullmatch(image)
        assert match, f"{image}: not a patch-level pinned python:X.Y.Z-slim image"
        assert match.group(1, 2) == ("3", minor.group(1)), f"{image}: not the project's Python"
    builder = " ".join(args for stage in stages[:-1] for op, args in stage if op == "RUN")
    assert re.search(r"\buv sync\b[^&;]*--frozen", builder), "dependencies not from uv.lock"


def test_the_runtime_stage_has_no_build_tools() -> None:
    stage = _runtime_stage()
    runs = [args for op, args in stage if op == "RUN"]
    for run in runs:
        for tool in (r"\buv\b", r"\bpip3? install\b", r"\bgcc\b", r"build-essential"):
            assert not re.search(tool, run), f"the runtime stage runs {tool}: {run}"
    copies = [args for op, args in stage if op == "COPY"]
    assert copies, "the runtime stage copies nothing from the builder"
    for copy in copies:
        assert copy.startswith("--from="), f"the runtime stage copies from the context: {copy}"
        assert "/bin/uv" not in copy


def test_the_image_checks_its_own_health_without_curl() -> None:
    healthcheck = _dockerfile_one("HEALTHCHECK")
    assert "/healthz" in healthcheck
    assert "curl" not in healthcheck
    assert "wget" not in healthcheck
    assert json.loads(_dockerfile_one("ENTRYPOINT")) == ["leash"]


@pytest.mark.parametrize(
    "pattern", [".git", ".venv", "**/__pycache__", "*.db", "tests", "bench/results", ".env"]
)
def test_the_build_context_leaves_out_local_state(pattern: str) -> None:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert pattern in {line.strip() for line in lines if not line.startswith("#")}


# The edge: the Ingress publishes the chat endpoints only; the NetworkPolicy admits named sources.

PUBLIC_PATHS = {"/slack/events", "/api/messages"}
# The example's namespaces (networkpolicy.yaml): Prometheus's and the ingress controller's.
MONITORING_NAMESPACE = "monitoring"
INGRESS_CONTROLLER_NAMESPACE = "ingress-nginx"


def _served_paths() -> set[str]:
    """Every path (or sub-application prefix) bot/http/server.py registers."""
    source = (ROOT / "bot" / "http" / "server.py").read_text(encoding="utf-8")
    return set(
        re.findall(r"""\.(?:add_get|add_post|add_route|add_subapp)\(\s*"(/[^"]*)\"""", source)
    )


def _reaches(path: str, path_type: str, target: str) -> bool:
    """Whether an Ingress path of this type matches a request for `target` (or under it)."""
    if path_type == "Exact":
        return target == path
    prefix = path.rstrip("/")
    return target == prefix or target.startswith(prefix + "/") or prefix == ""


def test_the_ingress_routes_only_the_public_paths_over_tls() -> None:
    served = _served_paths()
    assert served >= PUBLIC_PATHS | {"/metrics", "/readyz", "/healthz", "/api/v1"}, served
    private = served - PUBLIC_PATHS
    (ingress,) = _of_kind("Ingress")
    spec = ingress["spec"]
    assert "defaultBackend" not in spec, "a default backend publishes every path"
    service = _k8s("Service")
    service_ports = {port["name"] for port in service["spec"]["ports"]}
    service_ports |= {port["port"] for port in service["spec"]["ports"]}
    tls_hosts = {host for tls in spec["tls"] for host in tls["hosts"]}
    routed: list[str] = []
    for rule in spec["rules"]:
        assert rule.get("host"), "a rule without a host answers for any name"
        assert rule["host"] in tls_hosts, f"{rule['host']} is served without TLS"
        for entry in rule["http"]["paths"]:
            assert entry["pathType"] in ("Exact", "Prefix"), "ImplementationSpecific varies"
            backend = entry["backend"]["service"]
            assert backend["name"] == service["metadata"]["name"]
            port = backend["port"]
            assert port.get("name", port.get("number")) in service_ports, port
            for target in private:
                assert not _reaches(entry["path"], entry["pathType"], target), (
                    f"{entry['path']} ({entry['pathType']}) exposes {target}"
                )
            routed.append(entry["path"])
    assert sorted(routed) == sorted(PUBLIC_PATHS)
    for tls in spec["tls"]:
        assert tls["secretName"], "TLS without a certificate Secret"


def _admits_namespace(rule: Document, namespace: str) -> bool:
    for peer in rule.get("from", []):
        labels = peer.get("namespaceSelector", {}).get("matchLabels", {})
        if labels.get("kubernetes.io/metadata.name") == namespace and "podSelector" not in peer:
            return True
    return False


def test_the_network_policy_admits_monitoring_to_metrics_and_only_named_sources() -> None:
    (policy,) = _of_kind("NetworkPolicy")
    rules = policy["spec"]["ingress"]
    container = _container()
    metrics_port = int(_pod_template()["metadata"]["annotations"]["prometheus.io/port"])
    monitoring = [rule for rule in rules if _admits_namespace(rule, MONITORING_NAMESPACE)]
    assert monitoring, "Prometheus's namespace cannot reach /metrics"
    opened = {
        _port_names(container).get(port["port"], port["port"])
        for rule in monitoring
        for port in rule["ports"]
    }
    assert metrics_port in opened, "Prometheus's namespace is admitted, but not to /metrics"
    for rule in rules:
        # A rule without `from` (or with an empty peer) admits every pod and every address.
        assert rule.get("from"), "an ingress rule open to every source"
        for peer in rule["from"]:
            assert peer, "an empty peer admits everything"
            assert "ipBlock" not in peer, "an address range reaches /metrics as well"
            assert peer.get("namespaceSelector", {}).get("matchLabels"), (
                "a peer without a namespace label admits every namespace"
            )
    # The Ingress's traffic comes through its controller: one rule admits that namespace.
    assert any(_admits_namespace(rule, INGRESS_CONTROLLER_NAMESPACE) for rule in rules)
