"""The FCN comparison page and the U-Net page: their logic against independent
references, and AppTest runs of both pages (no exception, messages for bad input)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from segdemo.evaluate.scoring import score_predictions
from segdemo import config
from segdemo.labs import fcn_skips as fc
from segdemo.models import registry
from segdemo.labs import unet_tiles as ut
from segdemo.data.labels import CAMVID
from segdemo.models.unet import UNet, valid_margin

PAGES = Path(__file__).resolve().parents[2] / "pages"
HANGUL = re.compile("[\uac00-\ud7a3]")


# ------------------------------------------------------------------ FCN page logic


def test_zoom_window_stays_inside_and_keeps_aspect() -> None:
    win = fc.zoom_window((360, 480), 0.98, 0.02, 4.0)
    assert (win.width, win.height) == (120, 90)
    assert win.left + win.width == 480 and win.top == 0
    centre = fc.zoom_window((360, 480), 0.5, 0.5, 2.0)
    assert (centre.left, centre.top, centre.width, centre.height) == (120, 90, 240, 180)


def test_crop_zoom_is_nearest_neighbour_enlargement() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)
    win = fc.ZoomWindow(10, 5, 15, 10)
    out = fc.crop_zoom(img, win, out_width=60)  # factor 4
    ref = img[5:15, 10:25].repeat(4, axis=0).repeat(4, axis=1)
    np.testing.assert_array_equal(out, ref)


def test_disagreement_count_matches_brute_force() -> None:
    rng = np.random.default_rng(1)
    maps = [rng.integers(0, 3, (17, 13)) for _ in range(3)]
    counts = fc.disagreement_count(maps)
    ref = np.array([[len({m[y, x] for m in maps}) for x in range(13)] for y in range(17)])
    np.testing.assert_array_equal(counts, ref)


def test_boundary_concentration_hand_example() -> None:
    # reference: left half class 0, right half class 1 (boundary between columns 4 and 5)
    ref = np.zeros((10, 10), int)
    ref[:, 5:] = 1
    a = ref.copy()
    b = ref.copy()
    b[:, 4] = 1  # disagreement: column 4 (10 pixels) right at the boundary
    b[0, 0] = 1  # and one pixel far away
    conc = fc.boundary_concentration([a, b, a], ref, band_px=1)
    # render.boundary_mask marks the pixel after a change: column 5; the 1-px band adds 4 and 6
    assert conc.band_share == pytest.approx(30 / 100)
    assert conc.disagree_share == pytest.approx(11 / 100)
    assert conc.disagree_in_band == pytest.approx(10 / 11)
    assert conc.enrichment == pytest.approx((10 / 11) / 0.3)


def test_score_grid_cells_are_nearest_upsampling_of_the_coarse_map() -> None:
    rng = np.random.default_rng(2)
    coarse = rng.integers(0, 11, (3, 4)).astype(np.uint8)
    rgb = np.zeros((96, 128, 3), np.uint8)
    img = fc.score_grid_image(rgb, coarse, stride=32, net_size=(96, 128), alpha=1.0)
    ref = F.interpolate(torch.from_numpy(coarse)[None, None].float(), scale_factor=32, mode="nearest")[0, 0]
    colors = CAMVID.palette_array()[ref.numpy().astype(int)]
    inner = np.ones((96, 128), bool)
    inner[::32, :] = False  # grid lines drawn on the first row/column of each cell
    inner[:, ::32] = False
    np.testing.assert_array_equal(img[inner], colors[inner])
    assert (img[32, :] == 255).all() and (img[:, 64] == 255).all()


def test_coarse_scores_upsampled_equal_the_prediction() -> None:
    from segdemo.inference.pipeline import preprocess
    from segdemo.models.fcn import FCN

    torch.manual_seed(0)
    net = FCN(num_classes=11, stride=16, width="slim", batch_norm=True).eval()
    entry = registry.ModelEntry("x", "FCN-16s", "t", "camvid", build=lambda: net,
                                weights=registry.WeightsSpec("x"),
                                preprocess=registry.Preprocess(resize_size=64))
    rgb = np.random.default_rng(3).integers(0, 255, (90, 120, 3), dtype=np.uint8)
    scores, (h, w) = fc.coarse_scores(net, entry, rgb, 64)
    assert (h, w) == (64, 85) and scores.shape == (11, 4, 6)
    x, _ = preprocess(rgb, entry, 64, "cpu")
    with torch.no_grad():
        full = net(x)[0]
        up = net.final_upsampler()(scores[None])[0, :, :h, :w]
    torch.testing.assert_close(up, full, rtol=1e-4, atol=1e-4)


def test_scores_against_truth_match_torchmetrics() -> None:
    from torchmetrics.functional.classification import multiclass_jaccard_index

    rng = np.random.default_rng(4)
    truth = rng.integers(0, 12, (40, 50))  # includes void (11)
    pred = np.where(rng.random((40, 50)) < 0.7, np.minimum(truth, 10), rng.integers(0, 11, (40, 50)))
    score = score_predictions([pred], [truth], CAMVID)
    ref = multiclass_jaccard_index(torch.from_numpy(pred), torch.from_numpy(truth), num_classes=12,
                                   average="none", ignore_index=11)[:11]
    np.testing.assert_allclose(score.per_class_iou, ref.numpy(), rtol=1e-6)
    assert score.miou == pytest.approx(float(ref.mean()))


def test_synthetic_street_has_its_labels() -> None:
    rgb, labels = fc.synthetic_street(seed=3)
    assert rgb.shape == (360, 480, 3) and labels.shape == (360, 480)
    present = set(np.unique(labels).tolist())
    assert {0, 1, 2, 3, 5, 6, 8} <= present and labels.max() < CAMVID.num_classes


def test_shipped_fcns_disagree_mostly_at_boundaries(data_dir: Path) -> None:
    """The page's claim on real data: where FCN-32s/16s/8s disagree on CamVid val images,
    it is near the ground truth's boundaries (at least twice as often as spread evenly;
    measured 2.1x to 3.4x), and a minority of pixels disagree at all."""
    from segdemo.data import datasets
    from segdemo.models import weights
    from segdemo.inference.pipeline import predict

    models = [(weights.load_model(registry.get(n), allow_random=False), registry.get(n)) for n in fc.VARIANTS]
    files = datasets.camvid_files("val")
    for i in (0, 50, 100):
        rgb, truth = datasets.load_rgb(files[i][0]), datasets.load_label(files[i][1])
        labels = [predict(m, e, rgb, e.preprocess.resize_size).labels for m, e in models]
        conc = fc.boundary_concentration(labels, truth, 4, CAMVID.ignore_index)
        assert conc.enrichment > 1.8, (files[i][0].name, conc)
        assert 0.02 < conc.disagree_share < 0.3


# ------------------------------------------------------------------ U-Net page logic


def test_elastic_zero_sigma_is_identity_and_integer_shift_is_a_shift() -> None:
    rng = np.random.default_rng(5)
    img = torch.from_numpy(rng.integers(0, 255, (1, 1, 32, 40)).astype(np.float32))
    lbl = torch.from_numpy(rng.integers(0, 2, (1, 32, 40)))
    gen = torch.Generator().manual_seed(0)
    flow = ut.elastic_displacement(32, 40, 0.0, 3, gen)
    w_img, w_lbl = ut.warp(img, lbl, flow)
    torch.testing.assert_close(w_img, img, rtol=0, atol=1e-3)  # float round-off of grid_sample's coordinates
    assert torch.equal(w_lbl, lbl)
    shift = torch.zeros(1, 2, 32, 40)
    shift[:, 0] = 3.0  # sample 3 pixels to the right
    s_img, s_lbl = ut.warp(img, lbl, shift)
    torch.testing.assert_close(s_img[..., :, :-3], img[..., :, 3:], rtol=0, atol=1e-3)
    assert torch.equal(s_lbl[..., :, :-3], lbl[..., :, 3:])


def test_warp_matches_scipy_map_coordinates() -> None:
    """A random elastic field: image bilinear, labels nearest, mirrored at the borders,
    against scipy's map_coordinates (order 1 / order 0, mode "mirror")."""
    from scipy import ndimage

    rng = np.random.default_rng(7)
    img = rng.random((1, 1, 24, 30)).astype(np.float32) * 255
    lbl = rng.integers(0, 2, (1, 24, 30))
    flow = ut.elastic_displacement(24, 30, 4.0, 3, torch.Generator().manual_seed(3))
    w_img, w_lbl = ut.warp(torch.from_numpy(img), torch.from_numpy(lbl), flow)
    yy, xx = np.mgrid[0:24, 0:30].astype(np.float64)
    coords = [yy + flow[0, 1].double().numpy(), xx + flow[0, 0].double().numpy()]
    ref_img = ndimage.map_coordinates(img[0, 0].astype(np.float64), coords, order=1, mode="mirror")
    np.testing.assert_allclose(w_img[0, 0].numpy(), ref_img, atol=0.05)
    ref_lbl = ndimage.map_coordinates(lbl[0].astype(np.float64), coords, order=0, mode="mirror")
    frac = np.abs(np.concatenate(coords) % 1 - 0.5)
    assert frac.min() > 1e-4  # no sample sits exactly half-way, where the two roundings may differ
    np.testing.assert_array_equal(w_lbl[0].numpy(), ref_lbl)
    assert float(flow.abs().max()) > 2  # the field really moves pixels


def test_elastic_demo_moves_image_and_mask_together() -> None:
    """Image = 255 * mask: after the page's deformation the image still equals 255 * the
    deformed mask, except where bilinear blending meets an edge; zero sigma changes nothing."""
    _, labels = ut.synthetic_membranes(size=96, seed=2)
    image = (labels * 255).astype(np.uint8)
    demo = ut.elastic_demo(image, labels, sigma=10.0, grid=3, seed=4)
    assert float(demo.flow.abs().max()) > 5
    assert (demo.labels != labels).mean() > 0.05  # it really moved
    agree = ((demo.image > 127) == (demo.labels == 1)).mean()
    assert agree > 0.98
    still = ut.elastic_demo(image, labels, sigma=0.0, grid=3, seed=4)
    np.testing.assert_array_equal(still.labels, labels)
    np.testing.assert_array_equal(still.image, image)
    np.testing.assert_array_equal(still.grid_after, still.grid_before)


def test_tiled_labels_equal_the_prediction() -> None:
    """The page's stitched overlap-tile result (196-pixel tiles) is the shipped U-Net's
    own prediction (its card says tile_output 196), through a separate code path."""
    from segdemo.models import weights
    from segdemo.inference.pipeline import predict

    _need(["unet_isbi2012"])
    entry = registry.get("unet_isbi2012")
    model = weights.load_model(entry, allow_random=False)
    gray, _ = ut.synthetic_membranes(size=200, seed=5)
    gray = gray[:, :180]
    ours = ut.tiled_labels(model, entry.preprocess.mean, entry.preprocess.std, gray, 196)
    ref = predict(model, entry, np.repeat(gray[..., None], 3, axis=2)).labels
    assert ours.shape == gray.shape
    np.testing.assert_array_equal(ours, ref)
    other = ut.tiled_labels(model, entry.preprocess.mean, entry.preprocess.std, gray, 100)
    assert (other == ref).mean() > 0.97  # other tile sizes: the same segmentation up to pooling phase


def test_tile_borders_are_drawn_on_each_tile_edge() -> None:
    from segdemo.inference.tiling import tile_plan

    tiles = tile_plan(50, 70, 32, 10)
    out = ut.draw_tile_borders(np.zeros((50, 70, 3), np.uint8), tiles)
    white = (out == 255).all(-1)
    assert white[:, 0].all() and white[:, 32].all() and white[0].all() and white[32].all()
    assert white[:, 64].all() and not white[1:32, 1:32].any() and not white[33:, 33:64].any()


def test_elastic_field_statistics_follow_sigma() -> None:
    gen = torch.Generator().manual_seed(0)
    flows = ut.elastic_displacement(64, 64, 10.0, 3, gen, n=400)
    corners = flows[:, :, 0, 0]  # align_corners=True: corner pixels are lattice points
    assert 9.0 < float(corners.std()) < 11.0


def test_tile_layout_is_the_mirrored_image() -> None:
    net = UNet(base=4, depth=2, padding="valid")
    rng = np.random.default_rng(6)
    img = rng.integers(0, 255, (50, 45), dtype=np.uint8)
    out_tile = ut.valid_out_tiles(net, 20, 40)[0]
    layout = ut.tile_layout(img, net, out_tile)
    m = valid_margin(2)
    rows, cols = -(-50 // out_tile), -(-45 // out_tile)
    ref = np.pad(img, ((m, m + rows * out_tile - 50), (m, m + cols * out_tile - 45)), mode="reflect")
    np.testing.assert_array_equal(layout.padded, ref)
    assert len(layout.tiles) == rows * cols
    assert layout.in_tile == out_tile + 2 * m
    drawn = ut.draw_tiles(layout, highlight=0)
    assert drawn.shape == (*ref.shape, 3)


def test_valid_out_tiles_are_valid() -> None:
    from segdemo.models.unet import valid_output_size

    net = UNet(base=4, depth=4, padding="valid")
    tiles = ut.valid_out_tiles(net, 60, 400)
    assert 196 in tiles and 388 in tiles
    for t in tiles:
        assert valid_output_size(t + 2 * valid_margin(4), 4) == t


def test_shape_report_explains_bad_sizes_and_applies_the_padding_fix() -> None:
    report = ut.shape_report(ut.meta_unet(64, 4, "valid"), 570, 570)
    assert report.error and report.suggestion == (572, 572)
    assert report.reason == ("unet.size_reason.valid", {"depth": 4})
    # the fix applied: the shapes of the mirror-padded 572x572 input (Figure 1: 572 -> 388)
    assert report.shapes[0].height == 572 and report.shapes[-1].height == 388
    same = ut.shape_report(ut.meta_unet(64, 4, "same"), 500, 500)
    assert same.suggestion == (512, 512) and same.reason == ("unet.size_reason.same", {"depth": 4, "multiple": 16})
    assert same.shapes[-1].height == 512
    ok = ut.shape_report(ut.meta_unet(64, 4, "same"), 512, 512)
    assert ok.error is None and ok.reason is None and ok.shapes[-1].height == 512


@pytest.mark.parametrize("padding,size", [("valid", 92), ("same", 48)])
def test_meta_unet_shapes_equal_a_real_forward(padding: str, size: int) -> None:
    """The page's weightless (meta) network reports the shapes a real network produces."""
    meta = ut.meta_unet(4, 3, padding)
    assert all(p.device.type == "meta" for p in meta.parameters())
    real = UNet(base=4, depth=3, padding=padding).eval()
    recorded: list = []
    with torch.no_grad():
        out = real(torch.zeros(1, 1, size, size), shapes=recorded)
    report = ut.shape_report(meta, size, size)
    assert report.error is None and report.shapes == recorded
    assert (report.shapes[-1].height, report.shapes[-1].width) == tuple(out.shape[-2:])


def test_synthetic_membranes() -> None:
    img, labels = ut.synthetic_membranes(size=128, seed=1)
    assert img.shape == labels.shape == (128, 128)
    assert set(np.unique(labels)) == {0, 1}
    assert img[labels == 0].mean() < img[labels == 1].mean()  # membranes are dark


# ------------------------------------------------------------------ AppTest runs


def _camvid_available() -> bool:
    return (config.data_dir() / "camvid" / "val").is_dir()


def _need(names: list[str]) -> None:
    known = {e.name for e in registry.list_models()}
    missing = [n for n in names if n not in known]
    if missing:
        pytest.fail(f"shipped models missing from assets/models: {missing}")


@pytest.fixture
def app():
    from streamlit.testing.v1 import AppTest

    def make(page: str) -> AppTest:
        return AppTest.from_file(str(PAGES / page), default_timeout=180)

    return make


def _no_exception(at) -> None:
    assert not at.exception, [e.message for e in at.exception]


def test_fcn_page_default_and_synthetic(app) -> None:
    _need([*fc.VARIANTS, "deeplab_slim_camvid"])
    at = app("2_FCN_Skip_Comparison.py").run()
    _no_exception(at)
    assert not at.error
    # the scores table: three variants (+ the dilated model), val numbers from the cards, the paper's
    df = at.table[0].value
    assert len(df) == 4
    paper_col = [c for c in df.columns if "2" in c and ("Table" in c or "표" in c)][0]
    assert list(df.columns).index(paper_col) == 1  # right next to the variant, visible without scrolling
    assert list(df[paper_col][:3]) == pytest.approx([0.594, 0.624, 0.627])
    val_col = [c for c in df.columns if "CamVid" in c and "mIoU" in c][0]
    assert list(df[val_col]) == pytest.approx([registry.get(n).metrics["miou"]
                                               for n in [*fc.VARIANTS, "deeplab_slim_camvid"]])
    camvid = _camvid_available()
    if camvid:
        chosen = at.selectbox(key="fcn_val_image@ko").options[3]
        at.selectbox(key="fcn_val_image@ko").set_value(chosen).run()
    at.radio(key="fcn_source@ko").set_value("synthetic").run()
    _no_exception(at)
    assert len(at.table[0].value.columns) == 6  # with ground truth: per-image columns too
    at.number_input(key="fcn_seed").set_value(7)
    at.slider(key="fcn_zoom").set_value(6.0).run()
    _no_exception(at)
    if camvid:  # choices made under one source survive a visit to another
        at.radio(key="fcn_source@ko").set_value("camvid").run()
        assert at.selectbox(key="fcn_val_image@ko").value == chosen
        at.radio(key="fcn_source@ko").set_value("synthetic").run()
        assert at.number_input(key="fcn_seed").value == 7
        _no_exception(at)


def test_fcn_page_upload_with_a_bad_mask(app) -> None:
    _need(list(fc.VARIANTS))
    at = app("2_FCN_Skip_Comparison.py").run()
    at.radio(key="fcn_source@ko").set_value("upload").run()
    _no_exception(at)
    rgb, labels = fc.synthetic_street(width=160, height=120, seed=2)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    at.file_uploader(key="fcn_uploader").set_value(("street.png", buf.getvalue(), "image/png")).run()
    _no_exception(at)
    mask = io.BytesIO()
    Image.fromarray(labels[:60, :80]).save(mask, format="PNG")  # wrong size
    at.file_uploader(key="fcn_mask").set_value(("mask.png", mask.getvalue(), "image/png")).run()
    _no_exception(at)
    assert at.warning or at.error  # the size problem is reported, the page keeps working
    good = io.BytesIO()
    Image.fromarray(labels).save(good, format="PNG")
    at.file_uploader(key="fcn_mask").set_value(("mask.png", good.getvalue(), "image/png")).run()
    _no_exception(at)
    assert len(at.table[0].value.columns) == 6


def test_unet_page(app) -> None:
    _need(["unet_isbi2012"])
    at = app("3_U-Net.py").run()
    _no_exception(at)
    assert not at.error
    assert len(at.metric) == 4
    at.number_input(key="unet_size").set_value(570).run()
    _no_exception(at)
    assert any("572" in e.value for e in at.error)
    # the reason is in the page's language (Korean by default), and the padded shapes are shown
    assert any(HANGUL.search(c.value) for c in at.caption if "풀링" in c.value)
    assert not any("does not fit" in c.value for c in at.caption)  # not the raw English exception
    assert at.dataframe[0].value.iloc[0, -1] == "[1, 1, 572, 572]"
    assert at.dataframe[0].value.iloc[-1, -1] == "[1, 2, 388, 388]"
    at.radio(key="unet_padding@ko").set_value("same")
    at.number_input(key="unet_size").set_value(500).run()
    _no_exception(at)
    assert any("512" in e.value for e in at.error)
    assert at.dataframe[0].value.iloc[-1, -1] == "[1, 2, 512, 512]"
    at.button(key="unet_apply_fix").click().run()  # the padding fix, one click
    _no_exception(at)
    assert not at.error and at.number_input(key="unet_size").value == 512
    at.number_input(key="unet_size").set_value(572)
    at.radio(key="unet_padding@ko").set_value("valid").run()
    _no_exception(at)
    shapes = at.dataframe[0].value
    assert shapes.iloc[-1, -1] == "[1, 2, 388, 388]"
    at.slider(key="unet_sigma").set_value(20.0).run()
    _no_exception(at)


def test_both_pages_work_without_a_data_directory(app, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh machine: no data sets. The drawn scene and the drawn slice run, with ground truth,
    and the pages say how to get the real data."""
    _need([*fc.VARIANTS, "unet_isbi2012"])
    monkeypatch.setenv("SEGDEMO_DATA_DIR", str(tmp_path / "nothing-here"))
    at = app("2_FCN_Skip_Comparison.py").run()
    _no_exception(at)
    assert not at.error
    source = at.radio(key="fcn_source@ko")
    assert source.value == "synthetic" and len(source.options) == 2  # no CamVid choice offered
    assert any("data download camvid" in c.value for c in at.caption)
    assert len(at.table[0].value.columns) == 6  # the drawn scene has its exact labels
    at = app("3_U-Net.py").run()
    _no_exception(at)
    assert not at.error and len(at.metric) == 4
    assert any("data download isbi2012" in c.value for c in at.caption)
