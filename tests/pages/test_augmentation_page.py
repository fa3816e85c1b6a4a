"""AppTest runs of the Data augmentation page: no exception in either language, the random draw
sets the controls, and the CutMix shares and MixUp loss shown are those computed here
independently (pixel counting, NumPy cross-entropy on the model's logits)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from segdemo import i18n

PAGE = Path(__file__).resolve().parents[2] / "pages" / "12_Augmentation.py"


def run(lang: str, op: str, data_dir: Path) -> AppTest:
    if not (data_dir / "camvid" / "train").is_dir():
        pytest.skip("CamVid is not in the data directory")
    at = AppTest.from_file(str(PAGE), default_timeout=300)
    at.session_state["lang"] = lang
    at.session_state["aug_op"] = op
    return at.run()


def no_problems(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def metric(at: AppTest, key: str, lang: str, **values: object) -> str:
    label = i18n.t(key, lang, **values)
    return next(m.value for m in at.metric if m.label == label)


@pytest.mark.data
@pytest.mark.parametrize("lang", ["ko", "en"])
def test_page_opens_and_random_draw_sets_the_controls(lang: str, data_dir: Path) -> None:
    from segdemo.labs import augmentation as aug

    at = run(lang, "rotate", data_dir)
    no_problems(at)
    assert at.slider(key=f"aug_rotate_degrees@{lang}").value == aug.defaults("rotate")["degrees"]
    at.button(key="aug_draw").click().run()
    no_problems(at)
    drawn = aug.random_params("rotate", 1)["degrees"]
    assert at.slider(key=f"aug_rotate_degrees@{lang}").value == pytest.approx(drawn)
    assert -45 <= drawn <= 45
    # another augmentation and back, then the other language: the drawn value stays
    at.selectbox(key=f"aug_op@{lang}").set_value("flip").run()
    at.selectbox(key=f"aug_op@{lang}").set_value("rotate").run()
    other = "en" if lang == "ko" else "ko"
    at.session_state["lang"] = other
    at.run()
    no_problems(at)
    assert at.slider(key=f"aug_rotate_degrees@{other}").value == pytest.approx(drawn)
    # the comparison table is on the page, with the recorded figures
    recorded = aug.results_table()
    table = next(df.value for df in at.dataframe if i18n.t("aug.results.col.miou", other) in df.value.columns)
    assert list(table[i18n.t("aug.results.col.miou", other)]) == [f"{r['val_miou']:.3f}" for r in recorded["runs"]]


@pytest.mark.data
def test_cutmix_shares_are_the_pixel_counts(data_dir: Path) -> None:
    at = run("en", "cutmix", data_dir)
    no_problems(at)
    share = at.slider(key="aug_cutmix_share@en").value
    h, w = 360, 480  # CamVid frames
    bh, bw = round(h * math.sqrt(share)), round(w * math.sqrt(share))
    assert metric(at, "aug.cutmix.share_b", "en", h=bh, w=bw) == f"{bh * bw / (h * w):.1%}"
    assert metric(at, "aug.cutmix.share_a", "en") == f"{1 - bh * bw / (h * w):.1%}"
    table = at.dataframe[0].value
    from_b = table[i18n.t("aug.col.from_b", "en")].sum()
    assert from_b == bh * bw and table[i18n.t("aug.col.from_a", "en")].sum() == h * w - bh * bw


@pytest.mark.data
def test_mixup_loss_is_the_soft_cross_entropy(data_dir: Path) -> None:
    from segdemo.data import datasets
    from segdemo.labs import augmentation as aug

    at = run("en", "mixup", data_dir)
    no_problems(at)
    alpha = at.slider(key="aug_mixup_alpha@en").value
    images, labels, _ = datasets.load_camvid("train", indices=[0, 42])
    mixed = np.clip(np.round(alpha * images[0].astype(np.float64) + (1 - alpha) * images[1]), 0, 255).astype(np.uint8)
    soft = np.zeros((11, 360, 480))
    for weight, lbl in ((alpha, labels[0]), (1 - alpha, labels[1])):
        for c in range(11):
            soft[c] += weight * (lbl == c)
    logits = aug.model_logits(mixed)[0].double().numpy()
    logp = logits - logits.max(0) - np.log(np.exp(logits - logits.max(0)).sum(0))
    expected = -(soft * logp).sum() / soft.sum()
    assert float(metric(at, "aug.mixup.loss_soft", "en")) == pytest.approx(expected, abs=1.5e-3)
    mass = soft.sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        floor = -np.nansum(np.where(soft > 0, soft * np.log(soft / mass), 0.0)) / soft.sum()
    assert float(metric(at, "aug.mixup.loss_floor", "en")) == pytest.approx(floor, abs=1.5e-3)
