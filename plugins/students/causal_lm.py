"""Student ``causal-lm``: fine-tune a small decoder (SmolLM2-135M by default) on worked answers.

Built for GSM-style math: the student reads a question and writes a worked solution that ends
with ``#### <number>``; a prediction is correct when that final number equals the one after
``####`` in the record's target (numerically: ``#### 1,234`` equals ``#### 1234.0``).

* ``mode: full`` trains every weight; ``mode: lora`` freezes the base and trains low-rank
  adapters (``W x + (alpha / r) * B A x``, ``B`` zero-initialised) on the chosen Linear layers.
  LoRA is our own (no ``peft`` dependency): :mod:`distilforge.plugins.students.lora`.
* The loss is the mean negative log-likelihood of the *answer* tokens (the target plus the
  closing EOS token) over the whole batch; prompt and padding positions carry the label
  ``-100`` and the LM head is only applied to the answer positions (less memory, less time).
* ``train`` always starts from the base weights: the base model is loaded once, never trained,
  and copied for every run (LoRA: the copy shares the frozen base tensors and gets fresh
  adapters). ``last_initial_fingerprint`` records the weights each run started from. Training
  is seeded inside its own RNG scope and deterministic on the CPU for a fixed thread count.
* ``predict`` decodes greedily in batches with left padding and stops a row at EOS or right
  after its ``#### <number>`` line.

For OOD / energy scoring the student exposes teacher-forced scores of a record's *target*
tokens (the tokens of the formatted answer, without the closing EOS):

* :meth:`CausalLMStudent.token_logprobs` -> per record a ``float32`` array ``[n_target]`` of
  ``log p(token | prompt, previous target tokens)`` (all ``<= 0``);
* :meth:`CausalLMStudent.token_logsumexp` -> per record ``T * logsumexp(logits / T)`` per target
  token, so :meth:`CausalLMStudent.free_energy` is ``-mean`` of it (padding never enters:
  every record is scored on its own positions only);
* :meth:`CausalLMStudent.sequence_logits` -> the full ``[n_target, vocab]`` logits (49k columns
  for SmolLM2: about 200 KB per token, so use it on small batches).
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from distilforge.engine.api.components import Prediction, Student
from distilforge.engine.api.toolkit import compute_threads
from distilforge.engine.api.toolkit.training import read_checkpoint_header, warmup_linear_decay, write_checkpoint_header
from distilforge.plugins.students.catalogue import CausalLMConfig
from distilforge.plugins.students.causal_lm_generation import CausalLMPrediction, greedy_answers
from distilforge.plugins.students.lora import add_lora, lora_state, state_fingerprint
from distilforge.plugins.students.losses import symmetric_cross_entropy
from distilforge.plugins.students.math_answers import answers_match, final_answer
from distilforge.schemas import Evaluation, Record, RecordResult

DEFAULT_LR = {"full": 3e-5, "lora": 5e-4}

# --------------------------------------------------------------------------- the student


class CausalLMStudent(Student[CausalLMConfig]):
    def __init__(self, config: CausalLMConfig) -> None:
        super().__init__(config)
        self._tokenizer: Any = None
        self._base: nn.Module | None = None
        self._base_path: str | None = None
        self._base_fingerprint: str | None = None
        self._model: nn.Module | None = None
        self.mode: str = config.mode
        self.last_initial_fingerprint: str | None = None

    # ------------------------------------------------------------------ base model

    @property
    def model_path(self) -> str:
        if self.config.model:
            return self.config.model
        from distilforge.plugins.models.packaged import default_teacher_dir

        return str(default_teacher_dir())

    def _ensure_base(self, path: str | None = None) -> nn.Module:
        """Load the base model and tokenizer once; the base copy is never trained.

        ``path=None`` means the base already loaded (e.g. the one a checkpoint named), else the config's.
        """
        if path is None and self._base is not None:
            return self._base
        path = path or self.model_path
        if self._base is None or self._base_path != path:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(path)
            if tokenizer.pad_token_id is None:
                tokenizer.pad_token = tokenizer.eos_token
            base = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
            base.eval()
            for p in base.parameters():
                p.requires_grad_(False)
            self._tokenizer, self._base, self._base_path, self._base_fingerprint = tokenizer, base, path, None
        return self._base

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            self._ensure_base()
        return self._tokenizer

    def base_state_fingerprint(self) -> str:
        """Fingerprint of the base weights every ``train`` starts from (cached: the base never changes)."""
        base = self._ensure_base()
        if self._base_fingerprint is None:
            self._base_fingerprint = state_fingerprint(base.state_dict())
        return self._base_fingerprint

    def state_fingerprint(self) -> str | None:
        """Fingerprint of the current model's weights (adapters included); None before training."""
        return state_fingerprint(self._model.state_dict()) if self._model is not None else None

    @property
    def model(self) -> nn.Module:
        if self._model is None:
            raise RuntimeError("causal-lm: train or load the student first")
        return self._model

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        """bfloat16 autocast for matmuls (weights and optimizer state stay float32), or nothing."""
        if self.config.compute_dtype == "bfloat16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _fresh_copy(self) -> nn.Module:
        """A copy of the base to train. LoRA shares the frozen base tensors (no 500 MB copy)."""
        base = self._ensure_base(self.model_path)
        if self.config.mode == "lora":
            memo: dict[int, Any] = {id(t): t for t in (*base.parameters(), *base.buffers())}
            return copy.deepcopy(base, memo)
        return copy.deepcopy(base)

    # ------------------------------------------------------------------ formatting

    def prompt_text(self, question: str) -> str:
        if self.config.prompt_format == "plain":
            return f"Question: {question}\nAnswer:"
        messages = []
        if self.config.system_prompt:
            messages.append({"role": "system", "content": self.config.system_prompt})
        messages.append({"role": "user", "content": question})
        return str(self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))

    def answer_text(self, target: str) -> str:
        return f" {target.strip()}" if self.config.prompt_format == "plain" else target.strip()

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def prompt_ids(self, record: Record) -> list[int]:
        ids = self._encode(self.prompt_text(record.input))
        return ids[-self.config.max_length :]

    def target_token_ids(self, record: Record) -> list[int]:
        """The tokens :meth:`token_logprobs` scores: the formatted answer, without the EOS."""
        return self._encode(self.answer_text(record.target))

    def encode_example(self, record: Record) -> tuple[list[int], list[int], bool]:
        """``(input_ids, labels, truncated)``: prompt labels are -100; the answer ends with EOS.

        Prompt and answer are tokenized separately, exactly as they meet at generation time.
        """
        prompt = self._encode(self.prompt_text(record.input))
        answer = [*self.target_token_ids(record), int(self.tokenizer.eos_token_id)]
        ids = prompt + answer
        labels = [-100] * len(prompt) + answer
        truncated = len(ids) > self.config.max_length
        return ids[: self.config.max_length], labels[: self.config.max_length], truncated

    def collate(self, examples: Sequence[tuple[list[int], list[int]]]) -> dict[str, torch.Tensor]:
        """Right-padded batch; padding positions get label -100 and attention 0."""
        width = max(len(ids) for ids, _ in examples)
        pad = int(self.tokenizer.pad_token_id)
        input_ids = torch.full((len(examples), width), pad, dtype=torch.long)
        labels = torch.full((len(examples), width), -100, dtype=torch.long)
        attention = torch.zeros((len(examples), width), dtype=torch.long)
        for i, (ids, lab) in enumerate(examples):
            input_ids[i, : len(ids)] = torch.tensor(ids)
            labels[i, : len(lab)] = torch.tensor(lab)
            attention[i, : len(ids)] = 1
        return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}

    # ------------------------------------------------------------------ loss

    def _hidden_and_head(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, nn.Module]:
        decoder = model.get_decoder()
        hidden = decoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        return hidden, model.get_output_embeddings()

    def _answer_logits(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and labels at the labelled positions only (position ``t`` predicts token ``t + 1``;
        the LM head runs only where the label is kept)."""
        hidden, head = self._hidden_and_head(model, batch)
        labels = batch["labels"][:, 1:]
        keep = labels != -100
        return head(hidden[:, :-1][keep]).float(), labels[keep]

    def answer_nll(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        """``(sum of NLL over labelled positions, number of labelled positions)`` for a batch."""
        logits, labels = self._answer_logits(model, batch)
        return F.cross_entropy(logits, labels, reduction="sum"), len(labels)

    def answer_loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        """``(sum of the configured loss over labelled positions, their number)``: NLL, or the
        symmetric cross-entropy per token (robust to the noisy answers a teacher writes)."""
        if self.config.loss == "ce":
            return self.answer_nll(model, batch)
        logits, labels = self._answer_logits(model, batch)
        mean = symmetric_cross_entropy(logits, labels, self.config.sce_alpha, self.config.sce_beta)
        return mean * len(labels), len(labels)

    def batch_loss(self, records: Sequence[Record], model: nn.Module | None = None) -> torch.Tensor:
        """Mean loss per answer token of ``records`` (one batch), as minimised by ``train``."""
        batch = self.collate([self.encode_example(r)[:2] for r in records])
        total, count = self.answer_loss(model or self.model, batch)
        return total / max(count, 1)

    # ------------------------------------------------------------------ train

    def train(self, records: Sequence[Record], seed: int) -> dict[str, float]:
        if not records:
            raise ValueError("causal-lm: no training records")
        cfg = self.config
        start = time.perf_counter()
        self._model = None
        self.mode = cfg.mode
        with compute_threads(cfg.threads), torch.random.fork_rng(devices=[]), self._autocast():
            torch.manual_seed(seed)
            gen = torch.Generator().manual_seed(seed)
            model = self._fresh_copy()  # always the base weights, never the last round's
            self.last_initial_fingerprint = state_fingerprint(model.state_dict())
            if cfg.mode == "lora":
                add_lora(model, cfg.lora_targets, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, gen)
            else:
                for p in model.parameters():
                    p.requires_grad_(True)
            stats = self._fit(model, records, gen)
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        self._model = model
        stats.update({"n": float(len(records)), "seconds": time.perf_counter() - start})
        return stats

    def _fit(self, model: nn.Module, records: Sequence[Record], gen: torch.Generator) -> dict[str, float]:
        cfg = self.config
        encoded = [self.encode_example(r) for r in records]
        examples = [(ids, labels) for ids, labels, _ in encoded]
        trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        no_decay = ("bias", "norm.weight", "layernorm.weight")
        groups = [
            {"params": [p for n, p in trainable if not n.endswith(no_decay)], "weight_decay": cfg.weight_decay},
            {"params": [p for n, p in trainable if n.endswith(no_decay)], "weight_decay": 0.0},
        ]
        lr = cfg.lr if cfg.lr is not None else DEFAULT_LR[cfg.mode]
        optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=lr)
        n = len(examples)
        steps_per_epoch = math.ceil(n / cfg.batch_size)
        total = steps_per_epoch * cfg.epochs
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_linear_decay(total, cfg.warmup_ratio))
        params = [p for _, p in trainable]
        model.train()
        epoch_loss, tokens = 0.0, 0
        for _ in range(cfg.epochs):
            order = torch.randperm(n, generator=gen).tolist()
            epoch_sum, epoch_tokens = 0.0, 0
            for b in range(steps_per_epoch):
                idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
                step_tokens = sum(sum(1 for x in examples[i][1][1:] if x != -100) for i in idx)
                optimizer.zero_grad(set_to_none=True)
                for m in range(0, len(idx), cfg.micro_batch_size):
                    batch = self.collate([examples[i] for i in idx[m : m + cfg.micro_batch_size]])
                    loss_sum, _ = self.answer_loss(model, batch)
                    # Token-weighted mean over the whole optimizer batch, across micro-batches.
                    (loss_sum / max(step_tokens, 1)).backward()
                    epoch_sum += float(loss_sum.detach())
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                optimizer.step()
                scheduler.step()
                epoch_tokens += step_tokens
            epoch_loss = epoch_sum / max(epoch_tokens, 1)
            tokens += epoch_tokens
        return {
            "loss": epoch_loss,
            "steps": float(total),
            "epochs": float(cfg.epochs),
            "lr": lr,
            "answer_tokens": float(tokens),
            "truncated": float(sum(t for _, _, t in encoded)),
            "trainable_params": float(sum(p.numel() for p in params)),
        }

    # ------------------------------------------------------------------ predict

    def generate(self, records: Sequence[Record]) -> list[CausalLMPrediction]:
        """Greedy answers, batched with left padding (batches of similar prompt length)."""
        with compute_threads(self.config.threads), torch.no_grad(), self._autocast():
            return greedy_answers(self.model, self.tokenizer, [self.prompt_ids(r) for r in records], self.config)

    def predict(self, records: Sequence[Record]) -> list[Prediction]:
        return list(self.generate(records))

    def is_correct(self, prediction: Prediction, record: Record) -> bool:
        return answers_match(prediction.label, record.target)

    def evaluate(self, records: Sequence[Record], split: str) -> Evaluation:
        """Accuracy plus how often an answer ends with ``#### N`` and how long the answers are."""
        predictions = self.generate(records) if records else []
        results = [
            RecordResult(record_id=r.id, correct=self.is_correct(p, r), prediction=p.label, confidence=p.confidence)
            for r, p in zip(records, predictions, strict=True)
        ]
        n = len(results)
        metrics = {
            "accuracy": sum(x.correct for x in results) / n if n else 0.0,
            "n": float(n),
            "final_answer_rate": sum(final_answer(p.text) is not None for p in predictions) / n if n else 0.0,
            "mean_generated_tokens": sum(p.generated_tokens for p in predictions) / n if n else 0.0,
        }
        return Evaluation(split=split, results=results, metrics=metrics)

    # ------------------------------------------------------------------ token scores

    def _teacher_forced(
        self, records: Sequence[Record], batch_size: int, model: nn.Module | None = None
    ) -> Iterator[tuple[int, torch.Tensor]]:
        """Yield ``(record index, logits of its target tokens [n_target, vocab])``, batch by batch."""
        model = model if model is not None else self.model
        for b in range(0, len(records), batch_size):
            chunk = records[b : b + batch_size]
            examples = []
            spans = []
            for r in chunk:
                prompt = self._encode(self.prompt_text(r.input))
                target = self.target_token_ids(r)
                ids = (prompt + target)[-self.config.max_length :]
                n_target = min(len(target), len(ids) - 1)
                examples.append((ids, [-100] * len(ids)))
                spans.append((len(ids) - n_target, len(ids)))
            batch = self.collate(examples)
            hidden, head = self._hidden_and_head(model, batch)
            for row, (lo, hi) in enumerate(spans):
                yield b + row, head(hidden[row, lo - 1 : hi - 1]).float()

    def _per_token(
        self, records: Sequence[Record], fn: Any, batch_size: int, model: nn.Module | None = None
    ) -> list[np.ndarray]:
        out: list[np.ndarray] = [np.zeros(0, dtype=np.float32)] * len(records)
        with compute_threads(self.config.threads), torch.no_grad(), self._autocast():
            for i, logits in self._teacher_forced(records, batch_size, model):
                out[i] = fn(i, logits).numpy().astype(np.float32)
        return out

    def token_logprobs(
        self, records: Sequence[Record], batch_size: int = 8, model: nn.Module | None = None
    ) -> list[np.ndarray]:
        """Per record, ``log p`` of each target token given the prompt and the previous target tokens.

        ``model`` defaults to the trained student (pass ``student._ensure_base()`` to score with the base).
        """
        targets = [torch.tensor(self.target_token_ids(r)) for r in records]

        def logprob(i: int, logits: torch.Tensor) -> torch.Tensor:
            ids = targets[i][-logits.shape[0] :]
            return torch.log_softmax(logits, dim=-1).gather(1, ids[:, None]).squeeze(1)

        return self._per_token(records, logprob, batch_size, model)

    def token_logsumexp(
        self, records: Sequence[Record], temperature: float = 1.0, batch_size: int = 8
    ) -> list[np.ndarray]:
        """Per record, ``T * logsumexp(logits / T)`` at each target position (the negative free energy)."""
        return self._per_token(
            records, lambda _i, logits: temperature * torch.logsumexp(logits / temperature, dim=-1), batch_size
        )

    def free_energy(self, records: Sequence[Record], temperature: float = 1.0, batch_size: int = 8) -> np.ndarray:
        """Mean over target tokens of ``-T * logsumexp(logits / T)``; higher = more out-of-distribution."""
        values = self.token_logsumexp(records, temperature, batch_size)
        return np.array([-float(v.mean()) if v.size else 0.0 for v in values], dtype=np.float64)

    def sequence_logits(self, records: Sequence[Record], batch_size: int = 4) -> list[np.ndarray]:
        """Per record, the full ``[n_target, vocab]`` logits at the target positions (memory-heavy)."""
        return self._per_token(records, lambda _i, logits: logits, batch_size)

    # ------------------------------------------------------------------ checkpoint

    def save(self, path: Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        model = self.model
        meta: dict[str, Any] = {"mode": self.mode, "base_model": self._base_path}
        if self.mode == "lora":
            # Only the adapters; the base is named by path and checked by fingerprint on load.
            meta["base_fingerprint"] = self.base_state_fingerprint()
            meta["lora_modules"] = sorted({n.rsplit(".lora_", 1)[0] for n in lora_state(model)})
            save_file({k: v.contiguous() for k, v in lora_state(model).items()}, path / "adapters.safetensors")
        else:
            model.save_pretrained(path / "model")
            self.tokenizer.save_pretrained(path / "model")
        write_checkpoint_header(path, self, **meta)

    def load(self, path: Path) -> None:
        path = Path(path)
        meta = read_checkpoint_header(path, self)
        saved = CausalLMConfig.model_validate(meta["config"])
        self.mode = meta["mode"]
        self._model = None
        if self.mode == "full":
            from transformers import AutoModelForCausalLM, AutoTokenizer

            # The base is not needed to predict; it is loaded when the next ``train`` asks for it.
            self._base_path = self._base_path or meta.get("base_model")
            self._tokenizer = AutoTokenizer.from_pretrained(path / "model")
            if self._tokenizer.pad_token_id is None:
                self._tokenizer.pad_token = self._tokenizer.eos_token
            model = AutoModelForCausalLM.from_pretrained(path / "model", dtype=torch.float32)
        else:
            self._ensure_base(meta["base_model"])
            if meta.get("base_fingerprint") != self.base_state_fingerprint():
                raise ValueError(f"{path}: the adapters were trained on other base weights than {meta['base_model']}")
            model = self._fresh_copy_for(saved)
            add_lora(model, saved.lora_targets, saved.lora_r, saved.lora_alpha, saved.lora_dropout, torch.Generator())
            state = load_file(path / "adapters.safetensors")
            current = dict(model.named_parameters())
            if set(state) != {n for n in current if ".lora_" in n}:
                raise ValueError(f"{path}: the adapters do not fit the model's target modules")
            with torch.no_grad():
                for name, value in state.items():
                    current[name].copy_(value)
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        self._model = model

    def _fresh_copy_for(self, saved: CausalLMConfig) -> nn.Module:
        base = self._ensure_base(self._base_path)
        if saved.mode == "lora":
            memo: dict[int, Any] = {id(t): t for t in (*base.parameters(), *base.buffers())}
            return copy.deepcopy(base, memo)
        return copy.deepcopy(base)
