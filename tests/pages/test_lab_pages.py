"""AppTest runs of the concept labs: no exception in either language, and the numbers shown
are those of the PyTorch operations (recomputed here independently of the page)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from segdemo import i18n
from segdemo.labs import interpolation as ip
from segdemo.labs import receptive_field as rf
from segdemo.labs import rf_measure as rfm
from segdemo.labs import separable as sep

REPO = Path(__file__).resolve().parents[2]
PAGES = {
    "rf": REPO / "pages" / "5_Receptive_Field.py",
    "bi": REPO / "pages" / "6_Bilinear_Upsampling.py",
    "fc": REPO / "pages" / "7_FC_vs_1x1_Conv.py",
    "sep": REPO / "pages" / "8_Depthwise_Separable.py",
}


def run(page: str, lang: str, model: str | None = None) -> AppTest:
    at = AppTest.from_file(str(PAGES[page]), default_timeout=240)
    at.session_state["lang"] = lang
    if model is not None:  # the sidebar's model, chosen before the page runs
        from segdemo.models import registry

        entry = registry.get(model)
        at.session_state["arch"], at.session_state["backbone"] = entry.architecture, entry.backbone
    if page == "sep":
        at.session_state["sep_measure"] = False  # timing is tested in test_concepts_separable
    return at.run()


def no_problems(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def i18n_t(key: str, lang: str) -> str:
    from segdemo import i18n

    return i18n.t(key, lang)


def metric(at: AppTest, label_key: str, lang: str) -> str:
    from segdemo import i18n

    label = i18n.t(label_key, lang)
    return next(m.value for m in at.metric if m.label == label)


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_receptive_field_numbers_are_the_real_ones(lang: str) -> None:
    at = run("rf", lang)
    no_problems(at)
    r, _ = rf.theoretical_rf(rf.PRESETS["context_module"])
    assert metric(at, "labs.rf.metric.theory", lang) == f"{r} × {r}"
    assert metric(at, "labs.rf.metric.autograd", lang) == f"{r} × {r}"
    at.selectbox(key=f"rf_preset@{lang}").set_value("gridding_2_2_2").run()
    no_problems(at)
    assert metric(at, "labs.rf.metric.holes", lang) == f"{rf.exact_rf(rf.PRESETS['gridding_2_2_2']).holes:,}"
    assert any("gridding" in i.value or "그리딩" in i.value for i in at.info)


def test_receptive_field_on_a_real_image_with_a_registry_model() -> None:
    at = run("rf", "en", model="fcn8s_camvid")
    at.multiselect(key="rf_samples").set_value([at.multiselect(key="rf_samples").options[1]]).run()
    no_problems(at)
    labels = {m.label for m in at.metric}
    assert {"Theoretical field", "Effective field (90 % of gradient)"} <= labels
    assert any("ASPP" in s.value for s in at.subheader)
    # FCN-8s (no global branch) covers the whole 256 x 384 input from the centre pixel: the
    # page must blame its deep stack, not an image-pooling branch it does not have.
    assert metric(at, "labs.rf.metric.model_theory", "en") == "whole image"
    notes = [i.value for i in at.info]
    assert any(n.startswith("Every input pixel is connected to this output, although this network has no "
                            "global branch") and "256×384" in n for n in notes), notes
    assert not any("image pooling in ASPP" in n for n in notes)


def test_dilated_vs_standard_table_matches_modules() -> None:
    at = run("rf", "en")
    at.slider(key="rf_dilation").set_value(4).run()
    no_problems(at)
    costs = rfm.dilated_vs_standard(64, 64, 3, 4, 64, True)
    table = next(d.value for d in at.dataframe if "Parameters (module)" in d.value.columns)
    assert list(table["Parameters (module)"]) == [f"{c.params:,}" for c in costs]
    assert list(table["MACs (PyTorch counter)"]) == [f"{c.macs:,}" for c in costs]
    assert all("✓" in v for v in table["MACs (formula)"])


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_bilinear_page_formula_equals_f_interpolate(lang: str) -> None:
    at = run("bi", lang)
    no_problems(at)
    marks = [m.value for m in at.markdown if m.value.startswith(("✓", "✗")) and "PyTorch" in m.value]
    assert len(marks) == 3 and all(m.startswith("✓") for m in marks)  # 1-D + both align_corners
    grid = np.array([[10, 20, 30, 40], [20, 60, 20, 10], [40, 10, 80, 30], [0, 30, 50, 90]], dtype=float)
    for align in (False, True):
        value = ip.torch_bilinear(grid, (7, 7), align)[3, 1]
        assert any(f"{value:.4g}" in m for m in marks)
    at.radio(key=f"bi_pick@{lang}").set_value("point").run()
    no_problems(at)
    at.radio(key=f"bi_checker_weights@{lang}").set_value("random").run()
    no_problems(at)


def test_bilinear_page_rejects_bad_values_and_keeps_working() -> None:
    at = run("bi", "en")
    at.text_input(key="bi_1d_values").set_value("1, two, 3").run()
    assert not at.exception
    assert [e.value for e in at.error] == ["Please enter 2 to 16 numbers separated by commas; "
                                           "showing the default values instead."]


def test_upsampling_a_registry_model() -> None:
    at = run("bi", "en")
    at.multiselect(key="bi_samples").set_value([at.multiselect(key="bi_samples").options[0]]).run()
    no_problems(at)
    assert any("coarse scores" in c.value for c in at.caption)
    # a legend names the colours of the masks, with each class's share of the bilinear mask
    from segdemo import i18n
    from segdemo.data.labels import CAMVID

    legend = next(m.value for m in at.markdown if "segdemo-legend" in m.value)
    shown = [name for name in CAMVID.classes if f">{i18n.class_name('camvid', name, 'en')}<" in legend]
    assert shown and "%" in legend


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_fc_vs_conv_page(lang: str) -> None:
    at = run("fc", lang)
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.success) >= 3 and all("✓" in (s.icon or "") + s.value for s in at.success)
    assert not any("✗" in (s.icon or "") + s.value for s in at.success)
    at.slider(key="fc_vgg_size").set_value(128).run()
    assert not at.exception
    at.number_input(key="fc_pw_n").set_value(7).run()
    assert not at.exception
    assert metric(at, "labs.fc.pw_params", lang) == f"{7 * 21 + 21:,}"


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_fc_page_trained_fcn32s_tab(lang: str) -> None:
    """The trained FCN-32s tab comes first; its table is the real network's scores, recomputed here."""
    from PIL import Image

    from segdemo.data import samples
    from segdemo.models import weights
    from segdemo.labs import fc_conv

    at = run("fc", lang)
    no_problems(at)
    assert at.tabs[0].label == i18n_t("labs.fc.tab.fcn", lang)
    assert not any(i18n_t("labs.fc.fcn_random", lang)[:20] in w.value for w in at.warning)
    table = next(d.value for d in at.dataframe if i18n_t("labs.fc.fcn_col_fc", lang) in d.value.columns)
    # independent recomputation: the shipped network, in float64, on the page's default image
    path = (fc_conv.street_images(1) or [s.path for s in samples.shipped_samples()])[0]
    rgb = np.asarray(Image.open(path).convert("RGB"))
    h, w = rgb.shape[:2]
    side = min(h, w)
    square = rgb[(h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side]
    img = np.asarray(Image.fromarray(square).resize((224, 224), Image.BILINEAR), dtype=np.float32) / 255
    x = (torch.from_numpy(img).permute(2, 0, 1)[None] - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) \
        / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    net = weights.load_model("fcn32s_camvid", device="cpu").net.double()
    with torch.no_grad():
        centre = net.coarse_scores(x.double())[0, :, 3, 3].numpy()
    fc_col, conv_col = table.columns[1], table.columns[2]
    assert np.abs(table[conv_col].to_numpy() - centre).max() < 1e-9
    assert np.abs(table[fc_col].to_numpy() - centre).max() <= 1e-5
    assert any("✓" in m.value and "F.unfold" in m.value for m in at.markdown)
    at.select_slider(key="fc_fcn_size").set_value(180).run()
    at.selectbox(key=f"fc_fcn_cls@{lang}").set_value(0).run()  # Sky
    no_problems(at)
    assert not any("✗" in m.value and "F.unfold" in m.value for m in at.markdown)


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_separable_page_counts_match_modules(lang: str) -> None:
    at = run("sep", lang)
    no_problems(at)
    at.number_input(key="sep_c").set_value(32).run()
    at.selectbox(key="sep_kw").set_value(5).run()
    no_problems(at)
    report = sep.separable_report(3, 5, 32, 256, 32, 32)
    table = at.table[0].value
    params = list(table["sum(p.numel())"])
    assert params[0] == f"{report.standard_params:,} ✓"
    assert params[3] == f"{report.separable_params:,} ✓"
    assert report.standard_params == 3 * 5 * 32 * 256 and report.separable_params == 3 * 5 * 32 + 32 * 256
    at.toggle(key="sep_measure").set_value(True).run()
    no_problems(at)
    times = list(at.table[0].value[i18n_t("labs.sep.col.time", lang)])
    assert times[0].endswith(" ms") and times[3].endswith(" ms") and float(times[0].split()[0]) > 0
    # the timing note names what was timed (torch.utils.benchmark: one CPU thread) and what the MACs promise
    import platform

    note = i18n_t("labs.sep.time_note", lang).split("{device}")[1].split("{promise")[0]
    captions = [c.value for c in at.caption if note in c.value]
    one_thread = i18n_t("labs.sep.one_cpu_thread", lang).format(cpu=platform.machine())
    assert len(captions) == 1 and one_thread in captions[0], captions
    assert f"{1 / report.mac_ratio:.1f}" in captions[0]
    parts = [i18n_t(f"labs.sep.tex.{k}", lang) for k in ("standard", "depthwise", "pointwise")]
    assert all(rf"\text{{{p}}}" in at.latex[0].value for p in parts)  # the formula's labels are translated


def test_lab_catalogues_have_the_same_keys() -> None:
    en = json.loads((REPO / "segdemo" / "i18n" / "locales" / "en" / "labs.json").read_text(encoding="utf-8"))
    ko = json.loads((REPO / "segdemo" / "i18n" / "locales" / "ko" / "labs.json").read_text(encoding="utf-8"))
    assert set(en) == set(ko)
    for key in rf.PRESETS:
        assert f"labs.rf.preset.{key}" in en and f"labs.rf.preset_note.{key}" in en


class _RejectsEverySize(torch.nn.Module):
    """A network that refuses its input, as an unpadded U-Net does for odd sizes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from segdemo.models.unet import UNetSizeError

        raise UNetSizeError("input 256x256 does not fit", suggestion=(260, 260), size=(256, 256))


@pytest.mark.parametrize("page,key", [("rf", "rf_samples"), ("bi", "bi_samples")])
def test_model_errors_become_messages(page: str, key: str, tmp_path) -> None:
    from safetensors.torch import save_file

    from segdemo.models import registry

    # Real weights on disk, so the lab uses this model rather than another one that has weights.
    weights_file = tmp_path / "test-rejects.safetensors"
    save_file(_RejectsEverySize().state_dict(), str(weights_file))
    registry.register(registry.ModelEntry(
        name="test-rejects", architecture="TestNet", backbone="rejects", label_set_key="isbi",
        build=_RejectsEverySize,
        weights=registry.WeightsSpec(filename=weights_file.name, shipped_path=weights_file),
        source="segdemo"))
    try:
        at = AppTest.from_file(str(PAGES[page]), default_timeout=240)
        at.session_state["lang"] = "en"
        at.session_state["arch"] = "TestNet"
        at.session_state["backbone"] = "rejects"
        at.run()
        at.multiselect(key=key).set_value([at.multiselect(key=key).options[0]]).run()
        assert not at.exception, [e.value for e in at.exception]
        # the reason in the session's words (the catalogue's), not the exception's own text
        reason = i18n.t("unet.size_error.any", "en", height=256, width=256, fix_h=260, fix_w=260)
        assert any(reason in e.value for e in at.error), [e.value for e in at.error]
    finally:
        registry._all().pop("test-rejects", None)


def test_receptive_field_click_position_drives_the_gradient() -> None:
    from segdemo.data import samples
    from segdemo.data.images import decode_image

    at = run("rf", "en")
    name = at.multiselect(key="rf_samples").options[0]
    sample = next(s for s in samples.all_samples() if s.name == name)
    digest = decode_image(sample.path.read_bytes(), sample.path.name).digest
    at.multiselect(key="rf_samples").set_value([name]).run()
    at.select_slider(key="rf_lab_size").set_value(128).run()
    # streamlit_image_coordinates stores the last click here (AppTest cannot click a component)
    at.session_state[f"rf_click_{digest}_128_yx"] = (3, 4)
    at.run()
    no_problems(at)
    assert at.selectbox(key=f"rf_class_{digest}_{(3, 4)}").label.startswith("Class score")  # the click was used
    erf_metric = metric(at, "labs.rf.metric.erf90", "en")
    assert erf_metric.endswith(tuple("0123456789")) and " × " in erf_metric


def test_fc_page_with_an_uploaded_image() -> None:
    at = run("fc", "en")
    cat = (REPO / "assets" / "samples" / "cat.jpg").read_bytes()
    at.file_uploader(key="fc_uploader").set_value(("cat.jpg", cat, "image/jpeg")).run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.success) >= 3 and all("✓" in (s.icon or "") + s.value for s in at.success)
    at.file_uploader(key="fc_uploader").set_value(("broken.jpg", b"not an image", "image/jpeg")).run()
    assert not at.exception
    assert any("broken.jpg" in e.value for e in at.error)  # the page says which file, and keeps working


def test_labs_with_segdemos_own_dilated_aspp_network() -> None:
    """segdemo's DeepLab-style model: its own ASPP rates and its coarse_scores are used."""
    from segdemo.models import registry
    from segdemo.models.deeplab_slim import deeplab_slim

    registry.register(registry.ModelEntry(
        name="test-deeplab-slim", architecture="TestDeepLab", backbone="slim", label_set_key="camvid",
        build=lambda: deeplab_slim(num_classes=11, rates=(3, 6, 9)),
        weights=registry.WeightsSpec(filename="test-deeplab-slim.safetensors"), source="segdemo", output_stride=8))
    try:
        for page, key in (("rf", "rf_samples"), ("bi", "bi_samples")):
            at = AppTest.from_file(str(PAGES[page]), default_timeout=240)
            at.session_state["lang"] = "en"
            at.session_state["arch"] = "TestDeepLab"
            at.session_state["backbone"] = "slim"
            at.run()
            at.multiselect(key=key).set_value([at.multiselect(key=key).options[0]]).run()
            no_problems(at)
            captions = " ".join(c.value for c in at.caption)
            if page == "rf":
                assert "This model's ASPP rates: 3, 6, 9, at output stride 8." in captions
            else:
                assert "from the network's own `coarse_scores`" in captions
    finally:
        registry._all().pop("test-deeplab-slim", None)
