"""Detection quality as COCO measures it (torchmetrics ``MeanAveragePrecision`` over
pycocotools): mAP@[.5:.95], mAP@.5, mAP@.75, AP per class and mean recall (100
detections an image), for a model and for a baseline alike. Predictions are the
predictor's JSON (``{"objects": [{label, score, box: [x, y, w, h]}]}``)."""

from __future__ import annotations

from typing import Any

from polymodal.plugin import DataError, Record


def _tensors(boxes: list[list[float]], labels: list[int], scores: list[float] | None
             ) -> dict[str, Any]:
    import torch

    result = {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
              "labels": torch.tensor(labels, dtype=torch.int64)}
    if scores is not None:
        result["scores"] = torch.tensor(scores, dtype=torch.float32)
    return result


def detection_scores(records: list[Record], predictions: list[Record],
                     classes: list[str]) -> dict[str, Any]:
    """COCO box metrics of ``predictions`` against the records' ``boxes``/``labels``."""
    from torchmetrics.detection import MeanAveragePrecision

    index = {name: i for i, name in enumerate(classes)}
    truth, predicted = [], []
    for number, (record, prediction) in enumerate(zip(records, predictions, strict=True)):
        unknown = [label for label in record["labels"] if label not in index]
        if unknown:
            raise DataError(f"record {number + 1}: unknown label {unknown[0]!r} (the model's "
                            f"classes: {', '.join(classes)})")
        truth.append(_tensors(record["boxes"], [index[x] for x in record["labels"]], None))
        objects = prediction["objects"]
        predicted.append(_tensors([o["box"] for o in objects],
                                  [index[o["label"]] for o in objects],
                                  [o["score"] for o in objects]))
    metric = MeanAveragePrecision(box_format="xywh", iou_type="bbox", class_metrics=True)
    metric.update(predicted, truth)
    result = metric.compute()
    per_class = result["map_per_class"].reshape(-1).tolist()
    present = result["classes"].reshape(-1).tolist()
    return {"map": round(float(result["map"]), 4), "map_50": round(float(result["map_50"]), 4),
            "map_75": round(float(result["map_75"]), 4),
            "mar_100": round(float(result["mar_100"]), 4),
            "ap_per_class": {classes[int(c)]: round(float(v), 4)
                             for c, v in zip(present, per_class, strict=True)},
            "n": len(records), "objects": sum(len(r["boxes"]) for r in records)}
