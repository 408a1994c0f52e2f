"""The Kubernetes manifests of deploy/: schema-valid offline, consistent with each other and with the
project (model name, ports, ssp-net train flags), and the TFJob's TF_CONFIG accepted by the trainer.

The core resources are validated with ``kubernetes-validate`` (bundled JSON schemas, no network).
The TFJob is a custom resource it has no schema for; its structure is checked here, and the
TF_CONFIG the Kubeflow training operator would inject into each replica is built the operator's
way and parsed by the trainer's own functions (`ssp_keras.training.distribute`).
"""

import json
import pathlib
import re
import shlex

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
SERVING = DEPLOY / "serving"
TRAINING = DEPLOY / "training"
KUBERNETES_VERSIONS = ("1.30", "1.33")
MODEL_NAME = "ssp_net"


def documents(folder: pathlib.Path) -> dict:
    """``{(kind, name): document}`` of every YAML manifest in ``folder`` (kustomization excluded)."""
    found = {}
    for path in sorted(folder.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if document:
                key = (document["kind"], document["metadata"]["name"])
                assert key not in found, f"{key} defined twice"
                found[key] = document
    return found


@pytest.fixture(scope="module")
def serving():
    return documents(SERVING)


@pytest.fixture(scope="module")
def training():
    return documents(TRAINING)


def core_documents():
    return [(path.relative_to(ROOT).as_posix(), document)
            for folder in (SERVING, TRAINING) for path in sorted(folder.glob("*.yaml"))
            if path.name != "kustomization.yaml"
            for document in yaml.safe_load_all(path.read_text(encoding="utf-8"))
            if document and document["apiVersion"] != "kubeflow.org/v1"]


# ------------------------------------------------------------------------------ schemas
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_core_manifests_are_valid_kubernetes_resources(version):
    import kubernetes_validate

    checked = []
    for name, document in core_documents():
        # strict: unknown fields (typos) are errors too. Raises ValidationError naming the field.
        kubernetes_validate.validate(document, version, strict=True)
        checked.append((name, document["kind"]))
    kinds = sorted(kind for _, kind in checked)
    assert kinds == ["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PersistentVolumeClaim",
                     "PersistentVolumeClaim", "Service"]


def test_the_validator_catches_a_typo():
    import kubernetes_validate

    deployment = yaml.safe_load((SERVING / "deployment.yaml").read_text(encoding="utf-8"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


@pytest.mark.parametrize("folder", [SERVING, TRAINING], ids=["serving", "training"])
def test_kustomization_lists_every_manifest(folder):
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text(encoding="utf-8"))
    assert kustomization["kind"] == "Kustomization"
    assert sorted(kustomization["resources"]) == sorted(
        path.name for path in folder.glob("*.yaml") if path.name != "kustomization.yaml")


# ------------------------------------------------------------------------------ serving
def test_serving_deployment_matches_the_export_and_the_service(serving):
    deployment = serving[("Deployment", "ssp-net-serving")]
    service = serving[("Service", "ssp-net-serving")]
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]

    # Pinned image, explicit ports.
    assert re.fullmatch(r"tensorflow/serving:\d+\.\d+\.\d+(-gpu)?", container["image"])
    args = container["args"]
    assert "--port=8500" in args and "--rest_api_port=8501" in args
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"grpc": 8500, "http": 8501}

    # Probes: httpGet on the REST model-status endpoint of the exported model's name.
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": f"/v1/models/{MODEL_NAME}", "port": 8501}, probe

    # Requests and limits (the HPA's utilisation is relative to the CPU request).
    resources = container["resources"]
    assert set(resources) == {"requests", "limits"}
    assert {"cpu", "memory"} <= set(resources["requests"]) and {"cpu", "memory"} <= set(resources["limits"])

    # The model volume: the PVC, mounted read-only at /models; the config from the ConfigMap.
    volumes = {volume["name"]: volume for volume in pod["spec"]["volumes"]}
    mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
    assert mounts["/models"]["readOnly"] is True
    claim = volumes[mounts["/models"]["name"]]["persistentVolumeClaim"]
    assert claim["readOnly"] is True and ("PersistentVolumeClaim", claim["claimName"]) in serving
    config_volume = volumes[mounts["/config"]["name"]]["configMap"]
    assert ("ConfigMap", config_volume["name"]) in serving
    assert "--model_config_file=/config/models.config" in args

    # The Service selects the pods and exposes both ports by name.
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    assert {(p["port"], p["targetPort"]) for p in service["spec"]["ports"]} == {(8500, "grpc"), (8501, "http")}

    # The HPA owns the replica count.
    assert "replicas" not in deployment["spec"]


def test_models_config_is_export_models_config_and_points_into_the_volume(serving):
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    text = serving[("ConfigMap", "ssp-net-serving-config")]["data"]["models.config"]
    assert text == (ROOT / "export" / "models.config").read_text(encoding="utf-8")
    config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    (model,) = config.model_config_list.config
    assert model.name == MODEL_NAME and model.base_path == f"/models/{MODEL_NAME}"


def test_hpa_scales_the_deployment_on_cpu(serving):
    hpa = serving[("HorizontalPodAutoscaler", "ssp-net-serving")]
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) in serving and target["apiVersion"] == "apps/v1"
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"
    assert 0 < metric["resource"]["target"]["averageUtilization"] <= 100


def test_shared_volumes_are_read_write_many(serving, training):
    for kind_name, document in {**serving, **training}.items():
        if kind_name[0] == "PersistentVolumeClaim":
            assert document["spec"]["accessModes"] == ["ReadWriteMany"], kind_name


# ------------------------------------------------------------------------------ training
def tfjob(training) -> dict:
    (job,) = [document for (kind, _), document in training.items() if kind == "TFJob"]
    return job


def replica_container(spec: dict) -> dict:
    (container,) = [c for c in spec["template"]["spec"]["containers"] if c["name"] == "tensorflow"]
    return container


def test_tfjob_structure(training):
    job = tfjob(training)
    assert job["apiVersion"] == "kubeflow.org/v1" and job["kind"] == "TFJob"
    replicas = job["spec"]["tfReplicaSpecs"]
    assert set(replicas) == {"Chief", "Worker"}
    assert replicas["Chief"]["replicas"] == 1 and replicas["Worker"]["replicas"] >= 1
    commands = []
    for replica_type, spec in replicas.items():
        assert spec["restartPolicy"] == "OnFailure", replica_type
        container = replica_container(spec)
        # The operator reads the port of "tfjob-port" (default 2222) for the cluster addresses.
        assert {"name": "tfjob-port", "containerPort": 2222, "protocol": "TCP"} in container["ports"]
        assert "TF_CONFIG" not in {env["name"] for env in container.get("env", [])}  # the operator's
        commands.append(container["command"])
        pod = spec["template"]["spec"]
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
        for path in ("/data", "/runs"):
            claim = volumes[mounts[path]["name"]]["persistentVolumeClaim"]["claimName"]
            assert ("PersistentVolumeClaim", claim) in training, path
        assert mounts["/data"]["name"] == mounts["/runs"]["name"]  # one shared volume
        assert mounts["/data"].get("readOnly") is True and not mounts["/runs"].get("readOnly")
    # Every replica runs the same command (multi-worker training: same code everywhere).
    assert all(command == commands[0] for command in commands)


def test_tfjob_command_is_a_valid_ssp_net_train_multiworker_command(training):
    from ssp_keras.cli.main import build_parser

    command = replica_container(tfjob(training)["spec"]["tfReplicaSpecs"]["Chief"])["command"]
    assert command[:2] == ["ssp-net", "train"], shlex.join(command)
    args = build_parser().parse_args(command[1:])  # SystemExit on an unknown flag
    assert args.command == "train" and args.strategy == "multiworker"
    assert args.data == "/data" and args.out == "/runs/exp1"
    assert not args.cpu_replicas and not args.jit_compile  # both refused with multiworker


def operator_tf_config(job: dict, namespace: str, replica_type: str, index: int) -> str:
    """TF_CONFIG as the Kubeflow training operator builds it (genTFConfigJSONStr / genClusterSpec):
    lower-cased replica types, ``<job>-<type>-<i>.<namespace>.svc:<tfjob-port>``, evaluators left
    out, and ``"environment": "cloud"``."""
    cluster = {}
    for rtype, spec in job["spec"]["tfReplicaSpecs"].items():
        if rtype == "Evaluator":
            continue
        (port,) = [p["containerPort"] for p in replica_container(spec)["ports"] if p["name"] == "tfjob-port"]
        kind = rtype.lower()
        cluster[kind] = [f"{job['metadata']['name']}-{kind}-{i}.{namespace}.svc:{port}"
                         for i in range(spec["replicas"])]
    return json.dumps({"cluster": cluster, "task": {"type": replica_type.lower(), "index": index},
                       "environment": "cloud"})


def test_operator_tf_config_is_accepted_by_the_trainer_and_the_chief_replica_is_chief(training, monkeypatch):
    import tensorflow as tf

    from ssp_keras.training.distribute import WorkerRole, worker_role, worker_role_from_tf_config

    job = tfjob(training)
    replicas = job["spec"]["tfReplicaSpecs"]
    workers = replicas["Worker"]["replicas"]
    count = 1 + workers
    roles = {}
    for replica_type, spec in replicas.items():
        for index in range(spec["replicas"]):
            text = operator_tf_config(job, "ml-team", replica_type, index)
            # What resolve_strategy(strategy="multiworker") checks before building the strategy.
            role = worker_role_from_tf_config(text)
            # What the trainer computes from the running strategy (distribute._role): TensorFlow's
            # own TF_CONFIG resolver, then worker_role.
            monkeypatch.setenv("TF_CONFIG", text)
            resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
            assert resolver.task_type == replica_type.lower() and resolver.task_id == index
            assert worker_role(resolver.cluster_spec().as_dict(), resolver.task_type, resolver.task_id) == role
            roles[(replica_type, index)] = role

    assert roles[("Chief", 0)] == WorkerRole(index=0, count=count, is_chief=True)
    for index in range(workers):
        assert roles[("Worker", index)] == WorkerRole(index=1 + index, count=count, is_chief=False)
    # Exactly one chief; the data shards (index of count) cover every replica once.
    assert [key for key, role in roles.items() if role.is_chief] == [("Chief", 0)]
    assert sorted(role.index for role in roles.values()) == list(range(count))
    cluster = json.loads(operator_tf_config(job, "ml-team", "Chief", 0))["cluster"]
    assert cluster["chief"] == ["ssp-net-train-chief-0.ml-team.svc:2222"]
    assert cluster["worker"] == [f"ssp-net-train-worker-{i}.ml-team.svc:2222" for i in range(workers)]
