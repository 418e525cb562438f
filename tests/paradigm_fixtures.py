"""Small fixtures of the paradigm tests (baselines and the study): a tiny randomly
initialised Llama with a small word-level tokenizer and a chat template, a tiny BERT
text encoder, and generated CTR and zero-shot tasks on the synthetic dataset."""
from __future__ import annotations

from pathlib import Path

import yaml

from benchmark.tasks.schema import TaskSpec
from benchmark.kits.tuning.yesno import TEMPLATE_PARTS

CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
                 "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
SYNTHETIC = {"n_users": 60, "n_items": 40, "interactions_per_user": 15, "seed": 0}
ZEROSHOT_PROMPT = "{% for h in history %}{{ h }}\n{% endfor %}--\n{% for c in candidates %}{{ c }}\n{% endfor %}"


def _corpus(n_items: int = 60) -> list[str]:
    texts = [f"Item {i}" for i in range(n_items)] + list(TEMPLATE_PARTS)
    return texts + ["liked disliked Yes No user history movie target"] * 3


def make_tiny_llama(folder: Path, hidden: int = 32, layers: int = 2) -> str:
    """A random Llama (hidden 32, 2 layers) and a byte-level BPE tokenizer trained on the
    synthetic items' texts and the Yes/No prompt, saved as a transformers folder."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=500, special_tokens=["<unk>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(_corpus(), trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                        pad_token="<|im_end|>", unk_token="<unk>")
    tokenizer.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=2048, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(folder)
    LlamaForCausalLM(config).save_pretrained(folder)
    return str(folder)


def make_tiny_encoder(folder: Path) -> str:
    """A random 1-layer BERT (hidden 16) with a word-level tokenizer over the item texts."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    words = sorted({w for text in _corpus() for w in text.replace("\n", " ").split()})
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + words)}
    word_level = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    word_level.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=word_level, pad_token="[PAD]", unk_token="[UNK]",
                                        cls_token="[CLS]", sep_token="[SEP]")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(folder)
    BertModel(config).save_pretrained(folder)
    return str(folder)


def ctr_task(**changes) -> TaskSpec:
    spec = {
        "task": "ctr/synthetic-sample", "family": "ctr", "version": 1,
        "dataset": {"name": "synthetic", "synthetic": SYNTHETIC},
        "ctr": {"label_min_rating": 4, "user_features": ["group"], "item_features": ["genre"],
                "test_sample": {"rows": 60, "seed": 0, "min_train_rows": 1}},
        "split": {"method": "global_time", "valid_fraction": 0.1, "test_fraction": 0.1},
        "metrics": ["AUC", "GAUC", "LogLoss"], "main_score": "AUC", "seeds": [0], "batch_size": 25,
    }
    return TaskSpec.model_validate(spec | changes)


def zeroshot_task(**changes) -> TaskSpec:
    spec = {
        "task": "zeroshot/synthetic", "family": "zeroshot", "version": 1,
        "dataset": {"name": "synthetic", "synthetic": SYNTHETIC},
        "split": {"method": "leave_one_out"},
        "history": {"max_len": 10, "exclude_seen": False},
        "candidates": {"mode": "sampled", "n_negatives": 9},
        "eval_users": {"sample": 20, "seed": 0},
        "prompt": ZEROSHOT_PROMPT,
        "trust": {"position_bias": {"users": 6, "positions": [1, 10], "shuffles": 2}, "popularity_k": 3},
        "metrics": ["NDCG@1", "NDCG@5", "HR@5", "MRR"], "main_score": "NDCG@5", "seeds": [0], "batch_size": 7,
    }
    return TaskSpec.model_validate(spec | changes)


def sequential_task(**changes) -> TaskSpec:
    spec = {
        "task": "sequential/synthetic", "family": "sequential", "version": 1,
        "dataset": {"name": "synthetic", "synthetic": SYNTHETIC},
        "split": {"method": "leave_one_out"},
        "history": {"max_len": 10, "exclude_seen": False},
        "metrics": ["HR@5", "NDCG@5", "MRR"], "main_score": "NDCG@5", "seeds": [0], "batch_size": 16,
    }
    return TaskSpec.model_validate(spec | changes)


def write_tasks(folder: Path) -> Path:
    """The three study tasks on the synthetic dataset as YAML files (a tasks folder for
    $LLM4REC_TASKS): sequential/synthetic, zeroshot/synthetic, ctr/synthetic-sample."""
    for spec in (sequential_task(), zeroshot_task(), ctr_task()):
        family, name = spec.task.split("/")
        path = folder / family / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False))
    return folder
