"""Student ``text-classifier``: a transformer encoder (MiniLM by default) with a linear head.

Two modes:

* ``finetune``: the encoder and a linear head on its mean-pooled output are trained together
  with AdamW (separate learning rates: the fresh head needs a much larger one than the
  pretrained encoder), linear warm-up and decay, cross-entropy or symmetric cross-entropy.
* ``frozen``: the base encoder only embeds (mean-pooled, L2-normalised, cached per text within
  the process) and a logistic regression is fitted on the embeddings — seconds, not minutes.
  With ``loss: sce`` the head is a torch linear layer fitted full-batch with L-BFGS instead,
  with the same L2 strength ``C`` as scikit-learn's objective.

``train`` always starts from the base weights: the base encoder is loaded once and deep-copied
for every training run, so nothing of an earlier round leaks into the next (the LLM2LLM
protocol). Training is seeded (its own RNG scope, the global torch RNG is left untouched) and
deterministic on the CPU for a fixed thread count.
"""

from __future__ import annotations

import copy
import hashlib
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from sklearn.linear_model import LogisticRegression
from torch import nn

from distilforge.engine.api.components import Student
from distilforge.engine.api.toolkit import compute_threads
from distilforge.engine.api.toolkit.embeddings import embed, load_encoder, mean_pool
from distilforge.engine.api.toolkit.predictions import resolve_labels
from distilforge.engine.api.toolkit.training import read_checkpoint_header, warmup_linear_decay, write_checkpoint_header
from distilforge.plugins.models.packaged import default_encoder_dir
from distilforge.plugins.students.catalogue import TextClassifierConfig
from distilforge.plugins.students.logreg import TextLogitsMixin, fit_logreg, sklearn_logits
from distilforge.plugins.students.losses import symmetric_cross_entropy
from distilforge.plugins.students.sklearn_state import load_logreg, save_logreg
from distilforge.schemas import Record


def state_fingerprint(module: nn.Module) -> str:
    """sha256 over every parameter and buffer (names, dtypes, shapes and bytes)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


class _Classifier(nn.Module):
    def __init__(self, encoder: nn.Module, n_labels: int, dropout: float) -> None:
        super().__init__()
        self.encoder = encoder
        hidden = int(encoder.config.hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, n_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **extra: torch.Tensor) -> torch.Tensor:
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **extra)
        pooled = mean_pool(out.last_hidden_state, attention_mask)
        return self.head(self.dropout(pooled))


class TextClassifierStudent(TextLogitsMixin, Student[TextClassifierConfig]):
    def __init__(self, config: TextClassifierConfig) -> None:
        super().__init__(config)
        self.labels: list[str] = []
        self.mode: str = config.mode
        self.loss: str = config.loss
        self._tokenizer: Any = None
        self._base: nn.Module | None = None
        self._model: _Classifier | None = None  # finetune mode
        self._clf: LogisticRegression | None = None  # frozen mode, ce
        self._single_label: str | None = None  # frozen mode, ce, one training class
        self._head: nn.Linear | None = None  # frozen mode, sce
        self.last_initial_fingerprint: str | None = None

    # ------------------------------------------------------------------ base encoder

    @property
    def encoder_path(self) -> str:
        return self.config.encoder or default_encoder_dir()

    def _ensure_base(self) -> nn.Module:
        """The shared base encoder (loaded once per process); ``train`` deep-copies it, never trains it."""
        if self._base is None:
            encoder = load_encoder(self.encoder_path)
            self._base, self._tokenizer = encoder.model, encoder.tokenizer
        return self._base

    def base_state_fingerprint(self) -> str:
        """Fingerprint of the base encoder weights (what every ``train`` starts from)."""
        return state_fingerprint(self._ensure_base())

    def state_fingerprint(self) -> str | None:
        """Fingerprint of the current (trained) encoder; None in frozen mode or before training."""
        return state_fingerprint(self._model.encoder) if self._model is not None else None

    def _tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        return dict(
            self._tokenizer(
                list(texts),
                padding=True,
                truncation=True,
                max_length=self.config.max_length,
                return_tensors="pt",
            )
        )

    # ------------------------------------------------------------------ train

    def train(self, records: Sequence[Record], seed: int) -> dict[str, float]:
        if not records:
            raise ValueError("text-classifier: no training records")
        start = time.perf_counter()
        self.labels = resolve_labels(records, self.config.labels)
        self.mode, self.loss = self.config.mode, self.config.loss
        self._model, self._clf, self._head, self._single_label = None, None, None, None
        texts = [r.input for r in records]
        targets = [r.target.strip() for r in records]
        with compute_threads(self.config.threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if self.mode == "finetune":
                stats = self._train_finetune(texts, targets, seed)
            else:
                stats = self._train_frozen(texts, targets, seed)
        stats.update({"n": float(len(records)), "seconds": time.perf_counter() - start})
        return stats

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.loss == "sce":
            return symmetric_cross_entropy(logits, y, self.config.sce_alpha, self.config.sce_beta)
        return F.cross_entropy(logits, y)

    def _train_finetune(self, texts: list[str], targets: list[str], seed: int) -> dict[str, float]:
        cfg = self.config
        base = self._ensure_base()
        encoder = copy.deepcopy(base)  # always from the base weights, never the last round's
        self.last_initial_fingerprint = state_fingerprint(encoder)
        for name, p in encoder.named_parameters():
            p.requires_grad_(not (cfg.freeze_embeddings and "word_embeddings" in name))
        model = _Classifier(encoder, len(self.labels), cfg.dropout)
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            model.head.weight.normal_(0.0, 0.02, generator=gen)
            model.head.bias.zero_()
        index = {label: i for i, label in enumerate(self.labels)}
        y_all = torch.tensor([index[t] for t in targets], dtype=torch.long)

        no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
        trainable = [(n, p) for n, p in encoder.named_parameters() if p.requires_grad]
        enc_decay = [p for n, p in trainable if not n.endswith(no_decay)]
        enc_plain = [p for n, p in trainable if n.endswith(no_decay)]
        optimizer = torch.optim.AdamW(
            [
                {"params": enc_decay, "lr": cfg.lr, "weight_decay": cfg.weight_decay},
                {"params": enc_plain, "lr": cfg.lr, "weight_decay": 0.0},
                {"params": [model.head.weight], "lr": cfg.head_lr, "weight_decay": cfg.weight_decay},
                {"params": [model.head.bias], "lr": cfg.head_lr, "weight_decay": 0.0},
            ]
        )
        n = len(texts)
        steps_per_epoch = math.ceil(n / cfg.batch_size)
        total = steps_per_epoch * cfg.epochs
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_linear_decay(total, cfg.warmup_ratio))
        model.train()
        epoch_loss = 0.0
        for _ in range(cfg.epochs):
            order = torch.randperm(n, generator=gen).tolist()
            epoch_loss = 0.0
            for b in range(steps_per_epoch):
                idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
                batch = self._tokenize([texts[i] for i in idx])
                logits = model(**batch)
                loss = self._loss(logits, y_all[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], cfg.max_grad_norm)
                optimizer.step()
                scheduler.step()
                epoch_loss += float(loss.detach()) * len(idx)
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        self._model = model
        return {"loss": epoch_loss / n, "steps": float(total), "epochs": float(cfg.epochs)}

    def _train_frozen(self, texts: list[str], targets: list[str], seed: int) -> dict[str, float]:
        cfg = self.config
        self.last_initial_fingerprint = None
        features = self.embed(texts)
        if self.loss == "ce":
            self._clf, self._single_label = fit_logreg(
                features, targets, c=cfg.C, max_iter=cfg.max_iter, class_weight=cfg.class_weight, seed=seed
            )
            return {}
        # Symmetric CE has no scikit-learn solver: fit a linear head full-batch with L-BFGS on
        # mean loss + ||W||^2 / (2 C n), i.e. scikit-learn's L2 objective divided by C*n.
        index = {label: i for i, label in enumerate(self.labels)}
        x = torch.from_numpy(features.astype(np.float32))
        y = torch.tensor([index[t] for t in targets], dtype=torch.long)
        head = nn.Linear(x.shape[1], len(self.labels))
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            head.weight.normal_(0.0, 0.01, generator=gen)
            head.bias.zero_()
        l2 = 1.0 / (2.0 * cfg.C * len(texts))
        optimizer = torch.optim.LBFGS(
            head.parameters(), lr=1.0, max_iter=cfg.max_iter, line_search_fn="strong_wolfe", tolerance_grad=1e-6
        )

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = self._loss(head(x), y) + l2 * head.weight.pow(2).sum()
            loss.backward()
            return loss

        loss = optimizer.step(closure)
        head.eval()
        for p in head.parameters():
            p.requires_grad_(False)
        self._head = head
        return {"loss": float(loss.detach())}

    # ------------------------------------------------------------------ embed / predict

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Mean-pooled, L2-normalised base-encoder embeddings (frozen mode), cached per text."""
        with compute_threads(self.config.threads):
            cfg = self.config
            return embed(texts, path=self.encoder_path, max_length=cfg.max_length, batch_size=cfg.predict_batch_size)

    def text_logits(self, texts: Sequence[str]) -> np.ndarray:
        n = len(texts)
        if self.mode == "finetune":
            if self._model is None:
                raise RuntimeError("text-classifier: predict called before train or load")
            chunks = []
            with compute_threads(self.config.threads), torch.no_grad():
                bs = self.config.predict_batch_size
                for b in range(0, n, bs):
                    chunks.append(self._model(**self._tokenize(texts[b : b + bs])).double().numpy())
            return np.concatenate(chunks) if chunks else np.zeros((0, len(self.labels)))
        if self._head is not None:
            with compute_threads(self.config.threads), torch.no_grad():
                x = torch.from_numpy(self.embed(texts).astype(np.float32))
                return self._head(x).double().numpy()
        if self._clf is None and self._single_label is None:
            raise RuntimeError("text-classifier: predict called before train or load")
        features = self.embed(texts) if texts else None
        return sklearn_logits(self._clf, self._single_label, features, self.labels, n)

    # ------------------------------------------------------------------ checkpoint

    def save(self, path: Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        meta: dict[str, Any] = {
            "mode": self.mode,
            "loss": self.loss,
            "labels": self.labels,
            "encoder": self.encoder_path,
        }
        if self.mode == "finetune":
            if self._model is None:
                raise RuntimeError("text-classifier: nothing to save, train first")
            self._model.encoder.save_pretrained(path / "encoder")
            self._tokenizer.save_pretrained(path / "encoder")
            save_file({k: v.contiguous() for k, v in self._model.head.state_dict().items()}, path / "head.safetensors")
        else:
            # Frozen mode stores only the head; the embeddings come from the base encoder,
            # whose fingerprint is checked on load so a different encoder cannot slip in.
            meta["base_fingerprint"] = self.base_state_fingerprint()
            if self._head is not None:
                save_file({k: v.contiguous() for k, v in self._head.state_dict().items()}, path / "head.safetensors")
            else:
                save_logreg(self._clf, self._single_label, path)
        write_checkpoint_header(path, self, **meta)

    def load(self, path: Path) -> None:
        from transformers import AutoModel, AutoTokenizer

        path = Path(path)
        meta = read_checkpoint_header(path, self)
        self.mode, self.loss, self.labels = meta["mode"], meta["loss"], list(meta["labels"])
        self._model, self._clf, self._head, self._single_label = None, None, None, None
        if self.mode == "finetune":
            self._tokenizer = AutoTokenizer.from_pretrained(path / "encoder")
            encoder = AutoModel.from_pretrained(path / "encoder")
            model = _Classifier(encoder, len(self.labels), self.config.dropout)
            model.head.load_state_dict(load_file(path / "head.safetensors"))
            model.eval()
            for p in model.parameters():
                p.requires_grad_(False)
            self._model = model
            return
        if meta.get("base_fingerprint") != self.base_state_fingerprint():
            raise ValueError(f"{path} was trained on embeddings of a different encoder than {self.encoder_path}")
        if (path / "head.safetensors").exists():
            state = load_file(path / "head.safetensors")
            head = nn.Linear(state["weight"].shape[1], state["weight"].shape[0])
            head.load_state_dict(state)
            head.eval()
            self._head = head
        else:
            self._clf, self._single_label = load_logreg(path)
