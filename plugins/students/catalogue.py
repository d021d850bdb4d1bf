"""The built-in students: their configs and registration, without their machinery.

Building the plugin manager imports this module for every command (``plugins``, ``schema``,
``--help``); the students themselves (torch, transformers, scikit-learn) are imported only when a
run builds one, through :func:`~distilforge.engine.api.toolkit.lazy_factory`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from distilforge.engine.api import ComponentConfig, Register, hookimpl
from distilforge.engine.api.toolkit import lazy_factory

DEFAULT_SYSTEM_PROMPT = "Solve the math word problem step by step. End with a line '#### <number>'."
DEFAULT_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class TfidfLogregConfig(ComponentConfig):
    type: Literal["tfidf-logreg"] = "tfidf-logreg"
    labels: list[str] | None = Field(None, description="label order; default: sorted training targets")
    ngram_max: int = Field(2, ge=1, le=5, description="word n-grams 1..ngram_max")
    min_df: int = Field(1, ge=1)
    sublinear_tf: bool = True
    C: float = Field(10.0, gt=0.0, description="inverse L2 strength; small data wants weak regularisation")
    max_iter: int = Field(2000, ge=10)
    class_weight: Literal["balanced"] | None = None


class TextClassifierConfig(ComponentConfig):
    type: Literal["text-classifier"] = "text-classifier"
    encoder: str | None = Field(
        None, description="HF encoder directory or (cached) hub name; default: the packaged all-MiniLM-L6-v2"
    )
    mode: Literal["finetune", "frozen"] = "finetune"
    labels: list[str] | None = Field(None, description="label order; default: sorted training targets")
    loss: Literal["ce", "sce"] = "ce"
    sce_alpha: float = Field(
        0.01, ge=0.0, description="CE weight of the symmetric loss (GOLD: 0.01 for classification)"
    )
    sce_beta: float = Field(1.0, ge=0.0, description="reverse-CE weight of the symmetric loss")
    # finetune mode
    epochs: int = Field(8, ge=1)
    lr: float = Field(1e-4, gt=0.0, description="encoder learning rate")
    head_lr: float = Field(2e-3, gt=0.0, description="learning rate of the freshly initialised head")
    batch_size: int = Field(16, ge=1)
    max_length: int = Field(64, ge=8, description="tokens per input (longer inputs are truncated)")
    weight_decay: float = Field(0.01, ge=0.0)
    warmup_ratio: float = Field(0.1, ge=0.0, lt=1.0)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    max_grad_norm: float = Field(1.0, gt=0.0)
    freeze_embeddings: bool = Field(
        True,
        description="keep the token-embedding matrix fixed: it is half of MiniLM's weights, so this"
        " halves optimizer time and memory, and a few hundred sentences cannot train it usefully",
    )
    # frozen mode
    C: float = Field(10.0, gt=0.0, description="frozen mode: inverse L2 strength of the head")
    max_iter: int = Field(2000, ge=10, description="frozen mode: optimiser iterations of the head")
    class_weight: Literal["balanced"] | None = Field(None, description="frozen mode, loss ce")
    # runtime
    device: Literal["cpu"] = "cpu"
    threads: int | None = Field(2, ge=1, description="torch intra-op threads while training/predicting")
    predict_batch_size: int = Field(64, ge=1)


class CausalLMConfig(ComponentConfig):
    type: Literal["causal-lm"] = "causal-lm"
    model: str | None = Field(
        None, description="HF causal-LM directory (or cached hub name); None = the embedded SmolLM2-135M-Instruct"
    )
    mode: Literal["full", "lora"] = "lora"
    lora_r: int = Field(16, ge=1)
    lora_alpha: float = Field(32.0, gt=0.0)
    lora_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    lora_targets: list[str] = Field(
        default_factory=lambda: list(DEFAULT_LORA_TARGETS), description="names of the Linear layers to adapt"
    )
    epochs: int = Field(3, ge=1)
    lr: float | None = Field(None, gt=0.0, description="None = 5e-4 for lora, 3e-5 for full")
    batch_size: int = Field(8, ge=1, description="examples per optimizer step")
    micro_batch_size: int = Field(4, ge=1, description="examples per forward/backward (gradient accumulation)")
    weight_decay: float = Field(0.0, ge=0.0)
    warmup_ratio: float = Field(0.1, ge=0.0, lt=1.0)
    max_grad_norm: float = Field(1.0, gt=0.0)
    loss: Literal["ce", "sce"] = Field("ce", description="sce: symmetric cross-entropy over the answer tokens")
    sce_alpha: float = Field(0.1, ge=0.0, description="CE weight of the symmetric loss (GOLD: 0.1 for generation)")
    sce_beta: float = Field(1.0, ge=0.0, description="reverse-CE weight of the symmetric loss")
    max_length: int = Field(512, ge=16, description="prompt + answer tokens; longer examples lose the answer's end")
    prompt_format: Literal["chat", "plain"] = Field(
        "chat", description="chat: the tokenizer's chat template; plain: 'Question: ...\\nAnswer: ...'"
    )
    system_prompt: str | None = Field(DEFAULT_SYSTEM_PROMPT, description="chat format only; None = no system line")
    max_new_tokens: int = Field(192, ge=1, description="generation budget per answer when predicting")
    predict_batch_size: int = Field(16, ge=1)
    stop_after_final_answer: bool = Field(True, description="stop a row after its '#### <number>' line")
    compute_dtype: Literal["float32", "bfloat16"] = Field(
        "float32",
        description="bfloat16: autocast matmuls (faster on CPUs with AVX512-BF16/AMX; weights stay float32)",
    )
    device: Literal["cpu"] = "cpu"
    threads: int | None = Field(2, ge=1, description="torch intra-op threads while training/predicting")


class TabularStudentConfig(ComponentConfig):
    type: Literal["tabular"] = "tabular"
    model: Literal["logreg", "mlp"] = "logreg"
    hidden: int = Field(100, ge=1, description="mlp: hidden units")
    gamma: float = Field(100.0, ge=0.0, description="weight of the attribution-alignment term (LAAT)")
    attribution: Literal["gradient", "input_x_gradient", "integrated_gradients"] = Field(
        "gradient", description="how the student's attribution is computed; gradient = batch-mean gradient"
    )
    ig_steps: int = Field(10, ge=1, description="integrated_gradients: steps from the zero baseline")
    lr: float = Field(1e-2, gt=0.0, description="Adam learning rate")
    epochs: int = Field(200, ge=1, description="full-batch epochs")


@hookimpl
def register_students(register: Register) -> None:
    module = "distilforge.plugins.students"
    register(TfidfLogregConfig, lazy_factory(f"{module}.tfidf:TfidfLogregStudent"))
    register(TextClassifierConfig, lazy_factory(f"{module}.text_classifier:TextClassifierStudent"))
    register(CausalLMConfig, lazy_factory(f"{module}.causal_lm:CausalLMStudent"))
    register(TabularStudentConfig, lazy_factory(f"{module}.tabular_student:TabularStudent"))
