"""The scale-out path: the same batch scoring with ``mlflow.pyfunc.spark_udf`` on local Spark.

:func:`local_spark` starts a ``SparkSession`` on ``local[N]`` that keeps everything inside one
work folder and says nothing on the caller's stderr:

- the warehouse, Spark's scratch space (``spark.local.dir``), the JVM's ``java.io.tmpdir``,
  Derby's home and MLflow's model copy (``spark.mlflow.nfs.rootDir``) are folders of it;
- Spark logs at ERROR through a log4j2 properties file written there
  (``-Dlog4j2.configurationFile``), which also keeps the shell's "Setting default log level"
  line quiet; the JVM's own output (its ``Using incubator modules`` line, any error) goes to
  ``spark.log`` in the work folder, not to the notebook;
- no UI, no console progress bar, loopback only, no JVM performance files in ``/tmp``;
- Python workers run the caller's interpreter with ``OMP_NUM_THREADS=1``;
- on exit, even after an error, the session is stopped and the JVM (and so its Python
  workers) ends; the next session starts a fresh one.

:func:`spark_score_frame` scores a Spark DataFrame with the registry model through
``spark_udf`` (MLflow's store given explicitly, never left global); :func:`spark_scores` reads
a Parquet file of features (:func:`~companion.deployment.batch.write_features`) and returns
``customer_id, score`` in pandas, which equal the pandas batch path's scores.

The model's pyfunc returns ``[p(stay), p(churn)]``: ``result_type="double"`` would keep the
first column (MLflow takes column 0 of a 2-D result), so the UDF returns ``array<double>``
and the score is element 1, the churn probability, bit for bit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from companion.core.checks import check_int, check_path, check_text
from companion.core.env import quiet, scoped_env
from companion.core.files import atomic_write_text
from companion.core.mlflow_store import using_store
from companion.errors import InvalidParameterError, ServerError, UnknownNameError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame as SparkDataFrame
    from pyspark.sql import SparkSession

__all__ = ["LOG4J2_PROPERTIES", "SPARK_UDF_LOCAL_WARNING", "local_spark", "spark_score_frame",
           "spark_scores"]

logger = logging.getLogger(__name__)

SPARK_UDF_LOCAL_WARNING = 'Calling `spark_udf()` with `env_manager="local"`'
"""Start of MLflow's advice to rebuild the training environment: the book's workers run the
book's own environment, so the advice is noise here."""

LOG4J2_PROPERTIES = """\
# Spark's log4j2 configuration for the companion's local sessions: errors only, to stderr
# (which the companion sends to spark.log in the work folder).
rootLogger.level = error
rootLogger.appenderRef.console.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
# The shell's logger at the root's level: Spark then prints no "Setting default log level".
logger.shell.name = org.apache.spark.api.python.PythonGatewayServer
logger.shell.level = error
"""
"""The log4j2 properties :func:`local_spark` writes into its work folder."""

_FOLDERS = ("warehouse", "local", "tmp", "derby", "mlflow")
_SCRATCH = ("local", "tmp", "mlflow")  # removed on exit
_STOP_SECONDS = 30.0


def _conf(work: Path, cores: int, memory: str, app_name: str) -> Any:
    from pyspark import SparkConf

    # Relative to the JVM's working folder, which is ``work``: Spark splits these options on
    # white space, so a work folder whose path holds a space could not be named here.
    # A short local session on a laptop: a small first heap and the serial collector (less
    # memory than the default G1, measured about 35 MB), and only the JIT's first tier (its
    # optimising tier would compete with the job for two cores while the JVM starts).
    java = ("-Dlog4j2.configurationFile=log4j2.properties -Djava.io.tmpdir=tmp "
            "-Dderby.system.home=derby -XX:-UsePerfData -Xms32m -XX:+UseSerialGC "
            "-XX:TieredStopAtLevel=1")
    settings = {
        "spark.master": f"local[{cores}]",
        "spark.app.name": app_name,
        "spark.driver.memory": memory,
        "spark.driver.extraJavaOptions": java,
        "spark.executor.extraJavaOptions": java,
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.warehouse.dir": str(work / "warehouse"),
        "spark.sql.catalogImplementation": "in-memory",
        "spark.local.dir": str(work / "local"),
        "spark.mlflow.nfs.rootDir": str(work / "mlflow"),
        "spark.executorEnv.OMP_NUM_THREADS": "1",
        "spark.executorEnv.TMPDIR": str(work / "tmp"),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.session.timeZone": "UTC",
    }
    conf = SparkConf(loadDefaults=False)
    for key, value in settings.items():
        conf.set(key, value)
    return conf


@contextlib.contextmanager
def local_spark(
    work_dir: str | os.PathLike[str],
    cores: int = 2,
    *,
    memory: str = "1g",
    app_name: str = "lumen-batch",
) -> Iterator[SparkSession]:
    """Run a block with a quiet ``SparkSession`` on ``local[cores]`` kept inside ``work_dir``.

    Args:
        work_dir: folder for everything Spark and its JVM write (created if missing).
        cores: worker threads of ``local[N]``.
        memory: the driver JVM's heap, e.g. ``"1g"``.
        app_name: the application's name.

    Raises:
        InvalidParameterError: a bad argument, or ``work_dir`` is a file.
        ServerError: another SparkContext is running in this process, or the JVM did not
            start (the message ends with the tail of ``spark.log``).
    """
    work = check_path("work_dir", work_dir).resolve()
    if work.exists() and not work.is_dir():
        raise InvalidParameterError(f"work_dir {str(work)!r} is a file; pass a folder")
    cores = check_int("cores", cores, minimum=1)
    if not isinstance(memory, str) or not memory[:-1].isdigit() or memory[-1] not in "mg":
        raise InvalidParameterError(f"memory must be like '512m' or '2g', got {memory!r}")
    check_text("app_name", app_name)
    from pyspark import SparkContext
    from pyspark.java_gateway import launch_gateway
    from pyspark.sql import SparkSession

    if SparkContext._active_spark_context is not None:
        raise ServerError("a SparkContext is already running in this process; stop it first")
    for name in _FOLDERS:
        (work / name).mkdir(parents=True, exist_ok=True)
    atomic_write_text(work / "log4j2.properties", LOG4J2_PROPERTIES)
    conf = _conf(work, cores, memory, app_name)
    log_path = work / "spark.log"
    launcher = "-XX:-UsePerfData -Djava.io.tmpdir=tmp"  # relative to the JVM's folder, work
    # the JVM inherits these; PySpark reads PYSPARK_PYTHON when the context starts
    variables = {"SPARK_LAUNCHER_OPTS": launcher, "OMP_NUM_THREADS": "1",
                 "TMPDIR": str(work / "tmp"), "SPARK_LOCAL_IP": "127.0.0.1",
                 "PYSPARK_PYTHON": sys.executable}
    with open(log_path, "ab") as log, scoped_env(**variables):
        try:
            gateway = launch_gateway(conf, popen_kwargs={"stdout": log, "stderr": log,
                                                         "cwd": str(work)})
        except Exception as exc:
            raise ServerError(f"Spark's JVM did not start: {exc}\n{_tail(log_path)}") from None
    process = gateway.proc
    spark = None
    try:
        with scoped_env(PYSPARK_PYTHON=sys.executable):
            context = SparkContext(gateway=gateway, conf=conf)
        spark = SparkSession(context)
        logger.info("Spark %s on local[%d] in %s", spark.version, cores, work)
        yield spark
    finally:
        _stop(spark, gateway, process)
        _forget_model_copies()
        for name in _SCRATCH:
            shutil.rmtree(work / name, ignore_errors=True)


def _stop(spark: Any, gateway: Any, process: Any) -> None:
    from pyspark import SparkContext

    try:
        if spark is not None:
            spark.stop()
        elif SparkContext._active_spark_context is not None:
            SparkContext._active_spark_context.stop()
    finally:
        with contextlib.suppress(Exception):
            gateway.shutdown()
        if process is not None:
            with contextlib.suppress(Exception):
                process.stdin.close()  # the JVM ends when its stdin closes
            try:
                process.wait(timeout=_STOP_SECONDS)
            except Exception:
                process.kill()
                process.wait()
        # the next session launches a new JVM with its own settings
        SparkContext._gateway = None
        SparkContext._jvm = None


def _forget_model_copies() -> None:
    """Drop MLflow's per-process cache of its model-copy folder (it was in the work folder)."""
    from mlflow.utils import file_utils, process

    cache = getattr(process, "_per_process_value_cache_map", None)
    target = getattr(file_utils.get_or_create_nfs_tmp_dir, "__wrapped__", None)
    if isinstance(cache, dict) and target is not None:
        for key in [k for k in cache if k[0] is target]:
            del cache[key]


def _tail(path: Path, lines: int = 20) -> str:
    from companion.core.process import log_tail

    return log_tail(path, lines)


def _model_columns(model_uri: str) -> list[str]:
    import mlflow.models
    from mlflow.exceptions import MlflowException

    try:
        info = mlflow.models.get_model_info(model_uri)
    except MlflowException as exc:
        raise UnknownNameError(f"{model_uri!r} is not in the registry: {exc.message}") from None
    if info.signature is None:
        raise UnknownNameError(f"{model_uri!r} has no signature; spark_udf needs its columns")
    return list(info.signature.inputs.input_names())


def spark_score_frame(
    spark: SparkSession,
    frame: SparkDataFrame,
    model_uri: str,
    tracking_uri: str,
    *,
    key: str = "customer_id",
) -> SparkDataFrame:
    """Return a (lazy) Spark DataFrame ``key, score``: ``frame`` scored by ``model_uri``.

    The UDF is ``mlflow.pyfunc.spark_udf(spark, model_uri, env_manager="local")`` built
    inside :func:`~companion.core.mlflow_store.using_store` (``tracking_uri``), fed the
    model's signature columns by name.

    Raises:
        InvalidParameterError: a bad URI, or ``frame`` misses ``key`` or a model column.
        UnknownNameError: the model is not in the registry.
    """
    from companion.deployment.service import check_model_uris

    check_model_uris(model_uri, tracking_uri)
    check_text("key", key)
    import mlflow.pyfunc
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, DoubleType

    with using_store(tracking_uri), quiet("mlflow", ignore=(SPARK_UDF_LOCAL_WARNING,)):
        columns = _model_columns(model_uri)
        missing = [c for c in [key, *columns] if c not in frame.columns]
        if missing:
            raise InvalidParameterError(
                f"the Spark frame is missing column(s) {missing}; it has {frame.columns}"
            )
        udf = mlflow.pyfunc.spark_udf(spark, model_uri, result_type=ArrayType(DoubleType()),
                                      env_manager="local")
    return frame.select(F.col(key), udf(F.struct(*columns))[1].alias("score"))


def spark_scores(
    spark: SparkSession,
    path: str | os.PathLike[str],
    model_uri: str,
    tracking_uri: str,
    *,
    key: str = "customer_id",
) -> pd.DataFrame:
    """Score the Parquet features at ``path`` on Spark; return ``key, score`` sorted by key."""
    source = check_path("path", path)
    if not source.exists():
        raise InvalidParameterError(f"path {str(source)!r} does not exist; write the features "
                                    "first (write_features())")
    scored = spark_score_frame(spark, spark.read.parquet(str(source.resolve())), model_uri,
                               tracking_uri, key=key)
    frame = pd.DataFrame(scored.toPandas())
    return frame.sort_values(key, kind="stable").reset_index(drop=True)
