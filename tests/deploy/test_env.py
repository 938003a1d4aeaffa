"""Every variable a service reads (Settings.from_env, the only reader) is set for it in docker-compose and
in its Strimzi Deployment, with values that agree with the ports, services and secrets around them."""

from __future__ import annotations

from typing import Any

STREAM_WEB = {"TIMEX_WEB_HOST", "TIMEX_WEB_PORT"}  # Faust web server: health + metrics
FAUST = {"KAFKA_BOOTSTRAP_SERVERS", "TIMEX_LOG_LEVEL", "TIMEX_DATA_DIR", *STREAM_WEB}
# Per service: what it reads and must not leave to the defaults (a default is loopback or the host's CPU
# count, wrong in a container) or what an operator should see as a knob.
REQUIRED: dict[str, set[str]] = {
    "ingestion": FAUST | {"TIMEX_URL_ALLOWLIST", "TIMEX_DOWNLOAD_MAX_BYTES", "TIMEX_DOWNLOAD_TIMEOUT_S",
                          "TIMEX_LIVE_MAX_WINDOW_POINTS", "TIMEX_LIVE_MAX_SERIES", "TIMEX_FAST_LANE_MAX_WORK",
                          "TIMEX_FAST_LANE_TIMEOUT_S", "TIMEX_UNIT_MEMORY_MB", "TIMEX_VALIDATOR_FORGET_S"},
    "predictor": FAUST | {"TIMEX_PREDICTOR_CONCURRENCY", "TIMEX_UNIT_MEMORY_MB", "TIMEX_UNIT_TIMEOUT_S",
                          "TIMEX_UNIT_NICE"},
    "validator": FAUST | {"TIMEX_VALIDATOR_DEADLINE_S", "TIMEX_VALIDATOR_STALL_S", "TIMEX_VALIDATOR_FORGET_S"},
    "live": FAUST | {"TIMEX_LIVE_MAX_REQUESTS", "TIMEX_LIVE_MAX_REQUESTS_PER_USER", "TIMEX_LIVE_MAX_SERIES",
                     "TIMEX_LIVE_MAX_RECORDS_PER_S", "TIMEX_UNIT_MEMORY_MB", "TIMEX_UNIT_TIMEOUT_S",
                     "TIMEX_UNIT_NICE"},
    "gateway": {"KAFKA_BOOTSTRAP_SERVERS", "TIMEX_LOG_LEVEL", "TIMEX_GATEWAY_HOST", "TIMEX_GATEWAY_PORT",
                "TIMEX_API_TOKENS", "TIMEX_API_KAFKA_USERS", "TIMEX_RATE_LIMIT_PER_S", "TIMEX_RATE_LIMIT_BURST",
                "TIMEX_READ_RATE_LIMIT_PER_S", "TIMEX_GATEWAY_MAX_REQUESTS"},
    "webapp": {"TIMEX_LOG_LEVEL", "TIMEX_WEBAPP_HOST", "TIMEX_WEBAPP_PORT", "TIMEX_GATEWAY_URL", "TIMEX_API_TOKEN"},
}
# Read by Settings but meaningless in a deployment:
# `make up` only: the embedded broker and its jars, and the supervisor of its processes (a deployment's own
# orchestrator, Compose or Kubernetes, restarts a container instead).
NOT_DEPLOYED = {"TIMEX_CACHE_DIR", "TIMEX_KAFKA_PORT", "TIMEX_KAFKA_CONTROLLER_PORT", "TIMEX_RESTARTS",
                "TIMEX_SUPERVISOR_MAX_RESTARTS", "TIMEX_SUPERVISOR_WINDOW_S"}
LISTEN_HOST = {"TIMEX_WEB_HOST", "TIMEX_GATEWAY_HOST", "TIMEX_WEBAPP_HOST"}


def strimzi_env(deployment: dict[str, Any], manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """name -> {"value": ...} or {"valueFrom": ...}, with envFrom ConfigMaps resolved (env wins, as in k8s)."""
    configmaps = {o["metadata"]["name"]: o["data"] for o in manifests if o["kind"] == "ConfigMap"}
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env: dict[str, dict[str, Any]] = {}
    for source in container.get("envFrom", []):
        env |= {k: {"value": v} for k, v in configmaps[source["configMapRef"]["name"]].items()}
    for var in container.get("env", []):
        env[var["name"]] = {k: v for k, v in var.items() if k != "name"}
    return env


def test_every_variable_settings_reads_is_deployed_somewhere(env_names: set[str], layout) -> None:
    assert set(REQUIRED) == set(layout.services)
    required = set().union(*REQUIRED.values())
    # The SCRAM/TLS variables are Strimzi-only (compose talks PLAINTEXT); checked below for every Kafka client.
    deployed = env_names - NOT_DEPLOYED - layout.kafka_security_vars
    assert deployed == required, "a variable Settings reads is set by no deployment (or vice versa)"
    assert env_names >= NOT_DEPLOYED


def test_compose_sets_what_each_service_reads(compose: dict[str, Any], env_names: set[str]) -> None:
    services = compose["services"]
    for name, required in REQUIRED.items():
        env = services[name]["environment"]
        assert required <= env.keys(), (name, required - env.keys())
        assert env.keys() <= env_names, (name, env.keys() - env_names)  # a typo is not a setting
    assert {"KAFKA_BOOTSTRAP_SERVERS"} <= services["topics"]["environment"].keys()
    assert all(services[s]["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092" for s in ("topics", "gateway"))


def test_compose_values_agree_with_each_other(compose: dict[str, Any]) -> None:
    services = compose["services"]
    gateway = services["gateway"]["environment"]
    assert services["webapp"]["environment"]["TIMEX_GATEWAY_URL"] == f"http://gateway:{gateway['TIMEX_GATEWAY_PORT']}"
    for name, required in REQUIRED.items():
        env = services[name]["environment"]
        for var in required & LISTEN_HOST:
            assert env[var] == "0.0.0.0", (name, var)  # reachable from the other containers


def test_strimzi_sets_what_each_service_reads(deployments: dict, manifests: list[dict], env_names: set[str],
                                             layout) -> None:
    known = env_names | layout.kafka_security_vars
    for name, required in REQUIRED.items():
        if name in layout.kafka_services:
            required = required | layout.kafka_security_vars
        env = strimzi_env(deployments[name], manifests)
        assert required <= env.keys(), (name, required - env.keys())
        assert env.keys() <= known, (name, env.keys() - known)
        if name not in layout.kafka_services:
            assert not {v for v in env if v.startswith("KAFKA_")}, f"{name} gets no Kafka settings"


def test_strimzi_kafka_clients_authenticate_as_their_kafka_user(deployments: dict, manifests: list[dict],
                                                               layout) -> None:
    (kafka,) = [o for o in manifests if o["kind"] == "Kafka"]
    cluster = kafka["metadata"]["name"]
    (listener,) = kafka["spec"]["kafka"]["listeners"]
    users = {o["metadata"]["name"] for o in manifests if o["kind"] == "KafkaUser"}
    for name in layout.kafka_services:
        deployment = deployments[name]
        env = strimzi_env(deployment, manifests)
        user = env["KAFKA_SASL_USERNAME"]["value"]
        assert user == f"timex-{name}" and user in users, name
        # The User Operator stores the generated password in a Secret named like the user.
        assert env["KAFKA_SASL_PASSWORD"] == {"valueFrom": {"secretKeyRef": {"name": user, "key": "password"}}}
        assert env["KAFKA_BOOTSTRAP_SERVERS"]["value"] == f"{cluster}-kafka-bootstrap:{listener['port']}"
        assert env["KAFKA_SECURITY_PROTOCOL"]["value"] == "SASL_SSL" and listener["tls"] is True
        assert env["KAFKA_SASL_MECHANISM"]["value"] == listener["authentication"]["type"].upper()
        # The CA file comes from the cluster CA secret the Cluster Operator publishes.
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        ca_file = env["KAFKA_SSL_CA_LOCATION"]["value"]
        mount = next(m for m in container["volumeMounts"] if ca_file.startswith(m["mountPath"] + "/"))
        volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
        assert volume["secret"]["secretName"] == f"{cluster}-cluster-ca-cert", name
        assert {"key": "ca.crt", "path": ca_file.removeprefix(mount["mountPath"] + "/")} in volume["secret"]["items"]


def test_strimzi_values_agree_with_ports_and_services(deployments: dict, manifests: list[dict]) -> None:
    services = {o["metadata"]["name"]: o for o in manifests if o["kind"] == "Service"}
    port_var = {"gateway": "TIMEX_GATEWAY_PORT", "webapp": "TIMEX_WEBAPP_PORT"}
    for name, deployment in deployments.items():
        env = strimzi_env(deployment, manifests)
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        (port,) = container["ports"]
        assert int(env[port_var.get(name, "TIMEX_WEB_PORT")]["value"]) == port["containerPort"], name
        for var in REQUIRED[name] & LISTEN_HOST:
            assert env[var]["value"] == "0.0.0.0", (name, var)
        data_dir = env.get("TIMEX_DATA_DIR", {}).get("value")
        assert data_dir in {m["mountPath"] for m in container["volumeMounts"]}, name  # writable
    (gateway_port,) = services["timex-gateway"]["spec"]["ports"]
    webapp_env = strimzi_env(deployments["webapp"], manifests)
    assert webapp_env["TIMEX_GATEWAY_URL"]["value"] == f"http://timex-gateway:{gateway_port['port']}"
