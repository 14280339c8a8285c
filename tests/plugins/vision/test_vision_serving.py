"""Images through the server: multipart upload and base64 JSON reach the same processor;
broken bytes are a 422 naming the field and the server keeps serving."""

from __future__ import annotations

import base64
from pathlib import Path

from fastapi.testclient import TestClient

from polymodal.serving.app import ServeSettings, create_app


def test_upload_base64_and_bad_bytes(digits_model: Path) -> None:
    from polymodal_vision.datasets import digits

    record = digits()[-1]
    png = Path(record["image"]).read_bytes()
    url = f"/v1/models/{digits_model.name}/predict"
    with TestClient(create_app([digits_model], ServeSettings())) as http:
        uploaded = http.post(url, files={"image": ("digit.png", png, "image/png")})
        assert uploaded.status_code == 200, uploaded.text
        encoded = http.post(url, json={"records": [
            {"image": {"base64": base64.b64encode(png).decode()}}]})
        assert encoded.status_code == 200
        assert uploaded.json()["predictions"] == encoded.json()["predictions"]

        truncated = http.post(url, files={"image": ("digit.png", png[: len(png) // 2],
                                                    "image/png")})
        assert truncated.status_code == 422
        assert truncated.json()["error"].startswith("uploaded image: truncated or corrupt")
        a_path = http.post(url, json={"records": [{"image": record["image"]}]})
        assert a_path.status_code == 422 and a_path.json()["field"] == "records[0].image"
        assert http.get("/health").status_code == 200
        assert http.post(url, files={"image": ("d.png", png, "image/png")}).status_code == 200
