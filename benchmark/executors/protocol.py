"""The wire format between the harness and a submission's worker process.

A message is a JSON header plus zero or more numpy arrays:

    b"L4R1" | uint32 header length (big-endian) | header (UTF-8 JSON) | array bytes...

The header lists its arrays as `"arrays": [[name, nbytes], ...]`; each array travels as
the bytes of an `.npy` file written with `allow_pickle=False`. The `.npy` format reads
the same under numpy 1.x and 2.x, so the worker's environment may pin an older numpy
(RecBole needs numpy<2). Nothing is ever pickled: object arrays are refused, and
DataFrame columns that are not plain numeric travel as JSON lists.

This module is imported on both sides, so it needs only the standard library, numpy,
pandas and `benchmark.api.types`.
"""
from __future__ import annotations

import dataclasses
import io
import json
import struct
from collections.abc import Sequence
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from benchmark.api.types import (Catalog, CompletionRequest, PredictRequest, ScoreRequest, TrainData, ValidationSet,
                                 readonly)

MAGIC = b"L4R1"
_LENGTH = struct.Struct(">I")
Arrays = dict[str, np.ndarray]


class ProtocolError(RuntimeError):
    """The other side sent something that is not a well-formed message, or hung up."""


class ConnectionClosed(ProtocolError):
    """End of stream before a complete message (the other process exited or closed)."""


# --- framing ------------------------------------------------------------------------

def _npy_bytes(array: np.ndarray) -> bytes:
    array = np.asarray(array)
    if array.dtype.hasobject:
        raise TypeError(f"array of dtype {array.dtype} cannot cross the process boundary "
                        "(object arrays would need pickle); send numbers, or text as JSON")
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def write_message(stream: BinaryIO, header: dict[str, Any], arrays: Arrays | None = None) -> None:
    blobs = [(name, _npy_bytes(array)) for name, array in (arrays or {}).items()]
    header = dict(header, arrays=[[name, len(blob)] for name, blob in blobs])
    encoded = json.dumps(header, allow_nan=True).encode()
    stream.write(MAGIC + _LENGTH.pack(len(encoded)) + encoded)
    for _, blob in blobs:
        stream.write(blob)
    stream.flush()


def _read_exactly(stream: BinaryIO, n: int) -> bytes:
    chunks, remaining = [], n
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            raise ConnectionClosed(f"stream ended {n - remaining} bytes into a {n}-byte read")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_message(stream: BinaryIO, limit: int | None = None) -> tuple[dict[str, Any], Arrays]:
    """The next message. `limit` bounds its size in bytes (the harness reading a
    worker, which may send anything): a larger one is a ProtocolError, never a large
    allocation."""
    start = stream.read(len(MAGIC))
    if not start:
        raise ConnectionClosed("stream ended (no further message)")
    if len(start) < len(MAGIC):
        start += _read_exactly(stream, len(MAGIC) - len(start))
    if start != MAGIC:
        raise ProtocolError(f"expected a message starting with {MAGIC!r}, got {start!r} "
                            "(something else wrote to the protocol stream)")
    (length,) = _LENGTH.unpack(_read_exactly(stream, _LENGTH.size))
    budget = _spend(limit, length)
    try:
        header = json.loads(_read_exactly(stream, length))
    except (ValueError, RecursionError) as error:
        raise ProtocolError(f"a message header that is not JSON ({type(error).__name__})") from None
    listed = header.pop("arrays", []) if isinstance(header, dict) else None
    if not isinstance(listed, list) or not all(
            isinstance(e, list) and len(e) == 2 and isinstance(e[0], str) and type(e[1]) is int and e[1] >= 0
            for e in listed):
        raise ProtocolError("a message header that is not an object with a list of [name, size] arrays")
    arrays = {}
    for name, nbytes in listed:
        budget = _spend(budget, nbytes)
        try:
            arrays[name] = np.load(io.BytesIO(_read_exactly(stream, nbytes)), allow_pickle=False)
        except (ValueError, OSError, EOFError) as error:
            raise ProtocolError(f"array {name!r} is not a valid .npy payload ({error})") from None
    return header, arrays


def _spend(budget: int | None, nbytes: int) -> int | None:
    if budget is None:
        return None
    if nbytes > budget:
        raise ProtocolError(f"a message larger than the {budget:,} bytes allowed")
    return budget - nbytes


# --- DataFrames ----------------------------------------------------------------------

def pack_frame(frame: pd.DataFrame, prefix: str) -> tuple[dict[str, Any], Arrays]:
    """Columns as npy arrays (numeric, bool, datetime) or JSON lists (everything else:
    text, categories, nullable extension types). The index is not kept."""
    columns, arrays = [], {}
    for i, name in enumerate(frame.columns):
        series = frame[name]
        dtype = series.dtype
        spec: dict[str, Any] = {"name": str(name)}
        if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
            spec["kind"] = "npy"
            arrays[f"{prefix}{i}"] = series.to_numpy()
        elif isinstance(dtype, np.dtype) and dtype.kind == "M":
            unit = np.datetime_data(dtype)[0]
            spec |= {"kind": "datetime", "unit": unit}
            arrays[f"{prefix}{i}"] = series.to_numpy().view("int64")
        else:
            spec["kind"] = "category" if isinstance(dtype, pd.CategoricalDtype) else "json"
            spec["values"] = [_json_value(v) for v in series.astype(object).tolist()]
        columns.append(spec)
    return {"columns": columns, "n_rows": len(frame)}, arrays


def _json_value(value: Any) -> Any:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_json_value(v) for v in value]
    return str(value)


def unpack_frame(spec: dict[str, Any], arrays: Arrays, prefix: str) -> pd.DataFrame:
    data = {}
    for i, column in enumerate(spec["columns"]):
        kind = column["kind"]
        if kind == "npy":
            data[column["name"]] = arrays[f"{prefix}{i}"]
        elif kind == "datetime":
            data[column["name"]] = arrays[f"{prefix}{i}"].view(f"datetime64[{column['unit']}]")
        elif kind == "category":
            data[column["name"]] = pd.Categorical(column["values"])
        else:
            data[column["name"]] = pd.Series(column["values"], dtype=object)
    return pd.DataFrame(data, index=pd.RangeIndex(spec["n_rows"]))


# --- ragged histories -----------------------------------------------------------------

def pack_ragged(sequences: list[np.ndarray], prefix: str) -> Arrays:
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    values = (np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences])
              if sequences and offsets[-1] else np.empty(0, dtype=np.int64))
    return {f"{prefix}values": values, f"{prefix}offsets": offsets}


def unpack_ragged(arrays: Arrays, prefix: str) -> list[np.ndarray]:
    """Each sequence as its own read-only array (a copy: nothing past its bounds)."""
    values, offsets = arrays[f"{prefix}values"], arrays[f"{prefix}offsets"]
    return [separate(values[a:b]) for a, b in zip(offsets[:-1], offsets[1:])]


def separate(array: np.ndarray) -> np.ndarray:
    """A read-only copy that owns its memory: no `.base` reaches anything beyond it."""
    copy = np.array(array, copy=True)
    copy.flags.writeable = False
    return copy


# --- the API types ---------------------------------------------------------------------

def pack_catalog(catalog: Catalog) -> tuple[dict[str, Any], Arrays]:
    items, arrays = pack_frame(catalog.items, "catalog.")
    return {"n_items": int(catalog.n_items), "items": items}, arrays


def unpack_catalog(header: dict[str, Any], arrays: Arrays) -> Catalog:
    return Catalog(int(header["n_items"]), unpack_frame(header["items"], arrays, "catalog."))


# Every TrainData field must be handled below: a field added to the contract without
# a wire format fails here (and in the tests) instead of being dropped silently.
_TRAIN_FIELDS = {"interactions", "n_users", "catalog", "validation", "users", "feature_fields"}


def pack_train(train: TrainData) -> tuple[dict[str, Any], Arrays]:
    """The training part, its catalogue, user table and validation set (users,
    histories and targets for model selection: part of what every model gets). Test
    targets are not in TrainData and so can never be sent."""
    unknown = {f.name for f in dataclasses.fields(train)} - _TRAIN_FIELDS
    if unknown:
        raise ProtocolError(f"TrainData fields {sorted(unknown)} have no wire format in {__name__}")
    interactions, arrays = pack_frame(train.interactions, "inter.")
    catalog, catalog_arrays = pack_catalog(train.catalog)
    arrays |= catalog_arrays
    header: dict[str, Any] = {"interactions": interactions, "n_users": int(train.n_users),
                              "catalog": catalog, "feature_fields": list(train.feature_fields),
                              "validation": None, "users": None}
    if train.users is not None:
        header["users"], user_arrays = pack_frame(train.users, "users.")
        arrays |= user_arrays
    if train.validation is not None:
        targets = train.validation.targets
        ragged = not isinstance(targets, np.ndarray)
        header["validation"] = {"ragged_targets": ragged}
        arrays["valid.users"] = np.asarray(train.validation.users)
        arrays |= pack_ragged(train.validation.histories, "valid.hist.")
        if ragged:
            arrays |= pack_ragged(list(targets), "valid.tgt.")
        else:
            arrays["valid.targets"] = targets
    return header, arrays


def unpack_train(header: dict[str, Any], arrays: Arrays) -> TrainData:
    validation = None
    if header["validation"] is not None:
        targets = (unpack_ragged(arrays, "valid.tgt.") if header["validation"]["ragged_targets"]
                   else readonly(arrays["valid.targets"]))
        validation = ValidationSet(readonly(arrays["valid.users"]), unpack_ragged(arrays, "valid.hist."),
                                   targets)
    users = None if header["users"] is None else unpack_frame(header["users"], arrays, "users.")
    return TrainData(
        interactions=unpack_frame(header["interactions"], arrays, "inter."),
        n_users=int(header["n_users"]),
        catalog=unpack_catalog(header["catalog"], arrays),
        validation=validation,
        users=users,
        feature_fields=list(header["feature_fields"]),
    )


def pack_request(request: ScoreRequest) -> tuple[dict[str, Any], Arrays]:
    """A score request without its catalogue (the worker keeps the one it was sent)."""
    arrays = {"users": np.asarray(request.users)} | pack_ragged(request.histories, "hist.")
    if request.candidates is not None:
        arrays["candidates"] = np.asarray(request.candidates)
    return {"prompt_template": request.prompt_template}, arrays


def pack_predict(request: PredictRequest) -> tuple[dict[str, Any], Arrays]:
    """A CTR request (feature rows) without its catalogue."""
    features, arrays = pack_frame(request.features, "feat.")
    return {"features": features, "feature_fields": list(request.feature_fields)}, arrays


def unpack_predict(header: dict[str, Any], arrays: Arrays, catalog: Catalog) -> PredictRequest:
    return PredictRequest(unpack_frame(header["features"], arrays, "feat."), list(header["feature_fields"]),
                          catalog)


def pack_completion(request: CompletionRequest) -> tuple[dict[str, Any], Arrays]:
    """A completion request: its prompts travel as JSON."""
    return {"prompts": [str(p) for p in request.prompts], "max_new_tokens": int(request.max_new_tokens),
            "stop": [str(s) for s in request.stop]}, {}


def unpack_completion(header: dict[str, Any]) -> CompletionRequest:
    return CompletionRequest(list(header["prompts"]), int(header["max_new_tokens"]), list(header["stop"]))


CALLS = ("score", "recommend", "predict", "complete")  # the model methods a request can ask for


def pack_call(op: str, request: ScoreRequest | PredictRequest | CompletionRequest) -> tuple[dict[str, Any], Arrays]:
    """(header with its "op", arrays) for a score, recommend, predict or complete request."""
    if op not in CALLS:
        raise ValueError(f"unknown call {op!r} (expected one of {', '.join(CALLS)})")
    if isinstance(request, CompletionRequest):
        header, arrays = pack_completion(request)
    elif isinstance(request, PredictRequest):
        header, arrays = pack_predict(request)
    else:
        header, arrays = pack_request(request)
    return header | {"op": op}, arrays


def unpack_request(arrays: Arrays, catalog: Catalog, header: dict[str, Any] | None = None) -> ScoreRequest:
    candidates = arrays.get("candidates")
    return ScoreRequest(
        users=readonly(arrays["users"]),
        histories=unpack_ragged(arrays, "hist."),
        candidates=None if candidates is None else readonly(candidates),
        catalog=catalog,
        prompt_template=(header or {}).get("prompt_template"),
    )


# --- what recommend() returns ------------------------------------------------------------

def pack_recommendations(outputs: Any) -> Any:
    """recommend()'s response as JSON: a list of texts and lists of ids (numpy numbers as
    Python numbers). A value that is neither travels as {"type": its type's name}, so
    that the harness's check names the rule it breaks (benchmark.recommendations)."""
    if not isinstance(outputs, (list, tuple)):
        return _type_of(outputs)
    return [_entry_json(entry) for entry in outputs]


def _entry_json(entry: Any) -> Any:
    if isinstance(entry, str):
        return entry
    if isinstance(entry, np.ndarray):
        entry = entry.tolist()
    if isinstance(entry, Sequence) and not isinstance(entry, (bytes, bytearray)):
        return [_value_json(value) for value in entry]
    return _type_of(entry)


def _value_json(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    return value if value is None or isinstance(value, (bool, int, float, str)) else _type_of(value)


def _type_of(value: Any) -> dict[str, str]:
    return {"type": type(value).__name__}


def pack_completions(outputs: Any) -> Any:
    """complete()'s response as JSON: each text cut to CompletionRequest.MAX_CHARS (so an
    overlong answer costs the pipe nothing); a value that is not a list of texts
    travels as {"type": its type's name}, for the harness's check to name."""
    if not isinstance(outputs, (list, tuple)):
        return _type_of(outputs)
    return [str(text[:CompletionRequest.MAX_CHARS]) if isinstance(text, str) else _type_of(text)
            for text in outputs]


def unpack_recommendations(data: Any) -> Any:
    """The response as the model returned it, but for values that could not travel:
    each is an object of a stand-in class with the original type's name. (Also reads
    pack_completions' JSON.)"""
    if isinstance(data, dict):
        return stand_in(data.get("type", "object"))
    if isinstance(data, list):
        return [unpack_recommendations(value) for value in data]
    return data


def stand_in(type_name: str) -> Any:
    """An object whose type has the given name (what a contract check reports)."""
    return type(str(type_name), (), {"__repr__": lambda self: f"<{type(self).__name__}>"})()
