"""strimzi/: every custom resource valid against the Strimzi 1.2.0 CRDs (unknown fields rejected, as the
API server prunes them), every native object valid for the newest Kubernetes kubernetes-validate knows,
and the pieces fit: kustomization lists every file, services select pods, probes hit the health port."""

from __future__ import annotations

from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import major_minor

from schemas import CATALOGUE

STRIMZI_GROUP = "kafka.strimzi.io"
K8S_VERSION = major_minor(kubernetes_validate.latest_version())


def _closed(schema: Any) -> Any:
    """The CRD schema with `additionalProperties: false` on every object that lists its properties and does
    not preserve unknown fields: a misspelt field fails instead of being pruned away silently."""
    if isinstance(schema, list):
        return [_closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    closed = {k: _closed(v) for k, v in schema.items()}
    if ("properties" in schema and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")):
        closed["additionalProperties"] = False
    return closed


@pytest.fixture(scope="session")
def crd_validators(layout) -> dict[tuple[str, str], jsonschema.Draft7Validator]:
    """(apiVersion, kind) -> validator, from spec.versions[].schema.openAPIV3Schema of each CRD."""
    validators = {}
    for path in sorted((layout.shared / "strimzi-crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            schema = _closed(version["schema"]["openAPIV3Schema"])
            key = (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
            validators[key] = jsonschema.Draft7Validator(schema)
    assert validators, f"no CRDs in {layout.shared / 'strimzi-crds'}"
    return validators


def _errors(validator: jsonschema.Validator, obj: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(obj)]


def test_custom_resources_validate_against_the_strimzi_crds(manifests: list[dict], crd_validators: dict) -> None:
    custom = [o for o in manifests if o["apiVersion"].startswith(STRIMZI_GROUP)]
    assert {o["kind"] for o in custom} == {"Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser"}
    for obj in custom:
        assert obj["apiVersion"] == f"{STRIMZI_GROUP}/v1", obj["metadata"]["name"]
        errors = _errors(crd_validators[(obj["apiVersion"], obj["kind"])], obj)
        assert not errors, f"{obj['kind']}/{obj['metadata']['name']}: {errors}"


def test_crd_validation_rejects_a_misspelt_field(manifests: list[dict], crd_validators: dict) -> None:
    kafka = next(o for o in manifests if o["kind"] == "Kafka")
    broken = {**kafka, "spec": {**kafka["spec"], "kafka": {**kafka["spec"]["kafka"], "listener": []}}}
    assert _errors(crd_validators[(kafka["apiVersion"], "Kafka")], broken)


def test_native_objects_validate_with_kubernetes_validate(manifests: list[dict]) -> None:
    assert K8S_VERSION >= "1.33", K8S_VERSION
    native = [o for o in manifests if not o["apiVersion"].startswith(STRIMZI_GROUP)]
    assert {"Deployment", "Service", "ConfigMap", "HorizontalPodAutoscaler", "Namespace"} <= {o["kind"] for o in native}
    for obj in native:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    broken = {**native[0], "spek": {}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_kustomization_applies_every_manifest(layout) -> None:
    kustomization = yaml.safe_load((layout.strimzi / "base" / "kustomization.yaml").read_text())
    files = {p.name for p in (layout.strimzi / "base").glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    assert kustomization["namespace"] == "timex"
    assert {i["name"] for i in kustomization["images"]} == {layout.image_prefix + s for s in layout.services}


def test_registry_overlay_overrides_every_image_and_the_pull_policy(layout, deployments: dict) -> None:
    overlay = yaml.safe_load((layout.strimzi / "overlays" / "registry" / "kustomization.yaml").read_text())
    assert overlay["resources"] == ["../../base"]
    assert {i["name"] for i in overlay["images"]} == {layout.image_prefix + s for s in layout.services}
    assert all("newName" in i for i in overlay["images"])
    (patch,) = overlay["patches"]
    ops = yaml.safe_load(patch["patch"])
    path = "/spec/template/spec/containers/0/imagePullPolicy"
    assert ops == [{"op": "replace", "path": path, "value": "IfNotPresent"}]
    selector = dict([patch["target"]["labelSelector"].split("=")])
    for name, deployment in deployments.items():
        assert selector.items() <= deployment["metadata"]["labels"].items(), name


def test_manifests_leave_the_namespace_to_kustomize(manifests: list[dict]) -> None:
    assert [o["metadata"]["name"] for o in manifests if "namespace" in o["metadata"]] == []


def test_kafka_cluster_is_one_kraft_node_with_scram_over_tls(manifests: list[dict]) -> None:
    (kafka,) = [o for o in manifests if o["kind"] == "Kafka"]
    (pool,) = [o for o in manifests if o["kind"] == "KafkaNodePool"]
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
    assert set(pool["spec"]["roles"]) == {"controller", "broker"} and pool["spec"]["replicas"] == 1
    assert "limits" in pool["spec"]["resources"]
    (listener,) = kafka["spec"]["kafka"]["listeners"]  # no unauthenticated way in
    assert (listener["port"], listener["tls"], listener["authentication"]["type"]) == (9093, True, "scram-sha-512")
    assert kafka["spec"]["kafka"]["authorization"]["type"] == "simple"
    assert kafka["spec"]["kafka"]["version"] == "4.3.1"
    assert {"topicOperator", "userOperator"} <= kafka["spec"]["entityOperator"].keys()


def test_custom_resources_belong_to_the_cluster(manifests: list[dict]) -> None:
    (kafka,) = [o for o in manifests if o["kind"] == "Kafka"]
    for obj in manifests:
        if obj["kind"] in {"KafkaTopic", "KafkaUser", "KafkaNodePool"}:
            assert obj["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"], obj["metadata"]


def test_kafka_topics_equal_the_catalogue(manifests: list[dict]) -> None:
    topics = {o["spec"]["topicName"]: o["spec"] for o in manifests if o["kind"] == "KafkaTopic"}
    assert set(topics) == {t.name for t in CATALOGUE}
    for t in CATALOGUE:
        spec = topics[t.name]
        assert spec["partitions"] == t.partitions, t.name
        assert {k: str(v) for k, v in spec["config"].items()} == t.config, t.name
        assert spec["replicas"] == 1, t.name  # one broker


def _container(deployment: dict) -> dict:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def test_every_service_has_a_deployment_with_probes_resources_and_no_root(deployments: dict, layout) -> None:
    assert set(deployments) == set(layout.services)
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        container = _container(deployment)
        assert container["image"].split(":")[0] == layout.image_prefix + name
        assert container["imagePullPolicy"] == "Never"  # local images; overlays/registry pulls
        (port,) = container["ports"]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"] == {"path": "/health", "port": port["name"]}, (name, probe)
        assert {"cpu", "memory"} <= container["resources"]["requests"].keys(), name
        assert {"cpu", "memory"} <= container["resources"]["limits"].keys(), name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert {"/tmp", "/var/lib/timex"} <= mounts, name  # the writable places on a read-only root


def test_services_select_their_deployment_on_its_port(manifests: list[dict], deployments: dict) -> None:
    services = {o["metadata"]["name"]: o for o in manifests if o["kind"] == "Service"}
    for name, deployment in deployments.items():
        service = services[f"timex-{name}"]
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= pod_labels.items(), name
        assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items(), name
        (port,) = service["spec"]["ports"]
        (container_port,) = _container(deployment)["ports"]
        assert port["targetPort"] == container_port["name"], name
    assert services["timex-webapp"]["spec"]["type"] == "NodePort"  # `minikube service timex-webapp`


def test_predictor_scales_with_a_horizontal_pod_autoscaler(manifests: list[dict], deployments: dict) -> None:
    (hpa,) = [o for o in manifests if o["kind"] == "HorizontalPodAutoscaler"]
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployments["predictor"]["metadata"]["name"])
    datasets = next(t for t in CATALOGUE if t.name == "datasets")
    assert 2 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"] <= datasets.partitions
    # The autoscaler owns the replica count; a fixed one would be reset on every apply.
    assert "replicas" not in deployments["predictor"]["spec"]
    assert "cpu" in _container(deployments["predictor"])["resources"]["requests"]  # utilisation needs a request


# --- the overlays, rendered (tests/deploy/kustomize.py; checked against `kubectl kustomize` where it exists) ---

OVERLAYS = ("minikube", "production", "registry")


def _render(layout, where: str) -> list[dict]:
    from tests.deploy.kustomize import render

    return render(layout.strimzi if where == "." else layout.strimzi / "overlays" / where)


def _by_key(objects: list[dict]) -> dict[tuple[str, str], dict]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


@pytest.mark.parametrize("where", [".", *OVERLAYS])
def test_the_reader_renders_as_kubectl_kustomize(layout, where: str) -> None:
    import shutil
    import subprocess

    if shutil.which("kubectl") is None:
        pytest.skip("no kubectl here: the overlays are checked with the reader alone")
    path = layout.strimzi if where == "." else layout.strimzi / "overlays" / where
    out = subprocess.run(["kubectl", "kustomize", str(path)], capture_output=True, text=True, check=True).stdout
    assert _by_key(_render(layout, where)) == _by_key([d for d in yaml.safe_load_all(out) if d])


def test_kubectl_apply_k_strimzi_is_the_minikube_overlay_is_the_base(layout, manifests: list[dict]) -> None:
    root, minikube = _by_key(_render(layout, ".")), _by_key(_render(layout, "minikube"))
    assert root == minikube
    assert set(minikube) == set(_by_key(manifests))
    assert all(o["metadata"].get("namespace", "timex") == "timex" for o in minikube.values())
    (pool,) = [o for o in minikube.values() if o["kind"] == "KafkaNodePool"]
    assert pool["spec"]["replicas"] == 1  # minikube: one broker, replication factor 1 (test_kafka_topics_...)


@pytest.mark.parametrize("where", OVERLAYS)
def test_each_overlay_validates_against_the_crds_and_kubernetes(layout, where: str, crd_validators: dict) -> None:
    objects = _render(layout, where)
    for obj in objects:
        if obj["apiVersion"].startswith(STRIMZI_GROUP):
            errors = _errors(crd_validators[(obj["apiVersion"], obj["kind"])], obj)
            assert not errors, f"{where}: {obj['kind']}/{obj['metadata']['name']}: {errors}"
        else:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_production_has_three_brokers_replication_3_and_min_isr_2(layout) -> None:
    objects = _render(layout, "production")
    (kafka,) = [o for o in objects if o["kind"] == "Kafka"]
    (pool,) = [o for o in objects if o["kind"] == "KafkaNodePool"]
    assert pool["spec"]["replicas"] == 3 and set(pool["spec"]["roles"]) == {"controller", "broker"}
    (volume,) = pool["spec"]["storage"]["volumes"]
    assert volume["deleteClaim"] is False  # production data outlives `kubectl delete -k`
    anti_affinity = pool["spec"]["template"]["pod"]["affinity"]["podAntiAffinity"]
    (spread,) = anti_affinity["requiredDuringSchedulingIgnoredDuringExecution"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"  # one broker per node: a node lost is one broker
    assert spread["labelSelector"]["matchLabels"]["strimzi.io/pool-name"] == pool["metadata"]["name"]
    config = kafka["spec"]["kafka"]["config"]
    assert (config["default.replication.factor"], config["offsets.topic.replication.factor"],
            config["transaction.state.log.replication.factor"]) == (3, 3, 3)
    assert config["min.insync.replicas"] == config["transaction.state.log.min.isr"] == 2
    assert kafka["spec"]["kafka"]["rack"] == {"topologyKey": "topology.kubernetes.io/zone"}
    assert kafka["spec"]["kafka"]["template"]["podDisruptionBudget"] == {"maxUnavailable": 1}
    topics = {o["spec"]["topicName"]: o["spec"] for o in objects if o["kind"] == "KafkaTopic"}
    assert set(topics) == {t.name for t in CATALOGUE}
    for name, spec in topics.items():
        assert spec["replicas"] == 3 and spec["config"]["min.insync.replicas"] == "2", name
        catalogue = next(t for t in CATALOGUE if t.name == name)
        assert {k: str(v) for k, v in spec["config"].items() if k != "min.insync.replicas"} == catalogue.config


def test_production_runs_two_of_each_stream_service_under_disruption_budgets(layout) -> None:
    objects = _render(layout, "production")
    deployments = {o["metadata"]["name"].removeprefix("timex-"): o for o in objects if o["kind"] == "Deployment"}
    for name in ("ingestion", "validator", "gateway"):
        assert deployments[name]["spec"]["replicas"] == 2, name
    assert "replicas" not in deployments["predictor"]["spec"]  # its autoscaler runs 2..4
    budgets = [o for o in objects if o["kind"] == "PodDisruptionBudget"]
    for name in ("ingestion", "predictor", "validator", "gateway"):
        pod_labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        covering = [b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()]
        assert len(covering) == 1 and covering[0]["spec"]["maxUnavailable"] == 1, name
        assert covering[0]["metadata"]["namespace"] == "timex"


def test_the_reader_refuses_what_it_does_not_know(tmp_path) -> None:
    from tests.deploy.kustomize import render

    (tmp_path / "kustomization.yaml").write_text("resources: []\ncommonLabels: {a: b}\n")
    with pytest.raises(ValueError, match="commonLabels"):
        render(tmp_path)
