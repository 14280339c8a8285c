"""DICOM files of every kind a user brings: compressed transfer syntaxes (RLE, JPEG 2000),
multi-frame, MONOCHROME1 and rescaled values, from pydicom's bundled files, pydicom-data
and nibabel's test DICOMs; NIfTI conversion with the series geometry, and resampling to a
pixel spacing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from polymodal.testing import run_cli

pydicom = pytest.importorskip("pydicom")
from pydicom.data import get_testdata_file  # noqa: E402
from pydicom.pixels import apply_modality_lut  # noqa: E402

# name -> (transfer syntax, frames); files of pydicom-data are skipped where it is absent.
FILES = {
    "CT_small.dcm": ("Explicit VR Little Endian", 1),
    "MR_small.dcm": ("Explicit VR Little Endian", 1),
    "MR_small_RLE.dcm": ("RLE Lossless", 1),
    "MR_small_jp2klossless.dcm": ("JPEG 2000 Image Compression (Lossless Only)", 1),
    "emri_small.dcm": ("Explicit VR Little Endian", 10),
    "emri_small_RLE.dcm": ("RLE Lossless", 10),
    "emri_small_jpeg_2k_lossless.dcm": ("JPEG 2000 Image Compression (Lossless Only)", 10),
    "RG1_UNCI.dcm": ("Explicit VR Little Endian", 1),  # MONOCHROME1, a CR
}
NIBABEL_DATA = Path(pytest.importorskip("nibabel").__file__).parent / "nicom" / "tests" / "data"


def _file(name: str) -> str:
    path = get_testdata_file(name, download=False)  # never the network
    if path is None:
        pytest.skip(f"{name} is in pydicom-data, which is not installed")
    return str(path)


@pytest.mark.parametrize("name", sorted(FILES))
def test_modality_values_equal_pydicoms_own_lut(name: str) -> None:
    from polymodal_medical.dicom import modality_values, read_dataset

    dataset = read_dataset(_file(name))
    syntax, frames = FILES[name]
    assert dataset.file_meta.TransferSyntaxUID.name == syntax
    values = modality_values(dataset, name)
    expected = np.asarray(apply_modality_lut(dataset.pixel_array, dataset), np.float32)
    assert values.shape == (frames, int(dataset.Rows), int(dataset.Columns))
    np.testing.assert_array_equal(values, expected.reshape(values.shape))


def test_compressed_files_decode_to_the_uncompressed_values() -> None:
    from polymodal_medical.dicom import modality_values, read_dataset

    for plain, packed in (("MR_small.dcm", "MR_small_RLE.dcm"),
                          ("MR_small.dcm", "MR_small_jp2klossless.dcm"),
                          ("emri_small.dcm", "emri_small_RLE.dcm"),
                          ("emri_small.dcm", "emri_small_jpeg_2k_lossless.dcm")):
        np.testing.assert_array_equal(modality_values(read_dataset(_file(plain))),
                                      modality_values(read_dataset(_file(packed))))


def test_rescaled_values_and_monochrome1_in_info_and_view(tmp_path: Path) -> None:
    from matplotlib import image as mpimg

    rescaled = str(NIBABEL_DATA / "decimal_rescale.dcm")  # slope 2, intercept -4096
    info = json.loads(run_cli("medical", "dicom", "info", rescaled, "--json").stdout)[0]
    stored = pydicom.dcmread(rescaled).pixel_array
    assert info["value_range"] == [float(stored.min()) * 2 - 4096,
                                   float(stored.max()) * 2 - 4096]
    cr = _file("RG1_UNCI.dcm")
    out = tmp_path / "cr.png"
    assert run_cli("medical", "dicom", "view", cr, "--out", str(out)).returncode == 0
    shown = mpimg.imread(out)[..., 0]
    dataset = pydicom.dcmread(cr)
    stored = dataset.pixel_array
    # MONOCHROME1: the highest stored value is shown darkest.
    brightest = np.unravel_index(np.argmax(stored), stored.shape)
    darkest = np.unravel_index(np.argmin(stored), stored.shape)
    assert shown[brightest] < shown[darkest]


def test_a_series_converts_to_nifti_with_its_geometry(tmp_path: Path) -> None:
    import nibabel

    slices = [str(NIBABEL_DATA / "1.dcm"), str(NIBABEL_DATA / "0.dcm")]  # out of order
    out = tmp_path / "nifti"
    result = run_cli("medical", "dicom", "convert", *slices, "--format", "nifti", "--out",
                     str(out), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["files"] == [{"file": "volume.nii.gz",
                                                  "shape": [256, 256, 2]}]
    image = nibabel.load(out / "volume.nii.gz")
    data = np.asarray(image.dataobj)
    first, second = (pydicom.dcmread(NIBABEL_DATA / n) for n in ("0.dcm", "1.dcm"))
    # [x, y, z] = [column, row, slice], slices ordered along the normal (0.dcm first).
    np.testing.assert_array_equal(data[:, :, 0], first.pixel_array.T.astype(np.float32))
    np.testing.assert_array_equal(data[:, :, 1], second.pixel_array.T.astype(np.float32))
    lps_to_ras = np.array([-1.0, -1.0, 1.0])
    for voxel, dataset in (((0, 0, 0), first), ((0, 0, 1), second)):
        mm = image.affine @ np.array([*voxel, 1.0])
        expected = np.asarray(dataset.ImagePositionPatient, float) * lps_to_ras
        np.testing.assert_allclose(mm[:3], expected, atol=1e-3)
    # One column step moves along the row direction by the column spacing.
    step = image.affine[:3, 0] * lps_to_ras
    np.testing.assert_allclose(step, np.asarray(first.ImageOrientationPatient[:3], float)
                               * float(first.PixelSpacing[1]), atol=1e-6)
    assert image.header.get_xyzt_units()[0] == "mm"


def test_a_file_without_pixels_and_an_existing_output_are_refused(tmp_path: Path) -> None:
    no_pixels = str(NIBABEL_DATA / "csa_slice_norm.dcm")
    out = tmp_path / "x"
    result = run_cli("medical", "dicom", "convert", no_pixels, "--format", "nifti",
                     "--out", str(out))
    assert result.returncode == 2 and "no pixel data" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()


def test_resampling_to_a_spacing_keeps_physical_size(tmp_path: Path) -> None:
    from polymodal_medical.dicom import crop_or_pad, resample_to_spacing
    from polymodal_medical.dicom_encoder import _image_of

    # A 40 mm disc drawn at 0.5 mm and at 1 mm per pixel: after resampling both to 1 mm it
    # covers the same number of pixels.
    def disc(mm_per_px: float) -> np.ndarray:
        size = round(100 / mm_per_px)
        yy, xx = (np.mgrid[:size, :size] + 0.5) * mm_per_px - 50
        return np.where(xx ** 2 + yy ** 2 <= 20 ** 2, 100.0, -1000.0).astype(np.float32)

    fine = resample_to_spacing(disc(0.5), (0.5, 0.5), 1.0)
    coarse = resample_to_spacing(disc(1.0), (1.0, 1.0), 1.0)
    assert fine.shape == coarse.shape == (100, 100)
    assert abs(int((fine > -450).sum()) - int((coarse > -450).sum())) < 0.02 * (coarse > -450).sum()
    padded = crop_or_pad(coarse, 120, -1000.0)
    assert padded.shape == (120, 120) and padded[0, 0] == -1000.0
    assert crop_or_pad(coarse, 50, -1000.0)[25, 25] == 100.0  # the centre is kept
    # Through the encoder's reading: CT_small (0.66 mm pixels, 128 px = 84 mm) at 1 mm per
    # pixel in a 100 mm field is 100 px, the scan in its middle 84 px.
    ct = get_testdata_file("CT_small.dcm")
    spacing = float(pydicom.dcmread(ct).PixelSpacing[0])
    image = np.asarray(_image_of(ct, "soft-tissue", 1.0, 100.0))
    assert image.shape[:2] == (100, 100)
    inside = round(128 * spacing)
    margin = (100 - inside) // 2
    assert image[: margin - 1].max() == 0 and image[margin + 2: margin + inside - 2].max() > 0
