"""Declared task resources: every stage declares them, the config resolves them, and the
mapping onto Spark gives a ResourceProfile on cluster masters only. No Spark session."""
import re
from pathlib import Path

import pytest

from realsyn.jobs.core.config import ConfigError, load_config
from realsyn.jobs.pipeline import all_stages
from realsyn.jobs.core.resources import (TaskResources, resource_profile, stage_resources, supports_stage_level,
                                    task_requests)

ROOT = Path(__file__).resolve().parents[2]
GPU_EXECUTORS = {"spark.executor.cores": "4", "spark.executor.resource.gpu.amount": "1"}
MODEL_STAGES = {"embed": "resources.clip_task_gpus", "balance": "resources.clip_task_gpus",
                "generate": "resources.generation_task_gpus"}


def test_every_stage_declares_its_task_resources():
    cfg = load_config("local")
    for stage in all_stages():
        declared = vars(type(stage)).get("resources")
        assert isinstance(declared, TaskResources), f"{stage.name} declares no resources of its own"
        resolved = declared.resolve(cfg)
        assert isinstance(resolved.cpus, int) and resolved.cpus >= 1, stage.name
        assert isinstance(resolved.gpus, float) and 0 <= resolved.gpus <= 1, stage.name


def test_model_stages_take_their_gpu_share_and_threads_from_config():
    for stage in all_stages():
        key = MODEL_STAGES.get(stage.name)
        declared = type(stage).resources
        if key is None:
            assert declared.gpus == 0.0, f"{stage.name} asks for a GPU"
            continue
        assert declared.gpus == key and declared.cpus == "models.torch_threads", stage.name
        cfg = load_config("local", overrides=[f"{key}=0.25", "models.torch_threads=3"])
        assert declared.resolve(cfg) == TaskResources(3, 0.25)
    assert stage_resources(TaskResources(2), load_config("local", overrides=[
        "resources.stage_level_scheduling=false"])) is None


def test_gpu_share_must_be_a_spark_share():
    with pytest.raises(ConfigError, match="resources.clip_task_gpus"):
        load_config("local", overrides=["resources.clip_task_gpus=0.75"])
    with pytest.raises(ConfigError, match="out of range"):
        load_config("local", overrides=["resources.generation_task_gpus=2.0"])


@pytest.mark.parametrize("master", ["spark://10.0.0.1:7077", "yarn", "k8s://https://api:6443",
                                    "local-cluster[2,1,1024]"])
def test_a_cluster_master_gets_the_declared_task_cpus_and_gpus(master):
    assert supports_stage_level(master)
    requests = task_requests(TaskResources(2, 0.5), master, GPU_EXECUTORS)
    assert requests == {"cpus": 2, "gpu": 0.5}
    profile = resource_profile(requests)
    tasks = profile.taskResources
    assert tasks["cpus"].amount == 2 and tasks["gpu"].amount == 0.5


@pytest.mark.parametrize("master", ["local[*]", "local", "local[2]", "local[*, 4]", ""])
def test_local_mode_gets_no_profile(master):
    assert not supports_stage_level(master)
    assert task_requests(TaskResources(2, 0.5), master, GPU_EXECUTORS) is None


def test_what_is_asked_follows_the_cluster_not_the_declaration_alone():
    master = "spark://h:7077"
    # no GPUs on the executors: the model runs on the CPU, only the threads are asked for
    assert task_requests(TaskResources(2, 1.0), master, {"spark.executor.cores": "4"}) == {"cpus": 2}
    # the session's default task already fits: nothing to attach
    assert task_requests(TaskResources(1, 0.0), master, GPU_EXECUTORS) is None
    assert task_requests(TaskResources(1, 1.0), master, {}) is None
    # a declaration below the session's default keeps the default (every task gets it)
    rapids = {**GPU_EXECUTORS, "spark.task.resource.gpu.amount": "0.25"}
    assert task_requests(TaskResources(1, 0.0), master, rapids) is None
    assert task_requests(TaskResources(1, 0.5), master, rapids) == {"cpus": 1, "gpu": 0.5}
    # never more cores than an executor has (the tasks could not be scheduled)
    assert task_requests(TaskResources(8, 0.0), master, {"spark.executor.cores": "2"}) == {"cpus": 2}
    assert task_requests(None, master, GPU_EXECUTORS) is None


def test_resources_are_not_part_of_the_fingerprint():
    base = load_config("local")
    changed = load_config("local", overrides=["resources.clip_task_gpus=0.5", "resources.generation_task_gpus=0.25",
                                              "resources.stage_level_scheduling=false"])
    for stage in all_stages():
        assert stage.fingerprint(stage.Params.from_config(base), {}, {}, {}) == \
            stage.fingerprint(stage.Params.from_config(changed), {}, {}, {}), stage.name


def test_no_code_decides_on_the_gpu_by_the_profiles_name():
    pattern = re.compile(r"""profile\W{0,3}(==|!=|\bin\b)[^\n]*["']gpu["']|["']gpu["']\s*(==|!=)\s*\w*\.?profile""")
    for folder in ("jobs", "udfs"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for n, line in enumerate(path.read_text().splitlines(), 1):
                assert not pattern.search(line), f"{path.name}:{n}: {line.strip()}"
