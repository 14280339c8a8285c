"""``vision.retrieve``: CLIP-style image-text retrieval. An image encoder and the shared
``minilm`` text tower (frozen: its caption vectors are computed once; or fine-tuned), each
projected into one normalised space, trained with the symmetric InfoNCE loss and a learned
temperature. Recall@k in both directions; an image index queried with text.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from polymodal.errors import DataError, SpecError
from polymodal.loop import LoopTrain, parse_model_spec
from polymodal.records import Record
from polymodal.spec import InputSpec

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
    train: LoopTrain = LoopTrain(epochs=25, batch_size=128)


def parse_retrieve_spec(data: dict[str, Any]) -> RetrieveSpec:
    return parse_model_spec(RetrieveSpec, data)


class DualEncoder(nn.Module):
    def __init__(self, spec: RetrieveSpec, image_encoder: nn.Module, text_dim: int) -> None:
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

    def loss(self, images: torch.Tensor, texts: torch.Tensor) -> torch.Tensor:
        scale = self.logit_scale.exp().clamp(max=100.0)
        logits = scale * images @ texts.T
        target = torch.arange(len(images), device=images.device)
        return 0.5 * (nn.functional.cross_entropy(logits, target)
                      + nn.functional.cross_entropy(logits.T, target))


def _image_encoder(spec: RetrieveSpec, image_state: dict[str, Any] | None,
                   device: torch.device) -> nn.Module:
    """The image tower (the text tower is frozen: its caption vectors are computed once)."""
    from polymodal.encoders.base import BuildContext
    from polymodal.hub import get_hub
    from polymodal.model import build_encoder

    if not spec.text.frozen:
        raise SpecError("spec text.frozen: vision.retrieve trains with a frozen text tower "
                        "(its caption vectors are computed once); set frozen: true")
    context = BuildContext(device=device, hub=get_hub(), processor_state=image_state)
    image_encoder = build_encoder(spec.image, context).to(device)
    return image_encoder


def text_vectors(spec: RetrieveSpec, texts: list[str], device: str | None = None
                 ) -> torch.Tensor:
    """The frozen text tower's vectors (shared through the component hub)."""
    from polymodal.embedding import embed_values

    if any(not isinstance(t, str) or not t.strip() for t in texts):
        raise DataError("a caption is empty or not text")
    return embed_values(texts, encoder=spec.text.encoder, modality="text",
                        options=spec.text.options, source=spec.text.source, device=device)


class Retriever:
    """A trained retrieval model: embeds images and texts into the shared space (the
    ``polymodal.load`` object of a vision.retrieve model directory)."""

    def __init__(self, spec: RetrieveSpec, model: DualEncoder, device: torch.device,
                 manifest: dict[str, Any] | None = None) -> None:
        self.spec, self.model, self.device = spec, model, device
        self.manifest = manifest or {}

    scenario = "vision.retrieve"

    def describe_inputs(self) -> list[dict[str, str]]:
        return [{"name": "image", "modality": "image", "encoder": self.spec.image.encoder},
                {"name": "text", "modality": "text", "encoder": self.spec.text.encoder}]

    def describe_outputs(self) -> dict[str, Any]:
        return {"task": "embedding", "target": "embedding", "dim": self.spec.embed_dim}

    @torch.inference_mode()
    def embed_images(self, images: list[Any], batch_size: int = 128) -> torch.Tensor:
        processor = self.model.image_encoder.processor
        chunks = []
        for start in range(0, len(images), batch_size):
            pixels = processor(images[start:start + batch_size])
            chunks.append(self.model.embed_images(
                {k: v.to(self.device) for k, v in pixels.items()}).cpu())
        return torch.cat(chunks) if chunks else torch.zeros(0, self.spec.embed_dim)

    @torch.inference_mode()
    def embed_texts(self, texts: list[str]) -> torch.Tensor:
        vectors = text_vectors(self.spec, texts, str(self.device)).to(self.device)
        return self.model.embed_text_vectors(vectors).cpu()

    def check_request(self, records: list[Record]) -> None:
        """The server's per-request checks (the image pixel budget)."""
        self.model.image_encoder.processor.check_request(
            [r.get("image") for r in records if isinstance(r, dict)])

    def predict(self, records: list[Record], batch_size: int = 128) -> list[Record]:
        """``{"image": ...}`` or ``{"text": ...}`` -> ``{"embedding": [...]}``."""
        results: list[Record | None] = [None] * len(records)
        images = [(i, r["image"]) for i, r in enumerate(records) if r.get("image") is not None]
        texts = [(i, r["text"]) for i, r in enumerate(records)
                 if r.get("image") is None and r.get("text") is not None]
        if len(images) + len(texts) != len(records):
            raise DataError("each record needs \"image\" or \"text\"")
        for group, embed in ((images, self.embed_images), (texts, self.embed_texts)):
            if group:
                vectors = embed([v for _, v in group])
                for (i, _), vector in zip(group, vectors, strict=True):
                    results[i] = {"embedding": [round(float(x), 6) for x in vector]}
        return [r for r in results if r is not None]

    def evaluate(self, records: list[Record], batch_size: int = 128) -> dict[str, Any]:
        """Recall@1/5/10 text->image and image->text within ``records`` (image, caption)."""
        pairs = [r for r in records if r.get("image") is not None and r.get("caption")]
        if not pairs:
            raise DataError("no record has both \"image\" and \"caption\"")
        images = self.embed_images([r["image"] for r in pairs], batch_size)
        texts = self.embed_texts([r["caption"] for r in pairs])
        return recall_at_k(images, texts)


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
                    out_dir: Path, device: str | None = None,
                    log: Any = None) -> dict[str, Any]:
    from polymodal.data.loader import make_loader
    from polymodal.device import pick_device
    from polymodal.loop import fit_loop
    from polymodal.trainer import seed_everything

    if len(train) < 2:
        raise DataError("retrieval training needs at least two (image, caption) pairs")
    torch_device = pick_device(device)
    seed_everything(spec.train.seed)
    image_encoder = _image_encoder(spec, None, torch_device)
    image_encoder.processor.fit([r["image"] for r in train])  # bad files fail here
    captions = sorted({r["caption"] for r in train})
    vectors = text_vectors(spec, captions, device)
    caption_index = {c: i for i, c in enumerate(captions)}
    model = DualEncoder(spec, image_encoder, vectors.shape[1]).to(torch_device)
    vectors = vectors.to(torch_device)
    processor = image_encoder.processor

    def collate(rows: list[Record]) -> Any:
        return (processor([r["image"] for r in rows]),
                torch.tensor([caption_index[r["caption"]] for r in rows]))

    loader_for = {}

    def batches(epoch: int) -> Any:
        loader = loader_for.setdefault("train", make_loader(
            train, collate, batch_size=spec.train.batch_size, shuffle=True,
            seed=spec.train.seed))
        loader.batch_sampler.set_epoch(epoch)
        for pixels, ids in loader:
            yield {k: v.to(torch_device) for k, v in pixels.items()}, ids.to(torch_device)

    def loss_fn(batch: Any) -> torch.Tensor:
        pixels, ids = batch
        return model.loss(model.embed_images(pixels), model.embed_text_vectors(vectors[ids]))

    steps = math.ceil(len(train) / spec.train.batch_size)
    history = fit_loop(model, batches, loss_fn, epochs=spec.train.epochs, lr=spec.train.lr,
                       steps_per_epoch=steps, warmup=spec.train.warmup, device=torch_device,
                       log=log)
    retriever = Retriever(spec, model, torch_device)
    metrics: dict[str, Any] = {"history": history, "train_pairs": len(train)}
    if test:
        metrics["test"] = retriever.evaluate(test)
    save_retriever(retriever, Path(out_dir), metrics)
    return metrics


def save_retriever(retriever: Retriever, directory: Path, metrics: dict[str, Any]) -> None:
    from polymodal.artifacts import building_directory, write_manifest

    with building_directory(directory) as work:
        save_module(retriever.model, retriever.model.image_encoder.processor, work)
        write_manifest(work, "retrieval", retriever.spec.model_dump(mode="json"), metrics)


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

    from polymodal.errors import ArtifactError

    try:
        image_state = json.loads((directory / "processors" / "image.json").read_text())
        return image_state, load_file(str(directory / WEIGHTS))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{directory}: unreadable {what} model files: {exc}") from None


def load_retriever(directory: str | Path, device: str | None = None,
                   precision: str = "fp32") -> Retriever:
    from polymodal.artifacts import read_manifest
    from polymodal.device import pick_device

    directory = Path(directory)
    manifest = read_manifest(directory)
    spec = parse_retrieve_spec(manifest["spec"])
    torch_device = pick_device(device)
    image_state, state = load_module_files(directory, "retrieval")
    image_encoder = _image_encoder(spec, image_state, torch_device)
    text_dim = state["text_projection.0.weight"].shape[1]
    model = DualEncoder(spec, image_encoder, text_dim)
    model.load_state_dict(state)
    return Retriever(spec, model.to(torch_device).eval(), torch_device, manifest)
