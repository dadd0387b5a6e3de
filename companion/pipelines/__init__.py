"""Pipeline orchestration: one set of step definitions, run in one process, by DVC, by Kubeflow
Pipelines' local runner, and dumped as an Azure ML pipeline job.

- :mod:`companion.pipelines.spec`: :func:`step`, :class:`Pipeline`, and the ``Input``/``Output``
  markers that make a typed function a step.
"""

from companion.pipelines.spec import PARAM_TYPES, Input, Output, Param, Pipeline, Port, Step, step

__all__ = ["PARAM_TYPES", "Input", "Output", "Param", "Pipeline", "Port", "Step", "step"]
