"""The generate stage: prompts -> teacher samples (through the cache) -> parsed candidates ->
scores -> filter verdicts -> one atomic commit of the round's records and rejects."""

from __future__ import annotations

from collections import Counter

from distilforge.engine import hooks
from distilforge.engine.api.errors import TeacherUnavailable
from distilforge.engine.progress import sampling_progress
from distilforge.engine.sampling import sample_with_cache
from distilforge.engine.stages import RoundState, Stage, write_round_metrics
from distilforge.schemas import Completion, Provenance, Record, Reject, TeacherRequest


def retry_request(request: TeacherRequest, count: int, attempt: int) -> TeacherRequest:
    """The same prompt asked again for ``count`` samples under a new salt, so a sampling teacher draws fresh
    answers and the cache does not hand back the ones that could not be parsed."""
    data = request.model_dump(exclude={"id"})
    data["sampling"]["n"] = count
    data["salt"] = f"{request.salt}|retry-{attempt}"
    data["meta"] = {**request.meta, "retry_of": request.meta.get("retry_of", request.id), "attempt": attempt}
    return TeacherRequest.model_validate(data)


class GenerateStage(Stage):
    """Ask the teacher about the selected failures, keep what parses and passes the filters."""

    name = "generate"
    commits = True

    def run(self, state: RoundState) -> None:
        r, failures, metrics = state.round, state.failures, state.metrics
        ctx, store = self.loop.ctx, self.loop.store
        requests = hooks.build_prompts(self.loop.pm, failures, ctx)
        metrics["requests"] = len(requests)
        sent, asked = list(requests), list(requests)
        candidates, rejects, totals = self._sample_and_parse(r, asked)
        if requests and rejects and all(x.stage == "sample" for x in rejects) and not candidates:
            raise TeacherUnavailable(
                f"round {r}: all {len(rejects)} teacher samples failed, the first with: {rejects[0].reason}. Nothing"
                " of this round was committed; fix the cause and run the same command again (it resumes here)."
            )
        latest = rejects
        for attempt in range(1, ctx.method.retries + 1):  # answers the method could not parse are asked again
            failed = Counter(x.request_id for x in latest if x.stage == "parse")
            asked = [retry_request(q, failed[q.id], attempt) for q in asked if failed[q.id]]
            if not asked:
                break
            sent += asked
            more, latest, stats = self._sample_and_parse(r, asked, {c.id for c in candidates})
            candidates += more
            rejects += latest
            totals = {k: totals[k] + v for k, v in stats.items()}
            metrics["retried"] = metrics.get("retried", 0) + sum(q.sampling.n for q in asked)
        store.save_json(r, "requests.json", [q.model_dump(mode="json") for q in sent])
        metrics.update(totals)
        metrics["generated"] = len(candidates) + sum(1 for x in rejects if x.stage == "parse")
        if candidates:
            by_id = {record.id: record for record in candidates}
            for record_id, scores in self.loop.executor.score(candidates, ctx).items():
                if record_id in by_id:
                    by_id[record_id].scores.update(scores)
            ctx.usage = {}
            verdicts = hooks.filter_records(self.loop.pm, candidates, ctx)
            if ctx.usage:  # samples the filters asked for (an LLM judge), cached and counted like the method's
                metrics["usage"] = ctx.usage
                ctx.usage = {}
            rejected: dict[str, tuple[str, str]] = {}
            for verdict in verdicts:
                rejected.setdefault(verdict.record_id, (verdict.rejected_by, verdict.reason))
            accepted = []
            for record in candidates:
                if record.id in rejected:
                    by, reason = rejected[record.id]
                    flagged = record.model_copy(update={"rejected_by": by, "reject_reason": reason})
                    rejects.append(Reject(round=r, stage="filter", reason=reason, rejected_by=by, record=flagged))
                else:
                    accepted.append(record)
        else:
            accepted = []
        metrics["accepted"] = len(accepted)
        metrics["rejected"] = dict(Counter(x.rejected_by for x in rejects))
        ctx.state = dict(ctx.state)
        # metrics first: a kill before the commit redoes the round and rewrites them; after it, they are there
        write_round_metrics(store, r, metrics)
        store.commit(accepted, rejects, round_index=r, stage="generate", state=ctx.state)

    def _sample_and_parse(
        self, r: int, requests: list[TeacherRequest], earlier: set[str] | None = None
    ) -> tuple[list[Record], list[Reject], dict[str, float]]:
        loop = self.loop
        with sampling_progress(
            loop.console, f"round {r}: teacher", sum(q.sampling.n for q in requests)
        ) as on_completion:
            completions, stats = sample_with_cache(loop.ctx, requests, loop.cache, loop.executor, on_completion)
        candidates, rejects = self._parse(r, requests, completions, earlier or set())
        return candidates, rejects, stats.as_dict()

    def _parse(
        self,
        r: int,
        requests: list[TeacherRequest],
        completions: dict[tuple[str, int], Completion],
        earlier: set[str],
    ) -> tuple[list[Record], list[Reject]]:
        ctx = self.loop.ctx
        known = {rec.id for rec in ctx.pool} | earlier
        candidates: list[Record] = []
        rejects: list[Reject] = []
        by_request = {q.id: q for q in requests}
        for (request_id, index), completion in sorted(completions.items()):
            request = by_request[request_id]
            base = {"round": r, "request_id": request_id, "sample_index": index}
            if not completion.ok:
                rejects.append(Reject(stage="sample", reason=str(completion.error), rejected_by="teacher", **base))
                continue
            parsed = hooks.parse_completion(self.loop.pm, completion, request, ctx)
            if isinstance(parsed, str):
                rejects.append(
                    Reject(stage="parse", reason=parsed, rejected_by=ctx.method.name, text=completion.text, **base)
                )
                continue
            for record in parsed:
                record = record.model_copy(
                    update={
                        "origin": "synthetic" if record.origin == "seed" else record.origin,
                        "round": r,
                        "parent_id": record.parent_id or request.meta.get("parent_id"),
                        "provenance": record.provenance
                        or Provenance(
                            teacher=completion.model or ctx.teacher.model_id,
                            prompt_hash=request.prompt_hash(),
                            sampling=request.sampling.cache_fields(),
                            sample_index=index,
                        ),
                        # "truncated" defaults to the answer's; a method that took a complete
                        # example out of a cut answer says so with meta["truncated"] = False
                        "meta": {
                            "truncated": completion.finish_reason == "length",
                            **record.meta,
                            "finish_reason": completion.finish_reason,
                        },
                    }
                )
                if record.id in known:
                    rejects.append(
                        Reject(
                            stage="filter",
                            reason=f"same input and target as record {record.id}",
                            rejected_by="engine:duplicate-id",
                            record=record,
                            **base,
                        )
                    )
                    continue
                known.add(record.id)
                candidates.append(record)
        return candidates, rejects
