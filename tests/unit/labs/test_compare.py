"""Compare page logic: disagreement, pairwise agreement, scores, the exported grid."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import multiclass_jaccard_index

from segdemo.data.labels import CAMVID, get_label_set
from segdemo.evaluate.scoring import evaluate_pair
from segdemo.labs import compare
from segdemo.labs import fcn_skips as fcn_skips
from segdemo.models import registry

M1 = np.array([[0, 0, 1], [2, 2, 2]], np.uint8)
M2 = np.array([[0, 1, 1], [2, 0, 1]], np.uint8)
M3 = np.array([[0, 1, 2], [1, 0, 0]], np.uint8)


def test_majority_and_votes_against_by_hand() -> None:
    # pixel by pixel: (0,0,0) (0,1,1) (1,1,2) / (2,2,1) (2,0,0) (2,1,0): the last is a three-way tie -> class 0
    majority, against = compare.majority_vote([M1, M2, M3], 3)
    np.testing.assert_array_equal(majority, [[0, 1, 1], [2, 0, 0]])
    np.testing.assert_array_equal(against, [[0, 1, 1], [1, 1, 2]])


def test_votes_against_match_an_independent_count() -> None:
    rng = np.random.default_rng(0)
    maps = [rng.integers(0, 4, (9, 11)).astype(np.uint8) for _ in range(5)]
    majority, against = compare.majority_vote(maps, 4)
    for y in range(9):
        for x in range(11):
            votes = Counter(int(m[y, x]) for m in maps)
            top = max(votes.values())
            assert majority[y, x] == min(c for c, v in votes.items() if v == top)
            assert against[y, x] == 5 - top


def test_disagreement_share_and_boundary_band_by_hand() -> None:
    # truth: left half class 0, right half class 1 -> the boundary is column 10 (where a pixel differs
    # from its left neighbour); within k = 2 px: columns 8..12. Two models disagree in columns 9 and 15.
    truth = np.zeros((6, 20), np.uint8)
    truth[:, 10:] = 1
    a = truth.copy()
    b = truth.copy()
    b[:, 9] = 1
    b[:, 15] = 0
    d = compare.disagreement([a, b], CAMVID, band_px=2, truth=truth)
    assert d.share == pytest.approx(12 / 120)
    assert d.in_band == pytest.approx(0.5)  # column 9 is in the band, column 15 is not
    assert d.band_share == pytest.approx(5 / 20)
    assert d.enrichment == pytest.approx(2.0)
    assert d.histogram() == [108, 12]
    assert d.reference == "truth"


def test_disagreement_ignores_void_truth_and_counts_like_numpy() -> None:
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 12, (30, 40)).astype(np.uint8)  # 11 = void in CamVid
    maps = [rng.integers(0, 11, (30, 40)).astype(np.uint8) for _ in range(4)]
    d = compare.disagreement(maps, CAMVID, band_px=3, truth=truth)
    valid = truth != CAMVID.ignore_index
    stack = np.stack(maps)
    disagree = (stack != stack[0]).any(axis=0)
    assert d.share == pytest.approx((disagree & valid).sum() / valid.sum())
    assert sum(d.histogram()) == valid.sum()


def test_pairwise_iou_matches_torchmetrics() -> None:
    rng = np.random.default_rng(2)
    maps = [rng.integers(0, 5, (20, 30)).astype(np.uint8) for _ in range(3)]
    maps[2][maps[2] == 4] = 3  # model 3 never predicts class 4
    ious = compare.pairwise_class_iou(maps, 6)  # class 5: nobody predicts it
    for k, (i, j) in enumerate(compare.model_pairs(3)):
        expected = multiclass_jaccard_index(torch.from_numpy(maps[i]).long(), torch.from_numpy(maps[j]).long(),
                                            num_classes=6, average=None).numpy()
        present = np.isin(np.arange(6), np.union1d(np.unique(maps[i]), np.unique(maps[j])))
        np.testing.assert_allclose(ious[k][present], expected[present], rtol=1e-6)
        assert np.isnan(ious[k][~present]).all()


def test_class_agreement_by_hand() -> None:
    # class 1: M1 has 1 pixel, M2 has 3, overlap 1 -> IoU 1/3; M1 vs M3: {(0,2)} vs {(0,1),(1,0)} -> 0;
    # M2 vs M3: {(0,1),(0,2),(1,2)} vs {(0,1),(1,0)} -> 1/4
    rows = {r.class_id: r for r in compare.class_agreement([M1, M2, M3], 3)}
    assert rows[1].mean_iou == pytest.approx((1 / 3 + 0 + 1 / 4) / 3)
    assert rows[1].min_iou == 0
    assert rows[1].worst_pair == (0, 2)
    assert rows[1].models_predicting == 3
    assert rows[1].pixel_share == pytest.approx(4 / 6)


def test_class_agreement_skips_pairs_where_neither_model_predicts_the_class() -> None:
    # class 2 only in models A and B: pairs (A,B) IoU 1/2, (A,C) 0, (B,C) 0; pair-free classes are left out
    a = np.array([[2, 2, 0]], np.uint8)
    b = np.array([[2, 0, 0]], np.uint8)
    c = np.array([[0, 0, 0]], np.uint8)
    rows = {r.class_id: r for r in compare.class_agreement([a, b, c], 4)}
    assert set(rows) == {0, 2}
    assert rows[2].mean_iou == pytest.approx((1 / 2 + 0 + 0) / 3)
    assert rows[2].models_predicting == 2
    d = np.array([[1, 1, 1]], np.uint8)  # class 2 in A only: (A,B)=0 ... and (B,D), (C,D) have no class 2 at all
    rows = {r.class_id: r for r in compare.class_agreement([a, c, d], 4)}
    assert rows[2].mean_iou == 0 and rows[2].worst_pair in ((0, 1), (0, 2))
    assert np.isfinite(rows[2].min_iou)


def test_pairwise_miou_is_symmetric_with_ones_on_the_diagonal() -> None:
    m = compare.pairwise_miou([M1, M2, M3], 3)
    np.testing.assert_allclose(m, m.T)
    np.testing.assert_allclose(np.diag(m), 1)
    assert m[0, 1] == pytest.approx(np.nanmean(compare.pairwise_class_iou([M1, M2], 3)[0]))


def test_scores_are_evaluate_pair_and_pixel_accuracy_is_a_plain_count() -> None:
    rgb, truth = fcn_skips.synthetic_street(96, 72, seed=3)
    rng = np.random.default_rng(3)
    noisy = truth.copy()
    flip = rng.random(truth.shape) < 0.2
    noisy[flip] = rng.integers(0, 11, flip.sum())
    scores = compare.score_models({"a": truth, "b": noisy}, truth, CAMVID)
    assert compare.score_summary(scores["a"]) == {"mIoU": 1.0, "pixel_accuracy": 1.0, "mean_boundary_F1": 1.0}
    direct = evaluate_pair(noisy, truth, CAMVID, CAMVID.ignore_index, name="b")
    assert compare.score_summary(scores["b"])["mIoU"] == direct.scores.summary["mIoU"]
    assert compare.score_summary(scores["b"])["pixel_accuracy"] == pytest.approx((noisy == truth).mean())


def test_selection_rules() -> None:
    camvid = [registry.get(n) for n in ("fcn32s_camvid", "fcn8s_camvid")]
    compare.check_selection(camvid)
    with pytest.raises(compare.CompareError) as err:
        compare.check_selection(camvid[:1])
    assert err.value.key == "compare.err.count"
    with pytest.raises(compare.CompareError) as err:
        compare.check_selection(camvid + [registry.get("lraspp_mobilenet_v3_large")])
    assert err.value.key == "compare.err.label_sets"
    with pytest.raises(compare.CompareError) as err:
        compare.check_selection([registry.get("unet_isbi2012")] * 2)
    assert err.value.key == "compare.err.duplicate"
    usable = [e.name for e in registry.list_models() if e.label_set_key == "camvid"]
    picked = compare.default_selection("camvid", usable)
    assert len(picked) == compare.DEFAULT_COUNT and picked[:3] == ["fcn32s_camvid", "fcn8s_camvid", "deeplab_slim_camvid"]


def test_grid_image_lays_out_titled_panels() -> None:
    panels = [(f"panel {i}", np.full((40, 60, 3), 40 * i, np.uint8)) for i in range(4)]
    grid = compare.grid_image(panels, columns=3, gap=6, title_px=20)
    assert grid.shape == (2 * (40 + 20) + 3 * 6, 3 * 60 + 4 * 6, 3)
    # the second panel's pixels sit below its title, right of the first
    assert (grid[6 + 20 + 5, 6 + 60 + 6 + 5] == 40).all()
    # a long title is shortened to its panel: the gap between panels stays white
    long = compare.grid_image([("a very long model name · with a backbone · and more", panels[0][1])] * 2,
                              columns=2, gap=6, title_px=20)
    assert (long[:20, 6 + 60: 6 + 60 + 6] == 255).all()


def test_comparison_rows_and_csv_name_every_column() -> None:
    from segdemo.inference.cost import Cost

    c = Cost(model="x", device="cpu", threads=1, half=False, image_size=(10, 20), input_size=(10, 20),
             padded_size=(10, 20), warmup=0, repeats=1, cold_ms={"preprocess": 1, "forward": 2, "postprocess": 3},
             warm_ms={"preprocess": 1, "forward": 2, "postprocess": 3}, cold_total_ms=6, warm_total_ms=6,
             peak_forward_bytes=2**20, memory_method="rss_high_water_mark", params_trainable=10, params_total=20,
             flops=3 * 10**9, published_miou=0.5, published_source="val", random_weights=False)
    rows = compare.comparison_rows(["x"], {"x": c})
    assert rows[0]["GFLOPs"] == 3 and rows[0]["peak_forward_MiB"] == 1 and rows[0]["input"] == "20x10"
    text = compare.rows_csv(rows).decode()
    assert text.splitlines()[0].split(",")[:3] == ["model", "input", "preprocess_ms"]
    assert get_label_set("voc").num_classes == 21
