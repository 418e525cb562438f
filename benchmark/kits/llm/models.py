"""Loading causal LMs and text encoders, with their identity for the run's tags.

`model` is a transformers model id, a local folder (a `save_pretrained` folder, or one
holding a single `.gguf` file), a `.gguf` file, or the name of an offline asset of
DESIGN.md §9 (`ASSET_MODELS`: "smollm2", the sizes study's "gemma-3-270m",
"qwen2.5-coder-0.5b" and "qwen2.5-coder-1.5b", and "minilm"). GGUF files are dequantised
on load. Loaded models are cached per process, so several fits in one process (seeds,
tasks) load the weights once.
"""
from __future__ import annotations

import functools
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

@dataclass(frozen=True)
class AssetModel:
    """A model shipped as an offline asset: where its weights are in the asset folder,
    and what it is (its card's parameter count, and how it was tuned: the sizes study
    says "coder-tuned" or "base" wherever such a model's numbers appear)."""

    asset: str
    filename: str | None  # the file inside the asset folder; None: a transformers folder
    label: str
    parameters: int | None
    tuning: str  # instruct, coder-instruct, base or encoder


ASSET_MODELS = {
    "smollm2": AssetModel("smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "SmolLM2-135M-Instruct", 134_515_008,
                          "instruct"),
    "gemma-3-270m": AssetModel("gemma-3-270m", "gemma-3-270m-q4_k_m.gguf", "Gemma-3-270M (base)", 268_098_176,
                               "base"),
    "qwen2.5-coder-0.5b": AssetModel("qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b-instruct.gguf",
                                     "Qwen2.5-Coder-0.5B-Instruct (coder-tuned)", 494_032_768, "coder-instruct"),
    "qwen2.5-coder-1.5b": AssetModel("qwen2.5-coder-1.5b", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
                                     "Qwen2.5-Coder-1.5B-Instruct (coder-tuned)", 1_543_714_304, "coder-instruct"),
    "minilm": AssetModel("minilm", None, "all-MiniLM-L6-v2", 22_713_216, "encoder"),
}
CONVERTED = "transformers"  # the dense copy of a GGUF asset, inside its folder
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth")
SHA_SIDECAR = "weights_sha256.json"


# ---------------------------------------------------------------------------- devices


def resolve_device(device: str | None = None) -> torch.device:
    """None or "auto": CUDA when available, else CPU; anything else as torch reads it."""
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _cpu_has_amx() -> bool:
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    try:
        return bool(probe()) if probe else False
    except Exception:  # pragma: no cover - private API, absent on some builds
        return False


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """"auto": bfloat16 where the hardware computes it natively (a CUDA GPU that supports
    it, a CPU with AMX tiles: about 4x faster than float32 there), else float32."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "", "auto"):
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if device.type == "cpu" and _cpu_has_amx() else torch.float32
    names = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
             "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
    if dtype not in names:
        raise ValueError(f"dtype {dtype!r}: expected auto, {', '.join(names)}")
    return names[dtype]


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


# --------------------------------------------------------------------------- locating


@dataclass(frozen=True)
class ModelSource:
    """Where a model's files are: `path` (a folder, or a hub id) and the GGUF file in it."""

    label: str  # what the identity shows: "asset:smollm2/<file>", a local path or a hub id
    path: str
    gguf_file: str | None = None
    local: bool = True
    # A dense transformers copy of an asset's GGUF (see `ready_asset_model`): loaded instead
    # of the GGUF, same weights, in seconds; the GGUF stays the identity.
    converted: str | None = None


def locate(model: str) -> ModelSource:
    if model in ASSET_MODELS:
        from benchmark.data.assets import fetch_asset, is_complete

        entry = ASSET_MODELS[model]
        folder = fetch_asset(entry.asset)
        converted = folder / CONVERTED
        return ModelSource(f"asset:{entry.asset}" + (f"/{entry.filename}" if entry.filename else ""), str(folder),
                           entry.filename, converted=str(converted) if is_complete(converted) else None)
    path = Path(model).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return ModelSource(str(path.resolve()), str(path.parent.resolve()), path.name)
    if path.is_dir():
        ggufs = sorted(p.name for p in path.glob("*.gguf"))
        if not (path / "config.json").exists() and len(ggufs) == 1:
            return ModelSource(str(path.resolve()), str(path.resolve()), ggufs[0])
        return ModelSource(str(path.resolve()), str(path.resolve()))
    if model.startswith((".", "/", "~")) or os.sep in model.strip("/").replace("/", "", 1):
        raise FileNotFoundError(f"model {model!r}: no such file or folder")
    return ModelSource(model, model, local=False)  # a hub id: transformers resolves it


# --------------------------------------------------------------------------- identity


def weight_files(source: ModelSource) -> list[Path]:
    """The files holding the weights (local folders; a hub id's cached snapshot)."""
    folder = Path(source.path)
    if not source.local:
        try:
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(source.path, local_files_only=True))
        except Exception:
            return []
    if source.gguf_file:
        return [folder / source.gguf_file]
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))


def weights_sha256(files: Sequence[Path]) -> str:
    """One file: its sha256. Several: sha256 over their "name sha256" lines, sorted by name.
    Hashes are kept in a sidecar json in the cache, keyed by path, size and mtime."""
    if not files:
        return "unknown"
    digests = [(f.name, _file_sha256(f)) for f in files]
    if len(digests) == 1:
        return digests[0][1]
    lines = "".join(f"{name} {digest}\n" for name, digest in sorted(digests))
    return hashlib.sha256(lines.encode()).hexdigest()


def _file_sha256(path: Path) -> str:
    from benchmark.data.assets import sha256_of
    from benchmark.paths import memo_in_cache

    stat = path.stat()
    return memo_in_cache(SHA_SIDECAR, f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}",
                         lambda: sha256_of(path))


def quantization(source: ModelSource, config: Any) -> str:
    """"gguf:Q4_1" for GGUF files (from the file's metadata, else its name), the config's
    quantization method otherwise, "none" for plain weights."""
    if source.gguf_file:
        kind = None
        try:
            import gguf

            reader = gguf.GGUFReader(str(Path(source.path) / source.gguf_file))
            f = reader.fields["general.file_type"]
            kind = gguf.LlamaFileType(int(f.parts[f.data[0]][0])).name.removeprefix("MOSTLY_")
        except Exception:
            match = re.search(r"(?i)(I?Q\d\w*?|BF16|F16|F32)(?=\.gguf$)", source.gguf_file)
            kind = match.group(1).upper() if match else "unknown"
        return f"gguf:{kind}"
    qc = getattr(config, "quantization_config", None)
    if qc:
        method = qc.get("quant_method") if isinstance(qc, dict) else getattr(qc, "quant_method", None)
        return str(method or "unknown")
    return "none"


def _identity(source: ModelSource, model: torch.nn.Module, dtype: torch.dtype) -> dict[str, str]:
    return {
        "llm.model": source.label,
        "llm.weights_sha256": weights_sha256(weight_files(source)),
        "llm.quantization": quantization(source, model.config),
        "llm.dtype": dtype_name(dtype),
        "llm.parameters": str(sum(p.numel() for p in model.parameters())),  # as loaded (tied weights once)
    }


# ---------------------------------------------------------------------------- loading


@dataclass(eq=False)
class CausalLM:
    """A causal LM ready for scoring and generation (eval mode, no gradients)."""

    tokenizer: Any
    model: torch.nn.Module
    device: torch.device
    identity: dict[str, str]
    # pointwise.py's caches: "shared" -> the KV cache of the most recent shared prompt
    # segment; "continuations" -> candidate token ids by (prompt's last line, text).
    prefix_cache: dict = field(default_factory=dict)

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def encode(self, text: str, first: bool = False) -> list[int]:
        """Token ids of `text`. Special tokens (a BOS) are added only to the first piece of
        a prompt and only when no chat template is applied (the template writes its own)."""
        add = first and not self.has_chat_template
        return list(self.tokenizer(text, add_special_tokens=add)["input_ids"])

    @property
    def eos_token_ids(self) -> list[int]:
        ids = self.model.generation_config.eos_token_id if self.model.generation_config else None
        ids = [ids] if isinstance(ids, int) else list(ids or [])
        if self.tokenizer.eos_token_id is not None and self.tokenizer.eos_token_id not in ids:
            ids.append(self.tokenizer.eos_token_id)
        return ids

    @property
    def pad_token_id(self) -> int:
        for candidate in (self.tokenizer.pad_token_id, self.tokenizer.eos_token_id, 0):
            if candidate is not None:
                return int(candidate)
        return 0


def load_causal_lm(model: str = "smollm2", device: str | None = None,
                   dtype: str | torch.dtype | None = "auto") -> CausalLM:
    """A causal LM by transformers id, local path or asset name ("smollm2"); on CUDA when
    available; cached per (model, device, dtype) in this process."""
    resolved = resolve_device(device)
    return _load_causal_lm(str(model), str(resolved), resolve_dtype(dtype, resolved))


@functools.lru_cache(maxsize=2)
def _load_causal_lm(model: str, device: str, dtype: torch.dtype) -> CausalLM:
    source = locate(model)
    if source.converted:
        tokenizer, network = _from_pretrained(source.converted, None, dtype)
    else:
        tokenizer, network = _from_pretrained(source.path, source.gguf_file, dtype)
    network = network.to(device=device, dtype=dtype).eval()
    network.requires_grad_(False)
    _fold_friendly_head(network)
    return CausalLM(tokenizer, network, torch.device(device), _identity(source, network, dtype))


def _from_pretrained(path: str, gguf_file: str | None, dtype: torch.dtype) -> tuple[Any, torch.nn.Module]:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    kwargs: dict[str, Any] = {"gguf_file": gguf_file} if gguf_file else {}
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # GGUF loading is chatty
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
        network = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **kwargs)
    finally:
        hf_logging.set_verbosity(verbosity)
    return tokenizer, network


def ready_asset_model(name: str, log=print) -> Path:
    """Fetch an asset and, for a GGUF causal LM, write once a dense float32 transformers
    copy beside the GGUF (`transformers/`). Dequantising a GGUF and building its
    tokenizer takes 40-120 s on a CPU at every load; the copy loads in seconds with the
    same weights and tokenizer (checked: identical logits). Runs outside the sandbox,
    which mounts the asset folder read-only."""
    from benchmark.data.assets import fetch_asset, is_complete, staged_folder

    folder = fetch_asset(name, log=log)
    entry = ASSET_MODELS.get(name)  # a model asset's key is its asset's name
    if entry is None or not (entry.filename or "").endswith(".gguf") or is_complete(folder / CONVERTED):
        return folder
    log(f"asset {entry.asset}: writing a dense transformers copy of {entry.filename} (once; loads in seconds)")
    tokenizer, network = _from_pretrained(str(folder), entry.filename, torch.float32)
    network.hf_quantizer = None  # dequantised already: transformers refuses to save a "GGUF-quantized" model
    if hasattr(network.config, "quantization_config"):
        del network.config.quantization_config
    with staged_folder(folder / CONVERTED, entry.filename) as staging:
        network.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
    return folder


def _fold_friendly_head(network: torch.nn.Module) -> None:
    """Give the LM head inputs with canonical strides. Generation computes the logits of
    the last position only, `hidden[:, -1:, :]`; torch's matmul does not fold that
    strided view into one matrix product and instead copies the head's weight once per
    sequence of the batch (a [batch, hidden, vocab] buffer: ~1.3 s for 4 sequences of
    SmolLM2 on a CPU). Copying the few hidden rows instead gives identical results."""
    head = network.get_output_embeddings() if hasattr(network, "get_output_embeddings") else None
    if not isinstance(head, torch.nn.Linear):
        return

    def canonical(module, args):
        x = args[0]
        if x.dim() == 3 and x.size(1) > 0 and x.stride(0) != x.stride(1) * x.size(1):
            return (x.clone(memory_format=torch.contiguous_format),) + tuple(args[1:])
        return None

    head.register_forward_pre_hook(canonical)


@dataclass(eq=False)
class TextEncoder:
    """A sentence encoder: mean pooling over the tokens, then L2 normalisation (the
    all-MiniLM-L6-v2 recipe)."""

    tokenizer: Any
    model: torch.nn.Module
    device: torch.device
    identity: dict[str, str]
    max_length: int = 256

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> tuple[np.ndarray, int]:
        """(embeddings float32 [n, d], unit rows; number of tokens encoded). Texts are
        batched by length so little padding is computed."""
        order = np.argsort([len(t) for t in texts], kind="stable")
        dim = self.model.config.hidden_size
        out = np.zeros((len(texts), dim), dtype=np.float32)
        tokens = 0
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                rows = order[start:start + batch_size]
                batch = self.tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                                       max_length=self.max_length, return_tensors="pt").to(self.device)
                hidden = self.model(**batch).last_hidden_state.float()
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
                out[rows] = pooled.cpu().numpy()
                tokens += int(batch["attention_mask"].sum())
        return out, tokens


def load_text_encoder(model: str = "minilm", device: str | None = None) -> TextEncoder:
    """A sentence encoder by transformers id, local path or asset name ("minilm"), in
    float32; cached per (model, device) in this process."""
    return _load_text_encoder(str(model), str(resolve_device(device)))


@functools.lru_cache(maxsize=2)
def _load_text_encoder(model: str, device: str) -> TextEncoder:
    from transformers import AutoModel, AutoTokenizer

    source = locate(model)
    if source.gguf_file:
        raise ValueError(f"text encoder {model!r}: a GGUF file is not an encoder")
    tokenizer = AutoTokenizer.from_pretrained(source.path)
    network = AutoModel.from_pretrained(source.path, dtype=torch.float32).to(device).eval()
    network.requires_grad_(False)
    max_length = min(256, int(getattr(tokenizer, "model_max_length", 256) or 256))
    return TextEncoder(tokenizer, network, torch.device(device),
                       _identity(source, network, torch.float32), max_length)
