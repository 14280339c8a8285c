"""``vision.detect_faces`` on the core lifecycle: a pretrained face detector with nothing to
train. Its "fit" writes the model directory (MTCNN's weights, read once from the
facenet-pytorch wheel, as safetensors) and scores it on the embedded test images beside
OpenCV's Haar cascade; the model is in :mod:`polymodal_vision.face_detect`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from polymodal.plugin import DemoData, FitRequest, Record, Scenario

# scikit-image's astronaut (Eileen Collins, NASA, public domain): her face from the brows'
# top to the chin and ear to ear, read off the picture by eye on a 50 px grid.
ASTRONAUT_FACE = [176.0, 70.0, 96.0, 95.0]


class FaceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "faces-mtcnn"
    scenario: str = "vision.detect_faces"
    # "facenet-pytorch": the MTCNN weights in that wheel; or a directory holding its
    # pnet.pt, rnet.pt and onet.pt.
    weights: str = "facenet-pytorch"
    # The smallest face searched for, in pixels, and MTCNN's three stage thresholds and
    # image pyramid factor (facenet-pytorch's defaults).
    min_face_size: int = Field(default=20, ge=12)
    thresholds: list[float] = Field(default=[0.6, 0.7, 0.7], min_length=3, max_length=3)
    factor: float = Field(default=0.709, gt=0.1, lt=1)
    # Faces a prediction shows.
    score_threshold: float = Field(default=0.9, ge=0, le=1)


def face_demo() -> DemoData:
    """Test images: the astronaut (one face, its box checked by eye) and scikit-image's
    lfw_subset (100 face crops, 100 other crops, 25 px). Nothing to train on."""
    from polymodal.plugin import cache_dir, cached_records
    from polymodal_vision.datasets import faces

    def build(directory: Any) -> list[Record]:
        from PIL import Image
        from skimage.data import astronaut

        path = directory / "astronaut.png"
        Image.fromarray(astronaut()).save(path)
        return [{"image": str(path.resolve()), "faces": 1, "boxes": [ASTRONAUT_FACE],
                 "labels": ["face"]}]

    crops = [{"image": r["image"], "faces": int(r["label"] == "face")}
             for r in faces(size=25)]
    test = cached_records(cache_dir("astronaut-v1"), build) + crops
    return DemoData(train=[], test=test, examples=[{"image": test[0]["image"]}],
                    source="scikit-image astronaut and lfw_subset")


def fit_faces(request: FitRequest) -> dict[str, Any]:
    from polymodal_vision.face_detect import write_face_detector

    return write_face_detector(request)


def load_face_model(directory: Any, device: str | None = None,
                    precision: str = "fp32") -> Any:
    from polymodal_vision.face_detect import load_face_detector

    return load_face_detector(directory, device=device, precision=precision)


def faces_scenario() -> Scenario:
    return Scenario(name="vision.detect_faces", description="image -> face boxes: pretrained "
                    "MTCNN (facenet-pytorch), nothing to train; OpenCV's Haar cascade beside",
                    default_spec=FaceSpec().model_dump(mode="json"), spec_model=FaceSpec,
                    load_demo=face_demo, fit=fit_faces, load_model=load_face_model,
                    quick_records=400, primary_input="image")
