"""``vision.retrieve``: CLIP-style image-text retrieval. An image encoder and the shared
``minilm`` text tower (frozen: its caption vectors are computed once; or fine-tuned), each
projected into one normalised space, trained with the symmetric InfoNCE loss and a learned
temperature. Recall@k in both directions; an image index queried with text.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from polymodal.plugin import BasePredictor, DataError, ExportGraph, Record, SpecError

if TYPE_CHECKING:
    from polymodal.plugin import DistContext
    from polymodal_vision.encoders import ImageEncoder
from polymodal.plugin import InputSpec, TrainSpec, parse_model_spec

WEIGHTS = "model.safetensors"


class RetrieveSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "scenes-retrieval"
    scenario: str = "vision.retrieve"
    image: InputSpec = InputSpec(name="image", modality="image", encoder="small-cnn",
                                 options={"image_size": 64, "width": 32, "output_dim": 256})
    text: InputSpec = InputSpec(name="caption", modality="text", encoder="minilm",
                                frozen=True, options={"max_length": 32})
    embed_dim: int = 128
    # The share of training pairs held out to pick the best epoch (by recall@5). Off by
    # default: training on all pairs to the last epoch measured better on the embedded
    # scenes (docs/benchmarks.md, "One lifecycle").
    validation: float = Field(default=0.0, ge=0, lt=1)
    train: TrainSpec = TrainSpec(epochs=25, batch_size=128, lr=2.0e-3, warmup=0.05,
                                 monitor="recall@5")


def parse_retrieve_spec(data: dict[str, Any]) -> RetrieveSpec:
    return parse_model_spec(RetrieveSpec, data)


class DualEncoder(nn.Module):
    def __init__(self, spec: RetrieveSpec, image_encoder: ImageEncoder, text_dim: int) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        hidden = spec.embed_dim * 2
        self.image_projection = nn.Sequential(
            nn.Linear(image_encoder.output_dim, hidden), nn.GELU(),
            nn.Linear(hidden, spec.embed_dim))
        self.text_projection = nn.Sequential(nn.Linear(text_dim, hidden), nn.GELU(),
                                             nn.Linear(hidden, spec.embed_dim))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def embed_images(self, pixels: dict[str, torch.Tensor]) -> torch.Tensor:
        pooled = self.image_encoder(pixels).pooled
        return nn.functional.normalize(self.image_projection(pooled).float(), dim=-1)

    def embed_text_vectors(self, vectors: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.text_projection(vectors).float(), dim=-1)

    def forward(self, pixels: dict[str, torch.Tensor], text_vectors: torch.Tensor
                ) -> torch.Tensor:
        """The contrastive loss of a batch of (image, caption vector) pairs."""
        return self.loss(self.embed_images(pixels), self.embed_text_vectors(text_vectors))

    def loss(self, images: torch.Tensor, texts: torch.Tensor) -> torch.Tensor:
        """Symmetric InfoNCE with in-batch negatives: under torch.distributed the negatives
        are the whole global batch (every rank's pairs, gathered), as in one process."""
        from polymodal.plugin import gather_with_grad

        images, texts = gather_with_grad(images), gather_with_grad(texts)
        scale = self.logit_scale.exp().clamp(max=100.0)
        logits = scale * images @ texts.T
        target = torch.arange(len(images), device=images.device)
        return 0.5 * (nn.functional.cross_entropy(logits, target)
                      + nn.functional.cross_entropy(logits.T, target))


def _image_encoder(spec: RetrieveSpec, image_state: dict[str, Any] | None,
                   device: torch.device) -> ImageEncoder:
    """The image tower (the text tower is frozen: its caption vectors are computed once)."""
    from polymodal.plugin import BuildContext, build_encoder, get_hub

    if not spec.text.frozen:
        raise SpecError("spec text.frozen: vision.retrieve trains with a frozen text tower "
                        "(its caption vectors are computed once); set frozen: true")
    context = BuildContext(device=device, hub=get_hub(), processor_state=image_state)
    return cast("ImageEncoder", build_encoder(spec.image, context).to(device))


def text_vectors(spec: RetrieveSpec, texts: list[str], device: str | None = None
                 ) -> torch.Tensor:
    """The frozen text tower's vectors (shared through the component hub)."""
    from polymodal.plugin import embed_values

    if any(not isinstance(t, str) or not t.strip() for t in texts):
        raise DataError("a caption is empty or not text")
    return embed_values(texts, encoder=spec.text.encoder, modality="text",
                        options=spec.text.options, source=spec.text.source, device=device)


class Retriever(BasePredictor):
    """A trained retrieval model: embeds images and texts into the shared space (the
    ``polymodal.load`` object of a vision.retrieve model directory)."""

    scenario = "vision.retrieve"

    def __init__(self, spec: RetrieveSpec, model: DualEncoder, device: torch.device,
                 manifest: dict[str, Any] | None = None, precision: str = "fp32") -> None:
        super().__init__(model, device, precision, manifest)
        self.spec, self.model = spec, model

    def describe_inputs(self) -> list[dict[str, str]]:
        return [{"name": "image", "modality": "image", "encoder": self.spec.image.encoder},
                {"name": "text", "modality": "text", "encoder": self.spec.text.encoder}]

    def describe_outputs(self) -> dict[str, Any]:
        return {"task": "embedding", "target": "embedding", "dim": self.spec.embed_dim}

    def validate(self, records: list[Record]) -> None:
        super().validate(records)
        if any(r.get("image") is None and r.get("text") is None for r in records):
            raise DataError("each record needs \"image\" or \"text\"")

    def check_request(self, records: list[Record]) -> None:
        """The server's per-request checks (the image pixel budget)."""
        self.validate(records)
        self.model.image_encoder.processor.check_request(
            [r.get("image") for r in records])

    def batches(self, records: list[Record], batch_size: int) -> list[list[int]]:
        """Images and texts in batches of their own kind (an image wins in a record with
        both)."""
        images = [i for i, r in enumerate(records) if r.get("image") is not None]
        texts = [i for i, r in enumerate(records) if r.get("image") is None]
        return [group[i:i + batch_size] for group in (images, texts)
                for i in range(0, len(group), batch_size)]

    def preprocess(self, records: list[Record]) -> dict[str, Any]:
        if records[0].get("image") is not None:
            return {"pixels": self.model.image_encoder.processor([r["image"] for r in records])}
        return {"vectors": text_vectors(self.spec, [r["text"] for r in records],
                                        str(self.device))}

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        if "pixels" in batch:
            return self.model.embed_images(batch["pixels"])
        return self.model.embed_text_vectors(batch["vectors"])

    def postprocess(self, outputs: torch.Tensor, batch: Any, records: list[Record]
                    ) -> list[Record]:
        return [{"embedding": row} for row in outputs.float().cpu()]

    def predict(self, records: list[Record], batch_size: int = 128) -> list[Record]:
        """``{"image": ...}`` or ``{"text": ...}`` -> ``{"embedding": [...]}``."""
        return [{"embedding": [round(float(x), 6) for x in r["embedding"]]}
                for r in super().predict(records, batch_size)]

    def export_graph(self, records: list[Record] | None) -> ExportGraph:
        """Normalised pixels [B, 3, S, S] and the frozen text tower's caption vectors
        [B, D] -> both embeddings in the shared space (the text vectors come from the
        spec's text encoder, the runtime's to compute)."""
        images = [r["image"] for r in records or [] if r.get("image") is not None]
        size = self.model.image_encoder.processor.size
        generator = torch.Generator().manual_seed(0)

        def pixels(n: int) -> torch.Tensor:
            if len(images) >= n:
                return self.model.image_encoder.processor(images[:n])["pixels"]
            return torch.rand(n, 3, size, size, generator=generator) * 2 - 1

        first = self.model.text_projection[0]
        assert isinstance(first, nn.Linear)
        width = first.in_features
        texts = torch.randn(3, width, generator=generator)
        return ExportGraph(module=_TwoTowers(self.model), inputs=["pixels", "text_vectors"],
                           outputs=["image_embedding", "text_embedding"],
                           trace=[pixels(1), texts[:1]], check=[pixels(3), texts],
                           fixed_axes={"pixels": [1, 2, 3]},
                           sidecar={"task": "embedding", "text_encoder":
                                    self.spec.text.model_dump(mode="json")})

    def embed_images(self, images: list[Any], batch_size: int = 128) -> torch.Tensor:
        return self._embed([{"image": image} for image in images], batch_size)

    def embed_texts(self, texts: list[str], batch_size: int = 128) -> torch.Tensor:
        return self._embed([{"text": text} for text in texts], batch_size)

    def _embed(self, records: list[Record], batch_size: int) -> torch.Tensor:
        if not records:
            return torch.zeros(0, self.spec.embed_dim)
        return torch.stack([r["embedding"] for r in self.run(records, batch_size)])

    def evaluation_records(self, records: list[Record]) -> list[Record]:
        pairs = [r for r in records if r.get("image") is not None and r.get("caption")]
        if not pairs:
            raise DataError("no record has both \"image\" and \"caption\"")
        return pairs

    def evaluate(self, records: list[Record], batch_size: int = 128) -> dict[str, Any]:
        """Recall@1/5/10 text->image and image->text within ``records`` (image, caption)."""
        pairs = self.evaluation_records(records)
        return recall_at_k(self.embed_images([r["image"] for r in pairs], batch_size),
                           self.embed_texts([r["caption"] for r in pairs], batch_size))


class _TwoTowers(nn.Module):
    def __init__(self, model: DualEncoder) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor, text_vectors: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        return (self.model.embed_images({"pixels": pixels}),
                self.model.embed_text_vectors(text_vectors))


def recall_at_k(images: torch.Tensor, texts: torch.Tensor,
                ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, Any]:
    """Pair i is image i with text i; recall@k: the share of queries whose partner ranks in
    the top k among all candidates of the other kind."""
    similarity = texts @ images.T
    truth = torch.arange(len(images)).unsqueeze(1)
    metrics: dict[str, Any] = {"n": len(images)}
    for name, scores in (("text_to_image", similarity), ("image_to_text", similarity.T)):
        rank = (scores > scores.gather(1, truth)).sum(dim=1)  # 0 = best
        for k in ks:
            metrics[f"{name}_recall@{k}"] = float((rank < k).float().mean())
    metrics["recall@1"] = metrics["text_to_image_recall@1"]
    metrics["recall@5"] = metrics["text_to_image_recall@5"]
    metrics["recall@10"] = metrics["text_to_image_recall@10"]
    return metrics


def train_retrieval(spec: RetrieveSpec, train: list[Record], test: list[Record] | None,
                    out_dir: Path, device: str | None = None, progress: bool = True,
                    resume: bool = False, dist: DistContext | None = None) -> dict[str, Any]:
    """Fit the dual encoder with the core Trainer (validation recall@5 picks the best
    epoch) and write the model directory. Under torchrun (``dist``) every rank trains on
    its share of each global batch, the negatives gathered from all ranks; rank 0 alone
    evaluates and writes (the others return no metrics)."""
    from polymodal.plugin import (
        SINGLE_PROCESS,
        ModuleSteps,
        barrier,
        distributed_device,
        fit_steps,
        leave_process_group,
        seed_everything,
        split_validation,
        training_directory,
        write_run_files,
    )

    if len(train) < 2:
        raise DataError("retrieval training needs at least two (image, caption) pairs")
    dist = dist or SINGLE_PROCESS
    torch_device = distributed_device(dist, device)
    seed_everything(spec.train.seed)
    fit, val = split_validation(train, spec.validation, spec.train.seed)
    image_encoder = _image_encoder(spec, None, torch_device)
    image_encoder.processor.fit([r["image"] for r in fit])  # bad files fail here
    captions = sorted({r["caption"] for r in fit})
    vectors = text_vectors(spec, captions, str(torch_device)).to(torch_device)
    caption_index = {c: i for i, c in enumerate(captions)}
    model = DualEncoder(spec, image_encoder, vectors.shape[1]).to(torch_device)
    processor = image_encoder.processor
    retriever = Retriever(spec, model, torch_device)

    def collate(rows: list[Record]) -> Any:
        return (processor([r["image"] for r in rows]),
                torch.tensor([caption_index.get(r["caption"], -1) for r in rows]))

    def loss(module: nn.Module, batch: Any) -> torch.Tensor:
        pixels, ids = batch
        return module(pixels, vectors[ids])

    identity = spec.model_dump(mode="json", exclude={"train"})
    steps = ModuleSteps(model, collate=collate, loss=loss, identity=identity,
                        batch_size=lambda batch: len(batch[1]),
                        evaluate=retriever.evaluate, monitor=spec.train.monitor or "loss",
                        minimized=("loss",))
    if val:  # validation captions need vectors too: the text tower is frozen, no leak
        extra = sorted({r["caption"] for r in val} - set(caption_index))
        if extra:
            extra_vectors = text_vectors(spec, extra, str(torch_device)).to(torch_device)
            vectors = torch.cat([vectors, extra_vectors])
            caption_index.update({c: len(caption_index) + i for i, c in enumerate(extra)})
    with training_directory(out_dir, resume=resume, is_main=dist.is_main,
                            keep_checkpoint=spec.train.keep_checkpoint) as work:
        result = fit_steps(spec.train, steps, fit, val, work, device=torch_device,
                           resume=resume, progress=progress, dist=dist)
        barrier()
        leave_process_group()
        if not dist.is_main:
            return {}
        metrics: dict[str, Any] = {"train_pairs": len(fit), "validation_pairs": len(val)}
        if val:
            metrics["validation"] = retriever.evaluate(val)
        if test:
            metrics["test"] = retriever.evaluate(test)
        save_module(model, processor, work)
        write_run_files(work, kind="retrieval", spec=spec.model_dump(mode="json"),
                        metrics=metrics, result=result, train_records=fit)
    return {"best_epoch": result.best_epoch, **metrics}


def save_module(module: nn.Module, image_processor: Any, work: Path) -> None:
    """Weights (safetensors) and the image processor's state of a vision model."""
    from safetensors.torch import save_file

    save_file({k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()},
              str(work / WEIGHTS))
    (work / "processors").mkdir(exist_ok=True)
    (work / "processors" / "image.json").write_text(json.dumps(image_processor.state()))


def load_module_files(directory: Path, what: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(image processor state, weights) of a directory ``save_module`` wrote."""
    from safetensors.torch import load_file

    from polymodal.plugin import ArtifactError

    try:
        image_state = json.loads((directory / "processors" / "image.json").read_text())
        return image_state, load_file(str(directory / WEIGHTS))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{directory}: unreadable {what} model files: {exc}") from None


def load_weights(module: nn.Module, state: dict[str, Any], directory: Path) -> None:
    """``state`` into ``module``, or one line saying the two do not match."""
    from polymodal.plugin import ArtifactError

    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = first[1].strip() if len(first) > 1 else first[0] if first else ""
        raise ArtifactError(f"{directory}: the saved weights do not fit this version's "
                            f"network (written by another polymodal version?): "
                            f"{detail[:200]}") from None


def load_retriever(directory: str | Path, device: str | None = None,
                   precision: str = "fp32") -> Retriever:
    from polymodal.plugin import pick_device, read_manifest

    directory = Path(directory)
    manifest = read_manifest(directory)
    spec = parse_retrieve_spec(manifest["spec"])
    torch_device = pick_device(device)
    image_state, state = load_module_files(directory, "retrieval")
    image_encoder = _image_encoder(spec, image_state, torch_device)
    text_dim = state["text_projection.0.weight"].shape[1]
    model = DualEncoder(spec, image_encoder, text_dim)
    load_weights(model, state, directory)
    return Retriever(spec, model.to(torch_device), torch_device, manifest, precision)
