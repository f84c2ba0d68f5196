"""The Helm chart (deploy/helm/qiao) and the image (deploy/Dockerfile), without helm or Docker.

Neither a helm binary nor a Docker engine is available where the tests run, so
this checks what can be checked from Python: the chart's metadata, its values
against values.schema.json (as Helm does before rendering), that every
``.Values`` path the templates read is defined, that every ``qiao`` command and
option the chart and the image run exists in the real CLI, that the probes hit
routes the app serves, that the Go template actions are balanced, and that the
qiao.toml the chart renders is one Qiao reads as intended.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from jsonschema import Draft7Validator

from qiao.cli.main import cli
from qiao.core.app import RESERVED_PATHS
from qiao.core.config import Config
from qiao.core.encryption.settings import KeySettings
from qiao.core.pluginmanager import available_plugins

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "qiao"
TEMPLATES = CHART / "templates"
DOCKERFILE = DEPLOY / "Dockerfile"
TEMPLATE_FILES = sorted(p for p in TEMPLATES.iterdir() if p.is_file())
#: The environment variables Qiao reads (core/config/, cli/main.py).
QIAO_ENV = {"QIAO_CONFIG", "QIAO_DATABASE_URL", "QIAO_PLUGINS", "QIAO_HOST", "QIAO_PORT"}


def _load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    return _load_yaml(CHART / "values.yaml")


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def validator(schema: dict[str, Any]) -> Draft7Validator:
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema)


def _merge(base: Any, override: Any) -> Any:
    """Helm's merge of user values over values.yaml: maps merge, anything else replaces."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            if value is None:
                merged.pop(key, None)  # a null removes the key, as in Helm
            else:
                merged[key] = _merge(base.get(key), value)
        return merged
    return copy.deepcopy(override)


def _errors(validator: Draft7Validator, data: Any) -> list[str]:
    return [
        f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator.iter_errors(data)
    ]


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _defines() -> dict[str, str]:
    """The bodies of the named templates in _helpers.tpl, nested if/range blocks included."""
    helpers = _text(TEMPLATES / "_helpers.tpl")
    found: dict[str, str] = {}
    name, start, depth = None, 0, 0
    for match in re.finditer(r"{{-?\s*(.*?)\s*-?}}", helpers, re.S):
        action = match.group(1)
        if action.startswith("/*"):
            continue
        if name is None:
            define = re.fullmatch(r'define "([^"]+)"', action)
            if define:
                name, depth = define.group(1), 1
                start = match.end() + (helpers[match.end()] == "\n")
            continue
        if action.startswith(("if ", "range ", "with ", "define ", "block ")):
            depth += 1
        elif action == "end":
            depth -= 1
            if depth == 0:
                found[name] = helpers[start : match.start()]
                name = None
    return found


# --- Chart.yaml ---------------------------------------------------------------


def test_chart_metadata_is_valid_and_matches_the_release() -> None:
    chart = _load_yaml(CHART / "Chart.yaml")
    pyproject = tomllib.loads(_text(ROOT / "pyproject.toml"))
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == CHART.name == "qiao"
    assert chart["type"] == "application"
    assert re.fullmatch(r"\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?", str(chart["version"]))
    assert isinstance(chart["appVersion"], str), "quote appVersion, or YAML may make it a number"
    assert chart["appVersion"] == pyproject["project"]["version"]
    assert chart.get("description")
    assert chart.get("kubeVersion")


def test_files_without_template_directives_parse_as_yaml() -> None:
    plain = [CHART / "Chart.yaml", CHART / "values.yaml", *sorted((CHART / "ci").glob("*.yaml"))]
    for path in plain:
        assert "{{" not in _text(path), path
        assert isinstance(_load_yaml(path), dict), path


# --- values.yaml and values.schema.json ---------------------------------------


def test_values_yaml_satisfies_the_schema(validator: Draft7Validator, values: dict) -> None:
    assert _errors(validator, values) == []


@pytest.mark.parametrize("path", sorted((CHART / "ci").glob("*.yaml")), ids=lambda p: p.name)
def test_ci_values_satisfy_the_schema(validator: Draft7Validator, values: dict, path: Path) -> None:
    assert _errors(validator, _merge(values, _load_yaml(path))) == []


@pytest.mark.parametrize(
    ("override", "why"),
    [
        ({"api": {"replicaCount": -1}}, "negative replica count"),
        ({"api": {"replicaCount": "two"}}, "replica count not a number"),
        ({"database": None}, "no database configuration at all"),
        ({"database": {"secretKey": None}}, "no key for the URL in the Secret"),
        ({"database": {"secretKey": ""}}, "empty key for the URL in the Secret"),
        (
            {"database": {"url": "postgresql://u:p@db/qiao", "existingSecret": "qiao-db"}},
            "both a URL and an existing Secret: ambiguous",
        ),
        ({"database": {"url": "sqlite:///qiao.db"}}, "SQLite is not for a replicated Deployment"),
        ({"database": {"existingSecret": "Not_A_Name"}}, "not a Kubernetes object name"),
        ({"image": {"pullPolicy": "Sometimes"}}, "unknown pull policy"),
        ({"image": {"repository": ""}}, "no image"),
        ({"service": {"port": 70000}}, "port out of range"),
        ({"api": {"autoscaling": {"targetCPUUtilizationPercentage": 0}}}, "0% CPU target"),
        ({"replicaCount": 3}, "a misplaced key (it is api.replicaCount)"),
        ({"worker": {"replicaCount": -1}}, "negative worker count"),
        ({"worker": {"enabled": "yes"}}, "worker switch not a boolean"),
        ({"worker": {"replicas": 2}}, "a misplaced key (it is worker.replicaCount)"),
        ({"encryption": {"kek": "00"}}, "a misplaced key (it is keys)"),
        (
            {"keys": {"keyFile": '{"current": 1}', "existingSecret": "qiao-keys"}},
            "both a key file and an existing Secret: ambiguous",
        ),
        ({"keys": {"keyFile": "qiao-kek.json"}}, "a file name where the file's JSON belongs"),
        ({"keys": {"existingSecret": "Not_A_Name"}}, "not a Kubernetes object name"),
        ({"keys": {"secretKey": ""}}, "empty key for the key file in the Secret"),
        ({"config": {"plugins": ["Not A Plugin"]}}, "not a plugin name"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_the_schema_rejects_bad_values(
    validator: Draft7Validator, values: dict, override: dict, why: str
) -> None:
    assert _errors(validator, _merge(values, override)), why


@pytest.mark.parametrize(
    "database",
    [
        {"url": "postgresql://qiao:secret@db.internal:5432/qiao"},
        {"url": "postgresql+psycopg://qiao@db/qiao"},
        {"existingSecret": "qiao-database", "secretKey": "url"},
    ],
)
def test_the_schema_accepts_either_way_of_naming_the_database(
    validator: Draft7Validator, values: dict, database: dict
) -> None:
    assert _errors(validator, _merge(values, {"database": database})) == []


def test_without_any_database_the_chart_refuses_to_render() -> None:
    """The schema cannot tell an unset url from the default "", so `required` guards it."""
    body = _defines()["qiao.databaseSecretData"]
    assert 'required "database.url (or database.existingSecret) is required"' in body
    assert ".Values.database.url" in body
    for name in ("secret.yaml", "hook-secret.yaml"):
        text = _text(TEMPLATES / name)
        assert "not .Values.database.existingSecret" in text, name
        assert 'include "qiao.databaseSecretData"' in text, name


def _schema_paths(node: dict, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Paths of the keys the schema declares, down to free-form maps (podLabels, resources ...)."""
    paths = set()
    for key, sub in node.get("properties", {}).items():
        paths.add((*prefix, key))
        if "properties" in sub:
            paths |= _schema_paths(sub, (*prefix, key))
    return paths


def _value_paths(data: dict, schema: dict, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    paths = set()
    for key, value in data.items():
        paths.add((*prefix, key))
        sub = schema.get("properties", {}).get(key, {})
        if isinstance(value, dict) and "properties" in sub:
            paths |= _value_paths(value, sub, (*prefix, key))
    return paths


def test_the_schema_and_values_yaml_declare_the_same_keys(schema: dict, values: dict) -> None:
    in_schema = _schema_paths(schema) - {("global",)}
    in_values = _value_paths(values, schema)
    assert sorted(in_values - in_schema) == [], "in values.yaml but not in the schema"
    assert sorted(in_schema - in_values) == [], "in the schema but not in values.yaml"


# --- .Values paths ------------------------------------------------------------

VALUES_REF = re.compile(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


def _used_paths() -> dict[tuple[str, ...], set[str]]:
    used: dict[tuple[str, ...], set[str]] = {}
    for path in TEMPLATE_FILES:
        for match in VALUES_REF.finditer(_text(path)):
            used.setdefault(tuple(match.group(1).split(".")[1:]), set()).add(path.name)
    return used


def test_templates_read_values_only_as_full_paths() -> None:
    """`with`/`range` over .Values would hide paths from the check below; ingress hosts aside."""
    for path in TEMPLATE_FILES:
        for match in re.finditer(r"{{-?\s*(with|range)\s+([^}]*)}}", _text(path)):
            assert match.group(1) == "range", f"{path.name}: 'with' hides value paths"
            assert match.group(2).strip() in {
                ".Values.ingress.hosts",
                ".paths",
                ".Values.imagePullSecrets",
            }, f"{path.name}: {match.group(0)}"


def test_every_values_path_the_templates_use_is_defined(values: dict) -> None:
    used = _used_paths()
    assert used, "no .Values references found: the pattern is broken"
    missing = []
    for path, files in sorted(used.items()):
        node: Any = values
        for key in path:
            if not isinstance(node, dict) or key not in node:
                missing.append(f".Values.{'.'.join(path)} (in {', '.join(sorted(files))})")
                break
            node = node[key]
    assert missing == []


def test_every_value_is_used_by_some_template(values: dict, schema: dict) -> None:
    used = set(_used_paths())
    unused = [
        ".".join(path)
        for path in sorted(_value_paths(values, schema))
        if not any(path[: len(u)] == u or u[: len(path)] == path for u in used)
    ]
    assert unused == [], "values nothing reads: remove them or use them"


# --- commands -----------------------------------------------------------------


def _options(command: click.Command) -> set[str]:
    opts = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    return opts | {"--help", "-h"}


def _check_invocation(argv: list[str], where: str) -> None:
    """argv (after `qiao`) names a real command, its subcommands, and options they have."""
    command: click.Command = cli
    words = list(argv)
    line = f"{where}: 'qiao {shlex.join(argv)}'"
    while isinstance(command, click.Group):
        assert words, f"{line} names no command"
        word = words.pop(0)
        if word.startswith("-"):
            assert word.split("=", 1)[0] in _options(command), f"{line}: no option {word}"
            if word in {"--help", "-h", "--version"}:
                return
            if word == "--config":
                words.pop(0)
            continue
        found = command.get_command(click.Context(command), word)
        assert found is not None, f"{line}: no command {word!r}"
        command = found
    for word in words:
        if word.startswith("-"):
            assert word.split("=", 1)[0] in _options(command), f"{line}: no option {word}"


def _dockerfile_json(instruction: str) -> list[str]:
    match = re.search(rf"^{instruction}\s+(\[.*\])\s*$", _text(DOCKERFILE), re.M)
    assert match, f"no exec-form {instruction} in the Dockerfile"
    return json.loads(match.group(1))


def test_the_image_runs_qiao_and_serves_by_default() -> None:
    assert _dockerfile_json("ENTRYPOINT") == ["qiao"]
    cmd = _dockerfile_json("CMD")
    assert cmd == ["serve", "--host", "0.0.0.0"]
    _check_invocation(cmd, "Dockerfile CMD")


def _container_args() -> list[tuple[str, list[str]]]:
    found = []
    for path in TEMPLATE_FILES:
        for match in re.finditer(r"^\s*args:\s*(\[.*\])\s*$", _text(path), re.M):
            # Template actions inside the list are option values; any string does.
            literal = re.sub(r"{{.*?}}", "X", match.group(1))
            found.append((path.name, json.loads(literal)))
    return found


def test_containers_run_real_qiao_commands() -> None:
    """The image's ENTRYPOINT is `qiao`, so each container's args are a qiao command line."""
    found = _container_args()
    assert {tuple(args[:1]) for _, args in found} == {("serve",), ("migrate",), ("worker",)}
    for name, args in found:
        _check_invocation(args, name)
    for path in TEMPLATE_FILES:
        text = _text(path)
        # The preStop sleep, and the key file's init container (no Qiao process).
        overrides = re.findall(r"^\s*command:(?!\s*\[\"(sleep|install)\")", text, re.M)
        assert not overrides, f"{path.name} replaces the entrypoint"


def test_every_qiao_command_mentioned_exists() -> None:
    """`qiao X ...` in comments and NOTES, and `kubectl exec ... -- qiao X ...` lines."""
    sources = [*TEMPLATE_FILES, DOCKERFILE, CHART / "values.yaml"]
    pattern = re.compile(r"`qiao ([^`]+)`|-- qiao (.+)$", re.M)
    mentions = 0
    for path in sources:
        for match in pattern.finditer(_text(path)):
            argv = shlex.split(re.sub(r"{{.*?}}", "X", match.group(1) or match.group(2)))
            _check_invocation(argv, path.name)
            mentions += 1
    assert mentions >= 5, "the pattern found too few mentions: is it broken?"


def test_only_environment_variables_qiao_reads_are_set() -> None:
    for path in [*TEMPLATE_FILES, DOCKERFILE]:
        for name in set(re.findall(r"\bQIAO_[A-Z_]+\b", _text(path))):
            assert name in QIAO_ENV, f"{path.name} sets {name}, which Qiao does not read"
    config_source = _text(ROOT / "core" / "config" / "__init__.py")
    for name in QIAO_ENV:
        assert f'"{name}"' in config_source, name


# --- probes, ports, security --------------------------------------------------


def test_probes_hit_routes_the_app_serves() -> None:
    api = _text(TEMPLATES / "deployment-api.yaml")
    probes = dict(re.findall(r"(\w+Probe):\s*\n\s*httpGet:\s*\n\s*path:\s*(\S+)", api))
    assert probes == {
        "startupProbe": "/healthz",
        "livenessProbe": "/healthz",
        "readinessProbe": "/readyz",
    }
    assert set(probes.values()) <= RESERVED_PATHS
    app_source = _text(ROOT / "core" / "app.py")
    for route in probes.values():
        assert f'Route("{route}"' in app_source, route
    for path in TEMPLATE_FILES:
        for route in re.findall(r"path:\s*(/\w+)\s*$", _text(path), re.M):
            assert route in RESERVED_PATHS, f"{path.name} probes {route}"


def test_the_image_healthcheck_uses_python_and_healthz() -> None:
    match = re.search(r"^HEALTHCHECK .*?\\\n\s*CMD\s+(\[.*\])\s*$", _text(DOCKERFILE), re.M)
    assert match, "no exec-form HEALTHCHECK"
    argv = json.loads(match.group(1))
    assert argv[:2] == ["python", "-c"]
    compile(argv[2], "HEALTHCHECK", "exec")
    assert "/healthz" in argv[2]
    assert "curl" not in _text(DOCKERFILE).split("HEALTHCHECK", 1)[1]


def test_one_port_everywhere() -> None:
    port = _defines()["qiao.httpPort"].strip()
    assert port == str(Config.port) == "8000"
    assert re.search(rf"^EXPOSE {port}$", _text(DOCKERFILE), re.M)
    assert '"--port", "{{ include "qiao.httpPort" . }}"' in _text(TEMPLATES / "deployment-api.yaml")


def test_pods_run_as_the_images_non_root_user(values: dict) -> None:
    user = re.search(r"^USER (\d+):(\d+)$", _text(DOCKERFILE), re.M)
    assert user, "the image's USER must be numeric for runAsNonRoot"
    uid, gid = map(int, user.groups())
    assert uid != 0
    pod, container = values["podSecurityContext"], values["containerSecurityContext"]
    assert pod["runAsNonRoot"] is True and container["runAsNonRoot"] is True
    assert (pod["runAsUser"], pod["runAsGroup"]) == (uid, gid)
    assert container["allowPrivilegeEscalation"] is False
    assert container["readOnlyRootFilesystem"] is True
    assert container["capabilities"]["drop"] == ["ALL"]
    for name in ("deployment-api.yaml", "deployment-worker.yaml", "job-migrate.yaml"):
        text = _text(TEMPLATES / name)
        assert 'include "qiao.podCommon"' in text, name
        assert "toYaml .Values.containerSecurityContext" in text, name
    assert "requests" in values["api"]["resources"], "the HPA needs CPU requests"
    assert "cpu" in values["api"]["resources"]["requests"]


def test_the_migration_job_is_a_pre_install_and_pre_upgrade_hook() -> None:
    job = _text(TEMPLATES / "job-migrate.yaml")
    assert '"helm.sh/hook": pre-install,pre-upgrade' in job
    # Hook copies of qiao.toml and the URL are made first (lower weight).
    for name in ("hook-config.yaml", "hook-secret.yaml"):
        text = _text(TEMPLATES / name)
        assert '"helm.sh/hook": pre-install,pre-upgrade' in text
        assert '"helm.sh/hook-weight": "-10"' in text
    assert '"helm.sh/hook-weight": "0"' in job


# --- qiao.toml ----------------------------------------------------------------


def _render_config_toml(values: dict) -> str:
    """The "qiao.configToml" define with its few actions filled in from values."""
    body = _defines()["qiao.configToml"]
    body = body.replace(
        "{{ toJson .Values.config.plugins }}", json.dumps(values["config"]["plugins"])
    )
    body = body.replace(
        "{{ .Values.config.metadataCheckInterval }}", str(values["config"]["metadataCheckInterval"])
    )
    body = body.replace('{{ include "qiao.httpPort" . }}', _defines()["qiao.httpPort"].strip())
    keys = re.search(r'{{- if include "qiao.keysEnabled" \. }}\n(.*?){{- end }}\n\Z', body, re.S)
    assert keys, "the [keys] and [audit] tables are not behind qiao.keysEnabled"
    enabled = bool(values["keys"]["keyFile"] or values["keys"]["existingSecret"])
    inner = keys.group(1).replace('{{ include "qiao.keyFilePath" . }}', _key_file_path())
    body = body[: keys.start()] + (inner if enabled else "")
    assert "{{" not in body, f"an action the test does not fill in: {body}"
    return body


def test_the_rendered_qiao_toml_is_what_qiao_reads(values: dict, tmp_path: Path) -> None:
    path = tmp_path / "qiao.toml"
    path.write_text(_render_config_toml(values), encoding="utf-8")
    url = "postgresql://qiao:secret@db.internal:5432/qiao"
    config = Config.load(env={"QIAO_CONFIG": str(path), "QIAO_DATABASE_URL": url})
    assert config.database_url == url
    assert config.plugins == tuple(values["config"]["plugins"])
    assert (config.host, config.port) == ("0.0.0.0", 8000)
    assert config.metadata_check_interval == values["config"]["metadataCheckInterval"]
    assert set(config.plugins) <= set(available_plugins())
    assert "url" not in tomllib.loads(path.read_text(encoding="utf-8"))["database"]


def _key_file_path() -> str:
    defines = _defines()
    path = defines["qiao.keyFilePath"].strip()
    return path.replace('{{ include "qiao.keyFileDir" . }}', defines["qiao.keyFileDir"].strip())


def test_without_a_key_the_rendered_qiao_toml_names_none(values: dict, tmp_path: Path) -> None:
    text = _render_config_toml(values)
    assert "[keys]" not in text and "[audit]" not in text
    path = tmp_path / "qiao.toml"
    path.write_text(text, encoding="utf-8")
    config = Config.load(env={"QIAO_CONFIG": str(path)})
    assert config.audit.key_file is None
    assert KeySettings.of(config, env={}).file is None


@pytest.mark.parametrize("keys", [{"existingSecret": "qiao-keys"}, {"keyFile": '{"current": 1}'}])
def test_with_a_key_qiao_toml_names_the_mounted_copy_for_keys_and_audit(
    values: dict, tmp_path: Path, keys: dict
) -> None:
    """[keys] file and [audit] key_file both point at the copy the init container makes."""
    path = tmp_path / "qiao.toml"
    path.write_text(_render_config_toml(_merge(values, {"keys": keys})), encoding="utf-8")
    config = Config.load(env={"QIAO_CONFIG": str(path)})
    key_file = Path(_key_file_path())
    assert key_file.is_absolute()
    assert config.audit.key_file == key_file
    settings = KeySettings.of(config, env={})
    assert (settings.provider, settings.file) == ("file", key_file)


def test_the_key_secret_is_mounted_read_only_0400_and_copied_for_the_pods_user() -> None:
    defines = _defines()
    volumes, mounts = defines["qiao.volumes"], defines["qiao.volumeMounts"]
    init = defines["qiao.keysInitContainer"]
    key_dir = defines["qiao.keyFileDir"].strip()
    secret_dir = defines["qiao.keySecretDir"].strip()
    assert _key_file_path() == f"{key_dir}/qiao-kek.json"
    # The Secret: mode 0400, its key renamed to the file name the init container reads.
    secret = volumes.split("- name: key-secret", 1)[1].split("- name: key-file", 1)[0]
    assert "secretName: {{ .keysSecret }}" in secret
    assert "defaultMode: 0400" in secret and "mode: 0400" in secret
    assert "key: {{ .root.Values.keys.secretKey }}\n        path: qiao-kek.json" in secret
    # The copy: memory-backed, mounted read-only into every Qiao container.
    assert re.search(r"- name: key-file\n  emptyDir:\n    medium: Memory", volumes)
    assert re.search(r"- name: key-file\n  mountPath: .*\n  readOnly: true", mounts)
    assert 'include "qiao.keyFileDir"' in mounts
    assert "key-secret" not in mounts, "only the init container reads the Secret itself"
    # The init container reads the Secret read-only and writes a 0400 copy as the pod's user.
    command = re.search(r"command: (\[.*\])", init)
    assert command
    argv = json.loads(re.sub(r'{{ include "(qiao\.\w+)" \.root }}', r"<\1>", command.group(1)))
    assert argv == [
        "install",
        "-m",
        "0400",
        "<qiao.keySecretDir>/qiao-kek.json",
        "<qiao.keyFilePath>",
    ]
    assert 'mountPath: {{ include "qiao.keySecretDir" .root }}\n      readOnly: true' in init
    assert "toYaml .root.Values.containerSecurityContext" in init
    assert 'fail "keys: podSecurityContext.fsGroup must be set' in init
    assert secret_dir != key_dir
    for name in ("deployment-api.yaml", "deployment-worker.yaml", "job-migrate.yaml"):
        text = _text(TEMPLATES / name)
        assert 'include "qiao.keysInitContainer"' in text, name
        assert '"keysSecret" (include "qiao.' in text, name
    assert 'include "qiao.hookKeysSecretName"' in _text(TEMPLATES / "job-migrate.yaml")


def test_the_chart_makes_a_key_secret_only_for_an_inline_key_file() -> None:
    for name in ("secret-keys.yaml", "hook-keys-secret.yaml"):
        text = _text(TEMPLATES / name)
        assert ".Values.keys.keyFile (not .Values.keys.existingSecret)" in text, name
        assert 'include "qiao.keysSecretData"' in text, name
    hook = _text(TEMPLATES / "hook-keys-secret.yaml")
    assert '"helm.sh/hook": pre-install,pre-upgrade' in hook
    assert '"helm.sh/hook-weight": "-10"' in hook
    assert ".Values.keys.existingSecret | default" in _defines()["qiao.keysSecretName"]
    assert ".Values.keys.existingSecret | default" in _defines()["qiao.hookKeysSecretName"]


def test_the_worker_deployment_runs_qiao_worker_and_the_api_then_serves_without_one() -> None:
    worker = _text(TEMPLATES / "deployment-worker.yaml")
    assert worker.count("{{- if .Values.worker.enabled }}") == 1
    assert re.search(r'^\s*args: \["worker"\]$', worker, re.M)
    assert "replicas: {{ .Values.worker.replicaCount }}" in worker
    assert "toYaml .Values.worker.resources" in worker
    assert '"component" "worker"' in worker
    assert "Probe" not in worker, "a worker serves no HTTP"
    api = _text(TEMPLATES / "deployment-api.yaml")
    branches = re.search(
        r"{{- if \.Values\.worker\.enabled }}\n\s*args: (\[.*\])\n"
        r"\s*{{- else }}\n\s*args: (\[.*\])\n\s*{{- end }}",
        api,
    )
    assert branches, "the API's args do not depend on worker.enabled"
    with_worker, without = (json.loads(re.sub(r"{{.*?}}", "X", b)) for b in branches.groups())
    assert with_worker == [*without, "--no-worker"]
    serve = cli.get_command(click.Context(cli), "serve")
    assert serve is not None
    assert "--no-worker" in _options(serve)


def test_qiao_toml_is_mounted_where_qiao_config_points() -> None:
    defines = _defines()
    config_path = defines["qiao.configPath"].strip()
    mount = re.search(r"- name: config\n\s+mountPath: (\S+)", defines["qiao.volumeMounts"])
    item = re.search(r"key: qiao.toml\n\s+path: (\S+)", defines["qiao.volumes"])
    assert mount and item
    assert config_path == f"{mount.group(1)}/{item.group(1)}"
    assert (
        'QIAO_CONFIG\n  value: {{ include "qiao.configPath" .root | quote }}' in defines["qiao.env"]
    )


# --- template syntax ----------------------------------------------------------

ACTION = re.compile(r"{{(.*?)}}", re.S)
OPENERS = ("if ", "range ", "with ", "define ", "block ")


@pytest.mark.parametrize("path", TEMPLATE_FILES, ids=lambda p: p.name)
def test_template_delimiters_and_blocks_balance(path: Path) -> None:
    text = _text(path)
    assert text.count("{{") == text.count("}}"), "unbalanced {{ }}"
    depth = 0
    for match in ACTION.finditer(text):
        inner = match.group(1)
        assert "{{" not in inner, f"nested '{{{{' in {match.group(0)!r}"
        action = inner.strip().removeprefix("-").removesuffix("-").strip()
        if action.startswith("/*"):
            assert action.endswith("*/"), f"unterminated comment {match.group(0)!r}"
            continue
        if action.startswith(OPENERS):
            depth += 1
        elif action == "end":
            depth -= 1
            assert depth >= 0, f"'end' without an opener near {match.start()}"
    assert depth == 0, "an if/range/with/define without its end"


def _skeleton(text: str) -> str:
    """A template with its actions taken out: lines that are only an action go, others get X."""
    text = re.sub(r"^[ \t]*{{-?\s*/\*.*?\*/\s*-?}}[ \t]*\n", "", text, flags=re.S | re.M)
    lines = [line for line in text.splitlines() if not re.fullmatch(r"\s*{{.*}}\s*", line)]
    return re.sub(r"{{.*?}}", "X", "\n".join(lines))


@pytest.mark.parametrize(
    "path", [p for p in TEMPLATE_FILES if p.suffix == ".yaml"], ids=lambda p: p.name
)
def test_template_skeletons_parse_as_kubernetes_yaml(path: Path) -> None:
    """The static part of each manifest is YAML, each document a typed Kubernetes object."""
    documents = [d for d in yaml.safe_load_all(_skeleton(_text(path))) if d is not None]
    assert documents, path.name
    for document in documents:
        assert {"apiVersion", "kind", "metadata"} <= set(document), path.name


# --- Dockerfile ---------------------------------------------------------------


def test_dockerfile_builds_the_wheel_and_installs_it_in_a_later_stage() -> None:
    text = _text(DOCKERFILE)
    stages = re.findall(r"^FROM (\S+) AS (\w+)$", text, re.M)
    assert [name for _, name in stages] == ["build", "runtime"]
    assert len({image for image, _ in stages}) == 1, "the venv's interpreter must exist at run time"
    build, runtime = text.split("\nFROM ", 2)[1:]
    assert "pip wheel --no-deps --wheel-dir /dist ." in build
    assert "pip install /dist/qiao_crm-*.whl" in build
    assert "COPY --from=build /opt/qiao /opt/qiao" in runtime
    assert "COPY . " not in text, "copy named folders, not the whole context"


def test_dockerfile_copies_everything_the_wheel_is_built_from() -> None:
    pyproject = tomllib.loads(_text(ROOT / "pyproject.toml"))
    needed = {"pyproject.toml", pyproject["project"]["readme"]}
    needed |= {f"{folder}/" for folder in pyproject["tool"]["setuptools"]["package-dir"].values()}
    copied: set[str] = set()
    for line in re.findall(r"^COPY (?!--from)(.+)$", _text(DOCKERFILE), re.M):
        *sources, _dest = line.split()
        copied |= set(sources)
    assert needed <= copied, f"not copied: {sorted(needed - copied)}"
    for source in copied:
        assert (ROOT / source).exists(), f"COPY {source}: no such file"
    assert (DEPLOY / "Dockerfile.dockerignore").is_file()
