"""Modality schemas reject each bad record with a message naming the field."""

from __future__ import annotations

import numpy as np
import pytest

from mmu_core import schemas


def _spectrum(n=10, **over):
    s = {"flux": np.ones(n), "ivar": np.ones(n), "lambda": np.arange(n, dtype=float) + 4000,
         "mask": np.zeros(n, bool), "lsf_sigma": np.ones(n)}
    s.update(over)
    return {"object_id": 1, "ra": 10.0, "dec": 5.0, "spectrum": s}


def _image(shapes=((8, 8), (8, 8))):
    return {"object_id": 2, "ra": 10.0, "dec": 5.0,
            "image": [{"array": np.zeros(s), "filter": f} for s, f in zip(shapes, "gr", strict=True)]}


def test_good_records_pass():
    assert schemas.validate_example("spectrum", _spectrum()) == []
    assert schemas.validate_example("image", _image()) == []


@pytest.mark.parametrize(
    "field,value,needle",
    [("ra", 360.0, "ra"), ("ra", -0.1, "ra"), ("ra", float("nan"), "ra"),
     ("dec", 90.5, "dec"), ("dec", float("inf"), "dec")],
)
def test_positions(field, value, needle):
    rec = _spectrum()
    rec[field] = value
    msgs = schemas.validate_example("spectrum", rec)
    assert msgs and msgs[0].startswith(needle + ":")


def test_image_bands_must_share_shape():
    msgs = schemas.validate_example("image", _image(((8, 8), (8, 9))))
    assert any("same shape" in m and "'g': (8, 8)" in m for m in msgs)


def test_spectrum_lengths_and_increasing_lambda():
    msgs = schemas.validate_example("spectrum", _spectrum(ivar=np.ones(9)))
    assert any("same length" in m and "'ivar': 9" in m for m in msgs)
    lam = np.arange(10, dtype=float)
    lam[5] = lam[4]
    msgs = schemas.validate_example("spectrum", _spectrum(**{"lambda": lam}))
    assert any("lambda must increase" in m and "lambda[5]" in m for m in msgs)


def test_lightcurve_lengths():
    rec = {"object_id": 3, "ra": 1.0, "dec": 1.0,
           "lightcurve": {"band": np.zeros(6), "time": np.zeros(6), "flux": np.zeros(5),
                          "flux_err": np.zeros(6)}}
    msgs = schemas.validate_example("lightcurve", rec)
    assert any("lightcurve" in m and "'flux': 5" in m for m in msgs)


def test_segmentation_shape_must_match_image():
    rec = {"object_id": "1-1", "ra": 1.0, "dec": 1.0, "image": np.zeros((20, 20, 3), np.uint8),
           "segmentation": {"class": ["center", "star"], "array": np.zeros((2, 20, 21))}}
    msgs = schemas.validate_example("segmentation", rec)
    assert any("(20, 21)" in m and "(20, 20)" in m for m in msgs)
    rec["segmentation"]["array"] = np.zeros((3, 20, 20))
    msgs = schemas.validate_example("segmentation", rec)
    assert any("3 classes" in m for m in msgs)


def test_ifu_spaxel_lengths():
    sp = {"flux": np.ones(5), "ivar": np.ones(4), "lambda": np.arange(5.0), "mask": np.zeros(5),
          "x": 0, "y": 0}
    rec = {"object_id": "1-2", "ra": 1.0, "dec": 1.0, "spaxel_size": 0.5, "spaxels": [sp]}
    msgs = schemas.validate_example("ifu", rec)
    assert any(m.startswith("spaxels.0") and "'ivar': 4" in m for m in msgs)


def test_check_columns_for_stored_shapes():
    ok = {"image_array": (5, 16, 16), "image_ivar": (5, 16, 16), "image_band": (5,),
          "image_scale": (5,)}
    assert schemas.image.check_columns(ok) == []
    bad = dict(ok, image_ivar=(5, 16, 15))
    assert any("image_ivar" in m for m in schemas.image.check_columns(bad))
    # absent columns are allowed (MMU v1 folders), but not an image without its array
    assert schemas.image.check_columns({k: v for k, v in ok.items() if k != "image_scale"}) == []
    assert schemas.image.check_columns({"image_band": (5,)}) == ["missing column image_array"]
    assert any("image_scale" in m for m in schemas.image.check_columns(dict(ok, image_scale=(4,))))
