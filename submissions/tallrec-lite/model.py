"""TALLRec-lite: LoRA instruction tuning of a small causal LM (SmolLM2-135M-Instruct by
default) to answer "Yes"/"No" to "will this user like this item?" from the user's last
10 items (Bao et al., RecSys 2023). Prompts, sample selection, training and P(Yes)
scoring are shared with `softprompt` (benchmark.kits.tuning)."""
from __future__ import annotations

from peft import LoraConfig, get_peft_model
from torch import nn

from benchmark.kits.tuning import YesNoTuned


class TALLRecLite(YesNoTuned):
    defaults = {
        "lora_r": 8,
        "lora_alpha": 16,
        "lora_dropout": 0.05,
        "target_modules": ["q_proj", "v_proj"],
    }

    def attach(self, network: nn.Module):
        config = LoraConfig(r=int(self.lora_r), lora_alpha=int(self.lora_alpha), lora_dropout=float(self.lora_dropout),
                            target_modules=list(self.target_modules), bias="none")
        self.peft_model = get_peft_model(network, config)  # injects LoRA layers into `network`
        trainable = [p for p in network.parameters() if p.requires_grad]
        return None, trainable, f"lora r={self.lora_r} alpha={self.lora_alpha} on {','.join(self.target_modules)}"

    def finish_training(self, network: nn.Module) -> nn.Module:
        """Fold the LoRA update into the weights: scoring runs the plain network."""
        merged = self.peft_model.merge_and_unload()
        self.peft_model = None
        return merged
