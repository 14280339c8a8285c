"""The embedded image + EHR cohort of ``medical.fusion``: synthetic, built from one real CT.

Every case is pydicom's bundled ``CT_small.dcm`` (a 128 x 128 CT slice), shifted by up to 6
pixels, with Gaussian noise (sd 20 HU) and, in half of the cases, a round lesion (radius 6-9
pixels, +400 HU) somewhere in the body; it is written as a DICOM file with fresh UIDs and a
synthetic patient. Each case also has an EHR record: ``marker:last`` (a latent marker seen
with noise, sd 0.3), ``age`` and ``crp:last`` (noise: unrelated to the outcome). The
outcome is "positive" when the case has a lesion *and* a high latent marker: each modality
alone carries half of the signal (an AUROC near 0.75 at best), both together nearly all.
Nothing in it is real patient data.
"""

from __future__ import annotations

from pathlib import Path

from polymodal.plugin import Record, cache_dir, cached_records

LESION_HU = 400.0
NOISE_HU = 20.0


def cohort(count: int = 800, seed: int = 0) -> list[Record]:
    """``count`` cases (DICOM files in the polymodal cache, built on first use)."""
    return cached_records(cache_dir(f"medical-cohort-v1-{count}-{seed}"),
                          lambda directory: _build(directory, count, seed))


def _build(directory: Path, count: int, seed: int) -> list[Record]:
    import numpy as np
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.uid import generate_uid

    source = get_testdata_file("CT_small.dcm")
    if source is None:
        raise FileNotFoundError("pydicom's CT_small.dcm test file is missing")
    base = pydicom.dcmread(source)
    slope, intercept = float(base.RescaleSlope), float(base.RescaleIntercept)
    hu = base.pixel_array.astype(np.float64) * slope + intercept
    rows, columns = hu.shape
    grid_r, grid_c = np.mgrid[0:rows, 0:columns]
    info = np.iinfo(base.pixel_array.dtype)
    rng = np.random.default_rng(seed)
    records: list[Record] = []
    for index in range(count):
        lesion = bool(rng.random() < 0.5)
        marker = float(rng.normal())
        shift = rng.integers(-6, 7, size=2)
        image = np.roll(hu, tuple(int(s) for s in shift), axis=(0, 1))
        image = image + rng.normal(0.0, NOISE_HU, image.shape)
        if lesion:
            centre = rng.integers(40, 89, size=2)
            radius = rng.uniform(6, 9)
            disc = (grid_r - centre[0]) ** 2 + (grid_c - centre[1]) ** 2 <= radius ** 2
            image[disc] += LESION_HU
        stored = np.clip(np.round((image - intercept) / slope), info.min, info.max)
        dataset = base.copy()
        dataset.PixelData = stored.astype(base.pixel_array.dtype).tobytes()
        dataset.PatientName, dataset.PatientID = f"Synthetic^Case{index:04d}", f"SYN{index:04d}"
        dataset.StudyInstanceUID, dataset.SeriesInstanceUID = generate_uid(), generate_uid()
        dataset.SOPInstanceUID = generate_uid()
        dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
        path = directory / f"case-{index:04d}.dcm"
        dataset.save_as(path, enforce_file_format=True)
        ehr = {"age": round(float(rng.normal(62, 10)), 1),
               "marker:last": round(marker + float(rng.normal(0, 0.3)), 3),
               "crp:last": round(float(rng.lognormal(1.0, 0.5)), 2)}
        records.append({"case": f"case-{index:04d}", "image": str(path.resolve()), "ehr": ehr,
                        "outcome": "positive" if lesion and marker > 0 else "negative"})
    return records
