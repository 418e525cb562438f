"""The RecBole side of perf/vs_recbole.py. Runs in the RecBole environment (never in the
harness's): times RecBole 1.2.1's own data preparation of ml-100k for its sequential
protocol (create_dataset + data_preparation) and SASRec's training epochs. Prints one
JSON line."""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
warnings.filterwarnings("ignore")


def main(ml100k: str, repeats: int, epochs: int, threads: int) -> None:
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as scratch:
        os.chdir(scratch)  # RecBole's trainer writes ./log_tensorboard
        (Path(scratch) / "ml-100k").symlink_to(Path(ml100k).resolve())
        config = Config(model="SASRec", dataset="ml-100k", config_dict={
            "data_path": scratch, "checkpoint_dir": f"{scratch}/saved",
            "use_gpu": False, "show_progress": False, "save_dataset": False,
            "save_dataloaders": False, "log_wandb": False, "worker": 0, "reproducibility": True,
            "seed": 0, "state": "ERROR",
            # RecBole's sequential protocol: leave-one-out by time, full ranking.
            "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full",
                          "group_by": "user"},
            "MAX_ITEM_LIST_LENGTH": 50, "loss_type": "CE", "train_neg_sample_args": None,
            # The architecture of our sasrec card.
            "hidden_size": 64, "inner_size": 64, "n_layers": 2, "n_heads": 2, "hidden_act": "relu",
            "hidden_dropout_prob": 0.2, "attn_dropout_prob": 0.2, "train_batch_size": 256,
            "learning_rate": 0.005,
        })
        prep_seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            dataset = create_dataset(config)
            train_data, valid_data, _ = data_preparation(config, dataset)
            prep_seconds.append(time.perf_counter() - start)
            print(f"recbole data preparation: {prep_seconds[-1]:.2f} s", file=sys.stderr, flush=True)

        init_seed(0, True)
        model = get_model("SASRec")(config, train_data._dataset)
        torch.autograd.set_detect_anomaly(False)  # sine.py switches it on at import
        trainer = get_trainer(config["MODEL_TYPE"], "SASRec")(config, model)
        epoch_seconds = []
        for epoch in range(epochs):
            start = time.perf_counter()
            trainer._train_epoch(train_data, epoch, show_progress=False)
            epoch_seconds.append(time.perf_counter() - start)
            print(f"recbole SASRec epoch {epoch}: {epoch_seconds[-1]:.1f} s", file=sys.stderr, flush=True)
    print(json.dumps({"prep_seconds": prep_seconds, "epoch_seconds": epoch_seconds,
                      "train_targets": len(train_data.dataset),
                      "parameters": sum(p.numel() for p in model.parameters())}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
