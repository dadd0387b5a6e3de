"""The MLflow tracking URI of an Azure Machine Learning workspace (built, never contacted)."""

from __future__ import annotations

import uuid

from companion.errors import InvalidParameterError

_AZURE_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.()")


def azureml_tracking_uri(
    subscription_id: str, resource_group: str, workspace: str, region: str = "westeurope"
) -> str:
    """Build the ``azureml://`` MLflow tracking URI of an Azure Machine Learning workspace.

    With the ``azureml-mlflow`` plugin installed and an Azure login, ``mlflow.set_tracking_uri``
    with this URI sends the same runs, parameters, metrics and models to the workspace. This
    only builds the string: nothing is contacted.

    Example:
        >>> azureml_tracking_uri("00000000-0000-0000-0000-000000000000", "rg", "ws").split("/")[2]
        'westeurope.api.azureml.ms'
    """
    try:
        if not isinstance(subscription_id, str) or str(uuid.UUID(subscription_id)) != (
            subscription_id.lower()
        ):
            raise ValueError(subscription_id)
    except ValueError as exc:
        raise InvalidParameterError(
            f"subscription_id must be a GUID like '00000000-0000-0000-0000-000000000000', "
            f"got {subscription_id!r}"
        ) from exc
    for label, value in (("resource_group", resource_group), ("workspace", workspace)):
        if not isinstance(value, str) or not value or not set(value) <= _AZURE_NAME_CHARS:
            raise InvalidParameterError(
                f"{label} must be a non-empty Azure resource name (letters, digits, '-', '_', "
                f"'.', '(', ')'), got {value!r}"
            )
    if not isinstance(region, str) or not region.isalnum() or not region.islower():
        raise InvalidParameterError(
            f"region must be an Azure region name such as 'westeurope', got {region!r}"
        )
    return (
        f"azureml://{region}.api.azureml.ms/mlflow/v1.0/subscriptions/{subscription_id}"
        f"/resourceGroups/{resource_group}/providers/Microsoft.MachineLearningServices"
        f"/workspaces/{workspace}"
    )
