"""``python -m segdemo compare``: the table as JSON, scores with a mask, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segdemo.cli import main
from segdemo.data.labels import CAMVID
from segdemo.evaluate.scoring import evaluate_pair
from segdemo.labs import compare
from segdemo.labs import fcn_skips as fcn_skips

MODELS = ["fcn32s_camvid", "fcn8s_camvid"]


@pytest.fixture
def street(tmp_path: Path) -> tuple[Path, Path]:
    rgb, labels = fcn_skips.synthetic_street(160, 120, seed=1)
    image, mask = tmp_path / "street.png", tmp_path / "street_mask.png"
    Image.fromarray(rgb).save(image)
    Image.fromarray(labels).save(mask)  # an index PNG: pixel value = class
    return image, mask


def test_json_table_and_scores_with_a_mask(street, capsys) -> None:  # noqa: ANN001
    image, mask = street
    code = main(["compare", str(image), "--models", *MODELS, "--mask", str(mask), "--json",
                 "--warmup", "0", "--repeats", "2", "--threads", "1"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [r["model"] for r in out["rows"]] == MODELS
    assert out["repeats"] == 2 and out["warmup"] == 0 and out["threads"] == 1
    labels = np.asarray(Image.open(mask))
    for row in out["rows"]:
        c = out["costs"][row["model"]]
        assert row["total_ms"] == pytest.approx(np.median(c["samples_ms"]))
        assert row["input"] == "240x180" and row["GFLOPs"] == pytest.approx(c["flops"] / 1e9)
        assert set(row) >= {"image_mIoU", "image_pixel_accuracy", "image_mean_boundary_F1", "published_mIoU"}
    # the scores are the Evaluate page's, on the cold call's label maps (checked by re-running the models)
    from segdemo.inference.pipeline import predict
    from segdemo.models import registry
    from segdemo.models import weights

    rgb = np.asarray(Image.open(image).convert("RGB"))
    maps = []
    for row in out["rows"]:
        entry = registry.get(row["model"])
        pred = predict(weights.load_model(entry), entry, rgb, entry.preprocess.resize_size).labels
        maps.append(pred)
        expected = evaluate_pair(pred, labels, CAMVID, CAMVID.ignore_index).scores.summary
        assert row["image_mIoU"] == pytest.approx(expected["mIoU"])
    assert out["disagreement"]["share"] == pytest.approx(compare.disagreement(maps, CAMVID, 4, labels).share)


def test_text_table(street, capsys) -> None:  # noqa: ANN001
    image, _ = street
    assert main(["compare", str(image), "--models", *MODELS, "--warmup", "0", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "GFLOPs" in out and "fcn8s_camvid" in out and "threads" in out and "warm-up 0" in out


@pytest.mark.parametrize("args, says", [
    (["--models", "fcn8s_camvid", "no_such_model"], "unknown model"),
    (["--models", "fcn8s_camvid"], "a comparison takes 2 to 6"),
    (["--models", "fcn8s_camvid", "lraspp_mobilenet_v3_large"], "different label sets"),
    (["--models", "fcn8s_camvid", "fcn32s_camvid", "--mask", "/nonexistent/mask.png"], "mask.png"),
])
def test_bad_input_is_one_line_and_exit_2(street, capsys, args, says) -> None:  # noqa: ANN001
    image, _ = street
    assert main(["compare", str(image), *args, "--repeats", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1


def test_unreadable_image_exit_2(tmp_path, capsys) -> None:  # noqa: ANN001
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert main(["compare", str(bad), "--models", *MODELS]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_mask_of_another_size_is_resized_with_a_warning_as_in_evaluate(street, tmp_path, capsys) -> None:  # noqa: ANN001
    image, _ = street
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((60, 80), np.uint8)).save(small)
    assert main(["compare", str(image), "--models", *MODELS, "--mask", str(small), "--warmup", "0",
                 "--repeats", "1"]) == 0
    captured = capsys.readouterr()
    assert "warning:" in captured.err and "80" in captured.err
    assert "mIoU" in captured.out
