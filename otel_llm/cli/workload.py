"""The demo's workload: a support chatbot's day in a few hundred calls, run under
`opentelemetry-instrument` (`python -m otel_llm.cli.workload --base-url ... --calls N`).

Many users, sessions, teams and keys; the case's four models routed by prompt size; repeated system
prompts that hit the simulator's prompt cache; streaming and not; a few forced 429s (retried, and a
few that exhaust the retries); a 5% canary share on a second base URL; and a quarter of the calls
are help-centre FAQ questions asked with `temperature=0`, the same few questions asked again and
again by the users of each tenant (API key): exact repeats that the response cache can answer when
`OTEL_LLM_RESPONSE_CACHE` is set. It prints one JSON line with what it did, then keeps serving
metrics until its stdin closes (the demo closes it once Prometheus has evaluated the final values)
or `--linger` seconds pass.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import openai

import otel_llm

from ._term import Progress

__all__ = ["Job", "Repeats", "main", "plan"]

TEAMS = ("support", "billing", "onboarding", "search", "platform")
KEYS = ("sk-demo-support-0001", "sk-demo-billing-0002", "sk-demo-platform-0003")
# Routed by complexity, as in the case: short -> cheapest, medium -> mid, hard -> strong.
ROUTES = (("short", "deepseek-v3.2"), ("medium", "gemini-2.5-flash"), ("hard", "gpt-4.1"),
          ("hard", "claude-sonnet-4.5"))
SYSTEM = {
    team: f"You are the {team} assistant of Acme Corp. " + " ".join(
        f"Policy {i}: answer {team} questions politely, cite the knowledge base, never invent refunds."
        for i in range(12)
    )
    for team in TEAMS
}
# The help centre's FAQ: one knowledge-base prompt for every tenant (the key keeps tenants apart in
# the response cache), and questions whose popularity falls off steeply, as FAQ traffic does.
FAQ_MODEL = "gemini-2.5-flash"
FAQ_SHARE = 0.25
FAQ_SYSTEM = "You are the help-centre assistant of Acme Corp. Answer in three sentences from the knowledge base. " + " ".join(
    f"Article {i}: the steps, limits and links for topic {i} of the Acme help centre." for i in range(10)
)
FAQ = (
    ("How do I reset my password?", 8),
    ("How do I cancel my subscription?", 5),
    ("Where can I download my invoices?", 4),
    ("How do I change the email address on my account?", 3),
    ("Which payment methods do you accept?", 2),
    ("How do I enable two-factor authentication?", 2),
    ("What are your support hours?", 1),
    ("How do I delete my account and my data?", 1),
)
QUESTIONS = (
    "How do I reset my password?",
    "Why was I charged twice this month?",
    "Can I export my invoices as CSV?",
    "What is the SLA for priority tickets?",
    "How do I add a teammate to my workspace?",
)


@dataclass(frozen=True)
class Job:
    index: int
    user: str
    session: str
    team: str
    key: str
    size: str
    model: str
    stream: bool
    canary: bool
    fail_sequence: str | None
    faq: bool = False  # a temperature=0 FAQ question: exactly repeatable, so cacheable


def plan(calls: int, seed: int = 7) -> list[Job]:
    """A deterministic list of calls (pure, so tests can reason about it)."""
    rng = random.Random(seed)
    jobs = []
    for index in range(calls):
        user = f"user-{rng.randrange(40):02d}"
        size, model = ROUTES[rng.choices(range(4), weights=(5, 3, 1, 1))[0]]
        draw = rng.random()
        fail = "429" if draw < 0.06 else "429,429,429" if draw < 0.08 else None
        job = Job(
            index=index,
            user=user,
            session=f"{user}-s{rng.randrange(3)}",
            team=TEAMS[int(user[-2:]) % len(TEAMS)],
            key=KEYS[int(user[-2:]) % len(KEYS)],
            size=size,
            model=model,
            stream=rng.random() < 0.4,
            canary=rng.random() < 0.05,
            fail_sequence=fail,
        )
        if rng.random() < FAQ_SHARE:  # a plain, short answer; forced faults stay on the chat traffic
            job = replace(job, faq=True, size="short", model=FAQ_MODEL, stream=False, fail_sequence=None)
        jobs.append(job)
    return jobs


class Repeats:
    """Answers the app received twice: the simulator gives every reply a fresh id, so an id seen
    before was served by the response cache. Tallied per model with the usage the app was shown,
    which is what those calls would have cost (the demo's test prices it independently)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: set[str] = set()
        self.by_model: dict[str, Counter[str]] = {}

    def add(self, model: str, response: Any) -> None:
        usage = getattr(response, "usage", None)
        with self._lock:
            if response.id not in self._seen:
                self._seen.add(response.id)
                return
            tally = self.by_model.setdefault(model, Counter())
            tally["calls"] += 1
            if usage is not None:
                details = getattr(usage, "prompt_tokens_details", None)
                tally["prompt_tokens"] += usage.prompt_tokens
                tally["cached_tokens"] += getattr(details, "cached_tokens", None) or 0
                tally["completion_tokens"] += usage.completion_tokens

    def summary(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {model: dict(tally) for model, tally in sorted(self.by_model.items())}


def _messages(job: Job, rng: random.Random) -> list[dict[str, str]]:
    if job.faq:
        question = rng.choices([q for q, _ in FAQ], weights=[w for _, w in FAQ])[0]
        return [{"role": "system", "content": FAQ_SYSTEM}, {"role": "user", "content": question}]
    question = rng.choice(QUESTIONS)
    if job.size == "medium":
        question += " Here is the conversation so far: " + " ".join(
            f"Turn {i}: the customer described the problem again." for i in range(40))
    elif job.size == "hard":
        question += " Full ticket history: " + " ".join(
            f"Ticket {i}: escalation notes, logs and a stack trace excerpt." for i in range(150))
    return [{"role": "system", "content": SYSTEM[job.team]}, {"role": "user", "content": question}]


def _call(clients: dict[tuple[str, bool], openai.OpenAI], job: Job, repeats: Repeats) -> str:
    client = clients[(job.key, job.canary)]
    headers = {"x-simulator-fail-sequence": job.fail_sequence} if job.fail_sequence else {}
    rng = random.Random(job.index)
    with otel_llm.attributes(user_id=job.user, session_id=job.session, team=job.team):
        try:
            if job.stream:
                stream = client.chat.completions.create(  # type: ignore[call-overload]
                    model=job.model, messages=_messages(job, rng), stream=True,
                    stream_options={"include_usage": True}, extra_headers=headers,
                )
                for _ in stream:
                    pass
            elif job.faq:
                answer = client.chat.completions.create(
                    model=job.model, messages=_messages(job, rng), temperature=0,  # type: ignore[arg-type]
                )
                repeats.add(job.model, answer)
            else:
                client.chat.completions.create(
                    model=job.model, messages=_messages(job, rng), extra_headers=headers,  # type: ignore[arg-type]
                )
        except openai.APIError as exc:
            return type(exc).__name__
    return "ok"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m otel_llm.cli.workload", description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--canary-url", help="second base URL that gets ~5%% of the calls")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--linger", type=float, default=60.0,
                        help="longest wait for stdin to close after the work (default: %(default)s s)")
    args = parser.parse_args(argv)

    clients = {
        (key, canary): openai.OpenAI(
            base_url=(args.canary_url if canary and args.canary_url else args.base_url),
            api_key=key, max_retries=2,
        )
        for key in KEYS for canary in (False, True)
    }
    jobs = plan(args.calls, args.seed)
    outcomes: Counter[str] = Counter()
    repeats = Repeats()
    lock = threading.Lock()
    progress = Progress(len(jobs), "workload")
    progress.update(0)

    def run(job: Job) -> None:
        outcome = _call(clients, job, repeats)
        with lock:
            outcomes[outcome] += 1
            progress.update(sum(outcomes.values()))

    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        list(pool.map(run, jobs))
    summary = {
        "calls": len(jobs),
        "outcomes": dict(outcomes),
        "canary_calls": sum(job.canary for job in jobs),
        "streamed_calls": sum(job.stream for job in jobs),
        "users": len({job.user for job in jobs}),
        "faq_calls": sum(job.faq for job in jobs),
        "repeat_answers": repeats.summary(),
    }
    print(json.dumps(summary), flush=True)
    # Keep the Prometheus exporter serving until the demo has seen the final values.
    done = threading.Event()


    def wait_for_stdin() -> None:
        sys.stdin.read()
        done.set()

    threading.Thread(target=wait_for_stdin, daemon=True).start()
    done.wait(args.linger)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
