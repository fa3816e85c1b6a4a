"""Semantic vs instance segmentation: one colour per class or per object, counting people,
Mask R-CNN step by step, RoIPool vs RoIAlign, and panoptic quality (PQ = SQ x RQ) of one image."""

from __future__ import annotations

import dataclasses

import streamlit as st

from segdemo import i18n
from segdemo.data.images import UPLOAD_TYPES, ImageError, InputImage
from segdemo.evaluate.panoptic_io import BACKGROUND_SEGMENT_ID
from segdemo.labs import instances as inst
from segdemo.labs import roi_pooling as roi
from segdemo.labs import instance_views as views
from segdemo.labs.figures import value_heatmap
from segdemo.ui import errors, inputs, models, sidebar, state, widgets
from segdemo.models import registry
from segdemo.models import weights
from segdemo.ui import instances as ui_inst
from segdemo.ui.state import INST, tr

DISPLAY_SIDE = 640

settings = sidebar.setup_page("page.instances", show_model=False, show_overlay=False)
# The first result (semantic vs instance pictures) must be in view at 1280x800 (issue 10,
# defect 6): the introduction folds away and the choices share rows.
st.expander(tr("common.about_page")).markdown(tr("instances.intro"))
for key, value in {INST.SCORE: 0.5, INST.MASK: 0.5, INST.TOPK: 20, INST.BINS: 7}.items():
    st.session_state[key] = st.session_state.get(key, value)
lang = st.session_state.get(state.LANG, i18n.DEFAULT_LANGUAGE)


def error_text(exc: inst.InstanceLabError | ImageError) -> str:
    """A user error in the session's language (``what`` names the file: ground truth or prediction)."""
    values = dict(exc.values)
    if values.get("what") in ("gt", "pred", "json"):
        values["what"] = tr(f"instances.what.{values['what']}")
    return tr(exc.key, **values)


# ---------------------------------------------------------------- the model and the photo
pick_model, pick_source, pick_photo = st.columns([4, 3, 4])
model_name = widgets.stable_choice(pick_model.selectbox, tr("instances.model.choose"), ui_inst.instance_model_names(),
                                   INST.MODEL, format_func=state.options_formatter("instances.model.name."),
                                   help=tr("instances.model.choose_help"))
loaded, identity = ui_inst.instance_model(model_name)
if loaded is None and identity == "missing":
    st.warning(tr("instances.model.missing", name=model_name, folder=str(ui_inst.INSTANCE_MODELS_DIR)))
elif loaded is not None and loaded.random_weights:
    st.warning(tr("instances.model.random", name=loaded.name))
elif loaded is not None:
    st.caption(tr(f"instances.model.card.{loaded.name}", name=loaded.name))

photos = ui_inst.pennfudan_photos(ui_inst.data_dir_key())
sources = (["pennfudan"] if photos else []) + ["upload"]
if not photos:
    st.info(tr("instances.no_pennfudan"))
source = widgets.stable_choice(pick_source.radio, tr("instances.source"), sources, INST.SOURCE,
                               format_func=state.options_formatter("instances.source."), horizontal=True)

rgb = gt_ids = None
image_key = ""
if source == "pennfudan":
    by_name = {p.name: p for p in photos}

    def photo_label(name: str) -> str:
        p = by_name[name]
        return i18n.t("instances.photo.touching", lang, name=name, people=p.people, regions=p.regions) \
            if p.touching else name

    name = widgets.stable_choice(pick_photo.selectbox, tr("instances.photo"), list(by_name), INST.PHOTO,
                                 format_func=photo_label, help=tr("instances.photo_help"))
    rgb, gt_ids = ui_inst.pennfudan_photo(ui_inst.data_dir_key(), name)
    image_key = f"pennfudan:{name}"
    st.caption(tr("instances.pennfudan_terms"))
else:
    upload = pick_photo.file_uploader(tr("instances.upload"), type=list(UPLOAD_TYPES), key=INST.UPLOAD)
    if upload is not None:
        decoded = ui_inst.decode_upload(upload.file_id, upload.getvalue, upload.name)
        if isinstance(decoded, ImageError):
            st.error(error_text(decoded))
        else:
            rgb, image_key = decoded.rgb, f"upload:{decoded.digest}"
    else:
        st.info(tr("instances.upload_none"))

c1, c2 = st.columns(2)
score_threshold = c1.slider(tr("instances.score_threshold"), 0.05, 0.95, step=0.05, key=INST.SCORE,
                            help=tr("instances.score_threshold_help"))
mask_threshold = c2.slider(tr("instances.mask_threshold"), 0.05, 0.95, step=0.05, key=INST.MASK,
                           help=tr("instances.mask_threshold_help"))

steps = None
if rgb is not None and loaded is not None:
    with st.spinner(tr("instances.running")):
        try:
            steps = ui_inst.steps_for(image_key, rgb, loaded, identity)
        except (inst.InstanceLabError, RuntimeError, ValueError) as exc:
            st.error(error_text(exc) if isinstance(exc, inst.InstanceLabError)
                     else tr("instances.model.error", reason=errors.reason(exc)))

# ---------------------------------------------------------------- semantic vs instance
st.header(tr("instances.sec.compare"))
st.markdown(tr("instances.compare.intro"))
kept = None
if steps is not None:
    kept = inst.kept_instances(steps, score_threshold, mask_threshold)
    class_names = ui_inst.display_class_names(loaded)
    semantic_entry = inst.semantic_partner(loaded, registry.list_models(), lambda e: weights.locate(e) is not None)
    if semantic_entry is not None:
        image = InputImage(image_key, image_key, rgb)
        native = sidebar.resolve_inference_size("native", semantic_entry)
        pred = models.predict_cached(image, dataclasses.replace(settings, inference_size=native), semantic_entry.name)
        person = pred.labels == [c.lower() for c in semantic_entry.label_set.classes].index("person")
        st.caption(tr("instances.semantic.model", name=semantic_entry.display_name))
    else:
        person = inst.semantic_person_from_instances(kept)
        st.info(tr("instances.semantic.derived_voc" if len(class_names) > 2 else "instances.semantic.derived"))
    left, right = st.columns(2)
    left.subheader(tr("instances.semantic.title"))
    left.image(inputs.to_display(views.draw_semantic(rgb, person), DISPLAY_SIDE), width="stretch",
               caption=tr("instances.semantic.caption"))
    right.subheader(tr("instances.instance.title"))
    right.image(inputs.to_display(views.draw_instances(rgb, kept, class_names), DISPLAY_SIDE), width="stretch",
                caption=tr("instances.instance.caption"))
    regions_of_class = 1 if person.any() else 0
    left.metric(tr("instances.count.semantic_label"), tr("instances.count.semantic", n=regions_of_class))
    people = int((kept.labels == loaded.person_label).sum())
    right.metric(tr("instances.count.instance_label"), tr("instances.count.instance", n=people))
    if people != kept.count:
        right.caption(tr("instances.count.other_objects", n=kept.count - people))
    if kept.count:
        rows = []
        for k in range(kept.count):
            coco_name = loaded.categories[int(kept.labels[k])]
            row = {tr("instances.col.object"): k + 1, tr("instances.col.class"): class_names[int(kept.labels[k])]}
            if len(class_names) > 2:
                voc = inst.voc_class_of(coco_name)
                row[tr("instances.col.voc_class")] = "—" if voc is None else i18n.class_name("voc", voc, lang)
            rows.append({**row, tr("instances.col.score"): round(float(kept.scores[k]), 3),
                         tr("instances.col.box"): ", ".join(f"{v:.0f}" for v in kept.boxes[k]),
                         tr("instances.col.pixels"): int(kept.masks[k].sum())})
        st.dataframe(rows, hide_index=True)
    else:
        st.info(tr("instances.none_kept", t=score_threshold))
    if len(class_names) > 2:
        with st.expander(tr("instances.coco_voc.title")):
            st.markdown(tr("instances.coco_voc.intro"))
            st.dataframe([{"VOC": i18n.class_name("voc", voc, lang), "COCO": coco,
                           "COCO id": loaded.categories.index(coco)} for coco, voc in inst.COCO_TO_VOC.items()],
                         hide_index=True)

    # ------------------------------------------------------------ counting by connected components
    st.header(tr("instances.sec.components"))
    st.markdown(tr("instances.components.intro"))
    regions, n_regions = inst.connected_regions(person)
    cols = st.columns(3 if gt_ids is not None else 2)
    cols[0].image(inputs.to_display(views.draw_regions(rgb, regions), DISPLAY_SIDE), width="stretch",
                  caption=tr("instances.components.caption"))
    cols[0].metric(tr("instances.components.regions_label"), tr("instances.components.regions", n=n_regions))
    cols[1].image(inputs.to_display(views.draw_instances(rgb, kept, class_names), DISPLAY_SIDE), width="stretch",
                  caption=tr("instances.instance.caption"))
    cols[1].metric(tr("instances.count.instance_label"), tr("instances.count.instance", n=people))
    if gt_ids is not None:
        gt_people = len([k for k in set(gt_ids.ravel().tolist()) if k])
        _, gt_regions = inst.connected_regions(gt_ids > 0)
        cols[2].image(inputs.to_display(views.draw_regions(rgb, gt_ids), DISPLAY_SIDE), width="stretch",
                      caption=tr("instances.components.gt_caption"))
        cols[2].metric(tr("instances.components.gt_label"), tr("instances.count.instance", n=gt_people))
        st.markdown(tr("instances.components.gt_summary", people=gt_people, regions=gt_regions))

    # ------------------------------------------------------------ Mask R-CNN step by step
    st.header(tr("instances.sec.steps"))
    st.markdown(tr("instances.steps.intro", h=steps.input_hw[0], w=steps.input_hw[1],
                   fh=steps.features.shape[1], fw=steps.features.shape[2], c=steps.features.shape[0]))
    n_proposals = len(steps.proposals)
    top_k = st.slider(tr("instances.steps.top_k"), 1, max(1, min(100, n_proposals)), key=INST.TOPK,
                      disabled=n_proposals <= 1)
    top_k = min(top_k, n_proposals)
    st.image(inputs.to_display(views.draw_boxes(rgb, steps.proposals[:top_k]), DISPLAY_SIDE),
             caption=tr("instances.steps.proposals_caption", k=top_k, n=n_proposals,
                        best=float(steps.proposal_scores[0]) if n_proposals else 0.0,
                        worst=float(steps.proposal_scores[top_k - 1]) if n_proposals else 0.0))
    candidates = [int(k) for k in kept.indices] if kept.count else list(range(min(5, len(steps.scores))))
    if not candidates:
        st.info(tr("instances.steps.no_detections"))
    else:
        chosen = widgets.stable_choice(st.selectbox, tr("instances.steps.roi"), candidates, INST.ROI,
                                       format_func=lambda i: i18n.t("instances.steps.roi_option", lang,
                                                                    k=int(i) + 1, score=float(steps.scores[i])))
        i = int(chosen)
        c1, c2, c3 = st.columns(3)
        c1.image(views.upscale_nearest(inst.roi_feature_heatmap(steps.mask_roi_features[i])), width="stretch",
                 caption=tr("instances.steps.roi_features", c=steps.mask_roi_features.shape[1],
                            s=steps.mask_roi_features.shape[2]))
        c2.image(views.probability_picture(steps.mask_probabilities[i]), width="stretch",
                 caption=tr("instances.steps.mask28", s=steps.mask_logits.shape[1]))
        pasted = inst.paste_roi_mask(steps.mask_probabilities[i], steps.boxes[i], steps.image_hw)
        one = views.draw_boxes(views.blend(rgb, pasted >= mask_threshold, views.instance_color(1), 0.55),
                              steps.boxes[i:i + 1], (255, 215, 0), 2)
        c3.image(inputs.to_display(one, DISPLAY_SIDE), width="stretch",
                 caption=tr("instances.steps.pasted", t=mask_threshold))

        # -------------------------------------------------------- RoIPool vs RoIAlign
        st.header(tr("instances.sec.roi"))
        st.markdown(tr("instances.roi.intro"))
        bins = st.select_slider(tr("instances.roi.bins"), [2, 3, 4, 5, 7], key=INST.BINS)
        comparison = roi.compare_roi_pooling(steps.features, steps.boxes_input[i], steps.spatial_scale,
                                              image_scale=steps.image_per_input, output_size=int(bins))
        a, b = st.columns(2)
        a.image(roi.draw_roi_pool(comparison), width="stretch", caption=tr("instances.roi.pool_caption"))
        b.image(roi.draw_roi_align(comparison), width="stretch",
                caption=tr("instances.roi.align_caption", r=comparison.sampling_ratio))
        for col, values, key in ((a, comparison.pooled, "instances.roi.pool_values"),
                                 (b, comparison.aligned_values, "instances.roi.align_values")):
            figure = value_heatmap(values, tr(key, c=comparison.channel), annotate=False)
            figure.update_traces(text=[[f"{v:.2f}" for v in row] for row in values], texttemplate="%{text}",
                                 textfont={"size": 11})
            col.plotly_chart(figure, width="stretch")
        st.markdown(tr("instances.roi.misalignment", px=comparison.max_offset_image_px,
                       input_px=max(abs(e.offset_input_px) for e in comparison.edges),
                       stride=1 / comparison.spatial_scale, diff=comparison.mean_abs_difference))
        st.dataframe([{tr("instances.roi.col.edge"): e.edge, tr("instances.roi.col.input_px"): round(e.input_px, 2),
                       tr("instances.roi.col.exact"): round(e.exact_cells, 3),
                       tr("instances.roi.col.rounded"): e.rounded_cell,
                       tr("instances.roi.col.offset_input"): round(e.offset_input_px, 2),
                       tr("instances.roi.col.offset_image"): round(e.offset_image_px, 2)} for e in comparison.edges],
                     hide_index=True)
elif rgb is not None and loaded is None:
    st.info(tr("instances.model.missing_short"))

# ---------------------------------------------------------------- panoptic quality
st.header(tr("instances.sec.pq"))
st.markdown(tr("instances.pq.intro"))
modes = (["model"] if gt_ids is not None and steps is not None else []) + ["instance_png", "panoptic"]
mode = widgets.stable_choice(st.radio, tr("instances.pq.mode"), modes, INST.PQ_MODE,
                             format_func=state.options_formatter("instances.pq.mode."), horizontal=True)
view = None
photo_for_view = None
try:
    if mode == "model":
        background = widgets.stable_choice(st.radio, tr("instances.pq.background"), ["stuff", "void"],
                                           INST.PQ_BACKGROUND, horizontal=True,
                                           format_func=state.options_formatter("instances.pq.background."))
        pred_ids, pred_scores = inst.instance_id_map(steps, score_threshold, mask_threshold)
        view = views.pq_for_instance_maps(gt_ids, pred_ids, pred_scores, background, image_key)
        photo_for_view = rgb
        st.caption(tr("instances.pq.model_caption", t=score_threshold, m=mask_threshold))
    elif mode == "instance_png":
        st.caption(tr("instances.pq.instance_png_help"))
        u1, u2 = st.columns(2)
        gt_file = u1.file_uploader(tr("instances.pq.gt_png"), type=["png"], key=INST.PQ_GT)
        pred_file = u2.file_uploader(tr("instances.pq.pred_png"), type=["png"], key=INST.PQ_PRED)
        background = widgets.stable_choice(st.radio, tr("instances.pq.background"), ["stuff", "void"],
                                           INST.PQ_BACKGROUND, horizontal=True,
                                           format_func=state.options_formatter("instances.pq.background."))
        if gt_file is None or pred_file is None:
            st.info(tr("instances.pq.need_two"))
        else:
            view = views.pq_for_instance_maps(views.read_instance_id_png(gt_file.getvalue(), "gt"),
                                             views.read_instance_id_png(pred_file.getvalue(), "pred"),
                                             background=background, image_id=gt_file.name)
    else:
        st.caption(tr("instances.pq.panoptic_help"))
        u1, u2 = st.columns(2)
        gt_png = u1.file_uploader(tr("instances.pq.gt_panoptic_png"), type=["png"], key=INST.PQ_GT_PNG)
        gt_json = u1.file_uploader(tr("instances.pq.gt_json"), type=["json"], key=INST.PQ_GT_JSON)
        pred_png = u2.file_uploader(tr("instances.pq.pred_panoptic_png"), type=["png"], key=INST.PQ_PRED_PNG)
        pred_json = u2.file_uploader(tr("instances.pq.pred_json"), type=["json"], key=INST.PQ_PRED_JSON)
        if None in (gt_png, gt_json, pred_png, pred_json):
            st.info(tr("instances.pq.need_four"))
        else:
            view = views.pq_for_panoptic_files(gt_png.getvalue(), gt_json.getvalue(), gt_png.name,
                                              pred_png.getvalue(), pred_json.getvalue(), pred_png.name)
except inst.InstanceLabError as exc:
    st.error(error_text(exc))

if view is not None:
    classes = views.counted_classes(view)
    if not classes:
        st.info(tr("instances.pq.nothing"))
    else:
        chosen_class = widgets.stable_choice(st.selectbox, tr("instances.pq.class"), [c.category_id for c in classes],
                                             INST.PQ_CLASS, format_func=lambda cid: view.result.per_class[cid].name)
        f = views.pq_formula(view.result.per_class[chosen_class])
        m1, m2, m3, m4 = st.columns(4)
        m1.metric("PQ", f"{f.pq:.3f}")
        m2.metric("SQ", f"{f.sq:.3f}")
        m3.metric("RQ", f"{f.rq:.3f}")
        m4.metric("TP · FP · FN", f"{f.tp} · {f.fp} · {f.fn}")
        st.latex(r"\mathrm{PQ}=\frac{\sum_{(p,g)\in TP}\mathrm{IoU}(p,g)}{|TP|+\frac12|FP|+\frac12|FN|}"
                 r"=\underbrace{\frac{\sum \mathrm{IoU}}{|TP|}}_{\mathrm{SQ}}\times"
                 r"\underbrace{\frac{|TP|}{|TP|+\frac12|FP|+\frac12|FN|}}_{\mathrm{RQ}}")
        st.latex(rf"\mathrm{{PQ}}_{{\text{{{f.name}}}}}=\frac{{{f.iou_sum:.3f}}}{{{f.tp}+\frac12\cdot{f.fp}"
                 rf"+\frac12\cdot{f.fn}}}=\frac{{{f.iou_sum:.3f}}}{{{f.denominator:g}}}={f.pq:.3f}"
                 rf"={f.sq:.3f}\times{f.rq:.3f}")
        groups = view.result
        st.dataframe([{tr("instances.pq.col.group"): tr(f"instances.pq.group.{name}"),
                       # a group with no segments reads "—", not "None"
                       **{q: "—" if v is None else f"{v:.4f}" for q, v in (("PQ", g.pq), ("SQ", g.sq), ("RQ", g.rq))},
                       "N": g.n}
                      for name, g in (("all", groups.all), ("things", groups.things), ("stuff", groups.stuff))],
                     hide_index=True)
        left, right = st.columns([5, 6])  # the matches table's five columns fit at 1280 px in English too
        left.image(inputs.to_display(views.draw_pq_matches(view, photo_for_view), DISPLAY_SIDE), width="stretch",
                   caption=tr("instances.pq.drawing_caption"))
        name_of = {c.id: c.name for c in view.categories.values()}

        def segment_text(segment_id: int | None) -> str:
            """A segment id as shown: the background stuff segment by name, none as a dash."""
            if segment_id is None:
                return "—"
            return tr("instances.pq.background_segment") if segment_id == BACKGROUND_SEGMENT_ID \
                else str(segment_id)

        rows = ([(m.category_id, "TP", m.gt_id, m.pred_id, f"{m.iou:.4f}") for m in view.matches.tp]
                + [(s.category_id, "FP", None, s.segment_id, "—") for s in view.matches.fp]
                + [(s.category_id, "FN", s.segment_id, None, "—") for s in view.matches.fn])
        right.dataframe([{tr("instances.pq.col.kind"): kind, tr("instances.pq.col.class"): name_of.get(cid, "?"),
                          tr("instances.pq.col.gt"): segment_text(g), tr("instances.pq.col.pred"): segment_text(p),
                          "IoU": iou} for cid, kind, g, p, iou in rows], hide_index=True, width="stretch")
        if view.matches.ignored_predictions:
            right.caption(tr("instances.pq.ignored", n=len(view.matches.ignored_predictions)))
