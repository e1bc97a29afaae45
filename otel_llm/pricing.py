"""Usage + model -> USD, or None when the model has no known price.

Prices come from an override file first (per base URL, then per model), then from the bundled data of
the `genai-prices` package (offline; never fetched at run time). A (base URL, model, service tier)
triple is resolved once and kept, so pricing a call after the first is a dict lookup and a few float
multiplications.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import math
import os
import reprlib
import stat
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, NamedTuple

from .forksafe import hold_across_fork

__all__ = [
    "CACHE_LIMIT",
    "MAX_FILE_BYTES",
    "WARN_LIMIT",
    "Cost",
    "Entry",
    "PriceBook",
    "PricesFileError",
    "Rate",
    "Rates",
    "Usage",
    "adjusted",
    "load_prices_file",
]

_log = logging.getLogger("otel_llm")
_PER_MTOK: Final = 1_000_000.0
# Bounds on what callers can grow by choosing model names (see the README's Cardinality section).
CACHE_LIMIT: Final = 4096  # resolved (provider, base URL, model, tier) entries; the oldest goes first
WARN_LIMIT: Final = 100  # unpriced models named in a warning; after that one line says there are more
# A prices file is read only if it is a regular file of at most this size (a FIFO would block start-up,
# a device never ends), and its YAML may not expand past a bounded number of nodes (aliases, merge keys).
MAX_FILE_BYTES: Final = 1024 * 1024
MAX_YAML_ALIASES: Final = 1000
MAX_YAML_MERGED: Final = 10_000  # key/value pairs one mapping may hold after `<<` merges
MAX_PRICE: Final = 1_000_000.0  # USD per million tokens: far above any real price, far below overflow
MAX_TOOL_FEE: Final = 100.0  # USD per hosted tool run: far above any real fee (OpenAI's dearest is $0.03)
# The hosted tools a prices file may set a fee per run for (hosted_tools.py names them from the response;
# web_search_preview: a web search run on a request that named the preview tool).
TOOL_FEE_KEYS: Final = ("web_search", "web_search_preview", "file_search", "code_interpreter", "image_generation")
_short = reprlib.Repr()
_short.maxlevel, _short.maxstring, _short.maxother, _short.maxlist, _short.maxdict = 2, 40, 40, 4, 4


class Usage(NamedTuple):
    """Token counts as the provider billed them. `input` includes cache reads and writes; `output`
    includes reasoning."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    reasoning: int = 0
    input_audio: int = 0
    output_audio: int = 0
    input_image: int = 0  # image tokens of the input (the Images API reports them apart)


class Cost(NamedTuple):
    usd: float
    cache_savings_usd: float


@dataclass(frozen=True, slots=True)
class Rate:
    """USD per token, optionally with cliff tiers on the call's total input tokens."""

    base: float
    tiers: tuple[tuple[int, float], ...] = ()

    def at(self, input_tokens: int) -> float:
        price = self.base
        for start, tier_price in self.tiers:
            if input_tokens >= start:
                price = tier_price
        return price


@dataclass(frozen=True, slots=True)
class Rates:
    input: Rate
    output: Rate
    cache_read: Rate | None = None
    cache_write: Rate | None = None
    input_audio: Rate | None = None
    output_audio: Rate | None = None
    source: str = "genai-prices"
    model_id: str = ""  # genai-prices' canonical id of the model (gpt-4.1 for gpt-4.1-2025-04-14)
    input_image: Rate | None = None

    def cost(self, usage: Usage) -> Cost:
        """What the provider bills for `usage`: each token class at its own price."""
        total_in = usage.input
        in_price = self.input.at(total_in)
        read_price = self.cache_read.at(total_in) if self.cache_read else in_price
        write_price = self.cache_write.at(total_in) if self.cache_write else in_price
        audio_in = usage.input_audio if self.input_audio else 0
        image_in = usage.input_image if self.input_image else 0
        plain_in = max(total_in - usage.cache_read - usage.cache_write - audio_in - image_in, 0)
        usd = plain_in * in_price + usage.cache_read * read_price + usage.cache_write * write_price
        if audio_in and self.input_audio:
            usd += audio_in * self.input_audio.at(total_in)
        if image_in and self.input_image:
            usd += image_in * self.input_image.at(total_in)
        out_price = self.output.at(total_in)
        audio_out = usage.output_audio if self.output_audio else 0
        usd += max(usage.output - audio_out, 0) * out_price
        if audio_out and self.output_audio:
            usd += audio_out * self.output_audio.at(total_in)
        savings = usage.cache_read * (in_price - read_price) if usage.cache_read else 0.0
        return Cost(usd, savings)


def _scaled(rate: Rate | None, factor: float) -> Rate | None:
    if rate is None:
        return None
    return Rate(rate.base * factor, tuple((start, price * factor) for start, price in rate.tiers))


def adjusted(rates: Rates, percent: float, note: str) -> Rates:
    """`rates` with every price moved by `percent` (-20: a 20% discount), the source saying so."""
    factor = 1.0 + percent / 100.0
    return Rates(
        input=_scaled(rates.input, factor) or rates.input,
        output=_scaled(rates.output, factor) or rates.output,
        cache_read=_scaled(rates.cache_read, factor),
        cache_write=_scaled(rates.cache_write, factor),
        input_audio=_scaled(rates.input_audio, factor),
        output_audio=_scaled(rates.output_audio, factor),
        source=f"{rates.source} ({_percent_text(percent)}{note})",
        input_image=_scaled(rates.input_image, factor),
    )


def _percent_text(percent: float) -> str:
    return f"{percent:+g}%"


class PricesFileError(ValueError):
    """A malformed prices file: names the file and the key."""

    def __init__(self, path: str, key: str, problem: str) -> None:
        super().__init__(f"{path}: {key}: {problem}")
        self.path, self.key, self.problem = path, key, problem


# Keys of one model's entry in a prices file, in USD per million tokens -> Rates field.
_FILE_KEYS: Final = {
    "input": "input",
    "output": "output",
    "cached_input": "cache_read",
    "cache_write": "cache_write",
    "input_audio": "input_audio",
    "output_audio": "output_audio",
    "input_image": "input_image",
}


ADJUSTMENT: Final = "adjustment_percent"
_MIN_ADJUSTMENT: Final = -100.0
_MAX_ADJUSTMENT: Final = 1000.0


@dataclass(frozen=True)
class Entry:
    """One model's entry in a prices file: its own prices (or None: the list price), and the percentage
    to move them by (None: not set here)."""

    rates: Rates | None
    adjustment: float | None = None


def _bounded(path: str, key: str, value: object, low: float, high: float, problem: str) -> float:
    """A number of a prices file from `low` to `high`, or the one-line error: `problem`, and what was given."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PricesFileError(path, key, f"{problem}, got {_short.repr(value)}")
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits
        raise PricesFileError(path, key, f"{problem}, got a number of about {int(int(value).bit_length() * 0.30103) + 1} digits") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise PricesFileError(path, key, f"{problem}, got {_short.repr(value)}")
    return number


def _adjustment(path: str, key: str, value: object) -> float:
    return _bounded(path, key, value, _MIN_ADJUSTMENT, _MAX_ADJUSTMENT,
                    f"expected a percentage from {_MIN_ADJUSTMENT:g} to {_MAX_ADJUSTMENT:g} (-20: a 20% discount)")


def _file_rates(path: str, key: str, entry: object) -> Entry:
    if not isinstance(entry, Mapping):
        raise PricesFileError(path, key, "expected a table of prices in USD per million tokens")
    fields: dict[str, Rate] = {}
    percent: float | None = None
    for name, value in entry.items():
        if name == ADJUSTMENT:
            percent = _adjustment(path, f"{key}.{name}", value)
            continue
        if name not in _FILE_KEYS:
            expected = sorted([*_FILE_KEYS, ADJUSTMENT])
            raise PricesFileError(path, f"{key}.{name}", f"unknown price; expected one of {expected}")
        fields[_FILE_KEYS[name]] = Rate(_price(path, f"{key}.{name}", value) / _PER_MTOK)
    if not fields and percent is not None:
        return Entry(None, percent)  # the list price, adjusted
    for required in ("input", "output"):
        if required not in fields:
            raise PricesFileError(path, f"{key}.{required}", "missing (USD per million tokens)")
    rates = Rates(
        input=fields["input"],
        output=fields["output"],
        cache_read=fields.get("cache_read"),
        cache_write=fields.get("cache_write"),
        input_audio=fields.get("input_audio"),
        output_audio=fields.get("output_audio"),
        source=f"file:{Path(path).name}",
        input_image=fields.get("input_image"),
    )
    return Entry(rates, percent)


def _price(path: str, key: str, value: object) -> float:
    """A price in USD per million tokens: a number from 0 to MAX_PRICE, or the one-line error."""
    return _bounded(path, key, value, 0, MAX_PRICE, f"expected a number of USD per million tokens from 0 to {MAX_PRICE:,.0f}")


def _models(path: str, prefix: str, table: object) -> dict[str, Entry]:
    if not isinstance(table, Mapping):
        raise PricesFileError(path, prefix, "expected a table of models")
    return {str(model): _file_rates(path, f"{prefix}.{model}", entry) for model, entry in table.items()}


def _tool_fees(path: str, key: str, table: object) -> dict[str, float]:
    """A `hosted_tools` table: tool -> USD per run, or the one-line error naming the key."""
    if not isinstance(table, Mapping):
        raise PricesFileError(path, key, f"expected a table of USD per run for {list(TOOL_FEE_KEYS)}")
    fees: dict[str, float] = {}
    for tool, value in table.items():
        if tool not in TOOL_FEE_KEYS:
            raise PricesFileError(path, f"{key}.{tool}", f"unknown hosted tool; expected one of {list(TOOL_FEE_KEYS)}")
        fees[str(tool)] = _bounded(path, f"{key}.{tool}", value, 0, MAX_TOOL_FEE,
                                   f"expected a number of USD per run from 0 to {MAX_TOOL_FEE:g}")
    return fees


@dataclass(frozen=True)
class PricesFile:
    path: str
    models: dict[str, Entry]
    base_urls: dict[str, dict[str, Entry]]
    url_adjustments: dict[str, float] = dataclasses.field(default_factory=dict)
    tool_fees: dict[str, float] = dataclasses.field(default_factory=dict)  # hosted tool -> USD per run
    url_tool_fees: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"file:{Path(self.path).name}"


def load_prices_file(path: str | Path) -> PricesFile:
    """Parse and validate a YAML or TOML prices file; raise PricesFileError naming file and key."""
    name = str(path)
    text = _read_text(name)
    if not name.endswith(".toml") and importlib.util.find_spec("yaml") is None:
        raise PricesFileError(name, "(file)", "a YAML prices file needs PyYAML: pip install 'otel-llm[yaml]' "
                              "(or write the prices as TOML)")
    try:
        if name.endswith(".toml"):
            import tomllib

            data: Any = tomllib.loads(text)
        else:
            data = _yaml_load(text)
    except PricesFileError:
        raise
    except Exception as exc:  # the parser's own message says where
        raise PricesFileError(name, "(syntax)", " ".join(str(exc).split())[:300]) from None
    if not isinstance(data, Mapping):
        raise PricesFileError(name, "(top level)", "expected a table with 'models', 'base_urls' and/or 'hosted_tools'")
    unknown = set(data) - {"models", "base_urls", "hosted_tools"}
    if unknown:
        raise PricesFileError(name, sorted(unknown)[0], "unknown key; expected 'models', 'base_urls' or 'hosted_tools'")
    models = _models(name, "models", data.get("models") or {})
    tool_fees = _tool_fees(name, "hosted_tools", data.get("hosted_tools") or {})
    urls_table = data.get("base_urls") or {}
    if not isinstance(urls_table, Mapping):
        raise PricesFileError(name, "base_urls", "expected a table of base URLs")
    base_urls: dict[str, dict[str, Entry]] = {}
    url_adjustments: dict[str, float] = {}
    url_tool_fees: dict[str, dict[str, float]] = {}
    for url, entry in urls_table.items():
        if not isinstance(entry, Mapping) or set(entry) - {"models", ADJUSTMENT, "hosted_tools"}:
            raise PricesFileError(name, f"base_urls.{url}",
                                  f"expected a table with 'models', '{ADJUSTMENT}' and/or 'hosted_tools'")
        base_urls[_norm_url(str(url))] = _models(name, f"base_urls.{url}.models", entry.get("models") or {})
        if ADJUSTMENT in entry:
            url_adjustments[_norm_url(str(url))] = _adjustment(name, f"base_urls.{url}.{ADJUSTMENT}", entry[ADJUSTMENT])
        if "hosted_tools" in entry:
            url_tool_fees[_norm_url(str(url))] = _tool_fees(name, f"base_urls.{url}.hosted_tools", entry["hosted_tools"])
    return PricesFile(name, models, base_urls, url_adjustments, tool_fees, url_tool_fees)


def _read_text(name: str) -> str:
    """The file's text: only a regular file, at most MAX_FILE_BYTES, opened without blocking."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise PricesFileError(name, "(file)", f"cannot read: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise PricesFileError(name, "(file)", "not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise PricesFileError(name, "(file)", f"larger than {MAX_FILE_BYTES // 1024} KiB")
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_FILE_BYTES:  # the file may grow while we read it
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_FILE_BYTES:
            raise PricesFileError(name, "(file)", f"larger than {MAX_FILE_BYTES // 1024} KiB")
    except OSError as exc:
        raise PricesFileError(name, "(file)", f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PricesFileError(name, "(file)", f"not UTF-8 text (byte {exc.start})") from None


def _yaml_load(text: str) -> Any:
    """`yaml.safe_load` with a bound on aliases and on what `<<` merge keys expand to: nested merges
    double a mapping per level (a "billion laughs" in a few lines)."""
    import yaml

    class BoundedLoader(yaml.SafeLoader):  # type: ignore[misc]
        aliases = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                self.aliases += 1
                if self.aliases > MAX_YAML_ALIASES:
                    raise yaml.YAMLError(f"more than {MAX_YAML_ALIASES} aliases")
            return super().compose_node(parent, index)

        def flatten_mapping(self, node: Any) -> None:
            super().flatten_mapping(node)
            if len(node.value) > MAX_YAML_MERGED:
                raise yaml.YAMLError(f"a mapping expands to more than {MAX_YAML_MERGED} entries through '<<' merges")

    return yaml.load(text, Loader=BoundedLoader)  # a SafeLoader subclass: no arbitrary objects


def _norm_url(url: str) -> str:
    return url.rstrip("/").lower()


# Our provider names (gen_ai.provider.name) -> genai-prices provider ids.
_PROVIDER_IDS: Final = {
    "openai": "openai",
    "azure.ai.openai": "azure",
    "deepseek": "deepseek",
    "x_ai": "x-ai",
    "groq": "groq",
    "mistral_ai": "mistral",
    "gcp.gemini": "google",
    "anthropic": "anthropic",
    "openrouter": "openrouter",
    "together": "together",
    "fireworks": "fireworks",
    "perplexity": "perplexity",
    "cerebras": "cerebras",
}


def _to_rate(value: object) -> Rate | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return Rate(float(value) / _PER_MTOK)
    base = getattr(value, "base", None)
    tiers = getattr(value, "tiers", None)
    if isinstance(base, Decimal) and tiers is not None:
        return Rate(
            float(base) / _PER_MTOK,
            tuple((int(t.start), float(t.price) / _PER_MTOK) for t in tiers),
        )
    return None


def _candidates(provider: str, model: str) -> list[tuple[str | None, str]]:
    """(genai-prices provider id, model ref) pairs to try in order. For a known endpoint, its provider
    first; behind an unknown gateway (`openai_compatible`), OpenAI first (the gateway's main road),
    then the provider-less match, then every provider whose models include the name."""
    refs = [model]
    if "/" in model:  # gateway style "vendor/model"
        refs.append(model.rsplit("/", 1)[1])
    provider_id = _PROVIDER_IDS.get(provider)
    found: list[tuple[str | None, str]] = []
    if provider_id is not None:
        found.append((provider_id, model))
        found += [(None, ref) for ref in refs]
        return found
    for ref in refs:
        found += [("openai", ref), (None, ref)]
        found += [(pid, ref) for pid in _providers_naming(ref) if pid != "openai"]
    return found


_by_model_id: dict[str, tuple[str, ...]] | None = None


def _providers_naming(model: str) -> tuple[str, ...]:
    """Providers whose model list has `model` as an id, in genai-prices' order (one index, built once:
    scanning every provider's match rules costs about a millisecond per unknown name)."""
    global _by_model_id
    if _by_model_id is None:
        from genai_prices.data_snapshot import get_snapshot

        index: dict[str, list[str]] = {}
        for known in get_snapshot().providers:
            for info in known.models:
                index.setdefault(info.id.lower(), []).append(known.id)
        _by_model_id = {name: tuple(ids) for name, ids in index.items()}
    return _by_model_id.get(model.lower(), ())


def _genai_prices_rates(provider: str, model: str, tier: str | None) -> Rates | None:
    """Look a model up in genai-prices' bundled snapshot; None when it has no token price. A price
    found under another provider than the endpoint's says "(by model name)" in its source."""
    from genai_prices import Usage as GPUsage
    from genai_prices import calc_price

    own = _PROVIDER_IDS.get(provider)
    context = {"service_tier": tier} if tier else None
    for pid, ref in _candidates(provider, model):
        try:
            found = calc_price(GPUsage(input_tokens=1), model_ref=ref, provider_id=pid, price_context=context)
        except Exception:  # LookupError for unknown models; anything else is also "not found"
            continue
        price = found.model_price
        rate_in, rate_out = _to_rate(getattr(price, "input_mtok", None)), _to_rate(getattr(price, "output_mtok", None))
        if rate_in is None:
            continue
        by_name = "" if own is not None and found.provider.id == own else " (by model name)"
        return Rates(
            input=rate_in,
            output=rate_out or Rate(0.0),
            cache_read=_to_rate(getattr(price, "cache_read_mtok", None)),
            cache_write=_to_rate(getattr(price, "cache_write_mtok", None)),
            input_audio=_to_rate(getattr(price, "input_audio_mtok", None)),
            output_audio=_to_rate(getattr(price, "output_audio_mtok", None)),
            source=f"genai-prices:{found.provider.id}/{found.model.id}{by_name}",
            model_id=found.model.id,
            input_image=_to_rate(getattr(price, "input_image_mtok", None)),
        )
    return None


def _bound_genai_prices_caches() -> None:
    """genai-prices remembers every model name it was asked about, found or not (private dicts on its
    snapshot): with caller-chosen names they would grow without end. Empty them past our own bound."""
    try:
        from genai_prices.data_snapshot import get_snapshot

        snapshot = get_snapshot()
        for name in ("_lookup_cache", "_provider_cache", "_provider_misses"):
            found = getattr(snapshot, name, None)
            if found is not None and len(found) > CACHE_LIMIT:
                found.clear()
    except Exception:  # another version of genai-prices: its caches are its own business then
        pass


class PriceBook:
    """Resolves and remembers the rates of (base URL, model, service tier) triples."""

    def __init__(self, prices_file: PricesFile | None = None, use_genai_prices: bool = True) -> None:
        self._file = prices_file
        self._use_genai_prices = use_genai_prices
        self._cache: dict[tuple[str, str, str, str | None], Rates | None] = {}
        self._lock = threading.Lock()
        self._warned: set[str] = set()
        self._more_unpriced = 0
        _books.add(self)

    @property
    def file_path(self) -> str | None:
        return self._file.path if self._file else None

    def rates(self, provider: str, base_url: str, model: str, tier: str | None = None) -> Rates | None:
        key = (provider, base_url, model, tier)
        try:
            return self._cache[key]
        except KeyError:
            pass
        found = self._resolve(provider, base_url, model, tier)
        with self._lock:
            cache = self._cache
            if len(cache) >= CACHE_LIMIT:
                try:
                    del cache[next(iter(cache))]  # the oldest entry: dicts keep insertion order
                except (KeyError, StopIteration, RuntimeError):
                    pass
                _bound_genai_prices_caches()
            cache[key] = found
        return found

    def _resolve(self, provider: str, base_url: str, model: str, tier: str | None) -> Rates | None:
        """The file's entry for (base URL, model), else its model entry, else the list price; then the
        most specific adjustment: the entry's own, else its base URL table's."""
        prices = self._file
        if prices is None:
            return self._listed(provider, model, tier)
        url = _norm_url(base_url)
        listed: Rates | None = None
        entry = prices.base_urls.get(url, {}).get(model) or prices.models.get(model)
        if entry is None:
            # A dated or aliased name (gpt-4.1-2025-04-14) is priced as the model the file names (gpt-4.1).
            listed = self._listed(provider, model, tier)
            if listed is not None and listed.model_id and listed.model_id != model:
                entry = prices.base_urls.get(url, {}).get(listed.model_id) or prices.models.get(listed.model_id)
        percent = entry.adjustment if entry is not None and entry.adjustment is not None else prices.url_adjustments.get(url)
        if entry is not None and entry.rates is not None:
            rates: Rates | None = entry.rates
            note = ""
        else:
            rates = listed or self._listed(provider, model, tier)
            note = f" by {prices.name}"
        if rates is None or not percent:
            return rates
        return adjusted(rates, percent, note)

    def tool_fee(self, base_url: str, tool: str) -> float | None:
        """The prices file's fee per run of a hosted tool (TOOL_FEE_KEYS) behind `base_url`, else its
        global one, else None."""
        prices = self._file
        if prices is None:
            return None
        found = prices.url_tool_fees.get(_norm_url(base_url), {}).get(tool)
        return found if found is not None else prices.tool_fees.get(tool)

    def _listed(self, provider: str, model: str, tier: str | None) -> Rates | None:
        if not self._use_genai_prices or not model:
            return None
        return _genai_prices_rates(provider, model, tier)

    def first_unpriced(self, model: str) -> bool:
        """True the first time `model` is found unpriced (so the caller warns once per model), for at
        most WARN_LIMIT models: model names can come from end users, and so could a flood of warnings."""
        if model in self._warned:
            return False
        with self._lock:
            if model in self._warned:
                return False
            if len(self._warned) >= WARN_LIMIT:
                self._more_unpriced += 1
                if self._more_unpriced == 1:
                    _log.warning(
                        "otel_llm: more than %d models have no known price; further ones are counted in "
                        "otel_llm.calls.unpriced without a warning each", WARN_LIMIT,
                    )
                return False
            self._warned.add(model)
        return True

    @property
    def unpriced_models(self) -> frozenset[str]:
        return frozenset(self._warned)


# Fork safety: no child may inherit a price book lock held by a thread that does not exist there.
_books: weakref.WeakSet[PriceBook] = weakref.WeakSet()
hold_across_fork(lambda: [book._lock for book in _books])
