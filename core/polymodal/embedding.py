"""Embed values with any registered pretrained encoder, frozen and shared through the
component hub: the content features of recommenders, search indexes and the like."""

from __future__ import annotations

from typing import Any

import torch


@torch.inference_mode()
def embed_values(values: list[Any], *, encoder: str, modality: str,
                 options: dict[str, Any] | None = None, source: str | None = None,
                 batch_size: int = 64, device: str | None = None) -> torch.Tensor:
    """One pooled vector per value (rows in input order), as float32 on the CPU."""
    from polymodal.data.collate import move_batch
    from polymodal.data.loader import length_chunks
    from polymodal.device import pick_device
    from polymodal.encoders.base import BuildContext
    from polymodal.hub import get_hub
    from polymodal.model import build_encoder
    from polymodal.spec import InputSpec

    torch_device = pick_device(device)
    spec = InputSpec(name="value", modality=modality, encoder=encoder, source=source,
                     frozen=True, options=options or {})
    module = build_encoder(spec, BuildContext(device=torch_device, hub=get_hub(),
                                              values=values))
    module.eval()
    processor = module.processor
    lengths = [processor.length(v) for v in values]
    rows: list[torch.Tensor | None] = [None] * len(values)
    for chunk in length_chunks(lengths, batch_size):
        batch = move_batch(processor([values[i] for i in chunk]), torch_device)
        pooled = module(batch).pooled.float().cpu()
        for row, index in enumerate(chunk):
            rows[index] = pooled[row]
    return torch.stack(rows) if rows else torch.zeros(0)  # type: ignore[arg-type]
