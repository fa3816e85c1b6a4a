"""Evaluate: IoU against ground truth, every library convention an explicit, explained choice."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from segdemo.data import samples
from segdemo.data.images import UPLOAD_TYPES
from segdemo.evaluate import (BatchAccumulator, BatchResult, EvaluationError, evaluate_annotators,
                              evaluate_pair, pair_files, read_zip, short_list)
from segdemo.evaluate.examples import annotator_examples, batch_examples
from segdemo.ui import eval_inputs as ei
from segdemo.ui import eval_views as ev
from segdemo.ui import models, sidebar, state
from segdemo.ui.state import EVAL, tr
from segdemo.ui.widgets import stable_choice

MODES = ("single", "annotators", "batch")
st.session_state.setdefault(EVAL.MODE, "single")
settings = sidebar.setup_page("page.evaluate", show_model=st.session_state[EVAL.MODE] != "annotators",
                              show_overlay=False)
top = st.columns([4, 3, 3])  # mode, input and example on one row: the result starts higher on the page
with top[0]:
    mode = stable_choice(st.radio, tr("eval.mode"), MODES, EVAL.MODE, horizontal=True,
                        format_func=state.options_formatter("eval.mode."),
                        help="\n\n".join(tr(f"eval.mode.{m}.help") for m in MODES))
entry = settings.entry


# ---------------------------------------------------------------- inputs

if mode == "single":
    examples = [s for s in samples.dataset_samples() if s.mask is not None and s.mask.is_file()]
    picked = ei.source_and_example(EVAL.SINGLE, [s.name for s in examples], [s.source for s in examples],
                                   entry.label_set_key, (top[1], top[2]))
    if picked is not None:
        sample = examples[picked]
        image_in, mask_in = (sample.path.name, sample.path.read_bytes()), (sample.mask.name, sample.mask.read_bytes())
    else:
        c1, c2 = st.columns(2)
        image_in = ei.read_upload(c1.file_uploader(tr("eval.upload_image"), type=list(UPLOAD_TYPES), key=EVAL.IMAGE))
        mask_in = ei.read_upload(c2.file_uploader(tr("eval.upload_mask"), type=list(UPLOAD_TYPES), key=EVAL.MASK,
                                                help=tr("eval.upload_mask_help")))
elif mode == "annotators":
    examples = annotator_examples()
    picked = ei.source_and_example(EVAL.ANNOTATORS, [e.name for e in examples], [e.label_set_key for e in examples],
                                   columns=(top[1], top[2]))
    if picked is not None:
        ex = examples[picked]
        image_in = (ex.image.name, ex.image.read_bytes())
        mask_in, second_in = (ex.first.name, ex.first.read_bytes()), (ex.second.name, ex.second.read_bytes())
    else:
        c1, c2, c3 = st.columns(3)
        image_in = ei.read_upload(c1.file_uploader(tr("eval.upload_image_optional"), type=list(UPLOAD_TYPES),
                                                 key=EVAL.ANN_IMAGE))
        mask_in = ei.read_upload(c2.file_uploader(tr("eval.upload_first"), type=list(UPLOAD_TYPES), key=EVAL.ANN_A))
        second_in = ei.read_upload(c3.file_uploader(tr("eval.upload_second"), type=list(UPLOAD_TYPES),
                                                  key=EVAL.ANN_B))
else:
    examples = batch_examples()
    picked = ei.source_and_example(EVAL.BATCH, [e.name for e in examples], [e.label_set_key for e in examples],
                                   entry.label_set_key, (top[1], top[2]))
    files: dict[str, object] = {}
    if picked is not None:
        files = dict(examples[picked].files)
    else:
        c1, c2 = st.columns(2)
        uploads = c1.file_uploader(tr("eval.upload_batch"), type=["zip", *UPLOAD_TYPES],
                                   accept_multiple_files=True, key=EVAL.BATCH_FILES, help=tr("eval.upload_batch_help"))
        folder = c2.file_uploader(tr("eval.upload_folder"), type=list(UPLOAD_TYPES),
                                  accept_multiple_files="directory", key=EVAL.BATCH_FOLDER,
                                  help=tr("eval.upload_batch_help"))
        for up in [*(uploads or []), *(folder or [])]:
            if up.name in files:
                st.warning(tr("eval.batch.duplicate", name=up.name))
                continue
            if up.name.lower().endswith(".zip"):
                try:
                    files.update({f"{up.name}/{k}": v for k, v in read_zip(up.getvalue()).items()})
                except EvaluationError as exc:
                    st.error(f"{up.name}: {ei.describe(exc)}")
            else:
                files[up.name] = up.getvalue()

# ---------------------------------------------------------------- the truth's label set, from the mask itself

if mode == "batch":
    plan = pair_files(files)
    first_mask = plan.pairs[0][2] if plan.pairs else None
    value = files.get(first_mask) if first_mask else None
    mask_in = None if value is None else (first_mask, value.read_bytes() if isinstance(value, Path) else value)
guess = ei.guess_truth_labels(mode, mask_in, entry.label_set_key if mode != "annotators" else None)

# ---------------------------------------------------------------- conventions

with st.expander(tr("eval.settings"), expanded=False):
    gt_set = ei.truth_label_set_select(entry.label_set_key if mode != "annotators" else st.session_state.get(
        EVAL.GT_LABELS, "voc"))
    policy, ignore = ei.policy_controls(gt_set)
if ignore is not None and 0 <= ignore < gt_set.num_classes:
    st.warning(tr("eval.ignore_is_class", ignore=ignore, labels=tr(f"labelset.{gt_set.key}"),
                  name=ei.class_names(gt_set, state.current_lang())[ignore]))
ei.show_label_sets(guess, gt_set, entry.display_name if mode != "annotators" else None,
                   entry.label_set if mode != "annotators" else None)
mapping = None
if mode != "annotators" and gt_set.key != entry.label_set_key:
    mapping = ei.mapping_controls(gt_set, entry.label_set)
    if mapping is None:
        st.stop()
other = mapping is not None and mapping.has_other
meta = {"model": entry.name if mode != "annotators" else None, "truth_labels": gt_set.key,
        "ignore_index": ignore, "mapping": None if mapping is None else mapping.preset}

# ---------------------------------------------------------------- single pair and annotators

if mode in ("single", "annotators"):
    image = ei.decode_image_cached(image_in)
    if mode == "single" and (image is None or mask_in is None):
        st.info(tr("eval.need_pair"))
        st.stop()
    if mode == "annotators" and (mask_in is None or second_in is None):
        st.info(tr("eval.need_two"))
        st.stop()
    size = image.rgb.shape[:2] if image is not None else None
    gt = ei.decode_mask_shown(mask_in, gt_set, ignore, size)
    if gt is None:
        st.stop()
    try:
        if mode == "single":
            pred = models.predict_cached(image, settings)
            models.timing_caption(pred)
            result = evaluate_pair(pred.labels, gt.labels, gt_set, ignore, policy, mapping, name=mask_in[0])
            second_title = tr("eval.prediction_of", model=entry.display_name)
        else:
            second = ei.decode_mask_shown(second_in, gt_set, ignore, gt.labels.shape)
            if second is None:
                st.stop()
            result = evaluate_annotators(gt.labels, second.labels, gt_set, ignore, policy, name=second_in[0])
            second_title = tr("eval.second_annotator")
            st.info(tr("eval.annotators_note"))
    except EvaluationError as exc:
        st.error(ei.describe(exc))
        st.stop()
    ev.result_views(result, None if image is None else image.rgb, gt_set, EVAL.ONE, other, second_title)
    report = BatchResult.from_pair(result)
    ei.downloads(report, Path(result.name).stem, meta)
    st.stop()

# ---------------------------------------------------------------- batch

if not files:
    st.info(tr("eval.batch.need_files"))
    st.stop()
st.write(tr("eval.batch.plan", pairs=len(plan.pairs), lonely=len(plan.images_without_mask),
            masks=len(plan.masks_without_image)))
if plan.duplicates:
    st.warning(tr("eval.batch.duplicates", names=short_list(plan.duplicates)))
if plan.masks_without_image:
    st.warning(tr("eval.batch.masks_without_image", names=short_list(plan.masks_without_image)))
st.session_state.setdefault(EVAL.BATCH_BOUNDARY, False)
boundary = st.checkbox(tr("eval.batch.boundary"), key=EVAL.BATCH_BOUNDARY, help=tr("eval.batch.boundary_help"))
signature = (tuple(sorted(files)), settings.model_name, settings.inference_size, settings.device, settings.half,
             gt_set.key, ignore, policy, None if mapping is None else mapping.pred_to_gt, boundary)

if st.button(tr("eval.batch.run"), type="primary", disabled=not (plan.pairs or plan.images_without_mask)):
    accumulator = BatchAccumulator(gt_set, ignore, policy, mapping, boundary=boundary)
    batch = ei.run_model_batch(files, plan, settings, gt_set, ignore, accumulator)
    st.session_state[EVAL.BATCH_RESULT] = (signature, batch)

stored = st.session_state.get(EVAL.BATCH_RESULT)
if stored is None:
    st.stop()
if stored[0] != signature:
    st.info(tr("eval.batch.stale"))
    st.stop()
batch = stored[1]
for record in batch.errors:
    st.warning(ei.describe(record.error))
noted = batch.warnings()
if noted:
    with st.expander(tr("eval.batch.notices", n=len(noted))):
        st.markdown("\n".join("- " + ei.describe(n) for notices in noted.values() for n in notices))
ev.batch_views(batch, gt_set, EVAL.BATCH, other)
ei.downloads(batch, "segdemo_eval", {**meta, "pairs": len(plan.pairs)})
