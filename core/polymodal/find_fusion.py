"""The ``find`` fusion: each word of a question finds its object on an image grid and reads
what is there and where it is; the words' findings, in their order, make the answer.

For questions that compare two named objects ("is the circle left of the square?"): one
attention per word over the grid cells (a softmax over cells, shared by every question
family, so the colour questions teach "circle" to find circles) gives that word both the
attended features and the attention-weighted place of the cells (a spatial soft-argmax).
The first ``readout`` words' states, reads and places in order, with both inputs' pooled
vectors (which carry what a single read cannot: how many objects there are), go through
an MLP. Learned pointers over the words (``roles``) pick the named objects' places; those,
their differences and every word's place go through a small MLP of their own, so that
comparing two places is a handful of inputs, not 2 of some 4,000 (where vision.vqa's
relations stayed at chance: docs/benchmarks.md).
"""

from __future__ import annotations

import torch
from torch import nn

from polymodal import component_options
from polymodal.encoders.base import EncoderOutput
from polymodal.errors import SpecError
from polymodal.fusions import FusedOutput, Fusion, _first_tokens, _mask


class FindFusion(Fusion):
    """``query`` (the question) and ``objects`` (the image; default: the other input, with
    two inputs) are inputs with token states; the objects' ``token_positions`` are their
    places (zeros where an encoder gives none). ``heads`` attentions per word, each reading
    ``hidden / heads`` features and a place. A learned "nothing here" key (zero features,
    no place) keeps a record without objects defined. Padding words and absent inputs are
    zeros in the readout.

    With one input (a modality ablation's single-input model) there is nothing to find:
    the question's words alone in order, or the image's pooled vector alone, through the
    same MLP."""

    Options = component_options.FindOptions

    def __init__(self, input_dims: dict[str, int], query: str | None = None,
                 objects: str | None = None, hidden: int = 128, heads: int = 1,
                 readout: int = 16, roles: int = 2, dropout: float = 0.0) -> None:
        super().__init__(input_dims)
        if query is None and len(input_dims) > 1:
            raise SpecError("fusion find: query must name the input whose words find objects")
        if query is not None and query not in input_dims:
            raise SpecError(f"fusion find: query {query!r} is not an input "
                            f"({', '.join(input_dims)})")
        others = [f for f in self.fields if f != query]
        if objects is None and len(others) == 1 and query is not None:
            objects = others[0]
        if query is not None and others and objects not in others:
            raise SpecError(f"fusion find: objects must name one input other than the query "
                            f"({', '.join(others)})")
        if hidden % heads:
            raise SpecError(f"fusion find: hidden {hidden} is not a multiple of heads {heads}")
        self.query, self.objects = query, objects
        self.heads, self.readout, self.output_dim = heads, readout, hidden
        finds = query is not None and objects is not None
        per_word = 0
        if query is not None:
            per_word = input_dims[query] + (hidden + 2 * heads if finds else 0)
        if finds:
            assert query is not None and objects is not None
            self.ask = nn.Linear(input_dims[query], hidden)
            self.key = nn.Linear(input_dims[objects], hidden)
            self.value = nn.Linear(input_dims[objects], hidden)
            self.nothing = nn.Parameter(torch.randn(1, 1, hidden) * 0.02)
        self.combine = nn.Sequential(
            nn.Linear(readout * per_word + sum(input_dims.values()), hidden), nn.ReLU(),
            nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.ReLU())
        # Roles: learned pointers over the words ("the first named object", "the second"),
        # each pooling the places its words read; those places (with every word's, in
        # order) and their differences go through a small MLP of their own with the
        # question, so that comparing two places is a few inputs of one layer, not 2 of
        # 4,000 in the combined readout (where vision.vqa's relations stayed at chance).
        self.roles = roles if finds else 0
        if self.roles:
            assert query is not None
            self.pick = nn.Linear(input_dims[query], roles)
            compared = (readout + roles + roles * (roles - 1) // 2) * 2 * heads
            self.compare = nn.Sequential(nn.Linear(compared + input_dims[query], hidden),
                                         nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.norm = nn.LayerNorm(hidden)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, hidden] -> [B, heads, T, hidden / heads]."""
        return x.unflatten(-1, (self.heads, -1)).transpose(1, 2)

    def find(self, words: torch.Tensor, grid: EncoderOutput, present: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per word: what it reads [B, T, hidden] and where, per head [B, T, 2 * heads]."""
        cells = grid.tokens if grid.tokens is not None else grid.pooled.unsqueeze(1)
        batch, count = cells.shape[:2]
        keep = torch.ones(batch, count, dtype=torch.bool, device=cells.device) \
            if grid.token_mask is None or grid.tokens is None else grid.token_mask
        keep = torch.cat([torch.ones(batch, 1, dtype=torch.bool, device=cells.device),
                          keep & present.unsqueeze(1)], dim=1)
        places = torch.zeros(count, 2, dtype=cells.dtype, device=cells.device)
        if grid.tokens is not None and grid.token_positions is not None:
            places = grid.token_positions[:count].to(cells.device, cells.dtype)
        places = torch.cat([places.new_zeros(1, 2), places])  # "nothing" is nowhere
        keys = torch.cat([self.nothing.expand(batch, -1, -1).to(cells.dtype),
                          self.key(cells)], dim=1)
        values = torch.cat([torch.zeros_like(keys[:, :1]), self.value(cells)], dim=1)
        asks, keys, values = self._split(self.ask(words)), self._split(keys), \
            self._split(values)
        scores = asks @ keys.transpose(-1, -2) / asks.shape[-1] ** 0.5  # [B, H, T, 1 + N]
        scores = scores.float().masked_fill(~keep[:, None, None, :], float("-inf"))
        weights = torch.softmax(scores, dim=-1).to(values.dtype)
        read = (weights @ values).transpose(1, 2).flatten(2)  # [B, T, hidden]
        where = (weights @ places.to(weights.dtype)).transpose(1, 2).flatten(2)
        return read, where

    def forward(self, outputs: dict[str, EncoderOutput],
                present: dict[str, torch.Tensor]) -> FusedOutput:
        pooled = [_mask(outputs[f].pooled, present[f]) for f in self.fields]
        if self.query is None:
            return FusedOutput(pooled=self.norm(self.combine(torch.cat(pooled, dim=-1))))
        question = outputs[self.query]
        if question.tokens is None:
            raise SpecError(f"fusion find: the encoder of {self.query!r} gives no token "
                            "states")
        words = question.tokens[:, : self.readout]
        keep = torch.ones(words.shape[:2], dtype=torch.bool, device=words.device) \
            if question.token_mask is None else question.token_mask[:, : self.readout]
        keep = keep & present[self.query].unsqueeze(1)
        found = words
        if self.objects is not None:
            read, where = self.find(words, outputs[self.objects], present[self.objects])
            found = torch.cat([words, read.to(words.dtype), where.to(words.dtype)], dim=-1)
        ordered = _first_tokens(found, keep, self.readout)  # [B, readout * per word]
        summary = torch.cat([ordered] + [p.to(ordered.dtype) for p in pooled], dim=-1)
        fused = self.combine(summary)
        if self.roles:
            places = ordered.unflatten(1, (self.readout, -1))[..., -2 * self.heads:]
            question_pooled = pooled[self.fields.index(self.query)].to(words.dtype)
            fused = fused + self._compare(words, keep, places, question_pooled)
        return FusedOutput(pooled=self.norm(fused))

    def _compare(self, words: torch.Tensor, keep: torch.Tensor, where: torch.Tensor,
                 question: torch.Tensor) -> torch.Tensor:
        """``where`` [B, readout, 2 * heads]: every word's place in order (zeros for
        padding). The roles' places (each a softmax over the words), their differences,
        every word's place and the question's pooled vector, through the compare MLP."""
        scores = self.pick(words).float().masked_fill(~keep.unsqueeze(-1), float("-inf"))
        weights = torch.softmax(scores, dim=1).nan_to_num(0.0).to(where.dtype)  # [B, T, R]
        places = weights.transpose(1, 2) @ where[:, : words.shape[1]]  # [B, R, 2 * heads]
        differences = [places[:, i] - places[:, j] for i in range(self.roles)
                       for j in range(i + 1, self.roles)]
        return self.compare(torch.cat([where.flatten(1), places.flatten(1), *differences,
                                       question], dim=-1))
