"""A random, tiny Llama (own byte-level BPE tokenizer, chat template) for tests and benchmarks.

Fully offline: nothing comes from a model hub. vLLM and transformers load it like any model.
"""

from __future__ import annotations

import random
from pathlib import Path

from distilforge.plugins.models.packaged import CHATML_TEMPLATE, add_legacy_config_keys, fix_saved_tokenizer

_SUBJECTS = ["the cat", "a teacher", "my friend", "the model", "this movie", "our team", "the river"]
_VERBS = ["likes", "sees", "writes", "reads", "finds", "builds", "loves", "hates", "answers"]
_OBJECTS = ["a story", "the answer", "good data", "small models", "the sea", "a question", "music"]
_ENDINGS = [".", "!", "?", " today.", " again.", " with care."]


def _tiny_corpus(seed: int, sentences: int = 600) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for _ in range(sentences):
        words = f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}"
        lines.append(words.capitalize() + rng.choice(_ENDINGS))
    # JSON and digits, so constrained-decoding tests find sensible merges too.
    lines += ['{"label": "positive", "score": 1}', '{"ok": true, "n": [1, 2, 3]}', "0123456789"]
    return lines


def build_tiny_llama(path: Path, *, seed: int = 0, vocab_size: int = 512) -> Path:
    """Build a random 2-layer Llama with its own byte-level BPE tokenizer into ``path``.

    Fully offline and deterministic for a given ``seed``. Head size 64 (hidden 128, 2 heads)
    because vLLM's CPU attention supports only head sizes from 32 up. The weights are drawn
    with a large ``initializer_range`` so the logits are peaked: greedy decoding then has clear
    winners and is stable across batch compositions.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_tiny_corpus(seed), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        unk_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        model_max_length=2048,
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    tokenizer.save_pretrained(path)
    fix_saved_tokenizer(path, chat_template=CHATML_TEMPLATE)

    config = LlamaConfig(
        vocab_size=bpe.get_vocab_size(),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=64,
        max_position_embeddings=2048,
        initializer_range=0.5,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|im_start|>"),
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).to(torch.float32)
    model.eval()
    model.save_pretrained(path)
    add_legacy_config_keys(path)
    return path
