"""Soft prompt: prompt tuning (Lester et al., EMNLP 2021, "The Power of Scale for
Parameter-Efficient Prompt Tuning") of a frozen small causal LM on TALLRec's Yes/No
recommendation question. `num_virtual_tokens` trainable embeddings (peft's
PromptEmbedding) go before every prompt; they start as the embeddings of an
instruction text's tokens (peft's TEXT initialisation). Prompts, sample selection,
training and P(Yes) scoring are shared with `tallrec-lite` (benchmark.kits.tuning)."""
from __future__ import annotations

import torch
from peft import PromptTuningConfig, PromptTuningInit, TaskType
from peft.tuners.prompt_tuning import PromptEmbedding
from torch import nn

from benchmark.kits.tuning import YesNoTuned


class SoftPrompt(YesNoTuned):
    defaults = {
        "num_virtual_tokens": 16,
        "init_text": "Decide whether the user will like the movie, from the movies the user rated.",
        "lr": 0.03,
    }
    attach_untrained = True  # untrained, the soft prompt is the init text's embeddings

    def attach(self, network: nn.Module):
        embeddings = network.get_input_embeddings()
        config = PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=int(self.num_virtual_tokens),
                                    token_dim=embeddings.embedding_dim, num_transformer_submodules=1,
                                    prompt_tuning_init=PromptTuningInit.RANDOM)
        self.prompt_embedding = PromptEmbedding(config, embeddings).to(embeddings.weight.device)
        weight = self.prompt_embedding.embedding.weight
        with torch.no_grad():  # peft's TEXT initialisation: the init text's tokens, repeated to length
            from benchmark.kits.llm import load_causal_lm

            tokenizer = load_causal_lm(str(self.model), device=self.device, dtype=self.dtype).tokenizer
            ids = tokenizer(str(self.init_text), add_special_tokens=False)["input_ids"] or [0]
            ids = (ids * (len(weight) // len(ids) + 1))[:len(weight)]
            weight.copy_(embeddings.weight[torch.tensor(ids, device=embeddings.weight.device)].float())
        weight.requires_grad_(True)
        return weight, [weight], f"prompt tuning: {self.num_virtual_tokens} virtual tokens"
