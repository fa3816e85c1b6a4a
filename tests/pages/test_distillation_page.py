"""The distillation page in Streamlit's AppTest: both languages, the cards' table, soft labels, a live start."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from segdemo import config, i18n
from segdemo.labs import distillation as kd
from segdemo.training import live

PAGE = Path(__file__).resolve().parents[2] / "pages" / "13_Distillation.py"


def run(lang: str) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=180)
    at.session_state["lang"] = lang
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def frame(at: AppTest, column: str):  # noqa: ANN201 - a pandas DataFrame
    for df in [*at.dataframe, *at.table]:  # the cards' table is an st.table (it wraps at 1280 px)
        if column in df.value.columns:
            return df.value
    raise AssertionError(f"no table with column {column!r}")


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_page_shows_the_cards_and_the_teachers_soft_labels(lang: str, data_dir: Path) -> None:
    at = run(lang)
    assert at.title[0].value == i18n.t("page.distillation", lang)
    # the shipped table: one row per card, numbers from the cards
    table = frame(at, i18n.t("kd.col.role", lang))
    cards = {n: json.loads((config.SHIPPED_MODELS_DIR / f"{n}.json").read_text()) for n in
             (kd.TEACHER, kd.STUDENT, kd.CONTROL) if (config.SHIPPED_MODELS_DIR / f"{n}.json").exists()}
    assert list(table[i18n.t("kd.col.model", lang)]) == list(cards)
    for name, card in cards.items():
        row = table[table[i18n.t("kd.col.model", lang)] == name].iloc[0]
        assert row[i18n.t("kd.col.miou", lang)] == f"{card['metrics']['miou']:.1%}"
    # soft labels at the default pixel (the frame's centre) = torch.softmax(z / T) of the teacher's logits
    soft = frame(at, "Σ")
    z = torch.from_numpy(kd.teacher_logits(0)[:, 135, 180])
    for t, (_, row) in zip(kd.TEMPERATURES, soft.iterrows()):
        expected = torch.softmax(z / t, dim=0).numpy()
        shown = np.array([float(row[i18n.class_name("camvid", c, lang)]) for c in kd.CAMVID.classes])
        assert np.allclose(shown, expected, atol=6e-4)
        assert float(row["Σ"]) == pytest.approx(1.0, abs=1e-3)
    assert len(at.get("imgs")) >= 1 or len(at.image) >= 3  # ground truth, teacher and student masks
    assert not at.warning, [w.value for w in at.warning]


def test_start_queues_the_student_and_its_control_with_the_chosen_settings(data_dir: Path) -> None:
    at = run("en")
    at.select_slider(key="kd_t").set_value(2.0)
    at.slider(key="kd_mix").set_value(0.3)
    at.selectbox(key="kd_size").set_value(10)
    at.slider(key="kd_epochs").set_value(1)
    at.button(key="kd_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    pair = at.session_state["kd_run_ids"][-1]
    runs = [live.worker().status(i) for i in pair]
    try:
        assert [r.config.teacher for r in runs] == [kd.TEACHER, None]
        assert (runs[0].config.kd_temperature, runs[0].config.kd_mix) == (2.0, 0.3)
        assert all(r.config.train_size == 10 and r.config.epochs == 1 for r in runs)
        assert at.button(key="kd_stop") is not None
    finally:
        for i in pair:
            live.worker().stop(i)
        for i in pair:
            live.worker().wait(i, 120)
