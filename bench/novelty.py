"""Novelty filters: ``faiss-novelty`` (MiniLM embeddings + FAISS) against ``rouge-novelty`` (ROUGE-L).

Part 1, text: candidate sets of Rotten Tomatoes review snippets (fresh/rotten, 20-300 chars,
unique) with a known fraction of injected near-duplicates, paraphrase-level edits of another
candidate of the same set (case/punctuation, one word dropped, two adjacent words swapped, one or
two synonyms, or a mix of three edits), each placed after its source. Both filters get the same
candidates in one ``reject`` call (empty pool, so everything goes through the within-batch path)
with their default configs; the repetitions alternate which filter runs first. FAISS is timed as
embedding (cache cleared every repetition) plus ``reject`` on the cached embeddings ("search").
Reported: seconds (median), injected near-duplicates caught (recall), and other rejects (the
corpus has near-duplicates of its own, so these are not necessarily false positives). ROUGE-L
always runs on the whole set, never a subset (the corpus limits a set to about 14k candidates).

Part 2, vectors: FAISS alone on clustered 384-d unit vectors (a Gaussian mixture on the sphere
with 1% planted near-copies), exact ``IndexFlatIP`` against ``IndexHNSWFlat`` with the filter's
default M / efConstruction / efSearch: build time, batch query time and QPS for the queries (half
near-copies of stored vectors, half fresh draws), single-query latency, HNSW recall@1 against
exact search and agreement of the filter decision (similarity > threshold).

    HF_HUB_OFFLINE=1 .venv/bin/python bench/novelty.py
    HF_HUB_OFFLINE=1 .venv/bin/python bench/novelty.py --sizes 1000 --vector-sizes 100000 --reps 5
    HF_HUB_OFFLINE=1 .venv/bin/python bench/novelty.py --sizes --vector-sizes 1000000 --hnsw-max 1000000

Repetitions stop early (at least one) once the next one would exceed ``--rep-budget`` seconds
per size (``--query-budget`` for vector queries); the number of repetitions is printed with
every median. HNSW is built only up to ``--hnsw-max`` vectors: with the filter's parameters, the
1M build took ~20 min on a shared 2-core machine, more than the rest of the default run (the
third command above measures it). Writes the tables to bench/results/novelty.md (``--out``).
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


def spread(values: Sequence[float]) -> str:
    """Median, and the range when there is more than one value."""
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{median(values):.2f} ({min(values):.2f}–{max(values):.2f})"


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


@dataclass
class Outcome:
    seconds: list[float] = field(default_factory=list)
    embed: list[float] = field(default_factory=list)
    search: list[float] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)


def run_rouge(cands: CandidateSet) -> tuple[float, dict[str, str]]:
    from distilforge.plugins.filters.novelty import RougeNoveltyConfig, RougeNoveltyFilter

    flt = RougeNoveltyFilter(RougeNoveltyConfig())
    t0 = time.perf_counter()
    out = flt.reject(cands.records, make_ctx())
    return time.perf_counter() - t0, out


def run_faiss(cands: CandidateSet) -> tuple[float, float, dict[str, str]]:
    """(embedding seconds, reject seconds on cached embeddings, rejects), from a cold cache."""
    from distilforge.engine.api.toolkit import compute_threads
    from distilforge.engine.api.toolkit.embeddings import clear_vector_cache
    from distilforge.plugins.filters import novelty

    flt = novelty.FaissNoveltyFilter(novelty.FaissNoveltyConfig())
    clear_vector_cache()
    texts = [r.input for r in cands.records]
    with compute_threads(flt.config.threads, faiss=True):
        t0 = time.perf_counter()
        flt.embed(texts)
        embed_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = flt.reject(cands.records, make_ctx())
    search_s = time.perf_counter() - t0
    clear_vector_cache()
    return embed_s, search_s, out


def caught(cands: CandidateSet, rejected: dict[str, str]) -> tuple[int, int, int]:
    """(injected caught, of those matched to their own source, other rejects)."""
    hits = [rid for rid in rejected if rid in cands.kind]
    via_source = sum(rejected[rid].rsplit(maxsplit=1)[-1] == cands.source[rid] for rid in hits)
    return len(hits), via_source, len(rejected) - len(hits)


def text_part(args: argparse.Namespace, report: list[str], notes: list[str]) -> None:
    from distilforge.engine.api.toolkit.embeddings import clear_vector_cache, load_encoder
    from distilforge.plugins.filters import novelty
    from distilforge.plugins.models.packaged import default_encoder_dir

    log(f"loading the Rotten Tomatoes corpus (load average {load_average()})")
    snippets = corpus_snippets(args.seed)
    log(f"{len(snippets)} unique fresh/rotten snippets of 20-300 characters")
    config = novelty.FaissNoveltyConfig()
    model = config.model or default_encoder_dir()
    t0 = time.perf_counter()
    load_encoder(model)
    clear_vector_cache()
    log(f"encoder {model} loaded in {time.perf_counter() - t0:.1f} s (not counted below)")

    rows: list[str] = []
    kind_rows: list[str] = []
    examples: list[str] = []
    for size in args.sizes:
        cands = build_candidates(snippets, size, args.dup_fraction, args.seed)
        n_inj = len(cands.kind)
        log(f"size {size}: {n_inj} injected near-duplicates; up to {args.reps} reps (budget {args.rep_budget:.0f} s)")
        rouge, faiss_ = Outcome(), Outcome()
        size_start = time.perf_counter()
        for rep in range(args.reps):
            spent = time.perf_counter() - size_start
            if rep and spent / rep * (rep + 1) > args.rep_budget:
                note = f"size {size}: {rep} rep(s) only (one rep ~{spent / rep:.0f} s, budget {args.rep_budget:.0f} s)"
                log(note)
                notes.append(note)
                break
            order = ["rouge", "faiss"] if rep % 2 == 0 else ["faiss", "rouge"]
            for name in order:
                if name == "rouge":
                    seconds, out = run_rouge(cands)
                    rouge.seconds.append(seconds)
                    rouge.rejected = out
                    log(f"  rep {rep + 1} ROUGE-L: {seconds:8.2f} s, {len(out)} rejected")
                else:
                    embed_s, search_s, out = run_faiss(cands)
                    faiss_.embed.append(embed_s)
                    faiss_.search.append(search_s)
                    faiss_.seconds.append(embed_s + search_s)
                    faiss_.rejected = out
                    log(
                        f"  rep {rep + 1} FAISS:   {embed_s + search_s:8.2f} s "
                        f"(embed {embed_s:.2f} + search {search_s:.2f}), {len(out)} rejected"
                    )
        reps_done = len(rouge.seconds)
        ratio = median(rouge.seconds) / median(faiss_.seconds)
        for name, res in (("ROUGE-L (rouge-novelty)", rouge), ("FAISS (faiss-novelty)", faiss_)):
            hit, via_src, other = caught(cands, res.rejected)
            split = f"{median(res.embed):.2f} + {median(res.search):.2f}" if res.embed else "-"
            rows.append(
                f"| {size} | {n_inj} | {name} | {reps_done} | {spread(res.seconds)} | {split} | "
                f"{hit}/{n_inj} ({hit / n_inj:.1%}) | {via_src} | {other} |"
            )
        search_ratio = median(rouge.seconds) / median(faiss_.search)
        rows.append(
            f"| {size} | | **ROUGE / FAISS time** | | **{ratio:.2f}×** | {search_ratio:.1f}× vs search only | | | |"
        )
        for kind in EDIT_KINDS:
            ids = [rid for rid, k in cands.kind.items() if k == kind]
            r_hit = sum(rid in rouge.rejected for rid in ids)
            f_hit = sum(rid in faiss_.rejected for rid in ids)
            share = f"{r_hit} ({r_hit / len(ids):.1%}) | {f_hit} ({f_hit / len(ids):.1%})"
            kind_rows.append(f"| {size} | {kind} | {len(ids)} | {share} |")
        if size == args.sizes[-1]:
            by_id = {r.id: r.input for r in cands.records}
            others = [(rid, reason) for rid, reason in faiss_.rejected.items() if rid not in cands.kind]
            for rid, reason in others[:3]:
                other_id = reason.rsplit(maxsplit=1)[-1]
                examples.append(f"- {reason.split(' with ')[0]}: “{by_id[rid]}” ~ “{by_id.get(other_id, '?')}”")
            missed = [rid for rid in cands.kind if rid not in faiss_.rejected]
            for rid in missed[:3]:
                examples.append(
                    f"- missed by FAISS ({cands.kind[rid]}): “{by_id[rid]}” ~ source “{by_id[cands.source[rid]]}”"
                )
        log(f"size {size}: ROUGE/FAISS time {ratio:.2f}, {search_ratio:.1f} vs search only (medians of {reps_done})")

    header = [
        "| candidates | injected | filter | reps | median s (min–max) | FAISS embed + search s (medians) |"
        " injected caught (recall) |"
        " caught via own source | other rejects |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    kind_header = ["| candidates | edit | n | ROUGE-L caught | FAISS caught |", "|---|---|---|---|---|"]
    rouge_cfg = novelty.RougeNoveltyConfig()
    report += [
        "## Text filters on Rotten Tomatoes snippets",
        "",
        f"Default configs: rouge-novelty threshold {rouge_cfg.threshold} (tokenizer '{rouge_cfg.tokenizer}'),"
        f" faiss-novelty threshold {config.threshold} (all-MiniLM-L6-v2, batch {config.batch_size},"
        f" threads {config.threads}, flat index up to {config.hnsw_above} vectors). One `reject` call per run with"
        " an empty pool: every candidate is compared with the candidates accepted before it. FAISS seconds ="
        " embedding (cold cache) + `reject` on cached embeddings; the encoder load is not counted."
        f" {args.dup_fraction:.0%} of each set are injected near-duplicates (seed {args.seed}).",
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
        report += [f"Examples from the {args.sizes[-1]} set (FAISS other rejects, then misses):", "", *examples, ""]
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
            above = int((sims[:, 0] > cfg.threshold).sum())
            log(f"  exact: {above}/{len(queries)} queries have a neighbour above {cfg.threshold}")
        else:
            ex_sims, ex_ids = exact
            same = (ids[:, 0] == ex_ids) | (sims[:, 0] >= ex_sims - 1e-6)
            recall = " / ".join(f"{same[g].mean():.4f}" for g in groups)
            decided = (sims[:, 0] > cfg.threshold) == (ex_sims > cfg.threshold)
            missed = int(((ex_sims > cfg.threshold) & (sims[:, 0] <= cfg.threshold)).sum())
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
        f" decision > {cfg.threshold} agrees with exact |",
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
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 5000, 10000], help="text candidate set sizes")
    parser.add_argument("--vector-sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--reps", type=int, default=3, help="timing repetitions (medians reported)")
    parser.add_argument("--rep-budget", type=float, default=400.0, help="seconds per text size for repetitions")
    parser.add_argument("--query-budget", type=float, default=120.0, help="seconds per index for batch searches")
    parser.add_argument("--dup-fraction", type=float, default=0.10, help="injected near-duplicates per set")
    parser.add_argument("--queries", type=int, default=10_000, help="vector queries per index")
    parser.add_argument("--single-queries", type=int, default=100, help="queries timed one at a time")
    parser.add_argument("--clusters", type=int, default=1024, help="mixture components of the vectors")
    parser.add_argument("--hnsw-max", type=int, default=200_000, help="build HNSW only up to this many vectors")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "novelty.md")
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
