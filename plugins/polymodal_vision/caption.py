"""``vision.caption``: image -> text. The image encoder's grid tokens feed a small transformer
decoder over a word vocabulary built from the training captions; teacher forcing to train,
greedy or beam search to decode. BLEU-4 (torchmetrics) and the exact-match rate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from polymodal.plugin import (
    BasePredictor,
    DataError,
    ExportGraph,
    InputSpec,
    Record,
    TrainSpec,
    parse_model_spec,
)

if TYPE_CHECKING:
    from polymodal_vision.encoders import ImageEncoder

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"


class CaptionSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "scenes-captions"
    scenario: str = "vision.caption"
    image: InputSpec = InputSpec(name="image", modality="image", encoder="small-cnn",
                                 options={"image_size": 64, "width": 32, "output_dim": 128})
    hidden: int = 128
    layers: int = 2
    heads: int = 4
    max_words: int = 24
    beam: int = 3
    # The share of training pairs held out to pick the best epoch (by validation loss). None
    # by default: on the embedded scenes, training on every pair to the last epoch captions
    # better (docs/benchmarks.md, issue 13).
    validation: float = Field(default=0.0, ge=0, lt=1)
    train: TrainSpec = TrainSpec(epochs=20, batch_size=64, lr=2.0e-3, warmup=0.05)


def parse_caption_spec(data: dict[str, Any]) -> CaptionSpec:
    return parse_model_spec(CaptionSpec, data)


def words(text: str) -> list[str]:
    return text.lower().replace(",", " ,").replace(".", " .").split()


class Vocabulary:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.index = {t: i for i, t in enumerate(tokens)}

    @classmethod
    def build(cls, captions: list[str]) -> Vocabulary:
        seen = sorted({w for c in captions for w in words(c)})
        return cls([PAD, BOS, EOS, UNK, *seen])

    def encode(self, text: str, length: int) -> list[int]:
        ids = [self.index[BOS]] + [self.index.get(w, self.index[UNK]) for w in words(text)]
        ids = ids[: length - 1] + [self.index[EOS]]
        return ids + [self.index[PAD]] * (length - len(ids))

    def decode(self, ids: list[int]) -> str:
        out = []
        for i in ids:
            token = self.tokens[i]
            if token == EOS:
                break
            if token not in (PAD, BOS):
                out.append(token)
        return " ".join(out)


class Captioner(nn.Module):
    def __init__(self, spec: CaptionSpec, image_encoder: ImageEncoder, vocab_size: int
                 ) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.memory_projection = nn.Linear(image_encoder.output_dim, spec.hidden)
        self.memory_positions = nn.Parameter(torch.randn(1, 64, spec.hidden) * 0.02)
        self.embed = nn.Embedding(vocab_size, spec.hidden)
        self.positions = nn.Parameter(torch.randn(1, spec.max_words + 2, spec.hidden) * 0.02)
        layer = nn.TransformerDecoderLayer(spec.hidden, spec.heads, 2 * spec.hidden,
                                           dropout=0.0, batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, spec.layers)
        self.norm = nn.LayerNorm(spec.hidden)
        self.out = nn.Linear(spec.hidden, vocab_size)

    def forward(self, pixels: dict[str, torch.Tensor], ids: torch.Tensor,
                pad: int) -> torch.Tensor:
        """Teacher-forced next-word cross-entropy of a batch of captions."""
        logits = self.logits(self.memory(pixels), ids[:, :-1])
        return nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]),
                                           ids[:, 1:].reshape(-1), ignore_index=pad)

    def memory(self, pixels: dict[str, torch.Tensor]) -> torch.Tensor:
        tokens = self.image_encoder(pixels).tokens
        return self.memory_projection(tokens) + self.memory_positions[:, : tokens.shape[1]]

    def logits(self, memory: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        length = ids.shape[1]
        causal = torch.triu(torch.ones(length, length, dtype=torch.bool,
                                       device=ids.device), 1)
        states = self.decoder(self.embed(ids) + self.positions[:, :length], memory,
                              tgt_mask=causal)
        return self.out(self.norm(states))


@torch.inference_mode()
def beam_search(model: Captioner, memory: torch.Tensor, vocab: Vocabulary, max_words: int,
                beam: int) -> list[list[int]]:
    """Best sequence per image by summed log-probability (``beam`` 1: greedy)."""
    bos, eos = vocab.index[BOS], vocab.index[EOS]
    results = []
    for row in range(memory.shape[0]):
        mem = memory[row: row + 1]
        beams: list[tuple[float, list[int]]] = [(0.0, [bos])]
        for _ in range(max_words + 1):
            candidates = []
            for score, ids in beams:
                if ids[-1] == eos:
                    candidates.append((score, ids))
                    continue
                step = model.logits(mem, torch.tensor([ids], device=mem.device))[0, -1]
                logp = step.float().log_softmax(-1)
                top = logp.topk(beam)
                candidates += [(score + float(v), ids + [int(i)])
                               for v, i in zip(top.values, top.indices, strict=True)]
            beams = sorted(candidates, key=lambda c: -c[0])[:beam]
            if all(ids[-1] == eos for _, ids in beams):
                break
        results.append(beams[0][1])
    return results


class CaptionModel(BasePredictor):
    """A trained captioner (the ``polymodal.load`` object of a vision.caption directory):
    image -> memory -> beam search (``beam``, the spec's by default; 1 is greedy)."""

    scenario = "vision.caption"

    def __init__(self, spec: CaptionSpec, model: Captioner, vocab: Vocabulary,
                 device: torch.device, manifest: dict[str, Any] | None = None,
                 precision: str = "fp32") -> None:
        super().__init__(model, device, precision, manifest)
        self.spec, self.model, self.vocab = spec, model, vocab
        self.beam = spec.beam

    def describe_inputs(self) -> list[dict[str, str]]:
        return [{"name": "image", "modality": "image", "encoder": self.spec.image.encoder}]

    def describe_outputs(self) -> dict[str, Any]:
        return {"task": "captioning", "target": "caption"}

    def validate(self, records: list[Record]) -> None:
        super().validate(records)
        if any(r.get("image") is None for r in records):
            raise DataError("each record needs \"image\"")

    def check_request(self, records: list[Record]) -> None:
        """The server's per-request checks (the image pixel budget)."""
        self.validate(records)
        self.model.image_encoder.processor.check_request([r.get("image") for r in records])

    def preprocess(self, records: list[Record]) -> dict[str, torch.Tensor]:
        return self.model.image_encoder.processor([r["image"] for r in records])

    def forward(self, batch: dict[str, torch.Tensor]) -> list[list[int]]:
        return beam_search(self.model, self.model.memory(batch), self.vocab,
                           self.spec.max_words, self.beam)

    def postprocess(self, outputs: list[list[int]], batch: Any, records: list[Record]
                    ) -> list[Record]:
        return [{"caption": self.vocab.decode(ids)} for ids in outputs]

    def evaluation_records(self, records: list[Record]) -> list[Record]:
        pairs = [r for r in records if r.get("image") is not None and r.get("caption")]
        if not pairs:
            raise DataError("no record has both \"image\" and \"caption\"")
        return pairs

    def export_graph(self, records: list[Record] | None) -> ExportGraph:
        """Normalised pixels [B, 3, S, S] and a caption prefix of word ids [B, L] ->
        next-word logits [B, L, V], L fixed at the longest caption (``prefix_length``:
        nn.MultiheadAttention traces its sequence length as a constant). The decoder is
        causal, so the logits at position t depend only on ``ids[:, :t + 1]``: a runtime
        pads the prefix to L and reads position t. The beam search over it and the
        vocabulary (in the sidecar) stay with the runtime."""
        size = self.model.image_encoder.processor.size
        generator = torch.Generator().manual_seed(0)
        vocabulary, length = len(self.vocab.tokens), self.spec.max_words + 1

        def batch(n: int) -> list[torch.Tensor]:
            return [torch.rand(n, 3, size, size, generator=generator) * 2 - 1,
                    torch.randint(0, vocabulary, (n, length), generator=generator)]

        return ExportGraph(module=_NextWord(self.model), inputs=["pixels", "ids"],
                           outputs=["logits"], trace=batch(1), check=batch(3),
                           fixed_axes={"pixels": [1, 2, 3], "ids": [1]},
                           sidecar={"task": "captioning", "vocabulary": self.vocab.tokens,
                                    "prefix_length": length,
                                    "max_words": self.spec.max_words})

    def score(self, records: list[Record], predictions: list[Record]) -> dict[str, Any]:
        from torchmetrics.text import BLEUScore

        predicted = [p["caption"] for p in predictions]
        truth = [" ".join(words(r["caption"])) for r in records]
        bleu = BLEUScore(n_gram=4)(predicted, [[t] for t in truth])
        exact = sum(p == t for p, t in zip(predicted, truth, strict=True)) / len(records)
        return {"bleu4": float(bleu), "exact_match": exact, "n": len(records),
                "examples": [{"truth": t, "predicted": p}
                             for t, p in list(zip(truth, predicted, strict=True))[:5]]}

    def evaluate(self, records: list[Record], batch_size: int = 64,
                 beam: int | None = None) -> dict[str, Any]:
        """BLEU-4 and exact match of the captions (beam search of width ``beam``)."""
        previous, self.beam = self.beam, beam or self.spec.beam
        try:
            return super().evaluate(records, batch_size)
        finally:
            self.beam = previous


class _NextWord(nn.Module):
    def __init__(self, model: Captioner) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        return self.model.logits(self.model.memory({"pixels": pixels}), ids)


def train_captioner(spec: CaptionSpec, train: list[Record], test: list[Record] | None,
                    out_dir: Path, device: str | None = None, progress: bool = True,
                    resume: bool = False) -> dict[str, Any]:
    """Fit the captioner with the core Trainer (the best epoch by validation loss when a
    validation share is held out, else the last) and write the model directory."""
    from polymodal.plugin import (
        BuildContext,
        ModuleSteps,
        build_encoder,
        fit_steps,
        get_hub,
        pick_device,
        seed_everything,
        split_validation,
        training_directory,
        write_run_files,
    )
    from polymodal_vision.retrieve import save_module

    if not train:
        raise DataError("no (image, caption) pairs to train on")
    torch_device = pick_device(device)
    seed_everything(spec.train.seed)
    fit, val = split_validation(train, spec.validation, spec.train.seed)
    image_encoder = cast("ImageEncoder", build_encoder(spec.image, BuildContext(
        device=torch_device, hub=get_hub(), values=[r["image"] for r in fit])))
    vocab = Vocabulary.build([r["caption"] for r in fit])
    model = Captioner(spec, image_encoder, len(vocab.tokens)).to(torch_device)
    processor = image_encoder.processor
    length = spec.max_words + 2
    pad = vocab.index[PAD]

    def collate(rows: list[Record]) -> Any:
        return (processor([r["image"] for r in rows]),
                torch.tensor([vocab.encode(r["caption"], length) for r in rows]))

    steps = ModuleSteps(model, collate=collate,
                        loss=lambda module, batch: module(batch[0], batch[1], pad),
                        identity={**spec.model_dump(mode="json", exclude={"train"}),
                                  "vocabulary": len(vocab.tokens)},
                        batch_size=lambda batch: len(batch[1]))
    with training_directory(out_dir, resume=resume,
                            keep_checkpoint=spec.train.keep_checkpoint) as work:
        result = fit_steps(spec.train, steps, fit, val, work, device=torch_device,
                           resume=resume, progress=progress)
        captioner = CaptionModel(spec, model, vocab, torch_device)
        metrics: dict[str, Any] = {"train_pairs": len(fit), "validation_pairs": len(val),
                                   "vocabulary": len(vocab.tokens)}
        if test:
            metrics["test"] = captioner.evaluate(test)
            metrics["test_greedy"] = {k: v for k, v in
                                      captioner.evaluate(test, beam=1).items()
                                      if k != "examples"}
        save_module(model, processor, work)
        (work / "vocabulary.json").write_text(json.dumps(vocab.tokens))
        write_run_files(work, kind="captioning", spec=spec.model_dump(mode="json"),
                        metrics=metrics, result=result, train_records=fit)
    return {"best_epoch": result.best_epoch, **metrics}


def load_captioner(directory: str | Path, device: str | None = None,
                   precision: str = "fp32") -> CaptionModel:
    from polymodal.plugin import (
        ArtifactError,
        BuildContext,
        build_encoder,
        get_hub,
        pick_device,
        read_manifest,
    )
    from polymodal_vision.retrieve import load_module_files, load_weights

    directory = Path(directory)
    manifest = read_manifest(directory)
    spec = parse_caption_spec(manifest["spec"])
    torch_device = pick_device(device)
    image_state, state = load_module_files(directory, "captioning")
    try:
        vocab = Vocabulary(json.loads((directory / "vocabulary.json").read_text()))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{directory}: unreadable vocabulary: {exc}") from None
    image_encoder = cast("ImageEncoder", build_encoder(spec.image, BuildContext(
        device=torch_device, hub=get_hub(), processor_state=image_state)))
    model = Captioner(spec, image_encoder, len(vocab.tokens))
    load_weights(model, state, directory)
    return CaptionModel(spec, model.to(torch_device), vocab, torch_device, manifest,
                        precision)
