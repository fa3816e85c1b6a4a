"""Panoptic quality (segdemo.evaluate.panoptic*) against panopticapi's rules.

Expectations are worked out here from pixel counts (numpy boolean masks) and
the JSON, or by ``reference_pq``: a deliberately plain re-implementation of
the rules (one boolean mask per segment, no id arithmetic).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segdemo.cli import main
from segdemo.cli import pq as pq_cli
from segdemo.evaluate.panoptic import (Category, PanopticFormatError, PanopticImage, Segment,
                                       evaluate_pairs, match_image)
from segdemo.evaluate.panoptic_io import (BACKGROUND_SEGMENT_ID, evaluate_folders, ids_to_rgb,
                                          instance_ids_to_panoptic, masks_to_instance_ids, rgb_to_ids)

THING, STUFF, OTHER = Category(1, "person", True), Category(2, "grass", False), Category(3, "dog", True)
CATS = {c.id: c for c in (THING, STUFF, OTHER)}


def image(ids, segs, image_id=0) -> PanopticImage:
    """A panoptic image from an id array and (id, category, iscrowd) triples."""
    ids = np.asarray(ids, dtype=np.uint32)
    return PanopticImage(image_id, ids, {i: Segment(i, c, bool(crowd)) for i, c, crowd in segs})


# ------------------------------------------------------------------ the reference


def reference_pq(pairs, categories):
    """The rules, straight from their wording: per class TP/FP/FN/IoU, then the group means."""
    stats = {c: [0, 0, 0, 0.0] for c in categories}  # tp, fp, fn, iou sum
    for gt, pred in pairs:
        gt_void = gt.ids == 0
        matched_gt, matched_pred = set(), set()
        for g in gt.segments.values():
            gm = gt.ids == g.id
            for p in pred.segments.values():
                if g.iscrowd or g.category_id != p.category_id:
                    continue
                pm = pred.ids == p.id
                inter = np.sum(gm & pm)
                union = np.sum(gm | pm) - np.sum(pm & gt_void)
                if inter / union > 0.5:
                    stats[g.category_id][0] += 1
                    stats[g.category_id][3] += inter / union
                    matched_gt.add(g.id)
                    matched_pred.add(p.id)
        for g in gt.segments.values():
            if g.id not in matched_gt and not g.iscrowd:
                stats[g.category_id][2] += 1
        for p in pred.segments.values():
            if p.id in matched_pred:
                continue
            pm = pred.ids == p.id
            crowd = [g.id for g in gt.segments.values() if g.iscrowd and g.category_id == p.category_id]
            ignored = np.sum(pm & gt_void) + (np.sum(pm & (gt.ids == crowd[-1])) if crowd else 0)
            if ignored / np.sum(pm) <= 0.5:
                stats[p.category_id][1] += 1
    return group_means(stats, categories)


def group_means(stats, categories):
    """{'all'|'things'|'stuff': (pq, sq, rq, n)} and per class (pq, sq, rq) from (tp, fp, fn, iou) counts."""
    per = {}
    for c, (tp, fp, fn, iou) in stats.items():
        if tp + fp + fn:
            d = tp + fp / 2 + fn / 2
            per[c] = (iou / d, iou / tp if tp else 0.0, tp / d)
    out = {}
    for name, keep in (("all", lambda c: True), ("things", lambda c: categories[c].isthing),
                       ("stuff", lambda c: not categories[c].isthing)):
        rows = [v for c, v in per.items() if keep(c)]
        out[name] = tuple(np.mean([r[i] for r in rows]) for i in range(3)) + (len(rows),) if rows \
            else (None, None, None, 0)
    return out, per


def assert_per_class(per_class, expected_per_class):
    """Per-class (pq, sq, rq) of the counted classes equal the expected ones (same classes, 1e-12)."""
    got = {c: (v.pq, v.sq, v.rq) for c, v in per_class.items() if v.counted}
    assert set(got) == set(expected_per_class)
    for c, values in got.items():
        assert values == pytest.approx(expected_per_class[c], abs=1e-12), c


def assert_groups(result, expected):
    for name in ("all", "things", "stuff"):
        g = getattr(result, name)
        pq, sq, rq, n = expected[name]
        assert g.n == n, name
        if n:
            assert (g.pq, g.sq, g.rq) == pytest.approx((pq, sq, rq), abs=1e-12), name
        else:
            assert g.pq is None


# ------------------------------------------------------------ constructed cases


def test_iou_exactly_half_is_not_a_match_and_just_above_is():
    gt = image([[1, 1, 1, 1]], [(1, 1, 0)])
    half = match_image(gt, image([[5, 5, 0, 0]], [(5, 1, 0)]), CATS)  # 2 / 4
    assert (len(half.tp), len(half.fp), len(half.fn)) == (0, 1, 1)
    above = match_image(gt, image([[5, 5, 5, 0]], [(5, 1, 0)]), CATS)  # 3 / 4
    assert [(m.gt_id, m.pred_id, m.iou) for m in above.tp] == [(1, 5, 0.75)]
    result, _ = evaluate_pairs([(gt, image([[5, 5, 0, 0]], [(5, 1, 0)]))], CATS)
    assert result.per_class[1].pq == 0.0 and result.all.n == 1


def test_union_leaves_out_the_prediction_on_gt_void():
    # GT: 4 person pixels, 4 void; the prediction covers all 8: IoU = 4 / (8 + 4 - 4 - 4) = 1.
    gt = image([[1, 1, 1, 1, 0, 0, 0, 0]], [(1, 1, 0)])
    m = match_image(gt, image([[7] * 8], [(7, 1, 0)]), CATS)
    assert m.tp[0].iou == 1.0 and m.tp[0].union == 4
    # the same pixels labelled with a stuff segment instead of void do count: IoU = 4 / 8, no match
    gt2 = image([[1, 1, 1, 1, 2, 2, 2, 2]], [(1, 1, 0), (2, 2, 0)])
    assert match_image(gt2, image([[7] * 8], [(7, 1, 0)]), CATS).tp == []


def test_crowd_is_never_matched_and_shields_predictions_of_its_class():
    gt = image([[1, 1, 1, 1, 2, 2]], [(1, 1, 1), (2, 2, 0)])  # segment 1: a person crowd
    pred = image([[5, 5, 5, 5, 6, 6]], [(5, 1, 0), (6, 2, 0)])
    m = match_image(gt, pred, CATS)
    assert [t.gt_id for t in m.tp] == [2] and m.fn == [] and m.fp == [] and m.crowd_gt == [1]
    assert [(s.segment_id, s.ignored_fraction) for s in m.ignored_predictions] == [(5, 1.0)]
    # a dog on the person crowd is a false positive: only same-class crowd shields
    dog = match_image(gt, image([[5, 5, 5, 5, 6, 6]], [(5, 3, 0), (6, 2, 0)]), CATS)
    assert [s.segment_id for s in dog.fp] == [5]


def test_unmatched_prediction_ignored_only_when_more_than_half_on_void():
    gt = image([[1, 1, 0, 0, 0, 0, 3, 3]], [(1, 2, 0), (3, 2, 0)])
    three_quarters = image([[0, 0, 0, 9, 9, 9, 9, 0]], [(9, 1, 0)])  # 3 of 4 pixels on void
    m = match_image(gt, three_quarters, CATS)
    assert m.fp == [] and m.ignored_predictions[0].ignored_fraction == 0.75
    half = image([[0, 0, 0, 0, 9, 9, 9, 9]], [(9, 1, 0)])  # 2 of 4: exactly half is still a FP
    assert [s.ignored_fraction for s in match_image(gt, half, CATS).fp] == [0.5]


def test_no_predictions_all_false_negatives():
    gt = image([[1, 1, 2, 2, 0]], [(1, 1, 0), (2, 2, 0)])
    result, images = evaluate_pairs([(gt, image(np.zeros((1, 5)), []))], CATS)
    assert [s.segment_id for s in images[0].fn] == [1, 2]
    assert (result.all.pq, result.all.n, result.things.n, result.stuff.n) == (0.0, 2, 1, 1)
    assert result.per_class[3].counted is False  # a class nobody mentions is left out


def test_no_ground_truth_and_all_void():
    empty = image(np.zeros((2, 3)), [])
    pred = image([[1, 1, 1], [2, 2, 2]], [(1, 1, 0), (2, 2, 0)])
    result, images = evaluate_pairs([(empty, pred)], CATS)  # every prediction lies on void: ignored
    assert images[0].fp == [] and len(images[0].ignored_predictions) == 2
    assert result.all.n == 0 and result.all.pq is None
    result, _ = evaluate_pairs([(empty, image(np.zeros((2, 3)), []))], CATS)
    assert (result.all.n, result.things.n, result.stuff.n) == (0, 0, 0)
    # no GT segment at all but labelled pixels (an id missing from segments_info): the prediction is a FP
    gt = PanopticImage(0, np.full((2, 3), 4, np.uint32), {})
    assert len(match_image(gt, pred, CATS).fp) == 2


def test_things_stuff_means_and_pq_is_sq_times_rq():
    gt = image([[1, 1, 1, 2, 2, 2, 3, 3]], [(1, 1, 0), (2, 2, 0), (3, 3, 0)])
    pred = image([[1, 1, 0, 2, 2, 2, 2, 0]], [(1, 1, 0), (2, 2, 0)])
    result, _ = evaluate_pairs([(gt, pred)], CATS)
    # person: IoU 2/3 (TP); grass: 3 / 4 (TP); dog: FN.
    assert result.per_class[1].pq == pytest.approx(2 / 3) and result.per_class[2].pq == pytest.approx(0.75)
    assert result.per_class[3].pq == 0.0 and result.per_class[3].fn == 1
    assert result.things.pq == pytest.approx((2 / 3 + 0) / 2) and result.stuff.pq == pytest.approx(0.75)
    assert result.all.pq == pytest.approx((2 / 3 + 0.75 + 0) / 3) and result.all.n == 3
    for c in result.per_class.values():
        assert c.pq == pytest.approx(c.sq * c.rq)


def test_prediction_sanity_checks():
    gt = image([[1, 1]], [(1, 1, 0)])
    with pytest.raises(PanopticFormatError, match="in the prediction PNG"):
        match_image(gt, image([[5, 6]], [(5, 1, 0)]), CATS)
    with pytest.raises(PanopticFormatError, match="not in its PNG"):
        match_image(gt, image([[5, 5]], [(5, 1, 0), (6, 1, 0)]), CATS)
    with pytest.raises(PanopticFormatError, match="unknown category_id 99"):
        match_image(gt, image([[5, 5]], [(5, 99, 0)]), CATS)
    with pytest.raises(PanopticFormatError, match="pixels"):
        match_image(gt, image([[5, 5, 5]], [(5, 1, 0)]), CATS)


def test_rgb_id_encoding_round_trip():
    ids = np.array([[0, 1, 256, 65536, 256 ** 3 - 1, 8345037]], dtype=np.uint32)
    rgb = ids_to_rgb(ids)
    assert rgb[0, 1].tolist() == [1, 0, 0] and rgb[0, 2].tolist() == [0, 1, 0] and rgb[0, 3].tolist() == [0, 0, 1]
    assert (rgb_to_ids(rgb) == ids).all()


def test_reference_agrees_on_random_segmentations():
    rng = np.random.default_rng(0)
    for trial in range(20):
        gt_ids = rng.integers(0, 6, (12, 12)).repeat(2, 0)
        pred_ids = np.where(rng.random(gt_ids.shape) < 0.8, gt_ids, rng.integers(0, 6, gt_ids.shape)) + 10 * (
            gt_ids > 0)
        pred_ids[pred_ids == 10] = 0
        gcat = {i: int(rng.integers(1, 4)) for i in range(1, 6)}
        gt = image(gt_ids, [(i, gcat[i], int(rng.random() < 0.2)) for i in np.unique(gt_ids) if i])
        pred = image(pred_ids, [(i, gcat.get(i % 10, 1) if rng.random() < 0.8 else int(rng.integers(1, 4)), 0)
                                for i in np.unique(pred_ids) if i])
        result, _ = evaluate_pairs([(gt, pred)], CATS)
        expected, per = reference_pq([(gt, pred)], CATS)
        assert_groups(result, expected)
        assert_per_class(result.per_class, per)


# --------------------------------------------------------------- torchmetrics


def test_torchmetrics_differs_on_predicted_void():
    """A person half left void and a person left void entirely: panopticapi 0.7, torchmetrics 1.0."""
    torch = pytest.importorskip("torch")
    from torchmetrics.detection import PanopticQuality

    gt_ids = np.full((4, 10), 9)  # 9: grass (stuff), 1 and 2: two people of 10 pixels
    gt_ids[0], gt_ids[2] = 1, 2
    pred_ids = gt_ids.copy()
    pred_ids[0, 6:] = 0  # person 1: 6 of its 10 pixels predicted, 4 left void
    pred_ids[2] = 0  # person 2: not predicted at all (void)
    gt = image(gt_ids, [(1, 1, 0), (2, 1, 0), (9, 2, 0)])
    pred = image(pred_ids, [(1, 1, 0), (9, 2, 0)])
    result, _ = evaluate_pairs([(gt, pred)], {1: THING, 2: STUFF})
    # panopticapi: person TP IoU 6/10 and FN -> PQ 0.6 / 1.5 = 0.4; grass PQ 1; All 0.7
    assert result.per_class[1].pq == pytest.approx(0.4) and result.per_class[1].fn == 1
    assert result.all.pq == pytest.approx(0.7)

    def two_channel(ids, cat):
        category = np.vectorize(lambda i: cat.get(int(i), 99))(ids)  # 99: unknown = void for torchmetrics
        return torch.tensor(np.stack([category, ids], -1)[None])

    cats = {1: 1, 2: 1, 9: 2}
    metric = PanopticQuality(things={1}, stuffs={2}, allow_unknown_preds_category=True, return_sq_and_rq=True,
                             return_per_class=True)
    metric.update(two_channel(pred_ids, cats), two_channel(gt_ids, cats))
    per_class = metric.compute()  # rows: person, grass; columns PQ, SQ, RQ
    # torchmetrics: the person's void pixels leave its union (IoU 6/6) and the unseen person is no FN
    assert per_class[0].tolist() == pytest.approx([1.0, 1.0, 1.0])
    assert float(per_class[:, 0].mean()) == pytest.approx(1.0)
    # with no predicted void, the two agree: fill person 2 with grass (a FN for both, person 1 exact)
    pred2 = gt_ids.copy()
    pred2[2] = 9
    ours, _ = evaluate_pairs([(gt, image(pred2, [(1, 1, 0), (9, 2, 0)]))], {1: THING, 2: STUFF})
    metric.reset()
    metric.update(two_channel(pred2, cats), two_channel(gt_ids, cats))
    theirs = metric.compute()
    assert theirs[:, 0].tolist() == pytest.approx([ours.per_class[1].pq, ours.per_class[2].pq])


# ------------------------------------------------------------ instance masks


def test_instance_ids_as_panoptic_background_stuff_or_void():
    mask = np.array([[0, 1, 1], [0, 2, 0]])
    stuff = instance_ids_to_panoptic(mask, "x", scores=[0.9, 0.4])
    assert stuff.segments[BACKGROUND_SEGMENT_ID].category_id == 0 and stuff.segments[2].score == 0.4
    assert (stuff.ids == np.array([[BACKGROUND_SEGMENT_ID, 1, 1], [BACKGROUND_SEGMENT_ID, 2,
                                                                    BACKGROUND_SEGMENT_ID]])).all()
    void = instance_ids_to_panoptic(mask, "x", background="void")
    assert sorted(void.segments) == [1, 2] and (void.ids == mask).all()
    ids, kept = masks_to_instance_ids(np.array([[[0.9, 0.9, 0.0]], [[0.0, 0.8, 0.8]], [[0.7, 0, 0]]]),
                                      [0.5, 0.9, 0.2], min_score=0.3)
    assert ids.tolist() == [[2, 1, 1]] and kept == [0.9, 0.5]  # higher score pasted first keeps the overlap


# -------------------------------------------------------------- real data


@pytest.fixture
def sample_dir(data_dir: Path) -> Path:
    root = data_dir / "coco_panoptic" / "panopticapi_sample" / "sample_data"
    if not root.is_dir():
        pytest.skip("panopticapi sample absent")
    return root


@pytest.fixture
def coco_dir(data_dir: Path) -> Path:
    root = data_dir / "coco_panoptic"
    if not (root / "panoptic_train2017.json").is_file():
        pytest.skip("COCO panoptic ground truth absent")
    return root


def load_gt(json_path: Path, folder: Path):
    data = json.loads(json_path.read_text())
    ids = {}
    for ann in data["annotations"]:
        rgb = np.asarray(Image.open(folder / ann["file_name"]), dtype=np.uint32)
        ids[ann["image_id"]] = rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]
    return data, ids


def write_prediction(tmp: Path, data: dict, ids: dict, annotations: list[dict]) -> tuple[Path, Path]:
    folder = tmp / "pred"
    folder.mkdir()
    for ann in annotations:
        Image.fromarray(ids_to_rgb(ids[ann["image_id"]])).save(folder / ann["file_name"])
    (tmp / "pred.json").write_text(json.dumps({"annotations": annotations, "categories": data["categories"]}))
    return tmp / "pred.json", folder


def categories_of(data):
    return {c["id"]: Category(c["id"], c["name"], c["isthing"] == 1) for c in data["categories"]}


def segment_counts(data):
    """(tp, fp, fn, iou) per class of a perfect prediction: every non-crowd GT segment matched with IoU 1."""
    stats = {c["id"]: [0, 0, 0, 0.0] for c in data["categories"]}
    for ann in data["annotations"]:
        for s in ann["segments_info"]:
            if not s["iscrowd"]:
                stats[s["category_id"]][0] += 1
                stats[s["category_id"]][3] += 1.0
    return stats


@pytest.mark.data
def test_panopticapi_sample_against_itself(sample_dir: Path):
    gt_json, gt_folder = sample_dir / "panoptic_examples.json", sample_dir / "panoptic_examples"
    data = json.loads(gt_json.read_text())
    result, images = evaluate_folders(gt_json, gt_folder, gt_json, gt_folder)
    cats = categories_of(data)
    seen = {s["category_id"] for a in data["annotations"] for s in a["segments_info"] if not s["iscrowd"]}
    assert result.all.n == len(seen) == 8
    assert result.things.n == sum(cats[c].isthing for c in seen) == 4
    assert (result.all.pq, result.things.sq, result.stuff.rq) == (1.0, 1.0, 1.0)
    # SOURCE.md: 18 + 32 segments, 3 of them crowd -> 47 TP, crowd never counted
    assert sum(len(i.tp) for i in images) == 47 and sum(len(i.crowd_gt) for i in images) == 3
    assert all(not i.fp and not i.fn for i in images)


@pytest.mark.data
def test_panopticapi_sample_perturbed(sample_dir: Path, tmp_path: Path):
    """Each image: the largest thing dropped to void, a stuff segment relabelled; checked from the JSON."""
    gt_json, gt_folder = sample_dir / "panoptic_examples.json", sample_dir / "panoptic_examples"
    data, ids = load_gt(gt_json, gt_folder)
    cats = categories_of(data)
    stats = segment_counts(data)
    pred_ids, annotations = {}, []
    for ann in data["annotations"]:
        segs = [dict(s) for s in ann["segments_info"]]
        things = [s for s in segs if cats[s["category_id"]].isthing and not s["iscrowd"]]
        dropped = max(things, key=lambda s: s["area"])
        stuff = max((s for s in segs if not cats[s["category_id"]].isthing), key=lambda s: s["area"])
        new_cat = next(c for c in cats if not cats[c].isthing and c != stuff["category_id"])
        stats[dropped["category_id"]][0] -= 1
        stats[dropped["category_id"]][3] -= 1
        stats[dropped["category_id"]][2] += 1  # FN
        stats[stuff["category_id"]][0] -= 1
        stats[stuff["category_id"]][3] -= 1
        stats[stuff["category_id"]][2] += 1  # FN for the old class ...
        stats[new_cat][1] += 1  # ... FP for the new one
        stuff["category_id"] = new_cat
        pred_ids[ann["image_id"]] = np.where(ids[ann["image_id"]] == dropped["id"], 0, ids[ann["image_id"]])
        annotations.append({**ann, "segments_info": [s for s in segs if s["id"] != dropped["id"]]})
    pred_json, pred_folder = write_prediction(tmp_path, data, pred_ids, annotations)
    result, _ = evaluate_folders(gt_json, gt_folder, pred_json, pred_folder)
    expected, _ = group_means(stats, cats)
    assert_groups(result, expected)
    assert result.all.n > 8  # the 8 GT classes + the new stuff label(s), FP only
    print("sample perturbed", result.all, result.things, result.stuff)


@pytest.mark.data
def test_coco_merged_split_shifted(coco_dir: Path):
    """100 COCO images: merge two same-class things, split the largest stuff, shift one thing."""
    data, ids = load_gt(coco_dir / "panoptic_train2017.json", coco_dir / "panoptic")
    cats = categories_of(data)
    stats = segment_counts(data)
    pairs, n_merged, n_split = [], 0, 0
    for ann in data["annotations"]:
        gt_ids = ids[ann["image_id"]]
        segs = {s["id"]: dict(s) for s in ann["segments_info"]}
        pred = gt_ids.copy()
        pred_segs = {k: dict(v) for k, v in segs.items()}
        by_cat: dict[int, list[dict]] = {}
        for s in segs.values():
            if cats[s["category_id"]].isthing and not s["iscrowd"]:
                by_cat.setdefault(s["category_id"], []).append(s)
        group = next((sorted(g, key=lambda s: -s["area"]) for g in by_cat.values() if len(g) >= 2), None)
        if group is not None:  # merge: the pred segment is a1 + a2; IoU with the larger a1 / (a1 + a2)
            a, b = group[0], group[1]
            pred[gt_ids == b["id"]] = a["id"]
            del pred_segs[b["id"]]
            st = stats[a["category_id"]]
            st[0] -= 2
            st[3] -= 2
            iou = np.sum(gt_ids == a["id"]) / (np.sum(gt_ids == a["id"]) + np.sum(gt_ids == b["id"]))
            if iou > 0.5:
                st[0] += 1
                st[3] += iou
                st[2] += 1  # b
            else:
                st[2] += 2
                st[1] += 1
            n_merged += 1
        stuff = [s for s in segs.values() if not cats[s["category_id"]].isthing and not s["iscrowd"]]
        if stuff:  # split the largest stuff segment at its median column: left keeps the id
            s = max(stuff, key=lambda s: s["area"])
            mask = gt_ids == s["id"]
            cols = np.nonzero(mask)[1]
            right = mask & (np.arange(mask.shape[1])[None] >= np.median(cols))
            new_id = int(gt_ids.max()) + 1
            pred[right] = new_id
            pred_segs[new_id] = {**s, "id": new_id}
            left_n, right_n = int(np.sum(mask & ~right)), int(np.sum(right))
            big = max(left_n, right_n)
            st = stats[s["category_id"]]
            st[3] -= 1
            if big / mask.sum() > 0.5:
                st[3] += big / mask.sum()
                st[1] += 1
            else:
                st[0] -= 1
                st[1] += 2
                st[2] += 1
            n_split += 1
        pairs.append((PanopticImage(ann["image_id"], gt_ids, {k: Segment(k, v["category_id"], v["iscrowd"] == 1,
                                                                        v["area"]) for k, v in segs.items()}),
                      PanopticImage(ann["image_id"], pred, {k: Segment(k, v["category_id"], v["iscrowd"] == 1)
                                                            for k, v in pred_segs.items()})))
    assert n_merged > 30 and n_split > 90
    result, _ = evaluate_pairs(pairs, cats)
    expected, per = group_means(stats, cats)
    assert_groups(result, expected)
    assert result.all.pq < 1.0

    # shifted: every segment 8 px to the right (void enters on the left); the reference checks 15 images
    shifted = []
    for gt, _pred in pairs[:15]:
        moved = np.zeros_like(gt.ids)
        moved[:, 8:] = gt.ids[:, :-8]
        present = set(np.unique(moved).tolist()) - {0}
        shifted.append((gt, PanopticImage(gt.image_id, moved, {k: Segment(k, s.category_id) for k, s in
                                                               gt.segments.items() if k in present})))
    result, images = evaluate_pairs(shifted, cats)
    expected, per = reference_pq(shifted, cats)
    assert_groups(result, expected)
    assert_per_class(result.per_class, per)
    assert 0.3 < result.all.pq < 0.95 and sum(len(i.fn) for i in images) > 0


# ----------------------------------------------------------------------- CLI


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    rc = main(["pq", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.data
def test_cli_json_on_dropped_coco_segments(coco_dir: Path, tmp_path: Path, capsys):
    gt_json, gt_folder = coco_dir / "panoptic_train2017.json", coco_dir / "panoptic"
    data, ids = load_gt(gt_json, gt_folder)
    keep = data["annotations"][:20]
    gt_small = tmp_path / "gt.json"
    gt_small.write_text(json.dumps({**data, "annotations": keep}))
    stats = segment_counts({**data, "annotations": keep})
    pred_ids, annotations = {}, []
    for ann in keep:  # drop every third non-crowd segment
        dropped = [s["id"] for s in ann["segments_info"] if not s["iscrowd"]][::3]
        for s in ann["segments_info"]:
            if s["id"] in dropped:
                stats[s["category_id"]][0] -= 1
                stats[s["category_id"]][3] -= 1
                stats[s["category_id"]][2] += 1
        pred_ids[ann["image_id"]] = np.where(np.isin(ids[ann["image_id"]], dropped), 0, ids[ann["image_id"]])
        annotations.append({**ann, "segments_info": [s for s in ann["segments_info"] if s["id"] not in dropped]})
    pred_json, pred_folder = write_prediction(tmp_path, data, pred_ids, annotations)
    args = ["--gt-json", str(gt_small), "--gt-folder", str(gt_folder), "--pred-json", str(pred_json),
            "--pred-folder", str(pred_folder)]
    rc, out, _ = run_cli(capsys, *args, "--json")
    assert rc == 0
    report = json.loads(out)
    expected, per = group_means(stats, categories_of(data))
    for name in ("all", "things", "stuff"):
        assert (report[name]["pq"], report[name]["sq"], report[name]["rq"], report[name]["n"]) == \
            pytest.approx(expected[name])
    # dropped segments cost recognition only: SQ is 1 wherever a TP is left (0 for classes with none)
    assert all(v["sq"] == 1.0 for v in report["per_class"].values() if v["tp"]) and report["all"]["pq"] < 1.0
    got = {int(k): (v["pq"], v["sq"], v["rq"]) for k, v in report["per_class"].items() if v["counted"]}
    assert set(got) == set(per) and all(got[c] == pytest.approx(per[c], abs=1e-12) for c in per)
    module, _ = evaluate_folders(gt_small, gt_folder, pred_json, pred_folder)
    assert report["all"]["pq"] == module.all.pq and report["images"] == 20
    rc, out, _ = run_cli(capsys, *args)
    assert rc == 0 and out.splitlines()[2].startswith("All") and f"{100 * module.all.pq:6.1f}" in out


def test_cli_bad_input_one_line_exit_2(tmp_path: Path, capsys):
    folder = tmp_path / "png"
    folder.mkdir()
    ids = np.array([[0, 1], [1, 2]], dtype=np.uint32)
    Image.fromarray(ids_to_rgb(ids)).save(folder / "a.png")
    cats = [{"id": 1, "name": "person", "isthing": 1}, {"id": 2, "name": "grass", "isthing": 0}]
    good = {"annotations": [{"image_id": 1, "file_name": "a.png", "segments_info": [
        {"id": 1, "category_id": 1, "iscrowd": 0}, {"id": 2, "category_id": 2, "iscrowd": 0}]}], "categories": cats}
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(good))

    def pred_file(obj) -> Path:
        p = tmp_path / f"pred{len(list(tmp_path.iterdir()))}.json"
        p.write_text(obj if isinstance(obj, str) else json.dumps(obj))
        return p

    base = ["--gt-json", str(gt), "--gt-folder", str(folder), "--pred-folder", str(folder), "--pred-json"]
    rc, out, err = run_cli(capsys, *base, str(gt), "--json")
    assert rc == 0 and json.loads(out)["all"]["pq"] == 1.0
    unknown = json.loads(json.dumps(good))
    unknown["annotations"][0]["segments_info"][1]["category_id"] = 77
    other_image = json.loads(json.dumps(good))
    other_image["annotations"][0]["image_id"] = 2
    missing_seg = json.loads(json.dumps(good))
    missing_seg["annotations"][0]["segments_info"].pop()
    cases = {
        "file not found": str(tmp_path / "nope.json"),
        "not a readable JSON": str(pred_file("{not json")),
        "no 'annotations'": str(pred_file({"images": []})),
        "unknown category_id 77": str(pred_file(unknown)),
        "image lists differ": str(pred_file(other_image)),
        "in the prediction PNG but not": str(pred_file(missing_seg)),
    }
    for expected, pred in cases.items():
        rc, out, err = run_cli(capsys, *base, pred)
        assert rc == 2 and out == "" and expected in err, (expected, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    rc, _, err = run_cli(capsys, "--gt-json", str(gt), "--gt-folder", str(tmp_path / "none"),
                         "--pred-json", str(gt), "--pred-folder", str(folder))
    assert rc == 2 and "folder not found" in err
    rc, _, err = run_cli(capsys, "--gt-json", str(gt))
    assert rc == 2 and "either" in err
    rc, _, err = run_cli(capsys, "--model", "maskrcnn_mobilenet_v2_pennfudan", "--images", str(folder),
                         "--instance-masks", str(folder))
    assert rc == 2 and len(err.strip().splitlines()) == 1


@pytest.mark.data
def test_instance_form_with_a_predictor_built_from_the_ground_truth(data_dir: Path, tmp_path: Path, capsys,
                                                                    monkeypatch):
    """GT instance masks with the last person dropped, scored on 12 Penn-Fudan images (stuff and void)."""
    root = data_dir / "pennfudan"
    if not (root / "PedMasks").is_dir():
        pytest.skip("Penn-Fudan absent")
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    stems = sorted(p.stem for p in (root / "PNGImages").glob("*.png"))[:12]
    gt_masks, by_pixels = {}, {}
    for stem in stems:  # links, not copies
        (images / f"{stem}.png").symlink_to(root / "PNGImages" / f"{stem}.png")
        (masks / f"{stem}_mask.png").symlink_to(root / "PedMasks" / f"{stem}_mask.png")
        gt_masks[stem] = np.asarray(Image.open(root / "PedMasks" / f"{stem}_mask.png")).astype(np.int64)
        rgb = np.asarray(Image.open(root / "PNGImages" / f"{stem}.png").convert("RGB"))
        by_pixels[(rgb.shape, int(rgb.sum()))] = stem  # the predictor below finds its image by its pixels

    def predictor(rgb: np.ndarray):
        gt = gt_masks[by_pixels[(rgb.shape, int(rgb.sum()))]]
        pred = np.where(gt == gt.max(), 0, gt)  # the last person is missed
        return pred, [0.9] * int(pred.max())

    total = sum(int(m.max()) for m in gt_masks.values())
    bg_iou = [np.sum(m == 0) / (np.sum(m == 0) + np.sum(m == m.max())) for m in gt_masks.values()]
    person_pq = (total - 12) / (total - 12 + 0.5 * 12)
    result, _ = pq_cli.score_instance_folders(predictor, images, masks)
    assert result.per_class[1].fn == 12 and result.per_class[1].tp == total - 12
    assert result.things.pq == pytest.approx(person_pq) and result.stuff.pq == pytest.approx(np.mean(bg_iou))
    assert result.all.pq == pytest.approx((person_pq + np.mean(bg_iou)) / 2)
    void, _ = pq_cli.score_instance_folders(predictor, images, masks, background="void")
    assert void.all.n == 1 and void.all.pq == pytest.approx(person_pq)

    monkeypatch.setattr(pq_cli, "load_instance_predictor", lambda *a: predictor)
    rc, out, _ = run_cli(capsys, "--model", "gt-minus-one", "--images", str(images), "--instance-masks",
                         str(masks), "--json")
    report = json.loads(out)
    assert rc == 0 and report["things"]["pq"] == pytest.approx(person_pq) and report["stuff"]["n"] == 1
    assert report["meta"]["background"] == "stuff"


@pytest.mark.slow
@pytest.mark.data
def test_cli_model_form_re_measures_the_shipped_instance_model(data_dir: Path, tmp_path: Path, capsys):
    """``pq --model maskrcnn_mobilenet_v2_pennfudan`` on its 30 val photos gives the card's PQ
    (things = person; the card's pq was measured by training.instance on the same split)."""
    from segdemo.data.pennfudan import pennfudan_split
    from segdemo.models.instance_registry import list_instance_cards

    cards = list_instance_cards()
    if "maskrcnn_mobilenet_v2_pennfudan" not in cards:
        pytest.skip("instance model not shipped")
    root = data_dir / "pennfudan"
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for stem in pennfudan_split("val"):  # links, not copies
        (images / f"{stem}.png").symlink_to(root / "PNGImages" / f"{stem}.png")
        (masks / f"{stem}_mask.png").symlink_to(root / "PedMasks" / f"{stem}_mask.png")
    rc, out, err = run_cli(capsys, "--model", "maskrcnn_mobilenet_v2_pennfudan", "--images", str(images),
                           "--instance-masks", str(masks), "--device", "cpu", "--json")
    assert rc == 0, err
    report = json.loads(out)
    card = cards["maskrcnn_mobilenet_v2_pennfudan"]["metrics"]
    assert report["images"] == 30
    assert report["things"]["pq"] == pytest.approx(card["pq"], abs=2e-3)
    assert report["things"]["sq"] == pytest.approx(card["sq"], abs=2e-3)
    assert report["things"]["rq"] == pytest.approx(card["rq"], abs=2e-3)
    assert set(report) >= {"all", "things", "stuff", "per_class"}


def test_cli_model_form_unknown_model_is_one_line(capsys, tmp_path: Path):
    (tmp_path / "i").mkdir()
    (tmp_path / "m").mkdir()
    rc, _, err = run_cli(capsys, "--model", "no_such_model", "--images", str(tmp_path / "i"),
                         "--instance-masks", str(tmp_path / "m"))
    assert rc == 2 and "unknown instance model" in err and "Traceback" not in err
