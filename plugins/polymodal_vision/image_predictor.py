"""What the predictors over one image per record share (detection, segmentation, faces):
the input description, the refusal of a record without an image, the server's per-request
pixel budget, and the images of a batch opened once with their sizes."""

from __future__ import annotations

from typing import Any

from polymodal.plugin import BasePredictor, DataError, Record


class ImagePredictor(BasePredictor):
    """A predictor whose records each hold one ``image`` (a path, or an upload's bytes)."""

    encoder_name = "image encoder"

    def describe_inputs(self) -> list[dict[str, str]]:
        return [{"name": "image", "modality": "image", "encoder": self.encoder_name}]

    def validate(self, records: list[Record]) -> None:
        super().validate(records)
        for index, record in enumerate(records):
            if record.get("image") is None:
                raise DataError(f"record {index + 1}: needs \"image\"")

    def check_request(self, records: list[Record]) -> None:
        """The server's per-request checks: the images' pixels together, from their
        headers, before anything is decoded."""
        from polymodal_vision.images import check_pixel_budget

        self.validate(records)
        check_pixel_budget([r.get("image") for r in records])

    @staticmethod
    def open_images(records: list[Record]) -> list[Any]:
        from polymodal_vision.images import open_image

        return [open_image(r["image"]) for r in records]
