"""The peers on the same job, side by side, in one run (issue 17).

The same chat prompts (SmolLM2-135M-Instruct, ``--max-tokens`` new tokens, temperature 0.8)
go through

* raw ``vllm.LLM.chat`` in-process (the limit) and distilforge's ``vllm`` teacher, in-process;
* ONE vLLM OpenAI-compatible server (every core bound, ``VLLM_CPU_OMP_THREADS_BIND``) serving
  raw ``openai.AsyncOpenAI``, distilforge's ``openai`` teacher, and each peer (distilabel,
  Curator, Data Designer) with its defaults and with its best settings.

Each peer runs in a virtualenv of its own (``--venvs``, created here if missing: ``python -m
venv`` + ``pip install`` of the pinned version; an install error becomes that peer's rows) with
its telemetry switched off. Each row is a child process (``bench/peers/job_*.py``) with a time
limit. The server rows and the in-process rows never share the machine: the server runs for the
server phase only, and the phases alternate between repeats (the rows rotate inside a phase).
"Requests" are what the server received during the row (``/metrics`` before and after); a
peer that re-asks a prompt pays for that completion twice.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/peers/run.py                     # 256 prompts, 1 repeat
    HF_HUB_OFFLINE=1 .venv/bin/python bench/peers/run.py --prompts 32 --rows raw-asyncopenai curator-best
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent
sys.path.insert(0, str(BENCH))
from teacher_throughput import make_prompts  # noqa: E402

SERVED = "teacher"
OFFLINE = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


@dataclass(frozen=True)
class Peer:
    name: str
    spec: tuple[str, ...]  # the pinned pip requirements
    job: str
    telemetry_env: dict[str, str]
    modes: dict[str, str]  # mode -> the settings it stands for (printed under the table)


PEERS = {
    "distilabel": Peer(
        "distilabel",
        # distilabel 1.5.3 imports requests without declaring it (huggingface_hub >= 1 no longer pulls it in)
        ("distilabel[openai]==1.5.3", "requests"),
        "job_distilabel.py",
        # distilabel 1.5.3 sends nothing itself; the Hugging Face hub client it imports does, unless told not to
        {"HF_HUB_DISABLE_TELEMETRY": "1"},
        {
            "default": "Pipeline + TextGeneration(OpenAILLM), default input_batch_size 50 (= requests in flight)",
            "best": "input_batch_size 256 (every prompt in flight at once), cache off",
        },
    ),
    "curator": Peer(
        "curator",
        ("bespokelabs-curator==0.1.31",),
        "job_curator.py",
        # its PostHog client reads TELEMETRY_ENABLED; CURATOR_VIEWER unset = nothing sent to the hosted viewer
        {"TELEMETRY_ENABLED": "false", "CURATOR_DISABLE_RICH_DISPLAY": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
        {
            "default": "curator.LLM(backend='openai'), base_url and api_key only: built-in limits for an unknown "
            "server (200 requests/min, 100k tokens/min), answers cut at max_tokens count as failures, 10 retries",
            "best": "rate limits lifted, 64 requests in flight, invalid_finish_reasons=['content_filter'], "
            "max_retries 2",
        },
    ),
    "datadesigner": Peer(
        "datadesigner",
        ("data-designer==0.9.7",),
        "job_datadesigner.py",
        {"NEMO_TELEMETRY_ENABLED": "false"},
        {
            "default": "DataFrame seed + LLMTextColumnConfig, InferenceParameters as shipped (max_parallel_requests 4)",
            "best": "max_parallel_requests 64, one row group (buffer_size = all prompts)",
        },
    ),
}


@dataclass
class Row:
    key: str
    label: str
    phase: str  # "server" or "inproc"
    settings: str
    command: list[str] | None = None  # None: could not be prepared (error says why)
    env: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)


# ----------------------------------------------------------------------------- peer venvs


def ensure_venv(peer: Peer, venvs: Path, log) -> tuple[Path | None, str | None, str | None]:
    """(python, installed version, error). Creates the venv and installs the pin when missing."""
    venv = venvs / peer.name
    python = venv / "bin" / "python"
    marker = venv / ".distilforge-bench-pin"
    install_log = venvs / f"{peer.name}.install.log"
    pins = " ".join(peer.spec)
    if not (python.exists() and marker.exists() and marker.read_text().strip() == pins):
        log(f"creating {venv} with {pins} (log {install_log})")
        venvs.mkdir(parents=True, exist_ok=True)
        base = getattr(sys, "_base_executable", None) or sys.executable
        with open(install_log, "w") as handle:
            steps = [[base, "-m", "venv", "--clear", str(venv)], [str(python), "-m", "pip", "install", *peer.spec]]
            for step in steps:
                handle.write(f"$ {' '.join(step)}\n")
                handle.flush()
                done = subprocess.run(step, stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, **OFFLINE})
                if done.returncode:
                    return None, None, f"install failed ({' '.join(step[-2:])}): " + last_lines(install_log)
        marker.write_text(pins + "\n")
    dist = re.split(r"[\[=<>]", peer.spec[0])[0]
    done = subprocess.run(
        [str(python), "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"],
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode:
        return None, None, f"installed but unusable: {done.stderr.strip().splitlines()[-1:]}"
    return python, done.stdout.strip(), None


def last_lines(path: Path, n: int = 3) -> str:
    try:
        lines = [x for x in path.read_text(errors="replace").splitlines() if x.strip() and "is ignored" not in x]
    except OSError:
        return ""
    return " | ".join(lines[-n:])[-600:]


def tiktoken_cache(venvs: Path) -> Path | None:
    """A TIKTOKEN_CACHE_DIR for the peers, which count tokens with tiktoken's cl100k_base.

    tiktoken downloads its encodings at first use, which fails offline (Curator then cannot
    start; Data Designer's profiler skips its token statistics). litellm (in Curator's venv)
    ships the files under tiktoken's cache names, so they are copied to ``venvs/tiktoken-cache``.
    """
    target = venvs / "tiktoken-cache"
    for source in sorted(venvs.glob("*/lib/python*/site-packages/litellm/litellm_core_utils/tokenizers")):
        target.mkdir(parents=True, exist_ok=True)
        for item in source.iterdir():
            if item.is_file() and len(item.name) == 40:  # sha1 of the encoding's URL
                shutil.copy2(item, target / item.name)
    return target if target.exists() and any(target.iterdir()) else None


# ----------------------------------------------------------------------------- server metrics


COUNTED = (
    "vllm:generation_tokens_total",
    "vllm:prompt_tokens_total",
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
)


def scrape(base_url: str) -> dict[str, float]:
    """The vLLM counters a row is charged with, from the server's Prometheus ``/metrics``."""
    url = base_url.removesuffix("/v1") + "/metrics"
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name_labels, _, value = line.rpartition(" ")
        name = name_labels.split("{", 1)[0]
        labels = name_labels[len(name) :]
        try:
            number = float(value)
        except ValueError:
            continue
        if name == "vllm:request_success_total":
            reason = re.search(r'finished_reason="([^"]*)"', labels)
            key = f"success_{reason.group(1) if reason else 'all'}"
            out[key] = out.get(key, 0.0) + number
            out["success"] = out.get("success", 0.0) + number
        elif name in COUNTED:
            out[name.split(":")[1]] = out.get(name.split(":")[1], 0.0) + number
        elif name == "http_requests_total" and "chat/completions" in labels:
            out["http_chat"] = out.get("http_chat", 0.0) + number
    return out


def wait_idle(base_url: str, limit_s: float = 60.0) -> None:
    """Until the server has nothing running or waiting (a killed client leaves requests behind)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            now = scrape(base_url)
            if now.get("num_requests_running", 0) == 0 and now.get("num_requests_waiting", 0) == 0:
                return
        time.sleep(1.0)


# ----------------------------------------------------------------------------- running one row


def run_child(command: list[str], env: dict[str, str], timeout_s: float, log_path: Path) -> dict[str, Any]:
    """Run a job in its own process group; kill the group at the time limit."""
    started = time.perf_counter()
    with open(log_path, "w") as log_file:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=log_file, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True, text=True,
        )  # fmt: skip
        timed_out = False
        try:
            stdout, _ = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                stdout, _ = process.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                stdout, _ = process.communicate()
        # whatever the job left in its group (pipeline workers) goes with it
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    log_file_text = stdout or ""
    with open(log_path, "a") as log_file:
        log_file.write("\n--- stdout ---\n" + log_file_text)
    result: dict[str, Any] = {}
    for line in log_file_text.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT ") :])
    return {
        "process_s": round(time.perf_counter() - started, 2),
        "returncode": process.returncode,
        "timed_out": timed_out,
        "result": result,
    }


def count_tokens(tokenizer, answers_path: Path) -> tuple[int, int, dict[str, int]]:
    """(answers with text, completion tokens, finish reasons) of a job's answer file."""
    if not answers_path.exists():
        return 0, 0, {}
    answered, tokens, reasons = 0, 0, {}
    for line in answers_path.read_text(encoding="utf-8").splitlines():
        answer = json.loads(line)
        if answer.get("text") is None:
            continue
        answered += 1
        count = answer.get("completion_tokens")
        if count is None:  # the peer does not report usage: count the text with the model's tokenizer
            count = len(tokenizer(answer["text"], add_special_tokens=False)["input_ids"])
        tokens += count
        reason = answer.get("finish_reason") or "unknown"
        reasons[reason] = reasons.get(reason, 0) + 1
    return answered, tokens, reasons


def run_row(row: Row, args, workdir: Path, rep: int, base_url: str | None, tokenizer, log) -> dict[str, Any]:
    tag = f"{row.key}-r{rep + 1}"
    out = workdir / "answers" / f"{tag}.jsonl"
    scratch = workdir / "scratch" / tag
    scratch.mkdir(parents=True, exist_ok=True)
    command = [*row.command, "--out", str(out), "--workdir", str(scratch)]
    if base_url:
        command += ["--base-url", base_url]
    env = {**os.environ, **OFFLINE, **row.env}
    if row.key.split("-")[0] in PEERS:  # a peer's venv must not import the project's code
        env.pop("PYTHONPATH", None)
    before = scrape(base_url) if base_url else {}
    child = run_child(command, env, args.timeout, workdir / "logs" / f"{tag}.log")
    counters: dict[str, float] = {}
    if base_url:
        wait_idle(base_url)
        after = scrape(base_url)
        counters = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after if not k.startswith("num_")}
    answered, tokens, reasons = count_tokens(tokenizer, out)
    result = child["result"]
    wall = result.get("wall_s")
    finished = child["returncode"] == 0 and not child["timed_out"] and answered == args.prompts and wall
    if finished:
        reason = "yes"
    elif child["timed_out"]:
        why = f"; {answered}/{args.prompts} answers written" if answered else ""
        reason = f"no: timeout after {args.timeout:g} s{why}"
    elif child["returncode"]:
        reason = f"no: exit {child['returncode']}: {last_lines(workdir / 'logs' / f'{tag}.log', 2)}"
    else:
        reason = f"no: {answered}/{args.prompts} answers ({result.get('note', 'missing answers')})"
    requests = counters.get("http_chat") or counters.get("success")
    run = {
        "rep": rep + 1,
        "wall_s": wall if finished else None,
        "process_s": child["process_s"],
        "answers": answered,
        "completion_tokens": tokens,
        "tok_s": round(tokens / wall, 1) if finished else None,
        "finish_reasons": reasons,
        "server": {k: int(v) for k, v in counters.items()},
        "requests": int(requests) if requests is not None else None,
        "paid_twice": max(0, int(requests) - args.prompts) if requests is not None else None,
        "finished": bool(finished),
        "status": reason,
        **{k: v for k, v in result.items() if k not in ("wall_s", "answers", "completion_tokens")},
    }
    shown = f"{wall:7.2f} s {run['tok_s']:7.1f} tok/s" if finished else "   -   "
    log(f"  rep {rep + 1} {row.key:26s} {shown}  requests {run['requests']}  {reason}")
    return run


# ----------------------------------------------------------------------------- the table


def median_or_none(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarise(rows: list[Row], prompts: int) -> list[dict[str, Any]]:
    # ratios are taken within a repeat (the raw row of the same repeat), then the median over repeats
    raw = {r["rep"]: r["wall_s"] for row in rows if row.key == "raw-vllm-chat" for r in row.runs}
    http = {r["rep"]: r["wall_s"] for row in rows if row.key == "raw-asyncopenai" for r in row.runs}
    table = []
    for row in rows:
        runs = row.runs
        ratios = [r["wall_s"] / raw[r["rep"]] for r in runs if r["wall_s"] and raw.get(r["rep"])]
        http_ratios = [r["wall_s"] / http[r["rep"]] for r in runs if r["wall_s"] and http.get(r["rep"])]
        done = [r for r in runs if r["finished"]]
        statuses = sorted({r["status"] for r in runs}) if runs else [f"no: {row.error}"]
        table.append(
            {
                "row": row.label,
                "key": row.key,
                "settings": row.settings,
                "wall_s": median_or_none([r["wall_s"] for r in runs]),
                "tok_s": median_or_none([r["tok_s"] for r in runs]),
                "x_raw": median_or_none(ratios),
                "x_http": median_or_none(http_ratios),
                "requests": median_or_none([r["requests"] for r in runs]),
                "paid_twice": median_or_none([r["paid_twice"] for r in runs]),
                "finished": f"{len(done)}/{len(runs)}" if runs else "0/0",
                "status": "; ".join(statuses),
                "prompts": prompts,
            }
        )
    return table


def fmt(value, spec: str, empty: str = "—") -> str:
    return empty if value is None else format(value, spec)


def markdown(table: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "| row | wall s | tok/s | × raw `LLM.chat` | × raw `AsyncOpenAI` | requests / prompts | paid twice "
        "| finished |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for t in table:
        requests = "—" if t["requests"] is None else f"{t['requests']:g} / {t['prompts']}"
        lines.append(
            f"| {t['row']} | {fmt(t['wall_s'], '.1f')} | {fmt(t['tok_s'], '.0f')} | {fmt(t['x_raw'], '.2f')} "
            f"| {fmt(t['x_http'], '.2f')} | {requests} | {fmt(t['paid_twice'], 'g')} | {t['status']} |"
        )
    lines += ["", "Settings:", ""]
    lines += [f"- **{t['row']}**: {t['settings']}" for t in table]
    lines += ["", "```", json.dumps(meta, indent=1), "```"]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- main


def build_rows(args, model_dir: Path, log) -> tuple[list[Row], dict[str, str]]:
    py = sys.executable
    base = [py, str(HERE / "job_baselines.py"), "--prompts", str(args.prompts_file),
            "--max-tokens", str(args.max_tokens), "--temperature", str(args.temperature)]  # fmt: skip
    conc = f"{args.concurrency} requests in flight"
    rows = [
        Row("raw-vllm-chat", "raw `vllm.LLM.chat` (in-process)", "inproc", "one `LLM.chat` call over all prompts",
            [*base, "--path", "vllm-chat", "--model", str(model_dir)]),
        Row("distilforge-vllm", "distilforge `vllm` teacher (in-process)", "inproc", "defaults",
            [*base, "--path", "vllm-teacher", "--model", str(model_dir)]),
        Row("raw-asyncopenai", "raw `AsyncOpenAI` → server", "server", f"semaphore, {conc}",
            [*base, "--path", "asyncopenai", "--model", SERVED, "--concurrency", str(args.concurrency)]),
        Row("distilforge-openai", "distilforge `openai` teacher → server", "server", "defaults (concurrency 64)",
            [*base, "--path", "openai-teacher", "--model", SERVED]),
    ]  # fmt: skip
    versions: dict[str, str] = {}
    for name in args.peers:
        peer = PEERS[name]
        python, version, error = ensure_venv(peer, args.venvs, log)
        versions[name] = version or f"not installed ({' '.join(peer.spec)})"
        for mode, settings in peer.modes.items():
            job = [str(python), str(HERE / peer.job), "--prompts", str(args.prompts_file), "--mode", mode,
                   "--model", SERVED, "--max-tokens", str(args.max_tokens),
                   "--temperature", str(args.temperature)]  # fmt: skip
            rows.append(
                Row(f"{name}-{mode}", f"{name} {version or ''} {mode}".replace("  ", " "), "server", settings,
                    job if python else None, dict(peer.telemetry_env), error)
            )  # fmt: skip
    cache = tiktoken_cache(args.venvs)
    for row in rows:
        if cache and row.key.split("-")[0] in PEERS:
            row.env["TIKTOKEN_CACHE_DIR"] = str(cache)
    if args.rows:
        rows = [r for r in rows if r.key in args.rows]
    return rows, versions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per row")
    parser.add_argument("--concurrency", type=int, default=64, help="raw AsyncOpenAI requests in flight")
    parser.add_argument("--peers", nargs="*", default=list(PEERS), choices=list(PEERS))
    parser.add_argument("--rows", nargs="*", default=None, help="only these row keys (see --list)")
    parser.add_argument(
        "--once", nargs="*", default=[], help="row keys run in the first repeat only (rows that run into the timeout)"
    )
    parser.add_argument("--list", action="store_true", help="print the row keys and exit")
    venvs = Path(os.environ.get("DISTILFORGE_PEER_VENVS", "/work/peer-venvs"))
    parser.add_argument("--venvs", type=Path, default=venvs, help="the peers' virtualenvs (outside the repository)")
    parser.add_argument("--model", type=Path, default=None, help="HF model directory (default: SmolLM2-135M)")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "peers", help="writes OUT.md and OUT.json")
    parser.add_argument("--workdir", type=Path, default=None, help="answers, logs (default: a temporary folder)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind through `with server:`

    def log(message: str) -> None:
        print(message, flush=True)

    if args.model is None:
        from distilforge.plugins.models.packaged import default_teacher_dir

        args.model = default_teacher_dir()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="df-peers-"))
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    args.prompts_file = workdir / "prompts.jsonl"
    with open(args.prompts_file, "w") as handle:
        for k, text in enumerate(make_prompts(args.prompts)):
            handle.write(json.dumps({"id": k, "prompt": text}) + "\n")
    warm_file = workdir / "warmup-prompts.jsonl"
    warm_file.write_text("".join(args.prompts_file.read_text().splitlines(keepends=True)[:16]))
    rows, versions = build_rows(args, args.model, log)
    if args.list:
        for row in rows:
            print(f"{row.key:24s} {row.phase:7s} {row.label}")
        return 0
    log(f"workdir {workdir}; {args.prompts} prompts x {args.max_tokens} tokens, T {args.temperature}; "
        f"{args.repeats} repeat(s); timeout {args.timeout:g} s/row; peers {versions}")  # fmt: skip

    from transformers import AutoTokenizer

    from distilforge.plugins.teachers.vllm_server import VLLMServer, cpu_list

    tokenizer = AutoTokenizer.from_pretrained(str(args.model))
    bind = os.environ.get("VLLM_CPU_OMP_THREADS_BIND") or cpu_list()
    server_notes: list[str] = []
    started_at = time.strftime("%Y-%m-%d %H:%M:%S")
    for rep in range(args.repeats):
        phases = ["server", "inproc"] if rep % 2 == 0 else ["inproc", "server"]
        for phase in phases:
            todo = [r for r in rows if r.phase == phase and r.command and (rep == 0 or r.key not in args.once)]
            if not todo:
                continue
            shift = rep % len(todo)
            todo = todo[shift:] + todo[:shift]
            log(f"repeat {rep + 1}: {phase} rows {[r.key for r in todo]}")
            if phase == "inproc":
                for row in todo:
                    row.runs.append(run_row(row, args, workdir, rep, None, tokenizer, log))
                continue
            server_log = workdir / "logs" / f"server-r{rep + 1}.log"
            t0 = time.perf_counter()
            server = VLLMServer(args.model, served_name=SERVED, log_path=server_log, extra_args=["--seed", "0"],
                                startup_timeout_s=300)  # fmt: skip
            with server:
                ready = time.perf_counter() - t0
                bound = [ln for ln in server_log.read_text(errors="replace").splitlines() if "core ids=" in ln]
                server_notes.append(f"repeat {rep + 1}: ready in {ready:.0f} s, VLLM_CPU_OMP_THREADS_BIND={bind}")
                log(f"  server ready in {ready:.0f} s at {server.base_url} (bind {bind}) {bound[-1:] if bound else ''}")
                warm = [sys.executable, str(HERE / "job_baselines.py"), "--prompts", str(warm_file),
                        "--path", "asyncopenai", "--model", SERVED, "--max-tokens", "8", "--base-url", server.base_url,
                        "--out", str(workdir / "warmup.jsonl")]  # fmt: skip
                subprocess.run(warm, env={**os.environ, **OFFLINE}, capture_output=True, timeout=300)
                for row in todo:
                    row.runs.append(run_row(row, args, workdir, rep, server.base_url, tokenizer, log))
    table = summarise(rows, args.prompts)
    meta = {
        "started": started_at,
        "prompts": args.prompts,
        "max_tokens": args.max_tokens,
        "temperature": args.temperature,
        "repeats": args.repeats,
        "timeout_s": args.timeout,
        "model": str(args.model),
        "peers": versions,
        "server": server_notes,
        "cpus": os.cpu_count(),
        "loadavg_at_end": os.getloadavg(),
    }
    text = markdown(table, meta)
    print("\n" + text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(
        f"# The peers on the same job (`bench/peers/run.py`, {started_at})\n\n{text}", encoding="utf-8"
    )
    detail = {
        "meta": meta,
        "table": table,
        "runs": {r.key: r.runs for r in rows},
        "errors": {r.key: r.error for r in rows if r.error},
    }
    args.out.with_suffix(".json").write_text(json.dumps(detail, indent=1), encoding="utf-8")
    log(f"wrote {args.out.with_suffix('.md')} and .json; answers and logs in {workdir}")
    if args.workdir is None and os.environ.get("DISTILFORGE_PEERS_KEEP") != "1":
        shutil.rmtree(workdir / "scratch", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
