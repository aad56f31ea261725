"""The Ray engine (`--engine ray`) on one real local Ray cluster, started once for this module on
loopback: the same records and stored vectors as the local engine, a killed worker's videos
retried and recorded once, a bad file an error record, a Ctrl-C'd driver resumed, a model that
fails to load in the actors reported in bounded time, and without Ray a clear usage error."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from actionzs.testing import write_clip

from helpers_cli import FAST, by_video, read_jsonl, run_cli, start_cli, subprocess_env, wait_for_lines

ROOT = Path(__file__).resolve().parents[1]
LABELS = ["-l", "walking", "-l", "running"]


@pytest.fixture(scope="module")
def cluster():
    """One local Ray instance with 2 CPUs for the module; its workers import this checkout. Yields
    the address another process connects to."""
    ray = pytest.importorskip("ray")
    # Workers are started by this instance's processes, which inherit this environment: they import
    # this checkout and, like the CLI's test runs, never reach for the hub.
    wanted = {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH")])),
              "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    saved = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    assert not ray.is_initialized()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING",
             _node_ip_address="127.0.0.1")
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    """Six short clips of different lengths and one file that is no video."""
    folder = tmp_path_factory.mktemp("ray-videos")
    for k in range(6):
        write_clip(folder / f"clip{k}.mp4", 20 + 6 * k, scenes=lambda i, k=k: (i // 8 + k) % 4)
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is no video")
    return folder


@contextmanager
def one_thread():
    """Torch on one thread here, as in an actor reserving one CPU (Ray sets its OMP_NUM_THREADS to
    it): a float sum split over other threads rounds differently in its last bit."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _free_cpus_back(ray, timeout: float = 60.0) -> float:
    """Wait until the cluster's CPUs are all free again (no actor left holding one)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        free = ray.available_resources().get("CPU", 0)
        if free >= ray.cluster_resources().get("CPU", 0):
            return free
        time.sleep(0.2)
    return ray.available_resources().get("CPU", 0)


@pytest.mark.slow
def test_scan_on_ray_equals_the_local_engine(cluster, videos, clip_dir, tmp_path, capsys):
    import ray

    args = ["scan", videos, "--model", clip_dir, *LABELS, *FAST]
    with one_thread():
        local_code, _, _ = run_cli(capsys, *args, "-o", tmp_path / "local.jsonl")
    code, _, err = run_cli(capsys, *args, "-o", tmp_path / "ray.jsonl", "--engine", "ray", "--ray-actors", "2")
    assert code == local_code == 1, err  # the broken file failed, the others were done
    local, remote = by_video(read_jsonl(tmp_path / "local.jsonl")), by_video(read_jsonl(tmp_path / "ray.jsonl"))
    assert set(remote) == set(local) and len(remote) == 7
    assert remote == local  # same labels, scores, durations; the same error for the broken file
    assert "error" in remote[str(videos / "broken.mp4")]
    assert sum("error" in r for r in remote.values()) == 1
    assert _free_cpus_back(ray) == 2  # the actors were stopped after the scan


@pytest.mark.slow
def test_index_on_ray_stores_the_local_engines_vectors(cluster, videos, clip_dir, tmp_path, capsys):
    from actionzs.library.store import LibraryStore

    def stored(index: Path) -> dict:
        with LibraryStore(index) as store:
            return ({Path(f.path).name: vectors for f, vectors in store.all_vectors()},
                    {Path(f.path).name for f in store.files("failed")})

    args = ["index", videos, "--model", clip_dir, "--fps", "4", "-q"]
    with one_thread():
        assert run_cli(capsys, *args, "--index", tmp_path / "local.db")[0] == 1
    code, _, err = run_cli(capsys, *args, "--index", tmp_path / "ray.db", "--engine", "ray")
    assert code == 1, err
    (local, local_failed), (remote, remote_failed) = stored(tmp_path / "local.db"), stored(tmp_path / "ray.db")
    assert remote_failed == local_failed == {"broken.mp4"}
    assert set(remote) == set(local) and len(remote) == 6
    for path in local:
        np.testing.assert_array_equal(remote[path], local[path], err_msg=path)
    # Incremental, as locally: a second run on Ray embeds nothing new and retries the broken file.
    code, _, err = run_cli(capsys, "index", videos, "--model", clip_dir, "--index", tmp_path / "ray.db", "--engine", "ray")
    assert code == 1 and "indexed 0 files" in err and "6 unchanged" in err and "1 failed" in err, err


@pytest.mark.slow
def test_a_worker_killed_mid_scan_still_gives_every_video_once(cluster, videos, clip_dir):
    import ray

    from actionzs import load_encoder
    from actionzs.classifier import ZeroShotVideoClassifier
    from actionzs.ray_executor import RayExecutor

    encoder = load_encoder(str(clip_dir))
    sources = sorted(str(p) for p in videos.glob("clip*.mp4"))[:4]
    local = ZeroShotVideoClassifier(encoder, batch_size=8)
    with one_thread():
        expected = [local.embed(source, fps=4, segments=True) for source in sources]
    executor = RayExecutor(actors=2)
    killed = []

    def kill_a_worker():  # runs once the first videos are submitted to both actors
        pid = executor.worker_pids()[0]  # the actor embedding the first video
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    try:
        outcomes = list(executor.embed_each(sources, encoder, local.options.updated(fps=4, segments=True), local.opener, 8,
                                            meanwhile=kill_a_worker))
        assert len(killed) == 1
        assert len(outcomes) == len(sources)  # each video once, in order
        for source, outcome, want in zip(sources, outcomes, expected):
            assert not isinstance(outcome, Exception), (source, outcome)
            np.testing.assert_array_equal(outcome.vectors, want.vectors)
            np.testing.assert_array_equal(outcome.indices, want.indices)
            np.testing.assert_array_equal(outcome.pts_seconds, want.pts_seconds)
            assert outcome.source == source
        assert not set(executor.worker_pids(current=True)) & set(killed)  # the actor was restarted: a new process
    finally:
        executor.close()
    assert _free_cpus_back(ray) == 2


@pytest.mark.slow
def test_a_video_that_kills_its_worker_every_time_is_its_error_and_the_others_go_on(cluster, videos, clip_dir, tmp_path):
    import ray

    from actionzs import load_encoder
    from actionzs.errors import VideoDecodeError
    from actionzs.options import RunOptions
    from actionzs.ray_executor import RayExecutor

    from helpers_ray import CrashingOpener

    poison = shutil.copy(videos / "clip0.mp4", tmp_path / "poison.mp4")
    sources = [str(videos / "clip1.mp4"), str(poison), str(videos / "clip2.mp4")]
    encoder = load_encoder(str(clip_dir))
    executor = RayExecutor(actors=1, task_retries=0)  # one death is every try here
    try:
        outcomes = list(executor.embed_each(sources, encoder, RunOptions(fps=4, segments=True), CrashingOpener(), 8))
    finally:
        executor.close()
    assert len(outcomes) == 3
    assert isinstance(outcomes[1], VideoDecodeError) and outcomes[1].path == str(poison)
    assert "Ray worker embedding it failed" in str(outcomes[1])
    assert not isinstance(outcomes[0], Exception) and not isinstance(outcomes[2], Exception), outcomes
    assert [o.source for o in (outcomes[0], outcomes[2])] == [sources[0], sources[2]]  # before and after it: done
    assert _free_cpus_back(ray) == 2


@pytest.mark.slow
def test_ctrl_c_stops_the_workers_and_resume_completes(cluster, videos, clip_dir, tmp_path, capsys):
    import ray

    out = tmp_path / "scan.jsonl"
    args = ["scan", videos, "--model", clip_dir, *LABELS, *FAST, "-o", out, "--engine", "ray"]
    proc = start_cli(*args, "--ray-address", cluster, "--ray-actors", "1", "--ray-num-cpus", "2")
    try:
        wait_for_lines(out, 1, proc, timeout=180)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "--resume" in err
    first = read_jsonl(out)
    assert 1 <= len(first) < 7, "the scan finished before it was interrupted: nothing was shown"
    assert _free_cpus_back(ray) == 2  # the interrupted driver's actor was stopped
    code, _, err = run_cli(capsys, *args, "--resume")
    assert code == 1, err
    records = by_video(read_jsonl(out))  # each video exactly once
    assert set(records) == {str(p) for p in videos.iterdir()}
    assert [r for r in records.values() if "error" in r] == [records[str(videos / "broken.mp4")]]


@pytest.mark.slow
def test_a_model_that_fails_to_load_in_the_actors_is_a_clear_error(cluster, videos, clip_dir, tmp_path):
    import ray

    from actionzs import load_encoder
    from actionzs.classifier import ZeroShotVideoClassifier
    from actionzs.errors import ModelLoadError
    from actionzs.ray_executor import RayExecutor

    # The driver loads the model; then its weights vanish (as on a node without the shared mount).
    model = shutil.copytree(clip_dir, tmp_path / "model")
    encoder = load_encoder(str(model))
    for weights in model.glob("*.safetensors"):
        weights.unlink()
    classifier = ZeroShotVideoClassifier(encoder, executor=RayExecutor(actors=1, ready_timeout=120))
    started = time.monotonic()
    with pytest.raises(ModelLoadError, match="could not be loaded on a Ray worker"):
        list(classifier.classify_each(sorted(videos.glob("clip*.mp4")), ["walking", "running"]))
    assert time.monotonic() - started < 120
    assert _free_cpus_back(ray) == 2  # the failed actors are gone


#: `actionzs scan --engine ray` where Ray cannot be imported (None in sys.modules fails the import).
WITHOUT_RAY = """
import sys
sys.modules["ray"] = None
from actionzs.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_without_ray_the_ray_engine_is_a_usage_error_naming_the_extra(videos, clip_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out.jsonl"
    env = subprocess_env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    # A process where Ray was never imported: nothing of actionzs needs it before --engine ray.
    run = subprocess.run([sys.executable, "-c", WITHOUT_RAY, "scan", str(videos), *LABELS, "-o", str(out),
                          "--model", str(clip_dir), "--engine", "ray"], capture_output=True, text=True, env=env, timeout=180)
    assert run.returncode == 2, run.stderr
    assert 'pip install "actionzs[ray]"' in run.stderr
    assert not out.exists()  # refused before anything was written
    # index, here (Ray made unimportable in this process for the test's length).
    monkeypatch.setitem(sys.modules, "ray", None)
    code, _, err = run_cli(capsys, "index", videos, "--index", tmp_path / "lib.db", "--model", clip_dir, "--engine", "ray")
    assert code == 2 and 'pip install "actionzs[ray]"' in err, err
    assert not (tmp_path / "lib.db").exists()
