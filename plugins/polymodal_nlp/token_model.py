"""A registered text encoder (``minilm``, ``hf-text``) with a linear head over its token
states: the network of token classification (NER) and span extraction (QA). Texts longer
than the window are cut into overlapping windows (``stride`` tokens shared), each keeping
the character offsets of its tokens so that predictions map back to the original string.

Saved as a model directory: weights (safetensors), the encoder's tokenizer and config, and
the spec plus the head's label names in ``polymodal.yaml``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from polymodal.plugin import InputSpec, TrainSpec

if TYPE_CHECKING:
    from polymodal_nlp.text_encoders import HFTextEncoder

WEIGHTS = "model.safetensors"


class TokenSpec(BaseModel):
    """Spec of a token-level text model (the ``nlp.ner`` and ``nlp.qa`` scenarios)."""

    model_config = ConfigDict(extra="forbid")
    name: str
    scenario: str
    text: InputSpec = InputSpec(name="text", modality="text", encoder="minilm",
                                options={"max_length": 128, "attention_dropout": 0.0})
    stride: int = Field(default=32, ge=0)
    dropout: float = 0.1
    train: TrainSpec = TrainSpec(epochs=8, batch_size=16, lr=1.0e-4, warmup=0.1)


class TokenHeadModel(nn.Module):
    """Encoder -> dropout -> linear, one output vector per token."""

    def __init__(self, encoder: HFTextEncoder, outputs: int, dropout: float) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.output_dim, outputs)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")
                  if k in batch}
        return self.head(self.dropout(self.encoder(inputs).tokens)).float()


def build_text_encoder(spec: TokenSpec, device: torch.device,
                       saved: Path | None = None) -> HFTextEncoder:
    """The spec's text encoder from the registry (a saved directory: config + tokenizer only,
    the weights come from the model file)."""
    from polymodal.plugin import BuildContext, build_encoder, get_hub

    context = BuildContext(device=device, hub=get_hub(),
                           processor_state={} if saved else None, processor_dir=saved)
    encoder = build_encoder(spec.text, context)
    if not hasattr(encoder.processor, "tokenizer"):
        from polymodal.plugin import SpecError

        raise SpecError(f"spec text.encoder: {spec.text.encoder!r} has no sub-word tokenizer "
                        "with offsets; use minilm or hf-text")
    return cast("HFTextEncoder", encoder)


def tokenize_windows(tokenizer: Any, texts: list[str], *, max_length: int, stride: int,
                     questions: list[str] | None = None) -> Any:
    """Overlapping windows over ``texts`` (or question + context pairs, the context being
    cut), with ``offset_mapping`` and ``overflow_to_sample_mapping``."""
    common = {"max_length": max_length, "stride": stride, "return_overflowing_tokens": True,
              "return_offsets_mapping": True, "padding": True, "return_tensors": "pt"}
    if questions is None:
        return tokenizer(texts, truncation=True, **common)
    return tokenizer(questions, texts, truncation="only_second", **common)


def new_token_model(spec: TokenSpec, outputs: int, device: str | None
                    ) -> tuple[torch.device, TokenHeadModel]:
    """A fresh, seeded model for training: the spec's encoder with an ``outputs``-wide head,
    on ``device`` (default: the best available)."""
    from polymodal.plugin import pick_device, seed_everything

    torch_device = pick_device(device)
    seed_everything(spec.train.seed)
    encoder = build_text_encoder(spec, torch_device)
    return torch_device, TokenHeadModel(encoder, outputs, spec.dropout).to(torch_device)


def spec_windows(spec: TokenSpec, tokenizer: Any, texts: list[str],
                 questions: list[str] | None = None) -> Any:
    """``tokenize_windows`` with the spec's window (``text.options.max_length``) and stride."""
    return tokenize_windows(tokenizer, texts, questions=questions, stride=spec.stride,
                            max_length=int(spec.text.options.get("max_length", 128)))


def model_inputs(encoding: Any, rows: list[int], device: torch.device) -> dict[str, torch.Tensor]:
    """The encoder's tensors for the windows ``rows`` of ``encoding``, trimmed of padding."""
    index = torch.tensor(rows)
    mask = encoding["attention_mask"][index]
    width = int(mask.sum(dim=1).max())
    return {k: encoding[k][index][:, :width].to(device)
            for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoding}


def save_token_model(work: Path, model: TokenHeadModel, spec: TokenSpec,
                     labels: list[str]) -> dict[str, Any]:
    """Weights and the encoder's tokenizer files into ``work``; returns the spec as the
    manifest records it (with the head's label names)."""
    from safetensors.torch import save_file

    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
              str(work / WEIGHTS))
    model.encoder.processor.save_files(work / "processors" / "text")
    return {**spec.model_dump(mode="json"), "labels": labels}


def load_token_model(directory: Path, device: str | None
                     ) -> tuple[TokenSpec, TokenHeadModel, list[str], dict[str, Any],
                                torch.device]:
    """(spec, model in eval mode, head labels, manifest, device) of a saved directory."""
    from safetensors.torch import load_file

    from polymodal.plugin import ArtifactError, parse_model_spec, pick_device, read_manifest

    manifest = read_manifest(directory)
    data = dict(manifest["spec"])
    labels = list(data.pop("labels"))
    spec = parse_model_spec(TokenSpec, data)
    spec.text.frozen = False  # the saved weights include the encoder
    torch_device = pick_device(device)
    encoder = build_text_encoder(spec, torch_device, saved=directory / "processors" / "text")
    model = TokenHeadModel(encoder, len(labels), spec.dropout)
    try:
        model.load_state_dict(load_file(str(directory / WEIGHTS)))
    except (OSError, RuntimeError, ValueError) as exc:
        raise ArtifactError(f"{directory}: unreadable model weights ({exc})") from None
    return spec, model.to(torch_device).eval(), labels, manifest, torch_device


def window_steps(model: TokenHeadModel, encoding: Any, targets: dict[str, torch.Tensor],
                 loss_fn: Any, spec: TokenSpec) -> tuple[Any, list[int]]:
    """The model's training steps over the windows of ``encoding`` (items: window
    indices); ``loss_fn(logits, targets_of_the_batch)`` is the scenario's."""
    from polymodal.plugin import ModuleSteps

    cpu = torch.device("cpu")

    def collate(rows: list[int]) -> Any:
        return (model_inputs(encoding, rows, cpu),
                {k: v[torch.tensor(rows)] for k, v in targets.items()})

    sizes = encoding["attention_mask"].sum(dim=1).tolist()
    steps = ModuleSteps(model, collate=collate,
                        loss=lambda module, batch: loss_fn(module(batch[0]), batch[1]),
                        identity=spec.model_dump(mode="json", exclude={"train"}),
                        batch_size=lambda batch: len(batch[0]["input_ids"]),
                        lengths=(lambda rows: [int(sizes[i]) for i in rows])
                        if spec.train.bucket_by_length else None)
    return steps, list(range(int(encoding["input_ids"].shape[0])))
