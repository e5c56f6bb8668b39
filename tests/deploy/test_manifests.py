"""examples/deploy/kubernetes.yaml and examples/deploy/Dockerfile (not built here:
no container engine on the test machine): their commands are ones the asgiws CLI
accepts, their timeouts cover asgiws' graceful shutdown, and their health checks
ask for a path the example app serves."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import yaml

from tests.conftest import StartServer
from tests.deploy.recipes import DEFAULTS, DEPLOY_DIR, EXAMPLE_APP, SHUTDOWN_SLACK, recipe_config

MANIFEST = DEPLOY_DIR / "kubernetes.yaml"
DOCKERFILE = DEPLOY_DIR / "Dockerfile"


def manifest() -> dict[str, dict[str, Any]]:
    """The manifest's objects by kind."""
    docs = [doc for doc in yaml.safe_load_all(MANIFEST.read_text()) if doc]
    return {doc["kind"]: doc for doc in docs}


def container() -> dict[str, Any]:
    (only,) = manifest()["Deployment"]["spec"]["template"]["spec"]["containers"]
    result: dict[str, Any] = only
    return result


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile's last stage, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    instructions = [tuple(line.split(None, 1)) for line in lines if line and line[0] != "#"]
    last_from = max(i for i, (name, _) in enumerate(instructions) if name == "FROM")
    return [(name, args) for name, args in instructions[last_from:]]


def dockerfile(name: str) -> str:
    (args,) = [args for found, args in dockerfile_instructions() if found == name]
    return args


def test_kubernetes_grace_period_covers_prestop_and_graceful_shutdown() -> None:
    spec = manifest()["Deployment"]["spec"]["template"]["spec"]
    config = recipe_config(container()["command"][1:])
    # The manifest spells out asgiws' default, so that the sum below is visible.
    assert config.timeout_graceful_shutdown == DEFAULTS.timeout_graceful_shutdown
    pre_stop = container()["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    needed = float(pre_stop[1]) + config.timeout_graceful_shutdown + SHUTDOWN_SLACK
    assert spec["terminationGracePeriodSeconds"] > needed


def test_kubernetes_ports_and_probes_fit_together() -> None:
    objects = manifest()
    deployment, service = objects["Deployment"], objects["Service"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    config = recipe_config(container()["command"][1:])
    assert config.app == EXAMPLE_APP and config.host == "0.0.0.0"
    ports = {port["name"]: port["containerPort"] for port in container()["ports"]}
    assert ports[service["spec"]["ports"][0]["targetPort"]] == config.port
    for probe in ("livenessProbe", "readinessProbe"):
        assert ports[container()[probe]["httpGet"]["port"]] == config.port
        assert container()[probe]["httpGet"]["path"] == "/health"
    # The image's user is the one the pod insists on.
    run_as = deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
    runs = [args for name, args in dockerfile_instructions() if name == "RUN"]
    assert any(re.search(rf"useradd .*--uid {run_as}\b", args) for args in runs)


def test_dockerfile_command_port_and_stop_timeout() -> None:
    command = json.loads(dockerfile("CMD"))
    assert command[0] == "asgiws"
    config = recipe_config(command[1:])
    assert config.app == EXAMPLE_APP and config.host == "0.0.0.0"
    assert dockerfile("EXPOSE") == str(config.port)
    assert f"http://127.0.0.1:{config.port}/health" in dockerfile("HEALTHCHECK")
    assert dockerfile("STOPSIGNAL") == "SIGTERM"
    # docker stops with SIGKILL after 10 s unless told otherwise: the documented
    # command gives the graceful shutdown its time.
    stop_timeout = re.search(r"--stop-timeout (\d+)", DOCKERFILE.read_text())
    assert stop_timeout, "the Dockerfile's run command sets no --stop-timeout"
    assert int(stop_timeout[1]) > config.timeout_graceful_shutdown + SHUTDOWN_SLACK


def test_the_example_app_answers_the_health_checks(run_server: StartServer) -> None:
    paths = {container()[probe]["httpGet"]["path"] for probe in ("livenessProbe", "readinessProbe")}
    paths |= set(re.findall(r"http://127\.0\.0\.1:\d+(/\S*?)'", dockerfile("HEALTHCHECK")))
    assert paths == {"/health"}
    server = run_server(EXAMPLE_APP)
    for path in paths:
        response = httpx.get(server.url + path, timeout=5)
        assert response.status_code == 200 and response.json() == {"status": "ok"}
