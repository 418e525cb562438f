"""Listwise ranking: the model writes a ranked list of titles. Generation is batched
across users (prompts padded on the left, greedy by default). A listwise submission
returns the texts from `recommend()`; the harness reads them into the user's candidates
and counts what is hallucinated, repeated or missing (benchmark.recommendations).
"""
from __future__ import annotations

from typing import Sequence

import torch

from benchmark.kits.llm.models import CausalLM
from benchmark.kits.llm.pointwise import Usage, prompt_ids


def generate(lm: CausalLM, prompts: Sequence[str | Sequence[str]], max_new_tokens: int = 128,
             batch_size: int = 16, do_sample: bool = False, stop_strings: Sequence[str] = (),
             usage: Usage | None = None, soft_prompt: torch.Tensor | None = None,
             **generation: object) -> list[str]:
    """The model's continuation of each prompt (text, special tokens removed), generated
    in batches of `batch_size` prompts padded on the left. Greedy unless `do_sample`;
    a sequence ends at an end-of-turn token, after `max_new_tokens`, or once it has
    written one of `stop_strings` (kept in the text). `soft_prompt` ([n_virtual, hidden]
    embeddings of prompt tuning) goes before every prompt. Further keyword arguments go
    to transformers' GenerationConfig (e.g. repetition_penalty)."""
    from transformers import GenerationConfig

    usage = usage if usage is not None else Usage()
    encoded = [[t for segment in prompt_ids(lm, p) for t in segment] for p in prompts]
    config = GenerationConfig(max_new_tokens=int(max_new_tokens), do_sample=do_sample,
                              pad_token_id=lm.pad_token_id, eos_token_id=lm.eos_token_ids,
                              stop_strings=list(stop_strings) or None,
                              **({} if do_sample else {"temperature": None, "top_p": None, "top_k": None}),
                              **generation)
    eos = set(lm.eos_token_ids)
    # Similar lengths together, so little padding is computed; outputs in input order.
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    outputs: list[str] = [""] * len(encoded)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            width = max(len(encoded[i]) for i in rows)
            ids = torch.full((len(rows), width), lm.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for r, i in enumerate(rows):
                n = len(encoded[i])
                ids[r, width - n:] = torch.tensor(encoded[i])
                mask[r, width - n:] = 1
            out = lm.model.generate(**_inputs(lm, ids, mask, soft_prompt), generation_config=config,
                                    tokenizer=lm.tokenizer)
            new = (out if soft_prompt is not None else out[:, width:]).cpu()  # from embeddings: new tokens only
            for r, i in enumerate(rows):
                tokens = new[r].tolist()
                n = next((k + 1 for k, t in enumerate(tokens) if t in eos), len(tokens))
                outputs[i] = lm.tokenizer.decode(tokens[:n], skip_special_tokens=True)
                usage.prompt_tokens += len(encoded[i])
                usage.continuation_tokens += n
            usage.computed_tokens += len(rows) * (width + new.shape[1])
    return outputs


def _inputs(lm: CausalLM, ids: torch.Tensor, mask: torch.Tensor, soft_prompt: torch.Tensor | None) -> dict:
    """generate()'s inputs: the token ids, or with a soft prompt the embeddings [soft
    prompt, padding, prompt] (position ids follow the attention mask, so each prompt's
    positions are those of the soft prompt and the prompt alone)."""
    ids, mask = ids.to(lm.device), mask.to(lm.device)
    if soft_prompt is None:
        return {"input_ids": ids, "attention_mask": mask}
    embeds = lm.model.get_input_embeddings()(ids)
    soft = soft_prompt.to(device=lm.device, dtype=embeds.dtype).unsqueeze(0).expand(len(ids), -1, -1)
    ones = torch.ones((len(ids), soft.shape[1]), dtype=mask.dtype, device=lm.device)
    return {"inputs_embeds": torch.cat([soft, embeds], dim=1), "attention_mask": torch.cat([ones, mask], dim=1)}
