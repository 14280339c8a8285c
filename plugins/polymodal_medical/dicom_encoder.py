"""``dicom-image``: a DICOM field through any registered image encoder.

The processor reads each DICOM value (a path or the bytes of an upload) with pydicom,
converts it to modality values (HU for CT), applies a window (a preset, or the file's own)
and hands the 8-bit greyscale image to the image encoder's own processor; the network is
that image encoder (``small-cnn`` by default, any registered one by ``backbone``). So DICOM
needs no second CNN, and the windowing happens in the collate step, never in forward().
A multi-frame file contributes its middle frame.

Spacing-aware (``spacing_mm``): the image is first resampled from the file's PixelSpacing
to that many mm per pixel, and (``extent_mm``) cropped or padded about its centre to that
square field of view, padding with the image's lowest value (air in CT); so images from
scanners with different pixel sizes reach the backbone at one physical scale.
"""

from __future__ import annotations

from typing import Any

import torch

from polymodal.plugin import (
    BuildContext,
    DataError,
    Encoder,
    EncoderOutput,
    InputSpec,
    Processor,
    SpecError,
    build_encoder,
    options_of,
)
from polymodal_medical.options import DICOM_IMAGE


def _image_of(value: Any, window: str | None, spacing_mm: float | None = None,
              extent_mm: float | None = None) -> Any:
    """A DICOM path or bytes -> a windowed greyscale PIL image (RGB, for the backbone),
    resampled to ``spacing_mm`` and cropped / padded to ``extent_mm`` when given."""
    import numpy as np
    from PIL import Image

    from polymodal_medical.dicom import (
        apply_window,
        crop_or_pad,
        is_monochrome1,
        modality_values,
        pixel_spacing,
        read_dataset,
        resample_to_spacing,
        window_of,
    )

    if not isinstance(value, bytes | bytearray | str):
        raise DataError(f"expected a DICOM path or bytes, got {type(value).__name__}")
    dataset = read_dataset(bytes(value) if isinstance(value, bytearray) else value)
    where = "the upload" if isinstance(value, bytes | bytearray) else value
    volume = modality_values(dataset, where)
    frame = volume[len(volume) // 2]
    if spacing_mm is not None:
        spacing = pixel_spacing(dataset)
        if spacing is None:
            raise DataError(f"{where}: no PixelSpacing, which dicom-image's spacing_mm needs")
        frame = resample_to_spacing(frame, spacing, spacing_mm)
        if extent_mm is not None:
            frame = crop_or_pad(frame, max(1, round(extent_mm / spacing_mm)),
                                float(frame.min()))
    shown = apply_window(frame, window_of(dataset, frame, window),
                         invert=is_monochrome1(dataset))
    grey = np.round(shown * 255).astype(np.uint8)
    return Image.fromarray(grey, mode="L").convert("RGB")


class DicomProcessor(Processor):
    """DICOM values -> the backbone processor's tensors (windowed images)."""

    def __init__(self, inner: Processor, window: str | None, spacing_mm: float | None = None,
                 extent_mm: float | None = None) -> None:
        self.inner, self.window = inner, window
        self.spacing_mm, self.extent_mm = spacing_mm, extent_mm

    def _images(self, values: list[Any]) -> list[Any]:
        return [None if v is None else _image_of(v, self.window, self.spacing_mm,
                                                 self.extent_mm) for v in values]

    def fit(self, values: list[Any]) -> None:
        self.inner.fit(self._images(values))  # a bad file fails before training starts

    def __call__(self, values: list[Any]) -> dict[str, torch.Tensor]:
        return self.inner(self._images(values))

    def state(self) -> dict[str, Any]:
        return {"window": self.window, "spacing_mm": self.spacing_mm,
                "extent_mm": self.extent_mm, "inner": self.inner.state()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.window = state["window"]
        self.spacing_mm, self.extent_mm = state.get("spacing_mm"), state.get("extent_mm")
        self.inner.load_state(state["inner"])


class DicomImageEncoder(Encoder):
    """The backbone image encoder over windowed DICOM images."""

    def __init__(self, spec: InputSpec, context: BuildContext) -> None:
        super().__init__()
        options = options_of(spec, DICOM_IMAGE)
        backbone = InputSpec(name=spec.name, modality="image", encoder=options["backbone"],
                             options=options["backbone_options"])
        inner_state = (context.processor_state or {}).get("inner")
        self.backbone = build_encoder(backbone, BuildContext(
            processor_state=inner_state, processor_dir=context.processor_dir,
            device=context.device, hub=context.hub))
        spacing, extent = options["spacing_mm"], options["extent_mm"]
        for name, number in (("spacing_mm", spacing), ("extent_mm", extent)):
            if number is not None and not (isinstance(number, int | float) and number > 0):
                raise SpecError(f"spec: inputs[{spec.name}].options.{name}: a number of mm "
                                "> 0")
        if extent is not None and spacing is None:
            raise SpecError(f"spec: inputs[{spec.name}].options.extent_mm needs spacing_mm")
        self.processor = DicomProcessor(self.backbone.processor, options["window"],
                                        None if spacing is None else float(spacing),
                                        None if extent is None else float(extent))
        if context.processor_state is not None:
            self.processor.load_state(context.processor_state)
        elif context.values is not None:
            self.processor.fit(context.values)
        self.output_dim = self.backbone.output_dim

    def forward(self, batch_field: dict[str, torch.Tensor]) -> EncoderOutput:
        output: EncoderOutput = self.backbone(batch_field)
        return output
