"""Tests of the Azure ML endpoint specifications: blue/green managed endpoint with traffic and
mirror traffic, the AKS endpoint, each dumped, loaded back with the SDK and validated offline;
bad rollouts refused before anything is written; nothing printed."""

from __future__ import annotations

import pytest
import yaml

from companion.deployment.azure_endpoints import (
    kubernetes_endpoint_specs,
    managed_endpoint_specs,
)
from companion.errors import InvalidParameterError

pytest.importorskip("azure.ai.ml")


def test_managed_blue_green_round_trips(tmp_path, capsys):
    spec = managed_endpoint_specs(tmp_path, model="lumen-churn", blue_version=3,
                                  green_version=4)
    assert capsys.readouterr() == ("", "")  # the SDK's "experimental class" lines are caught
    assert spec.kind == "managed" and spec.validation == "Succeeded"
    assert sum(spec.traffic.values()) == 100 and spec.traffic == {"blue": 100, "green": 0}
    assert spec.mirror_traffic == {"green": 10}
    assert spec.models == {"blue": "lumen-churn:3", "green": "lumen-churn:4"}
    endpoint = yaml.safe_load(spec.endpoint.read_text())
    assert endpoint["traffic"] == {"blue": 100, "green": 0}
    assert endpoint["mirror_traffic"] == {"green": 10}
    for path in spec.deployments.values():
        document = yaml.safe_load(path.read_text())
        assert document["type"] == "managed" and document["endpoint_name"] == "lumen-churn"
        assert document["environment_variables"] == {"OMP_NUM_THREADS": "1"}
        assert str(tmp_path) not in path.read_text()  # registry references, no local paths
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blue.yml", "endpoint.yml",
                                                          "green.yml"]


def test_canary_stage_round_trips(tmp_path):
    spec = managed_endpoint_specs(tmp_path, model="lumen-churn", blue_version=3,
                                  green_version=4, traffic={"blue": 90, "green": 10},
                                  mirror_traffic={})
    assert spec.traffic == {"blue": 90, "green": 10} and spec.mirror_traffic == {}


def test_aks_round_trips(tmp_path):
    spec = kubernetes_endpoint_specs(tmp_path, model="lumen-churn", version=3)
    assert spec.kind == "kubernetes" and spec.traffic == {"blue": 100}
    assert spec.models == {"blue": "lumen-churn:3"}
    endpoint = yaml.safe_load(spec.endpoint.read_text())
    assert endpoint["compute"] == "azureml:aks-cluster"
    deployment = yaml.safe_load(spec.deployments["blue"].read_text())
    assert deployment["type"] == "kubernetes"
    assert deployment["resources"] == {"requests": {"cpu": "1", "memory": "2Gi"},
                                       "limits": {"cpu": "1", "memory": "2Gi"}}


@pytest.mark.parametrize("kwargs, message", [
    ({"traffic": {"blue": 80, "green": 10}}, "sums to 90"),
    ({"traffic": {"blue": 90, "green": 10}}, "0% live traffic"),
    ({"mirror_traffic": {"green": 60}}, "at most 50%"),
    ({"traffic": {"blue": 100, "red": 0}, "mirror_traffic": {}}, "not a deployment"),
    ({"endpoint": "1-bad"}, "endpoint"),
    ({"blue_version": 0}, "model version"),
])
def test_bad_rollouts_are_refused_before_writing(tmp_path, kwargs, message):
    arguments = {"model": "lumen-churn", "blue_version": 3, "green_version": 4, **kwargs}
    with pytest.raises(InvalidParameterError, match=message):
        managed_endpoint_specs(tmp_path / "out", **arguments)
    assert not (tmp_path / "out").exists()
