"""Fast embedders beside the transformers reference: MiniLM through ONNX Runtime, and a static
(model2vec) embedder. Both load files prepared once at set-up (``distilforge setup``); these
classes only run them. Both return unit-norm float32 rows, like every :class:`~.embeddings.Embedder`.

* :class:`OnnxEmbedder` runs an exported encoder whose graph already mean-pools and normalises
  (inputs ``input_ids``/``attention_mask``, output ``embedding``), fp32 or int8 weights, on the
  same tokenizer and length-sorted batches as the transformers path.
* :class:`StaticEmbedder` looks token vectors up and averages them (model2vec's ``StaticModel``):
  no transformer at run time, so it runs at tokenizer speed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from distilforge.engine.api.toolkit.embeddings import length_sorted_batches

_SESSIONS: dict[tuple[str, int], Any] = {}
_TOKENIZERS: dict[str, Any] = {}
_STATIC: dict[str, Any] = {}


def _tokenizer(path: str) -> Any:
    tok = _TOKENIZERS.get(path)
    if tok is None:
        from transformers import AutoTokenizer

        tok = _TOKENIZERS[path] = AutoTokenizer.from_pretrained(path)
    return tok


def _session(model_file: str, threads: int) -> Any:
    session = _SESSIONS.get((model_file, threads))
    if session is None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # idle worker threads sleep instead of spinning: on cores shared with other jobs a
        # spinning thread steals the time the busy ones need
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = _SESSIONS[(model_file, threads)] = ort.InferenceSession(
            model_file, options, providers=["CPUExecutionProvider"]
        )
    return session


@dataclass(frozen=True)
class OnnxEmbedder:
    """An ONNX encoder file plus the tokenizer directory it was exported with.

    ``digest`` (the model file's sha256, recorded at set-up) goes into the id, so vectors of an
    fp32 and an int8 export, or of two exports, never mix in a cache.
    """

    model_file: str
    tokenizer_dir: str
    digest: str
    dim: int = 384
    max_length: int = 256
    batch_size: int = 64
    threads: int = 2

    @property
    def id(self) -> str:
        return f"onnx:{self.digest[:16]}|max_length={self.max_length}|mean-l2"

    def encode(self, texts: list[str]) -> np.ndarray:
        tok = _tokenizer(self.tokenizer_dir)
        session = _session(self.model_file, self.threads)
        ids = tok(texts, truncation=True, max_length=self.max_length)["input_ids"]
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for chunk in length_sorted_batches([len(i) for i in ids], self.batch_size):
            width = max(len(ids[i]) for i in chunk)
            input_ids = np.full((len(chunk), width), tok.pad_token_id, dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int64)
            for row, i in enumerate(chunk):
                input_ids[row, : len(ids[i])] = ids[i]
                mask[row, : len(ids[i])] = 1
            out[chunk] = session.run(["embedding"], {"input_ids": input_ids, "attention_mask": mask})[0]
        return out


@dataclass(frozen=True)
class StaticEmbedder:
    """A model2vec static model directory; ``digest`` (its weights' sha256) goes into the id."""

    path: str
    digest: str
    max_length: int = 256

    @property
    def id(self) -> str:
        return f"static:{self.digest[:16]}|max_length={self.max_length}|l2"

    @property
    def dim(self) -> int:
        return int(self.model().dim)

    def model(self) -> Any:
        model = _STATIC.get(self.path)
        if model is None:
            from model2vec import StaticModel

            model = _STATIC[self.path] = StaticModel.from_pretrained(Path(self.path))
        return model

    def encode(self, texts: list[str]) -> np.ndarray:
        vectors = np.asarray(
            self.model().encode(texts, max_length=self.max_length, use_multiprocessing=False), dtype=np.float32
        )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)
