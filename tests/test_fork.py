"""Pre-fork servers: a forked child counts only its own calls, under its own instance id, and never hangs.

A real `gunicorn --preload` app instrumented in the master calls the simulator before the fork; each
worker follows the usual post-fork recipe (its own providers, then `instrument()` again) and serves
calls; a real Prometheus scrapes the master and every worker. The fork-while-locked cases run in a
subprocess that is killed on timeout, so a hang fails the test instead of hanging the suite.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent / "stack"))  # the stack suite's real-binary helpers

from stackservers import free_port, running_prometheus, tool, wait_until

from otel_llm.simulator import Simulator
from otel_llm.simulator.config import SimulatorConfig

REPO = Path(__file__).resolve().parents[1]
WORKERS = 3
PARENT_CALLS = 3
CHILD_CALLS = 3  # one HTTP request each; whichever worker serves it

APP = """
import os

import openai
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, start_http_server

from otel_llm import OpenAIInstrumentor

SIM = os.environ["SIM_URL"]


def setup_telemetry(port):
    # The usual recipe: providers of this process, exposed on a port of this process, then instrument().
    registry = CollectorRegistry()
    provider = MeterProvider(metric_readers=[PrometheusMetricReader(registry=registry)], resource=Resource.create())
    start_http_server(port, addr="127.0.0.1", registry=registry)
    OpenAIInstrumentor().instrument(meter_provider=provider, tracer_provider=TracerProvider())


def one_call():
    client = openai.OpenAI(base_url=SIM, api_key="sk-test", max_retries=0)
    try:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    finally:
        client.close()


setup_telemetry(int(os.environ["MASTER_METRICS_PORT"]))
for _ in range(int(os.environ["PARENT_CALLS"])):  # the --preload warm-up
    one_call()


def app(environ, start_response):
    one_call()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
"""

CONF = """
import os

ports = [int(p) for p in os.environ["WORKER_METRICS_PORTS"].split(",")]


def post_fork(server, worker):
    import forkapp

    forkapp.setup_telemetry(ports[worker.age - 1])
"""


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(config=SimulatorConfig(latency_scale=0)) as simulator:
        yield simulator


def _metrics_up(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.mark.prometheus
def test_gunicorn_preload_workers_count_only_their_own_calls(tmp_path: Path, sim: Simulator) -> None:
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent))
    if gunicorn is None or tool("prometheus") is None:
        pytest.skip("needs gunicorn (the test extra) and prometheus (scripts/install-tools)")
    (tmp_path / "forkapp.py").write_text(APP)
    (tmp_path / "gunicorn.conf.py").write_text(CONF)
    master_port, app_port = free_port(), free_port()
    worker_ports = [free_port() for _ in range(WORKERS)]
    env = {
        **os.environ,
        "SIM_URL": sim.base_url,
        "MASTER_METRICS_PORT": str(master_port),
        "WORKER_METRICS_PORTS": ",".join(map(str, worker_ports)),
        "PARENT_CALLS": str(PARENT_CALLS),
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}",
    }
    log = (tmp_path / "gunicorn.log").open("wb")
    server = subprocess.Popen(
        [gunicorn, "--preload", "-c", str(tmp_path / "gunicorn.conf.py"), "-w", str(WORKERS),
         "-b", f"127.0.0.1:{app_port}", "--chdir", str(tmp_path), "forkapp:app"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        targets = [f"127.0.0.1:{p}" for p in [master_port, *worker_ports]]
        wait_until(lambda: all(_metrics_up(int(t.rsplit(":", 1)[1])) for t in targets), 30, "every /metrics up")
        for _ in range(CHILD_CALLS):
            with urllib.request.urlopen(f"http://127.0.0.1:{app_port}/", timeout=10) as response:
                assert response.status == 200
        with running_prometheus(tmp_path / "prom", scrape_targets=targets) as prometheus:
            def query(expr: str) -> list[Any]:
                return list(prometheus.query(expr)["result"])

            def scraped() -> bool:
                up = query("sum(up)")
                return bool(up) and float(up[0]["value"][1]) == len(targets) and bool(query("otel_llm_calls_total"))

            wait_until(scraped, 30, "Prometheus scraped the master and every worker")
            time.sleep(2.5)  # one more scrape of each target, so every series is in
            total = query("sum(otel_llm_calls_total)")
            per_target = {r["metric"]["instance"]: float(r["value"][1])
                          for r in query("sum by (instance) (otel_llm_calls_total)")}
            ids = {r["metric"]["instance"]: r["metric"].get("service_instance_id") for r in query("target_info")}
        assert float(total[0]["value"][1]) == PARENT_CALLS + CHILD_CALLS, per_target
        assert per_target.get(f"127.0.0.1:{master_port}") == PARENT_CALLS, per_target
        # The master and each worker with data (an idle exporter has no target_info): an id of its own.
        assert len(ids) >= 2 and len(set(ids.values())) == len(ids), ids
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


FORK_WHILE_LOCKED = """
import os, signal, sys, threading, time
sys.path.insert(0, {tests!r})
sys.path.insert(0, {repo!r})
from conftest import Api, FakeAPI
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from otel_llm import OpenAIInstrumentor

instrumentor = OpenAIInstrumentor()
instrumentor.instrument(tracer_provider=TracerProvider(), meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()]))
lock = {lock}
held, release = threading.Event(), threading.Event()

def holder():
    with lock:
        held.set()
        release.wait(5)

hung = 0
for _ in range({forks}):
    held.clear(); release.clear()
    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(5)
    threading.Timer(0.05, release.set).start()  # the holder lets go soon after the fork began
    pid = os.fork()
    if pid == 0:
        api = Api("sync", FakeAPI(), "https://api.openai.com/v1")
        api.call("chat.completions.create", model="gpt-4.1-mini", messages=[{{"role": "user", "content": "hi"}}])
        os._exit(0)
    thread.join()
    deadline = time.monotonic() + 5
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            hung += 1
            break
        time.sleep(0.01)
print("hung", hung)
"""


@pytest.mark.parametrize("lock", ["instrumentor.telemetry.ledger.lock", "instrumentor.telemetry.prices._lock"],
                         ids=["ledger", "price-book"])
def test_fork_while_another_thread_holds_our_lock_leaves_no_child_hung(lock: str) -> None:
    # The child prices a model the parent never saw, so it needs the price book's lock too.
    script = FORK_WHILE_LOCKED.format(tests=str(Path(__file__).parent), repo=str(REPO), forks=3, lock=lock)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-2:] == ["hung", "0"], done.stdout + done.stderr[-2000:]


FINALISER_UNDER_LOCK = """
import gc, sys
sys.path.insert(0, {tests!r})
sys.path.insert(0, {repo!r})
from conftest import Api, FakeAPI
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from otel_llm import OpenAIInstrumentor

spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
tracer_provider = TracerProvider()
tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
instrumentor = OpenAIInstrumentor()
instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=MeterProvider(metric_readers=[reader]))
api = Api("sync", FakeAPI(), "https://api.openai.com/v1")
stream = api.call("chat.completions.create", model="gpt-4o-mini", messages=[{{"role": "user", "content": "hi"}}],
                  stream=True)
cycle = [stream]
cycle.append(cycle)  # only the cyclic collector frees it, as in a real app's reference cycles
del stream, cycle
with instrumentor.telemetry.ledger.lock:  # the collecting thread holds the lock; a GC run starts here
    gc.collect()
print("survived", len(spans.get_finished_spans()))
reader.get_metrics_data()  # the next collection ends what was dropped
print("ended", len(spans.get_finished_spans()))
"""


def test_dropped_stream_finaliser_takes_no_lock_the_collecting_thread_holds() -> None:
    script = FINALISER_UNDER_LOCK.format(tests=str(Path(__file__).parent), repo=str(REPO))
    try:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("a garbage collection inside the ledger lock deadlocked on a dropped stream's finaliser")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["survived", "0", "ended", "1"], done.stdout + done.stderr[-2000:]


CHILD_STARTS_FROM_ZERO = """
import os, sys
sys.path.insert(0, {tests!r})
sys.path.insert(0, {repo!r})
from conftest import Api, FakeAPI
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from otel_llm import OpenAIInstrumentor

def totals(reader):  # calls, then cost and its two rollups (the exact-spend rules read those)
    names = ("otel_llm.calls", "otel_llm.cost", "otel_llm.cost.by_scope", "otel_llm.cost.by_model")
    data = reader.get_metrics_data()
    out = dict.fromkeys(names, 0.0)
    for rm in (data.resource_metrics if data else ()):
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                if m.name in out:
                    out[m.name] += sum(p.value for p in m.data.data_points)
    return " ".join(f"{{v:.9f}}" for v in out.values())

reader = InMemoryMetricReader()
OpenAIInstrumentor().instrument(tracer_provider=TracerProvider(), meter_provider=MeterProvider(metric_readers=[reader]))
api = Api("sync", FakeAPI(), "https://api.openai.com/v1")
for _ in range(3):
    api.call("chat.completions.create", model="gpt-4o-mini", messages=[{{"role": "user", "content": "hi"}}])
read, write = os.pipe()
pid = os.fork()
if pid == 0:  # no recipe at all: the parent's providers, the parent's instrumentation
    before = totals(reader)
    child_api = Api("sync", FakeAPI(), "https://api.openai.com/v1")
    child_api.call("chat.completions.create", model="gpt-4o-mini", messages=[{{"role": "user", "content": "hi"}}])
    os.write(write, f"{{before}} | {{totals(reader)}}".encode())
    os._exit(0)
os.waitpid(pid, 0)
print(os.read(read, 400).decode(), "|", totals(reader))
"""


def test_a_forked_child_starts_its_sums_from_zero_even_without_the_recipe() -> None:
    script = CHILD_STARTS_FROM_ZERO.format(tests=str(Path(__file__).parent), repo=str(REPO))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    child_before, child_after, parent = ([float(v) for v in part.split()] for part in done.stdout.split("|"))
    assert child_before == [0.0] * 4, done.stdout  # calls, cost, cost by scope, cost by model
    one = child_after[1]
    assert child_after[0] == 1.0 and one > 0 and child_after[1:] == pytest.approx([one] * 3, rel=1e-9), done.stdout
    assert parent[0] == 3.0 and parent[1:] == pytest.approx([3 * one] * 3, rel=1e-9), done.stdout


def test_a_fault_in_a_deferred_stream_end_leaves_the_app_unharmed(instrument: Any, reader: Any,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    from otel_llm import ledger
    from tests.conftest import Api, FakeAPI

    def boom() -> None:
        raise RuntimeError("injected")

    instrument()
    api = Api("sync", FakeAPI(), "https://api.openai.com/v1")
    try:
        ledger.defer(boom)
        result = api.call("chat.completions.create", model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert result.choices[0].message.content  # the SDK's own object, untouched
        ledger.defer(boom)
        reader.get_metrics_data()  # a collection drains too
    finally:
        api.close()
    assert not ledger._deferred
    assert all(r.levelno <= logging.DEBUG for r in caplog.records if r.name == "otel_llm")
