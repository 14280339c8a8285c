"""Fusion modules: ``dict[field, EncoderOutput]`` plus presence masks -> ``FusedOutput``.

Every fusion handles a missing modality through the presence mask (``present[field]`` is a
bool tensor [B]): a record with an empty field trains and predicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from polymodal import component_options
from polymodal.encoders.base import EncoderOutput


@dataclass
class FusedOutput:
    """What a fusion hands the task head: a joint pooled vector, a fused token sequence
    (aligned with the tokens of input ``token_field``) with its mask, or (late fusion) one
    pooled vector per field for per-field heads."""

    pooled: torch.Tensor | None = None  # [B, D]
    tokens: torch.Tensor | None = None  # [B, T, D_tokens]
    token_mask: torch.Tensor | None = None  # [B, T], True where a token is real
    per_field: dict[str, torch.Tensor] | None = None  # field -> [B, D_field]
    present: dict[str, torch.Tensor] | None = None


@dataclass(frozen=True)
class FusedDims:
    """The widths a task builds its head from. ``tokens`` is None for a fusion without a
    token sequence (a token-level task refuses such a fusion); ``token_field`` names the
    input whose tokens the fused sequence is aligned with."""

    pooled: int | None
    tokens: int | None = None
    token_field: str | None = None


class Fusion(nn.Module):
    """Base class: built from ``input_dims``; exposes ``output_dim`` (or ``output_dims``)
    and, when it produces a token sequence, ``token_dim`` and ``token_field``."""

    output_dim: int
    output_dims: dict[str, int]  # a late fusion's width per field (its per-field vectors)
    token_dim: int | None = None
    token_field: str | None = None
    late: bool = False

    def __init__(self, input_dims: dict[str, int]) -> None:
        super().__init__()
        self.fields = list(input_dims)
        self.input_dims = dict(input_dims)

    @property
    def dims(self) -> FusedDims:
        return FusedDims(pooled=self.output_dim, tokens=self.token_dim,
                         token_field=self.token_field)


def _mask(x: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    return x * present.to(x.dtype).unsqueeze(-1)


class ConcatFusion(Fusion):
    """Concatenate pooled vectors (zeroed when absent) and the presence flags."""

    Options = component_options.ConcatOptions

    def __init__(self, input_dims: dict[str, int], dropout: float = 0.1) -> None:
        super().__init__(input_dims)
        self.output_dim = sum(input_dims.values()) + len(input_dims)
        self.dropout = nn.Dropout(dropout)

    def forward(self, outputs: dict[str, EncoderOutput],
                present: dict[str, torch.Tensor]) -> FusedOutput:
        parts = [_mask(outputs[f].pooled, present[f]) for f in self.fields]
        flags = torch.stack([present[f] for f in self.fields], dim=-1).to(parts[0].dtype)
        return FusedOutput(pooled=self.dropout(torch.cat(parts + [flags], dim=-1)))


class GatedFusion(Fusion):
    """Gated multimodal unit: tanh projections mixed by softmax gates over present fields."""

    Options = component_options.GatedOptions

    def __init__(self, input_dims: dict[str, int], hidden: int = 128,
                 dropout: float = 0.1) -> None:
        super().__init__(input_dims)
        self.output_dim = hidden
        self.project = nn.ModuleDict({f: nn.Linear(d, hidden) for f, d in input_dims.items()})
        self.gate = nn.Linear(sum(input_dims.values()), len(input_dims))
        self.dropout = nn.Dropout(dropout)

    def forward(self, outputs: dict[str, EncoderOutput],
                present: dict[str, torch.Tensor]) -> FusedOutput:
        pooled = [_mask(outputs[f].pooled, present[f]) for f in self.fields]
        hidden = torch.stack(
            [torch.tanh(self.project[f](p)) for f, p in zip(self.fields, pooled, strict=True)],
            dim=1,
        )  # [B, M, H]
        mask = torch.stack([present[f] for f in self.fields], dim=1)  # [B, M]
        logits = self.gate(torch.cat(pooled, dim=-1)).float()
        logits = logits.masked_fill(~mask, torch.finfo(logits.dtype).min)
        weights = torch.softmax(logits, dim=-1) * mask  # all-absent rows become zeros
        fused = (weights.to(hidden.dtype).unsqueeze(-1) * hidden).sum(dim=1)
        return FusedOutput(pooled=self.dropout(fused))


class AttentionFusion(Fusion):
    """A transformer over a learned summary token plus, per modality, either its pooled
    vector (one token) or, with ``tokens: true``, its per-token states (words, image grid
    cells; up to ``max_tokens`` each, with learned positions), so the summary can attend to
    the word and the region that matter together (visual question answering).

    With ``query: FIELD`` the transformer is a decoder instead: the summary and that field's
    tokens (e.g. the question's words) attend to each other and, in every layer, to the
    other fields' tokens (e.g. the image grid), as a captioning decoder reads an image; a
    learned empty memory token keeps a record whose other fields are all absent (or a model
    with the query field alone, as in an ablation) defined.

    Two decoder-mode options for questions about where things are ("is the circle left of
    the square?"). ``spatial: true``: after each layer's cross-attention, every decoded token
    also gets (added, through a learned projection) the place its attention reads on the
    other fields' grids: per head, the attention-weighted mean of the tokens'
    ``token_positions`` and the share of attention on tokens that have one (a spatial
    soft-argmax). ``readout: N``: the pooled output is the summary plus a projection of the
    first N decoded query tokens in their order (flattened), so that what the first and the
    second named object's words found stays apart. Together they let a decoder compare two
    objects' places on a toy, where neither alone did; on vision.vqa's scenes they have not
    yet (docs/benchmarks.md), so no default sets them.

    With ``condition: true`` every token also gets (added) a projection of the other
    modalities' pooled vectors, so the first layer's feed-forward block can already combine
    "what is here" with "what is asked" token by token (FiLM-like conditioning), instead of
    the summary having to discover the pairing through two rounds of attention.

    Absent modalities are masked out of attention; the summary token is always present, so
    a record with every field missing still yields an embedding.
    """

    Options = component_options.AttentionOptions

    def __init__(self, input_dims: dict[str, int], hidden: int = 128, heads: int = 4,
                 layers: int = 2, dropout: float = 0.1, tokens: bool = False,
                 max_tokens: int = 64, condition: bool = False,
                 query: str | None = None, spatial: bool = False, readout: int = 0) -> None:
        super().__init__(input_dims)
        if query is not None and query not in input_dims:
            from polymodal.errors import SpecError

            raise SpecError(f"fusion attention: query {query!r} is not an input "
                            f"({', '.join(input_dims)})")
        if (spatial or readout) and (query is None or not tokens):
            from polymodal.errors import SpecError

            raise SpecError("fusion attention: spatial and readout need the decoder mode "
                            "(query: FIELD) over tokens (tokens: true)")
        self.query = query
        self.output_dim = hidden
        self.use_tokens = tokens
        self.max_tokens = max_tokens
        self.project = nn.ModuleDict({f: nn.Linear(d, hidden) for f, d in input_dims.items()})
        self.condition = nn.ModuleDict({
            f: nn.Linear(sum(d for g, d in input_dims.items() if g != f), hidden)
            for f in input_dims}) if condition and len(input_dims) > 1 else None
        self.modality = nn.Parameter(torch.randn(len(input_dims), hidden) * 0.02)
        if tokens:
            self.positions = nn.Parameter(
                torch.randn(len(input_dims), max_tokens, hidden) * 0.02)
        self.summary = nn.Parameter(torch.randn(1, 1, hidden) * 0.02)
        if query is None:
            layer = nn.TransformerEncoderLayer(hidden, heads, dim_feedforward=2 * hidden,
                                               dropout=dropout, batch_first=True,
                                               norm_first=True)
            self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        else:
            decoder_layer = nn.TransformerDecoderLayer(hidden, heads, dim_feedforward=2 * hidden,
                                                       dropout=dropout, batch_first=True,
                                                       norm_first=True)
            self.decoder = nn.TransformerDecoder(decoder_layer, layers)
            self.empty_memory = nn.Parameter(torch.randn(1, 1, hidden) * 0.02)
            if tokens:  # the decoded query tokens are a sequence aligned with that input
                self.token_dim, self.token_field = hidden, query
        # Per decoder layer: the place read by each head (x, y, share on placed tokens) ->
        # hidden. They start at zero: the decoder begins as the plain one and grows the new
        # path (on the toy of tests/core/test_components.py it then learns the relation in
        # 300 steps instead of 450; a readout started at zero does not learn it).
        places = [nn.Linear(3 * heads, hidden) for _ in range(layers)] if spatial else []
        for projection in places:
            nn.init.zeros_(projection.weight)
            nn.init.zeros_(projection.bias)
        self.places = nn.ModuleList(places) if spatial else None
        self.readout = readout
        self.read = nn.Sequential(nn.Linear((1 + readout) * hidden, hidden), nn.GELU()) \
            if readout else None
        self.norm = nn.LayerNorm(hidden)

    def _sequence(self, index: int, field: str, output: EncoderOutput,
                  present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        modality = self.modality[index]
        if self.use_tokens and output.tokens is not None:
            states = output.tokens[:, : self.max_tokens]
            seq = self.project[field](states) + (modality + self.positions[index,
                                                                            : states.shape[1]])
            mask = torch.ones(states.shape[:2], dtype=torch.bool, device=states.device) \
                if output.token_mask is None else output.token_mask[:, : self.max_tokens]
            return seq, mask & present.unsqueeze(1)
        return (self.project[field](output.pooled) + modality).unsqueeze(1), \
            present.unsqueeze(1)

    def _context(self, field: str, outputs: dict[str, EncoderOutput],
                 present: dict[str, torch.Tensor]) -> torch.Tensor:
        """The other modalities' pooled vectors (zeroed when absent), projected: [B, 1, H]."""
        assert self.condition is not None
        others = [_mask(outputs[g].pooled, present[g]) for g in self.fields if g != field]
        return self.condition[field](torch.cat(others, dim=-1)).unsqueeze(1)

    def _places(self, output: EncoderOutput, length: int, like: torch.Tensor
                ) -> torch.Tensor:
        """[B, length, 3]: each token's x, y and 1 where it has a grid place, else zeros."""
        places = torch.zeros(like.shape[0], length, 3, dtype=like.dtype, device=like.device)
        if self.use_tokens and output.tokens is not None and output.token_positions is not None:
            positions = output.token_positions[:length].to(like.device, like.dtype)
            places[:, :, :2] = positions
            places[:, :, 2] = 1.0
        return places

    def forward(self, outputs: dict[str, EncoderOutput],
                present: dict[str, torch.Tensor]) -> FusedOutput:
        parts = [self._sequence(i, f, outputs[f], present[f]) for i, f in
                 enumerate(self.fields)]
        if self.condition is not None:
            parts = [(seq + self._context(f, outputs, present).to(seq.dtype), mask)
                     for (seq, mask), f in zip(parts, self.fields, strict=True)]
        if self.query is not None:
            places = [self._places(outputs[f], seq.shape[1], seq)
                      for f, (seq, _) in zip(self.fields, parts, strict=True)] \
                if self.places is not None else []
            return self._decode(parts, places)
        tokens = torch.cat([seq for seq, _ in parts], dim=1)
        batch = tokens.shape[0]
        tokens = torch.cat([self.summary.expand(batch, -1, -1).to(tokens.dtype), tokens], dim=1)
        mask = torch.cat([m for _, m in parts], dim=1)
        keep = torch.cat([torch.ones(batch, 1, dtype=torch.bool, device=mask.device), mask], 1)
        encoded = self.encoder(tokens, src_key_padding_mask=~keep)
        return FusedOutput(pooled=self.norm(encoded[:, 0]))

    def _decode(self, parts: list[tuple[torch.Tensor, torch.Tensor]],
                places: list[torch.Tensor]) -> FusedOutput:
        """Summary + query tokens attend to the other fields' tokens in every layer."""
        position = self.fields.index(self.query)  # type: ignore[arg-type]
        query, query_mask = parts[position]
        batch = query.shape[0]
        ones = torch.ones(batch, 1, dtype=torch.bool, device=query.device)
        target = torch.cat([self.summary.expand(batch, -1, -1).to(query.dtype), query], dim=1)
        target_keep = torch.cat([ones, query_mask], dim=1)
        others = [i for i in range(len(parts)) if i != position]
        memory = torch.cat([self.empty_memory.expand(batch, -1, -1).to(query.dtype)]
                           + [parts[i][0] for i in others], dim=1)
        memory_keep = torch.cat([ones] + [parts[i][1] for i in others], dim=1)
        if self.places is None:
            decoded = self.decoder(target, memory, tgt_key_padding_mask=~target_keep,
                                   memory_key_padding_mask=~memory_keep)
        else:
            memory_places = torch.cat([torch.zeros_like(places[position][:, :1])]
                                      + [places[i] for i in others], dim=1)
            decoded = target
            for layer, place in zip(self.decoder.layers, self.places, strict=True):
                decoded = _placed_layer(layer, place, decoded, memory, memory_places,
                                        ~target_keep, ~memory_keep)
        decoded = self.norm(decoded)
        pooled = decoded[:, 0]
        if self.read is not None:
            pooled = pooled + self.read(_first_tokens(decoded, target_keep, 1 + self.readout))
        if self.token_field is None:
            return FusedOutput(pooled=pooled)
        return FusedOutput(pooled=pooled, tokens=decoded[:, 1:], token_mask=query_mask)


def _placed_layer(layer: Any, place: nn.Module, target: torch.Tensor,
                  memory: torch.Tensor, memory_places: torch.Tensor,
                  target_pad: torch.Tensor, memory_pad: torch.Tensor) -> torch.Tensor:
    """``layer`` (pre-norm) run by hand so its cross-attention weights are seen: after the
    cross-attention each token gets ``place`` of where each head read (the attention-weighted
    x, y and share of placed memory tokens)."""
    h = layer.norm1(target)
    target = target + layer.dropout1(layer.self_attn(h, h, h, key_padding_mask=target_pad,
                                                     need_weights=False)[0])
    h = layer.norm2(target)
    read, weights = layer.multihead_attn(h, memory, memory, key_padding_mask=memory_pad,
                                         need_weights=True, average_attn_weights=False)
    where = torch.einsum("bhts,bsc->bthc", weights.to(memory_places.dtype), memory_places)
    target = target + layer.dropout2(read) + place(where.flatten(2).to(target.dtype))
    h = layer.norm3(target)
    return target + layer.dropout3(layer.linear2(layer.dropout(layer.activation(
        layer.linear1(h)))))


def _first_tokens(decoded: torch.Tensor, keep: torch.Tensor, count: int) -> torch.Tensor:
    """[B, count * D]: the first ``count`` tokens of ``decoded`` in order, padding and
    missing ones as zeros."""
    tokens = (decoded * keep.unsqueeze(-1).to(decoded.dtype))[:, :count]
    if tokens.shape[1] < count:
        tokens = nn.functional.pad(tokens, (0, 0, 0, count - tokens.shape[1]))
    return tokens.flatten(1)


class LateFusion(Fusion):
    """No joint embedding: each field gets its own task head; logits are averaged over the
    fields present in each record (see ``MultimodalModel``)."""

    Options = component_options.LateOptions

    late = True

    def __init__(self, input_dims: dict[str, int], dropout: float = 0.1) -> None:
        super().__init__(input_dims)
        self.output_dims = dict(input_dims)
        self.output_dim = max(input_dims.values())
        self.dropout = nn.Dropout(dropout)

    def forward(self, outputs: dict[str, EncoderOutput],
                present: dict[str, torch.Tensor]) -> FusedOutput:
        return FusedOutput(
            per_field={f: self.dropout(outputs[f].pooled) for f in self.fields},
            present=present,
        )


class TokenFusion(Fusion):
    """The token sequence of one input (``field``; default: the first input) for token-level
    tasks (tagging, span extraction), each token conditioned on the other inputs: their
    pooled vectors (zeroed when absent) are projected and added to every token. The pooled
    output is the field's own pooled vector, so a pooled task still works."""

    Options = component_options.TokenFusionOptions

    def __init__(self, input_dims: dict[str, int], field: str | None = None,
                 dropout: float = 0.1) -> None:
        super().__init__(input_dims)
        field = field or self.fields[0]
        if field not in input_dims:
            from polymodal.errors import SpecError

            raise SpecError(f"fusion tokens: field {field!r} is not an input "
                            f"({', '.join(input_dims)})")
        self.token_field = self.field = field
        self.others = [f for f in self.fields if f != field]
        width = input_dims[field]
        self.output_dim = self.token_dim = width
        self.condition = nn.Linear(sum(input_dims[f] for f in self.others), width) \
            if self.others else None
        self.dropout = nn.Dropout(dropout)

    def forward(self, outputs: dict[str, EncoderOutput],
                present: dict[str, torch.Tensor]) -> FusedOutput:
        own = outputs[self.field]
        if own.tokens is None:
            from polymodal.errors import SpecError

            raise SpecError(f"fusion tokens: the encoder of {self.token_field!r} gives no "
                            "token states")
        tokens = own.tokens
        mask = own.token_mask if own.token_mask is not None else torch.ones(
            tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        if self.condition is not None:
            context = torch.cat([_mask(outputs[f].pooled, present[f]) for f in self.others],
                                dim=-1)
            tokens = tokens + self.condition(context).to(tokens.dtype).unsqueeze(1)
        return FusedOutput(pooled=self.dropout(own.pooled), tokens=self.dropout(tokens),
                           token_mask=mask & present[self.field].unsqueeze(1))
