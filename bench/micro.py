"""What each piece of otel_llm's per-call path costs, timed alone (no profiler), in µs per call.

    .bench-venv/bin/python -m bench.micro

The paired bench says how much otel_llm adds to a call; this says where it goes: our pure
functions, the SDK calls they make (span, histogram records with and without exemplars), and the
per-chunk stream path. Internals move while otel_llm is written, so each row fails on its own
("n/a: ...") instead of stopping the table. Median of 7 samples, process CPU, loop cost subtracted.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

from bench import harness, mock_openai

__all__ = ["main", "measure"]


def measure(fn: Callable[[], Any], n: int = 20_000, repeats: int = 7) -> float:
    """Median µs per call of `fn`, the cost of an empty loop taken off."""
    def loop(f: Callable[[], Any]) -> float:
        r = range(n)
        t0 = time.process_time()
        for _ in r:
            f()
        return time.process_time() - t0

    def empty() -> None:
        return None

    for _ in range(2):
        loop(fn)
    samples = [loop(fn) for _ in range(repeats)]
    base = statistics.median(loop(empty) for _ in range(repeats))
    return max(statistics.median(samples) - base, 0.0) / n * 1e6


def _rows(w: harness.Worker) -> list[tuple[str, Callable[[], Any], int]]:
    """(label, thunk, iterations). Built lazily: a missing internal fails its own row only."""
    import opentelemetry.context as otel_context
    from opentelemetry import trace

    from otel_llm import attribution, extract, instrumentor

    # The worker's own instance: a fresh OpenAIInstrumentor() re-runs __init__ on the singleton.
    t = getattr(w.tel.instrumentor, "telemetry", None)
    if t is None:
        raise RuntimeError("otel_llm instrumentor has no telemetry (not instrumented?)")
    client = w.sync[50]
    kwargs = harness._CHAT_KWARGS
    response = client.chat.completions.create(**kwargs)
    chunks = list(client.chat.completions.create(**harness._STREAM_KWARGS))
    tracer = t.tracer
    rows: list[tuple[str, Callable[[], Any], int]] = []

    def add(label: str, fn: Callable[[], Any], n: int = 20_000) -> None:
        rows.append((label, fn, n))

    # --- start of a call
    add("client.base_url (SDK property we read)", lambda: client.base_url)
    add("extract.endpoint(base_url), cached", lambda: extract.endpoint(client.base_url))
    add("attribution.current()", lambda: attribution.current(None))
    add("attribution.fingerprint(api_key), lru", lambda: attribution.fingerprint(client.api_key))
    add("extract.request_attributes(chat kwargs)", lambda: extract.request_attributes("chat", kwargs, {}))
    attrs6 = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "o4-mini",
              "server.address": "api.openai.com", "server.port": 443, "otel_llm.api_key.fingerprint": "3f9a1c2b7d4e"}
    add("SDK: start_span(6 attrs) + end", lambda: tracer.start_span("chat o4-mini", attributes=attrs6).end())

    def start_end() -> None:
        call = t.start("chat", client, kwargs, False)
        call.span.end()

    add("Telemetry.start() [span incl.] + span.end()", start_end)

    # --- end of a call
    add("extract.response_info(ChatCompletion)", lambda: extract.response_info(response))
    add("extract.usage_of(CompletionUsage)", lambda: extract.usage_of(response.usage))
    usage = extract.usage_of(response.usage)
    where = extract.endpoint(client.base_url)
    add("PriceBook.rates() + Rates.cost()", lambda: t.prices.rates(where.provider, where.base_url,
                                                                  mock_openai.RESPONSE_MODEL, "default").cost(usage))

    def whole_call() -> None:
        call = t.start("chat", client, kwargs, False)
        call.complete(response)

    add("Telemetry.start() + Call.complete(): all of our per-call work, SDK request excluded", whole_call, 5_000)

    # A stream's fixed cost (issue 20, target 2), beside the same for a whole response: the proxy, its
    # iteration over a one-content-chunk stream (then the finish and usage chunks), the end, the finaliser.
    # The same chunks handed to the call without the proxy say what the proxy itself costs; the floor's SDK
    # work for each shape (bench.harness.Floor) says what is above it in a tight loop.
    from otel_llm import streams

    one_chunk = list(w.sync[1].chat.completions.create(**harness._STREAM_KWARGS))
    stream_kwargs = harness._STREAM_KWARGS
    wrap_stream = streams.wrap_stream

    def whole_stream() -> None:
        call = t.start("chat", client, stream_kwargs, True)
        for _ in wrap_stream(_PreParsed(one_chunk), call, False, False):
            pass

    add("Telemetry.start() + a one-chunk stream through the proxy to its end: a stream's per-call work", whole_stream,
        5_000)

    def stream_without_proxy() -> None:
        call = t.start("chat", client, stream_kwargs, True)
        for chunk in _PreParsed(one_chunk):
            call.on_chunk(chunk)
        call.end_stream()

    add("  the same chunks into Call.on_chunk, then Call.end_stream(), no proxy", stream_without_proxy, 5_000)
    floor = harness.Floor(w.tel.tracer_provider, w.tel.meter_provider)
    last = one_chunk[-1]
    add("floor: its SDK work for the same chat call (span, 3 histogram records)",
        lambda: floor.record("chat", kwargs["model"], response, 0.41), 5_000)
    add("floor: its SDK work for the same one-chunk stream (span, 4 histogram records)",
        lambda: floor.record("chat", kwargs["model"], last, 0.41, 0.12), 5_000)

    add("  of which: getattr(CompletionUsage, <missing field>, None)",
        lambda: getattr(response.usage, "input_tokens", None))
    add("  of which: isinstance(CompletionUsage, Mapping)", lambda: isinstance(response.usage, Mapping))
    add("  of which: getattr(CompletionUsage, 'prompt_tokens', None)",
        lambda: getattr(response.usage, "prompt_tokens", None))

    metric_call = t.start("chat", client, kwargs, False)
    metric_call.span.end()
    outcome = metric_call._outcome(extract.response_info(response), None)
    priced = t.recorder.price(outcome)
    add("Recorder: 3 histogram records + ledger",
        lambda: (t.recorder._histograms(metric_call.context, outcome, priced), t.recorder._sums(outcome, priced, None)),
        5_000)
    live = tracer.start_span("chat o4-mini")
    end_attrs = {"gen_ai.response.id": "chatcmpl-x", "gen_ai.response.model": mock_openai.RESPONSE_MODEL,
                 "gen_ai.response.finish_reasons": ("stop",), "openai.response.service_tier": "default",
                 "openai.response.system_fingerprint": "fp", "gen_ai.usage.input_tokens": 1117,
                 "gen_ai.usage.output_tokens": 142, "gen_ai.usage.cache_read.input_tokens": 1024,
                 "gen_ai.usage.reasoning.output_tokens": 64, "otel_llm.cache.hit": True,
                 "otel_llm.cost.usd": 0.001, "otel_llm.price.source": "genai-prices:openai/o4-mini",
                 "otel_llm.cache.savings_usd": 0.0002}
    add("SDK: span.set_attributes(13 response attrs)", lambda: live.set_attributes(end_attrs))

    span = tracer.start_span("x")
    ctx = trace.set_span_in_context(span)
    hist_attrs = {**attrs6, "gen_ai.response.model": mock_openai.RESPONSE_MODEL}
    duration = t.standard._histograms["gen_ai.client.operation.duration"]
    add("SDK: histogram.record, no context (floor)", lambda: duration.record(0.4, hist_attrs))
    add("SDK: histogram.record, context=span (exemplar)", lambda: duration.record(0.4, hist_attrs, context=ctx))
    key = tuple(hist_attrs.items())

    def ledger8() -> None:
        with t.ledger.lock:
            for _ in range(8):
                t.tokens.add(key, 1.0)

    add("ledger: lock + 8 Sum.add", ledger8)

    # --- the wrapper's own plumbing
    add("context.attach + detach", lambda: otel_context.detach(otel_context.attach(ctx)))
    add("current_call.set + reset", lambda: instrumentor.current_call.reset(instrumentor.current_call.set(None)))

    # --- streams, per chunk
    chunk = chunks[5]
    stream_call = t.start("chat", client, kwargs, True)
    add("Call.on_chunk(content chunk)", lambda: stream_call.on_chunk(chunk), 50_000)
    from openai.types.responses import ResponseTextDeltaEvent

    event = ResponseTextDeltaEvent.model_validate({
        "type": "response.output_text.delta", "delta": "hi", "item_id": "msg_1", "output_index": 0,
        "content_index": 0, "sequence_number": 1, "logprobs": [],
    })
    events_call = t.start("chat", client, {**kwargs, "input": "hi"}, True)
    add("Call.on_event(Responses text delta event)", lambda: events_call.on_event(event), 50_000)

    through_proxy, bare, per = _chunk_loops(t, client, kwargs, chunks)
    rows.append(("StreamProxy iteration + Call.on_chunk, per chunk", through_proxy, -per))
    rows.append(("the same chunks without the proxy, per chunk", bare, -per))
    return rows


class _PreParsed:
    """Shaped like openai.Stream (its pass-through `__iter__` over `_iterator`), over pre-parsed chunks."""

    def __init__(self, items: list[Any]) -> None:
        self._iterator = iter(items)

    def __iter__(self) -> Any:
        for item in self._iterator:  # noqa: UP028 - the SDK's own shape, which sdk.chunk_source recognises
            yield item


def _chunk_loops(t: Any, client: Any, kwargs: dict[str, Any], chunks: list[Any]
                 ) -> tuple[Callable[[], None], Callable[[], None], int]:
    """200 pre-parsed content chunks through our stream proxy, and the same without it."""
    import itertools

    from otel_llm import streams

    class _Stream:  # shaped like openai.Stream for the proxy: endless pre-parsed content chunks
        def __init__(self) -> None:
            self._it = itertools.cycle(chunks[1:-2])

        def __iter__(self) -> Any:
            return self

        def __next__(self) -> Any:
            return next(self._it)

    per = 200
    plain = _Stream()
    proxy = streams.wrap_stream(plain, t.start("chat", client, kwargs, True), False, False)
    # What `for chunk in stream` takes: the proxy's iterator, and the bare stream's.
    proxied_it, plain_it = iter(proxy), iter(plain)

    def through_proxy() -> None:  # never exhausted: times chunks, not the end of the call
        for _ in itertools.repeat(None, per):
            next(proxied_it)

    def bare() -> None:
        for _ in itertools.repeat(None, per):
            next(plain_it)

    return through_proxy, bare, per


def per_chunk(w: harness.Worker, repeats: int = 15) -> dict[str, Any]:
    """µs per streamed chunk that otel_llm's proxy adds, timed directly (the paired bench cannot
    resolve ~1 µs against the SDK's ~125 µs of parsing per chunk). Skips if internals moved."""
    try:
        t = getattr(w.tel.instrumentor, "telemetry", None)
        if t is None:
            return {"skip": "otel_llm instrumentor has no .telemetry"}
        client = w.sync[50]
        chunks = list(client.chat.completions.create(**harness._STREAM_KWARGS))
        through_proxy, bare, per = _chunk_loops(t, client, harness._CHAT_KWARGS, chunks)
        proxied = measure(through_proxy, 100, repeats) / per
        plain = measure(bare, 100, repeats) / per
    except Exception as exc:
        return {"skip": f"otel_llm internals moved ({type(exc).__name__}: {exc})"}
    return {"proxy_us": proxied, "bare_us": plain, "added_us": proxied - plain,
            "how": "StreamProxy over 200 pre-parsed ChatCompletionChunk objects vs the same iterator bare"}


def _sdk_stream(client: Any, kwargs: dict[str, Any]) -> Any:
    """The SDK's own stream of a chat request, through the client's `post()`: parsed as
    `chat.completions.create` parses it, with no wrapper of otel_llm's (it patches `create`, not `post`)."""
    import openai
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

    return client.post("/chat/completions", body=kwargs, cast_to=ChatCompletion, stream=True,
                       stream_cls=openai.Stream[ChatCompletionChunk])


def per_chunk_in_process(w: harness.Worker, samples: int = 300) -> dict[str, Any]:
    """µs per streamed chunk that otel_llm adds in context: all that its presence adds per chunk, its
    effect on the SDK's own parsing of the next chunk included (the per-chunk target's figure).

    In one instrumented process, two streams of the same chunks from the same mock: one from
    `chat.completions.create`, through otel_llm's wrapper and stream proxy; the other from the client's
    own `post()` to the same path, which the SDK parses alike and otel_llm does not wrap (no code of ours
    runs per chunk there). Both are read to their end, as `for chunk in stream`, at 200 and at 50 content
    chunks, one right after the other, the order reversed every sample. A sample is
    ((ours200 - bare200) - (ours50 - bare50)) / 150 in process CPU: per-call costs cancel, and the drift
    between two readings ~20 ms apart is small, where switching otel_llm on and off between readings
    (the method this replaced) read drift of 0.5% as 0.5 µs a chunk.

    Two paths: the app asked for the usage chunk itself (the benchmark's requests: `added_us`), and
    otel_llm asked on its behalf (our default on OpenAI's host: the proxy hides that chunk, `we_asked_us`)."""
    if w.tel.instrumentor is None:
        return {"skip": "no otel_llm instrumentor in this worker"}
    clock = time.process_time_ns
    clients = {n: w.sync[n] for n in (50, 200)}

    def timed(n: int, kwargs: dict[str, Any], ours: bool) -> int:
        client = clients[n]
        t0 = clock()
        stream = client.chat.completions.create(**kwargs) if ours else _sdk_stream(client, kwargs)
        for _ in stream:
            pass
        return clock() - t0

    paths = {"added_us": dict(harness._STREAM_KWARGS)}
    paths["we_asked_us"] = {k: v for k, v in harness._STREAM_KWARGS.items() if k != "stream_options"}
    out: dict[str, Any] = {}
    try:
        w.switch(True)
        probe = clients[50].chat.completions.create(**paths["we_asked_us"])
        if not hasattr(probe, "__wrapped__"):
            return {"skip": "otel_llm did not wrap the stream"}
        shown = sum(1 for _ in probe)
        for name, kwargs in paths.items():
            for _ in range(5):  # warm both paths
                for ours in (True, False):
                    timed(200, kwargs, ours)
                    timed(50, kwargs, ours)
            added: list[float] = []
            for i in range(samples):
                got: dict[tuple[int, bool], int] = {}
                for n, ours in ((200, True), (200, False), (50, False), (50, True)) if i % 2 else \
                        ((200, False), (200, True), (50, True), (50, False)):
                    got[n, ours] = timed(n, kwargs, ours)
                added.append(((got[200, True] - got[200, False]) - (got[50, True] - got[50, False])) / 150 / 1e3)
            out[name] = added
    except Exception as exc:
        return {"skip": f"could not time the streams ({type(exc).__name__}: {exc})"}
    return {**out, "samples": samples, "we_asked_chunks_shown": shown,
            "how": "a 200- and a 50-chunk stream through otel_llm's proxy and the same from the client's own "
                   "post(), adjacent, ((ours200 - bare200) - (ours50 - bare50)) / 150 of process CPU per sample"}


def _burn(n: int) -> int:
    total = 0
    for i in range(n):
        total += i
    return total


def per_chunk_interleaved(w: harness.Worker, streams: int = 80, burn: int = 0) -> dict[str, Any]:
    """µs per streamed chunk that otel_llm adds, chunk by chunk between two real SDK streams.

    Per pair, two 200-chunk streams come from the instrumented SDK and its mock transport: one from
    `chat.completions.create`, through the proxy otel_llm's wrapper returned; the other from the
    client's own `post()` to the same path, which the SDK streams alike and we do not wrap. The two
    are stepped alternately, one chunk each, the order swapped every step, and each step's thread
    CPU is read around the chunk:
    the SDK's parsing of every chunk runs between our code as in an app, drift hits both streams
    alike, and a preemption or another thread's work is not counted. A pair's figure is the
    10%-trimmed mean of its per-chunk differences (content chunks only: the first chunk and the end
    carry per-call work); the figure is the median over the pairs.

    What it leaves out: both streams run in one instrumented process, one step apart, so what our
    code costs the SDK's parsing of the next chunk (caches it evicts) lands on both streams and
    cancels. The in-context figure (`per_chunk_in_process`) keeps it: this one
    is our code's direct cost, a lower bound of that.

    `burn` > 0 checks the method: that many additions are done for every chunk our stream reads (in a
    generator between the SDK's chunks and our loop, `Call.relay`), and their cost in a tight loop is
    returned (`burn_hot_us`), to compare with what the figure gains."""
    if w.tel.instrumentor is None:
        return {"skip": "no otel_llm instrumentor in this worker"}
    from otel_llm import streams as proxies

    clock = time.thread_time_ns
    client = w.sync[200]
    kwargs = harness._STREAM_KWARGS
    added: list[float] = []
    chunk_source = proxies.chunk_source
    if burn:
        def burning(chunks: Any) -> Any:
            for chunk in chunks:
                _burn(burn)
                yield chunk

        proxies.chunk_source = lambda stream, is_async: burning(chunk_source(stream, is_async))
    try:
        w.switch(True)
        for pair in range(streams + 1):
            ours = client.chat.completions.create(**kwargs)
            bare = _sdk_stream(client, kwargs)
            if not hasattr(ours, "__wrapped__") or hasattr(bare, "__wrapped__"):
                return {"skip": "otel_llm did not wrap the stream, or wrapped the bare one"}
            its = (iter(bare), iter(ours))
            diffs: list[int] = []
            step = 0
            while True:
                first = step % 2
                t0 = clock()
                a = next(its[first], None)
                t1 = clock()
                b = next(its[1 - first], None)
                t2 = clock()
                if a is None or b is None:
                    break
                if step:  # the first chunk carries the response's first read
                    mine, theirs = (t1 - t0, t2 - t1) if first else (t2 - t1, t1 - t0)
                    diffs.append(mine - theirs)
                step += 1
            diffs = sorted(diffs[:-2])  # the last content chunk and the usage chunk: the call's end
            cut = len(diffs) // 10
            kept = diffs[cut:len(diffs) - cut]
            if pair and kept:  # the first pair warms both paths
                added.append(sum(kept) / len(kept) / 1e3)
    except Exception as exc:
        return {"skip": f"could not step two streams ({type(exc).__name__}: {exc})"}
    finally:
        proxies.chunk_source = chunk_source
    extra = {"burn": burn, "burn_hot_us": measure(lambda: _burn(burn), 20_000)} if burn else {}
    return {"added_us": added, "streams": streams, **extra,
            "how": "a stream through otel_llm's proxy and the SDK's own stream, stepped alternately chunk by "
                   "chunk, thread CPU per chunk, 10%-trimmed mean per pair of 200-chunk streams"}


def main() -> None:
    w = harness.Worker("otel_llm")
    try:
        rows = _rows(w)
    except Exception as exc:
        raise SystemExit(f"otel_llm internals not as expected: {type(exc).__name__}: {exc}") from exc
    print(f"{'µs/call':>9}  piece")
    for label, fn, n in rows:
        try:
            us = measure(fn, 200, 7) / -n if n < 0 else measure(fn, n)  # n < 0: a whole stream, per chunk
            print(f"{us:9.2f}  {label}")
        except Exception as exc:
            print(f"{'n/a':>9}  {label}: {type(exc).__name__}: {exc}")
    w.close()


if __name__ == "__main__":
    main()
