"""``vision.detect_faces``: MTCNN (Zhang et al. 2016) as facenet-pytorch implements it: the
three cascaded networks P-Net, R-Net and O-Net over an image pyramid. Pretrained, nothing to
train. The weights are read once from the facenet-pytorch wheel (the state dicts it ships,
through torch's weights-only loader: that is its format) and kept in the model directory as
safetensors, so a model directory loads without unpickling anything. OpenCV's Haar cascade
is the baseline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from polymodal.plugin import DataError, ExportGraph, FitRequest, Record, SpecError
from polymodal_vision.face_detection_scenario import FaceSpec
from polymodal_vision.image_predictor import ImagePredictor

WEIGHTS = "model.safetensors"
STAGES = ("pnet", "rnet", "onet")
HAAR_MIN_SIDE = 100
INSTALL = "pip install --no-deps facenet-pytorch==2.6.0"


def _networks() -> nn.ModuleDict:
    try:
        from facenet_pytorch.models.mtcnn import ONet, PNet, RNet
    except ImportError:
        raise SpecError(f"vision.detect_faces needs facenet-pytorch: {INSTALL} (--no-deps: "
                        "its metadata pins an older torch)") from None
    return nn.ModuleDict({"pnet": PNet(pretrained=False), "rnet": RNet(pretrained=False),
                          "onet": ONet(pretrained=False)})


def wheel_weights(source: str) -> dict[str, torch.Tensor]:
    """The three networks' state dicts, prefixed by stage: from the facenet-pytorch wheel,
    or from a directory holding its ``pnet.pt``, ``rnet.pt`` and ``onet.pt``."""
    if source == "facenet-pytorch":
        try:
            import facenet_pytorch
        except ImportError:
            raise SpecError(f"vision.detect_faces needs facenet-pytorch: {INSTALL}") from None
        folder = Path(facenet_pytorch.__file__).parent / "data"
    else:
        folder = Path(source)
    state: dict[str, torch.Tensor] = {}
    for stage in STAGES:
        path = folder / f"{stage}.pt"
        if not path.is_file():
            raise SpecError(f"weights: {path} not found (MTCNN needs pnet.pt, rnet.pt and "
                            "onet.pt)")
        try:
            part = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several types for a bad file
            raise SpecError(f"weights: {path} is not a readable state dict ({exc})") from None
        state.update({f"{stage}.{k}": v for k, v in part.items()})
    return state


class FaceDetectionModel(ImagePredictor):
    """MTCNN over each image (batches of images of one size: the pyramid is shared);
    predictions ``{"objects": [{"label": "face", "score", "box": [x, y, w, h]}]}``."""

    scenario = "vision.detect_faces"
    draws = True
    encoder_name = "mtcnn"

    def __init__(self, spec: FaceSpec, networks: nn.ModuleDict, device: torch.device,
                 manifest: dict[str, Any] | None = None, precision: str = "fp32") -> None:
        super().__init__(networks, device, precision, manifest)
        self.spec, self.networks = spec, networks
        self.min_score = spec.score_threshold

    def describe_outputs(self) -> dict[str, Any]:
        return {"task": "detection", "target": "objects", "classes": ["face"],
                "object": {"label": "face", "score": "0-1",
                           "box": "[x, y, w, h] in pixels of the input image"}}

    def batches(self, records: list[Record], batch_size: int) -> list[list[int]]:
        """Images of one size together (MTCNN batches only equal-size images); sizes from
        the headers, the pixels are decoded once, in ``preprocess``."""
        from polymodal_vision.images import image_size

        by_size: dict[tuple[int, int], list[int]] = {}
        for index, record in enumerate(records):
            size = image_size(record["image"])
            by_size.setdefault(size, []).append(index)
        return [group[i:i + batch_size] for group in by_size.values()
                for i in range(0, len(group), batch_size)]

    def preprocess(self, records: list[Record]) -> list[Any]:
        return self.open_images(records)

    def forward(self, images: list[Any]) -> Any:
        from facenet_pytorch.models.utils.detect_face import detect_face

        boxes, _ = detect_face(images, self.spec.min_face_size, self.networks["pnet"],
                               self.networks["rnet"], self.networks["onet"],
                               self.spec.thresholds, self.spec.factor, self.device)
        return boxes

    def postprocess(self, outputs: Any, batch: Any, records: list[Record]) -> list[Record]:
        results = []
        for found in outputs:
            objects: list[dict[str, Any]] = [
                {"label": "face", "score": round(float(b[4]), 4),
                 "box": [round(float(b[0]), 2), round(float(b[1]), 2),
                         round(float(b[2] - b[0]), 2), round(float(b[3] - b[1]), 2)]}
                for b in (found if found is not None else []) if float(b[4]) >= self.min_score]
            results.append({"objects": sorted(objects, key=lambda o: -o["score"])})
        return results

    def evaluation_records(self, records: list[Record]) -> list[Record]:
        labelled = [r for r in records if "faces" in r or "boxes" in r]
        if not labelled:
            raise DataError("no record says how many faces it holds (\"faces\") or where "
                            "(\"boxes\")")
        return labelled

    def score(self, records: list[Record], predictions: list[Record]) -> dict[str, Any]:
        return face_scores(records, predictions)

    def export_graph(self, records: list[Record] | None) -> ExportGraph:
        """The three networks as one graph: a pyramid level [B, 3, H, W] through P-Net, 24
        px crops through R-Net and 48 px crops through O-Net (pixels as (x - 127.5) /
        128). The cascade around them (the pyramid, the crops, the thresholds and NMS of
        each stage) stays with the runtime, as beam search does for captioning."""
        generator = torch.Generator().manual_seed(0)

        def batch(n: int, side: int) -> list[torch.Tensor]:
            return [torch.rand(n, 3, side, side, generator=generator) * 2 - 1,
                    torch.rand(3 * n, 3, 24, 24, generator=generator) * 2 - 1,
                    torch.rand(2 * n, 3, 48, 48, generator=generator) * 2 - 1]

        return ExportGraph(module=_Cascade(self.networks),
                           inputs=["pyramid_level", "crops_24", "crops_48"],
                           outputs=["pnet_boxes", "pnet_scores", "rnet_boxes", "rnet_scores",
                                    "onet_boxes", "onet_landmarks", "onet_scores"],
                           trace=batch(1, 48), check=batch(2, 48),
                           fixed_axes={"pyramid_level": [1, 2, 3], "crops_24": [1, 2, 3],
                                       "crops_48": [1, 2, 3]},
                           batch_axes={"crops_24": "crops_24", "rnet_boxes": "crops_24",
                                       "rnet_scores": "crops_24", "crops_48": "crops_48",
                                       "onet_boxes": "crops_48", "onet_landmarks": "crops_48",
                                       "onet_scores": "crops_48"},
                           sidecar={"task": "face-detection", "model": "mtcnn",
                                    "min_face_size": self.spec.min_face_size,
                                    "thresholds": self.spec.thresholds,
                                    "factor": self.spec.factor})

    def draw(self, record: Record, prediction: Record) -> Any:
        from polymodal_vision.drawing import draw_boxes
        from polymodal_vision.images import open_image

        return draw_boxes(open_image(record["image"]), prediction["objects"])


class _Cascade(nn.Module):
    def __init__(self, networks: nn.ModuleDict) -> None:
        super().__init__()
        self.networks = networks

    def forward(self, level: torch.Tensor, crops_24: torch.Tensor, crops_48: torch.Tensor
                ) -> tuple[torch.Tensor, ...]:
        return (*self.networks["pnet"](level), *self.networks["rnet"](crops_24),
                *self.networks["onet"](crops_48))


def face_scores(records: list[Record], predictions: list[Record]) -> dict[str, Any]:
    """Per image: found (an image with a face where one was detected), false alarm (an
    image without a face where one was); per known box: matched by a detection with IoU >=
    0.5, and its best IoU."""
    from polymodal_vision.object_scenes import box_iou

    with_face = without = found = alarms = 0
    boxes = matched = 0
    best: list[float] = []
    for record, prediction in zip(records, predictions, strict=True):
        truth = record.get("boxes") or []
        count = len(truth) if "boxes" in record else int(record.get("faces", 0))
        detected = [o["box"] for o in prediction["objects"]]
        if count:
            with_face += 1
            found += bool(detected)
        else:
            without += 1
            alarms += bool(detected)
        for box in truth:
            iou = max((box_iou(box, d) for d in detected), default=0.0)
            boxes, matched = boxes + 1, matched + (iou >= 0.5)
            best.append(iou)
    result: dict[str, Any] = {"found": round(found / max(with_face, 1), 4),
                              "images_with_faces": with_face,
                              "false_alarm_rate": round(alarms / max(without, 1), 4),
                              "images_without": without, "n": len(records)}
    if boxes:
        result.update({"box_recall@0.5": round(matched / boxes, 4),
                       "mean_best_iou": round(sum(best) / boxes, 4), "boxes": boxes})
    return result


def haar_baseline(records: list[Record]) -> dict[str, Any]:
    """OpenCV's frontal-face Haar cascade (Viola-Jones) on the same images, scored alike.
    Images under ``HAAR_MIN_SIDE`` pixels are enlarged first (boxes scaled back): its 24 px
    window finds nothing in a 25 px face crop, which would make the comparison empty."""
    try:
        import cv2
    except ImportError:
        return {"error": "opencv-python-headless is not installed"}
    import numpy as np

    from polymodal_vision.images import open_image

    cascades: Any = cv2.data  # type: ignore[attr-defined]
    cascade = cv2.CascadeClassifier(cascades.haarcascades + "haarcascade_frontalface_default.xml")
    predictions = []
    for record in records:
        image = open_image(record["image"]).convert("L")
        factor = max(1, -(-HAAR_MIN_SIDE // min(image.size)))
        grey = np.asarray(image.resize((image.width * factor, image.height * factor)))
        found = cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5,
                                         minSize=(20, 20))
        predictions.append({"objects": [{"label": "face", "score": 1.0,
                                         "box": [float(v) / factor for v in box]}
                                        for box in found]})
    return face_scores(records, predictions)


def write_face_detector(request: FitRequest) -> dict[str, Any]:
    """Nothing to train: the weights go into the model directory (safetensors), which is
    then scored on the test images beside the Haar cascade."""
    from safetensors.torch import save_file

    from polymodal.plugin import building_directory, fit_events, pick_device, write_manifest

    spec: FaceSpec = request.spec
    if request.train:
        raise DataError("vision.detect_faces is pretrained and trains on nothing: leave "
                        "--data out, and score it on your images with polymodal evaluate "
                        "MODEL --data FILE (\"faces\" counts or \"boxes\")")
    state = wheel_weights(spec.weights)
    networks = _networks()
    networks.load_state_dict(state)
    device = pick_device(request.device)
    model = FaceDetectionModel(spec, networks.to(device).eval(), device)
    metrics: dict[str, Any] = {"weights": spec.weights}
    with fit_events(request.out_dir):
        if request.test:
            labelled = model.evaluation_records(request.test)
            metrics["test"] = model.evaluate(labelled)
            metrics["baselines"] = {"Haar cascade (OpenCV)": haar_baseline(labelled)}
        with building_directory(request.out_dir) as work:
            save_file({k: v.contiguous() for k, v in state.items()}, str(work / WEIGHTS))
            write_manifest(work, "face-detection", spec.model_dump(mode="json"), metrics,
                           train_records=[])
    return metrics


def load_face_detector(directory: str | Path, device: str | None = None,
                       precision: str = "fp32") -> FaceDetectionModel:
    from safetensors.torch import load_file

    from polymodal.plugin import ArtifactError, parse_model_spec, pick_device, read_manifest
    from polymodal_vision.retrieve import load_weights

    directory = Path(directory)
    manifest = read_manifest(directory)
    spec = parse_model_spec(FaceSpec, manifest["spec"])
    try:
        state = load_file(str(directory / WEIGHTS))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{directory}: unreadable {WEIGHTS}: {exc}") from None
    networks = _networks()
    load_weights(networks, state, directory)
    torch_device = pick_device(device)
    return FaceDetectionModel(spec, networks.to(torch_device), torch_device, manifest,
                              precision)
