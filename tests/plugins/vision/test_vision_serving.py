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


def _big_png(width: int, height: int) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_pixels_are_budgeted_per_request_not_only_per_image(digits_model: Path) -> None:
    """Two 40 MP images (each under the per-image limit, 100 KB compressed) in one request
    are refused before decoding; one alone is still served."""
    big = base64.b64encode(_big_png(6400, 6250)).decode()
    url = f"/v1/models/{digits_model.name}/predict"
    with TestClient(create_app([digits_model], ServeSettings())) as http:
        both = http.post(url, json={"records": [{"image": {"base64": big}}] * 2})
        assert both.status_code == 413, both.text
        assert both.json()["field"] == "records" and "pixels" in both.json()["error"]
        assert http.post(url, json={"records": [{"image": {"base64": big}}]}).status_code \
            == 200


EPS = (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n%%EndComments\n"
       b"newpath 0 0 moveto 8 8 lineto stroke\nshowpage\n%%EOF\n")


def test_only_allow_listed_image_formats_are_opened(digits_model: Path) -> None:
    """EPS/PS would start Ghostscript where it is installed: never opened."""
    from PIL import Image

    from polymodal.errors import DataError
    from polymodal_vision.images import ALLOWED_FORMATS, open_image

    assert "EPS" in Image.registered_extensions().values()  # PIL itself would try it
    assert "EPS" not in ALLOWED_FORMATS
    import pytest

    with pytest.raises(DataError, match="not an image in an accepted format"):
        open_image(EPS, "upload.eps")
    url = f"/v1/models/{digits_model.name}/predict"
    with TestClient(create_app([digits_model], ServeSettings())) as http:
        # Declared as PostScript: refused by the image modality's media types.
        response = http.post(url, files={"image": ("x.eps", EPS, "application/postscript")})
        assert response.status_code == 415
        assert response.json() == {"error": "application/postscript is not accepted for an "
                                            "image input; send image/png, image/jpeg, "
                                            "image/bmp, image/gif, image/tiff, image/webp",
                                   "field": "image"}
        # Sent as anonymous bytes: the decoder's own allow-list refuses it.
        response = http.post(url, files={"image": ("x", EPS, "application/octet-stream")})
        assert response.status_code == 422
        assert "accepted format" in response.json()["error"]
