"""Previews worth publishing: each modality's figure, a cross-match output's and the sky map of
several datasets, checked through the matplotlib objects the drawing functions return (axis
labels, colour bars, legends, titles), then written as real PNG files.

The datasets are small real builds: the survey plugins' own sample writers (HSC, DESI, MaNGA
with a coarse wavelength grid, GZ3D, PLAsTiCC) in one patch of sky, DESI placed on HSC
objects so that they cross-match, and the core's toy image dataset (``conftest``) spread over
several pixels for the sky map.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from mmu_core import testing
from mmu_core.build import build
from mmu_core.models import SampleRequest
from mmu_core.previews import PreviewError, draw_row, draw_sky, preview, save_png
from mmu_core.storage.reader import open_dataset

PNG = b"\x89PNG\r\n\x1a\n"
PATCH = {"ra": 150.1, "dec": 2.2, "radius": 0.03}
SURVEYS = {  # survey -> (n, sample options)
    "hsc": (6, {}),
    "desi": (6, {}),
    "manga": (1, {"nwave": 200, "bundles": "19"}),
    "gz3d": (1, {}),
    "plasticc": (4, {}),
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """survey -> dataset folder, plus "match" -> the HSC x DESI cross-match output."""
    hooks = [pytest.importorskip(f"mmu_{s}.hooks") for s in SURVEYS]
    registry = testing.plugin_registry(*hooks)
    root = tmp_path_factory.mktemp("previews")
    paths = {}
    for survey, (n, options) in SURVEYS.items():
        positions = None
        if survey == "desi":  # half the DESI objects on HSC objects: they match
            ds = open_dataset(paths["hsc"])
            got = ds.get(ds.index().ids[:3], columns=["ra", "dec"])
            positions = [(float(r), float(d)) for r, d in zip(got["ra"], got["dec"], strict=True)]
        registry.sample(survey, SampleRequest(out_dir=root / "raw" / survey, n=n, seed=3,
                                              positions=positions, options=options, **PATCH))
        paths[survey] = build(survey, root / "raw" / survey, root / "data",
                              registry=registry).path
    from mmu_core.crossmatch import cross_match

    res = cross_match(paths["hsc"], paths["desi"], root / "xmatch", radius_arcsec=1.0)
    assert len(res) >= 3
    paths["match"] = root / "xmatch"
    return paths


# ---- helpers that read a figure --------------------------------------------------------------
def all_axes(fig) -> list:
    """Every Axes of the figure and its subfigures, once each, in drawing order."""
    axes = list(fig.axes)
    for sub in fig.subfigs:
        axes += all_axes(sub)
    return list({id(ax): ax for ax in axes}.values())


def all_figs(fig) -> list:
    out = [fig]
    for sub in fig.subfigs:
        out += all_figs(sub)
    return out


def colorbars(fig) -> list:
    """Every colour bar of the figure (those of images and of meshes)."""
    bars = []
    for ax in all_axes(fig):
        for artist in list(ax.images) + list(ax.collections):
            if getattr(artist, "colorbar", None) is not None:
                bars.append(artist.colorbar)
    return bars


def bar_label(cb) -> str:
    return cb.ax.get_ylabel() if cb.orientation == "vertical" else cb.ax.get_xlabel()


def legend_texts(fig) -> list[str]:
    texts = []
    for f in all_figs(fig):
        for legend in f.legends:
            texts += [t.get_text() for t in legend.get_texts()]
    for ax in all_axes(fig):
        if ax.get_legend() is not None:
            texts += [t.get_text() for t in ax.get_legend().get_texts()]
    return texts


def titles(fig) -> list[str]:
    out = [f._suptitle.get_text() for f in all_figs(fig) if f._suptitle is not None]
    return out + [ax.get_title() for ax in all_axes(fig) if ax.get_title()]


def data_axes(fig) -> list:
    """Axes that are not colour bars."""
    bars = {id(cb.ax) for cb in colorbars(fig)}
    return [ax for ax in all_axes(fig) if id(ax) not in bars]


def first_row(path, columns=None):
    ds = open_dataset(path)
    oid = ds.index().ids[0]
    return oid, {k: v[0] for k, v in ds.get([oid], columns=columns).items()}


def check_png(fig, path):
    out = save_png(fig, path)
    data = out.read_bytes()
    assert data[:8] == PNG
    import matplotlib.pyplot as plt

    h, w = plt.imread(out).shape[:2]
    assert w > 800 and h > 250
    return out


# ---- one test per modality -----------------------------------------------------------------------
def test_image_preview_has_sky_axes_colour_bars_band_names_and_a_mask_legend(built, tmp_path):
    oid, row = first_row(built["hsc"], ["image_band", "image_mask", "image_scale"])
    fig = draw_row(built["hsc"])
    bands = [b.decode() for b in row["image_band"]]
    scale = float(row["image_scale"][0])
    assert f"object {oid}" in titles(fig)[0] and "hsc/pdr3_dud_22.5" in titles(fig)[0]
    composite = next(t for t in titles(fig) if t.startswith("composite"))
    assert f"R = {bands[2]}, G = {bands[1]}, B = {bands[0]}" in composite
    axes = data_axes(fig)
    assert len(axes) == 1 + len(bands)
    for ax in axes:  # arcsec offsets at the stored pixel scale
        assert ax.get_xlabel() == f"Δx [arcsec] ({scale:.3g}″/pixel)"
        x0, x1 = ax.get_xlim()
        assert x1 - x0 == pytest.approx(row["image_mask"].shape[-1] * scale, rel=1e-6)
    assert axes[0].get_ylabel() == "Δy [arcsec]"
    # one colour bar per band, in the band's unit (HSC records none: said so)
    assert [bar_label(cb) for cb in colorbars(fig)] == ["flux [unit not recorded]"] * len(bands)
    band_titles = [t for t in titles(fig) if t.split("\n")[0] in bands]
    assert len(band_titles) == len(bands) and all("PSF FWHM" in t for t in band_titles)
    masked = int((~row["image_mask"]).sum())
    (legend,) = [t for t in legend_texts(fig) if t.startswith("masked pixels")]
    assert f"{masked:,} of {row['image_mask'].size:,}" in legend
    check_png(fig, tmp_path / "hsc.png")


def test_spectrum_preview_has_flux_units_wavelength_in_angstrom_and_its_mask(built, tmp_path):
    oid, row = first_row(built["desi"], ["spectrum_mask", "Z"])
    fig = draw_row(built["desi"])
    (ax,) = data_axes(fig)
    assert ax.get_xlabel() == "wavelength [Å]"
    # the unit DESI records (1e-17 erg / (s cm2 Angstrom)), as astropy prints it
    assert ax.get_ylabel() == "flux [10⁻¹⁷ erg Å⁻¹ s⁻¹ cm⁻²]"
    (title,) = [t for t in titles(fig) if "object" in t]
    assert f"object {oid}" in title and f"z = {row['Z']:.4f}" in title
    texts = legend_texts(fig)
    assert {"flux", "±1σ (from ivar)"} <= set(texts)
    n_bad = int(row["spectrum_mask"].sum())
    assert f"masked (spectrum_mask): {n_bad:,} of {row['spectrum_mask'].size:,} pixels" in texts
    check_png(fig, tmp_path / "desi.png")


def test_ifu_preview_maps_in_arcsec_with_the_stored_map_unit(built, tmp_path):
    oid, row = first_row(built["manga"], ["ifu_image_label", "ifu_image_units", "ifu_size",
                                          "ifu_spaxel_size"])
    labels = [v.decode() for v in row["ifu_image_label"]]
    k = next(i for i, lab in enumerate(labels) if "ha" in lab and "gflux" in lab)
    fig = draw_row(built["manga"])
    map_ax, spec_ax = data_axes(fig)
    size = float(row["ifu_spaxel_size"])
    assert map_ax.get_xlabel() == f"Δx [arcsec] ({size:.3g}″/pixel)"
    assert map_ax.get_ylabel() == "Δy [arcsec]"
    x0, x1 = map_ax.get_xlim()
    assert x1 - x0 == pytest.approx(int(row["ifu_size"][1]) * size)
    (cb,) = colorbars(fig)
    assert bar_label(cb) == f"{labels[k]} [{row['ifu_image_units'][k].decode()}]"
    assert spec_ax.get_xlabel() == "wavelength [Å]"
    assert spec_ax.get_ylabel() == "flux [10⁻¹⁷ erg s⁻¹ cm⁻² Å⁻¹ spaxel⁻¹]"
    assert "spaxel of the spectrum" in legend_texts(fig)
    assert any(f"object {oid.decode()}" in t for t in titles(fig))
    check_png(fig, tmp_path / "manga.png")


def test_lightcurve_preview_has_mjd_flux_units_and_bands(built, tmp_path):
    oid, row = first_row(built["plasticc"], ["lightcurve_band", "lightcurve_mask", "obj_type"])
    fig = draw_row(built["plasticc"])
    (ax,) = data_axes(fig)
    assert ax.get_xlabel() == "time [MJD]"
    assert ax.get_ylabel() == "flux [FLUXCAL, AB zero point 27.5]"
    counts = (~row["lightcurve_mask"]).sum(axis=1)
    want = [f"{b.decode()} ({n})" for b, n in zip(row["lightcurve_band"], counts, strict=True)]
    assert legend_texts(fig) == want
    assert any(f"object {oid}" in t and "obj_type = " in t for t in titles(fig))
    check_png(fig, tmp_path / "plasticc.png")


def test_segmentation_preview_has_ra_dec_north_up_vote_colour_bars_and_explains_vf(built,
                                                                                    tmp_path):
    oid, row = first_row(built["gz3d"], ["segmentation_class", "segmentation_vote_fraction"])
    classes = [c.decode() for c in row["segmentation_class"]]
    vf = row["segmentation_vote_fraction"]
    fig = draw_row(built["gz3d"])
    axes = data_axes(fig)
    assert len(axes) == 1 + len(classes)
    for ax in axes:  # WCSAxes from the stored wcs_* columns, north up and east left
        assert ax.coords[0].get_axislabel() == "RA"
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
        (ra_l, dec_b), (ra_r, dec_t) = ax.wcs.wcs_pix2world([[x0, y0], [x1, y1]], 0)
        assert dec_t > dec_b and ((ra_l - ra_r + 180) % 360 - 180) > 0
    assert axes[0].coords[1].get_axislabel() == "Dec"
    assert [bar_label(cb) for cb in colorbars(fig)] == ["votes per pixel"] * len(classes)
    for c, name in enumerate(classes):
        want = name + (f"\nvote fraction {vf[c]:.2f}" if vf[c] >= 0 else "")
        assert want in titles(fig)
    assert {t.replace(" (none)", "") for t in legend_texts(fig)} == set(classes)
    note = all_figs(fig)[-1]._supxlabel.get_text()
    assert note.startswith("vote fraction: the share of the object's classifications")
    assert any(f"object {oid.decode()}" in t for t in titles(fig))
    check_png(fig, tmp_path / "gz3d.png")


def test_matched_preview_is_titled_by_both_ids_with_one_band_of_panels_per_side(built, tmp_path):
    m = open_dataset(built["match"])
    got = m.get([1], columns=["hsc.object_id", "desi.object_id", "separation_arcsec"])
    fig = draw_row(built["match"], object_id=1)
    main = titles(fig)[0]
    hsc_id, desi_id = int(got["hsc.object_id"][0]), int(got["desi.object_id"][0])
    assert main.startswith("hsc_x_desi/matched match 1: ")
    assert f"hsc {hsc_id} × desi {desi_id}" in main
    assert f"separation {got['separation_arcsec'][0]:.3f}″" in main
    sides = [f._suptitle.get_text() for f in fig.subfigs]
    assert sides[0].startswith(f"hsc: hsc/pdr3_dud_22.5 object {hsc_id} at RA ")
    assert sides[1].startswith(f"desi: desi/dr1_main object {desi_id} at RA ")
    labels = {ax.get_ylabel() for ax in data_axes(fig)}
    assert {"Δy [arcsec]", "flux [10⁻¹⁷ erg Å⁻¹ s⁻¹ cm⁻²]"} <= labels  # DESI's recorded unit
    check_png(fig, tmp_path / "match.png")


def test_sky_map_of_several_datasets_has_a_legend_and_sensible_colour_ranges(
        built, toy_image_dataset, tmp_path):
    toy_path, _ = toy_image_dataset
    paths = [built["hsc"], built["desi"], built["plasticc"], toy_path]
    fig = draw_sky(paths)
    sky, zoom = data_axes(fig)
    assert sky.name == "mollweide" and (sky.get_xlabel(), sky.get_ylabel()) == ("RA", "Dec")
    assert (zoom.get_xlabel(), zoom.get_ylabel()) == ("RA [deg]", "Dec [deg]")
    assert zoom.get_xlim()[0] > zoom.get_xlim()[1]  # RA increases to the left
    legend = legend_texts(fig)
    for p in paths:
        ds = open_dataset(p)
        assert any(t.startswith(f"{ds.survey}/{ds.config}: {len(ds):,} rows, ") for t in legend)
    pixel_bar, zoom_bar = colorbars(fig)
    assert bar_label(pixel_bar).startswith("rows per HEALPix pixel (NSIDE 16, 13.4 deg²)")
    assert re.match(r"rows per HEALPix pixel \(NSIDE [\d,]+, ", bar_label(zoom_bar))
    rows_per_pixel = np.zeros(12 * 16**2)
    for p in paths:
        for f in open_dataset(p).manifest.files:
            rows_per_pixel[f.pixel] += f.rows
    assert pixel_bar.norm.vmax == rows_per_pixel.max()
    assert zoom_bar.norm.vmax > zoom_bar.norm.vmin >= 0
    assert "4 datasets" in titles(fig)[0]
    check_png(fig, tmp_path / "sky.png")


def test_sky_map_of_one_pixel_runs_from_zero_to_its_rows(built, tmp_path):
    ds = open_dataset(built["hsc"])
    assert len(ds.pixels) == 1
    png = preview(built["hsc"], tmp_path / "sky1.png", sky=True)  # the old signature
    assert png.read_bytes()[:8] == PNG
    fig = draw_sky([built["hsc"]])
    pixel_bar, zoom_bar = colorbars(fig)
    assert (pixel_bar.norm.vmin, pixel_bar.norm.vmax) == (0, len(ds))
    assert zoom_bar.norm.vmin == 0 and zoom_bar.norm.vmax >= 1
    import matplotlib.pyplot as plt

    plt.close(fig)


# ---- the command line --------------------------------------------------------------------------
def test_cli_draws_a_sky_map_of_every_dataset_given(built, tmp_path):
    from typer.testing import CliRunner

    from mmu_core.cli import app

    out = tmp_path / "sky.png"
    args = ["preview", "--sky", str(built["hsc"]), str(built["desi"]), str(built["gz3d"]),
            "--out", str(out)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert out.read_bytes()[:8] == PNG


@pytest.mark.parametrize("bad", ["123", "not-a-number"])
def test_a_bad_id_is_one_clear_line_not_a_traceback(built, tmp_path, bad):
    from typer.testing import CliRunner

    from mmu_core.cli import app

    res = CliRunner().invoke(app, ["preview", str(built["hsc"]), "--id", bad,
                                   "--out", str(tmp_path / "x.png")])
    assert res.exit_code == 1
    text = res.output.strip()
    assert len(text.splitlines()) == 1 and "Traceback" not in text
    assert str(built["hsc"]) in text and bad in text
    assert not (tmp_path / "x.png").exists()


def test_a_bad_id_in_python_names_the_dataset(built):
    with pytest.raises(PreviewError, match=r"no object_id 5000 \(a matched dataset.s object_id is the match_id"):
        draw_row(built["match"], object_id=5_000)


def test_a_unit_recorded_for_a_column_wins_over_the_documented_one(built, tmp_path):
    import json
    import shutil

    copy = tmp_path / "desi"
    shutil.copytree(built["desi"], copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["columns"]["spectrum_flux"]["unit"] = "erg / (s cm2 Angstrom)"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    fig = draw_row(copy)
    (ax,) = data_axes(fig)
    assert ax.get_ylabel() == "flux [erg Å⁻¹ s⁻¹ cm⁻²]"  # as astropy prints it
    import matplotlib.pyplot as plt

    plt.close(fig)
