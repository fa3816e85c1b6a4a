"""Session state: every session key, the current language, one per-session cache.

Streamlit keeps ``st.session_state`` per browser session. The settings of the
shared sidebar live under the keys below and are seeded (by
:func:`segdemo.ui.sidebar.seed_session_state`) before their widgets are built,
so they survive page switches. Everything a page keeps between reruns that is
not a widget value (decoded uploads, predictions, slow lab results) goes
through :func:`session_cache`, bounded so a long lecture cannot fill memory.

Every key a page or UI module uses is named here (a namespace class per page,
then the keys the UI modules derive from a caller's key); the strings must not
change, because browser tests and AppTests address widgets by key.
tests/pages/test_session_keys.py fails on a key spelled anywhere else.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable, TypeVar

import streamlit as st

from segdemo import i18n

T = TypeVar("T")

# ---- keys of the shared sidebar (widget keys: seeded before the widgets exist)
LANG = "lang"
DEVICE = "device"
HALF = "half"
ARCH = "arch"
BACKBONE = "backbone"
INFERENCE_SIZE = "inference_size"
OPACITY = "opacity"
OUTLINE = "outline"
OWN_CHECKPOINT = "own_checkpoint"
OWN_CHECKPOINT_DONE = "own_checkpoint_done"  # file id of the checkpoint already registered
OWN_MODELS = "own_models"  # names of the registry entries this session added (source "user")
RUN_COUNT = "_run_count"  # script runs of this session (counted by the sidebar's setup_page)
CLASS_TOGGLES = "class_toggles"  # label-set key -> {class id: shown} of the legend's switches
CHOICE_LANG = "_choice_lang"  # per stable_choice key: the language its widget was seeded in
CACHE_PREFIX = "_cache_"  # + cache name: the stores of session_cache
NATIVE_SHOWN = "_inference_native_shown"  # the native size the inference-size labels were last drawn with

# ---- bounds of the per-session caches (entries)
MAX_DECODED_IMAGES = 24  # a class uploads a dozen photos at once; more would re-decode on every rerun
MAX_PREDICTIONS = 12
MAX_BATCH_LABEL_MAPS = 500  # label maps only (small); a batch re-scores without re-running the model
MAX_LAB_RESULTS = 8

_lock = threading.Lock()


def current_lang() -> str:
    """The session's language code ("ko" or "en")."""
    return st.session_state.get(LANG, i18n.DEFAULT_LANGUAGE)


def tr(key: str, **values: object) -> str:
    """``key`` translated into the session's language."""
    return i18n.t(key, current_lang(), **values)


def options_formatter(prefix: str) -> Callable[[object], str]:
    """A ``format_func`` showing option ``v`` as the text of key ``prefix + str(v)``.

    The language is fixed when the widget is built, so the labels stay right
    even when the function is called outside the script run (AppTest does that).
    """
    lang = current_lang()
    return lambda value: i18n.t(f"{prefix}{value}", lang)


def session_cache(name: str, key: Hashable, compute: Callable[[], T], max_entries: int) -> T:
    """``compute()`` once per ``key`` in this browser session; the least recently used entry goes first.

    ``name`` separates the caches (decoded images, predictions, lab results);
    a cached value may be an exception object, so a bad upload says why on every rerun.
    """
    store: OrderedDict[Hashable, Any] = st.session_state.setdefault(CACHE_PREFIX + name, OrderedDict())
    if key in store:
        store.move_to_end(key)
        return store[key]
    value = compute()
    with _lock:  # reruns of one session may overlap (a rerun starts before the last one ends)
        store[key] = value
        while len(store) > max_entries:
            store.popitem(last=False)
    return value


# ---- keys derived from a caller's key (UI modules build their widgets' keys from the page's)


def sub_key(key: str, suffix: str) -> str:
    """The key ``key + suffix`` (a suffix below, such as :attr:`INPUTS.UPLOADER`)."""
    return key + suffix


def per_language(key: str, lang: str | None = None) -> str:
    """``key`` for one language's widget (a relabelled widget would lose its value), default the session's."""
    return f"{key}@{lang or current_lang()}"


def source_key(key: str) -> str:
    """The key of the "where the image comes from" choice of page ``key``."""
    return f"{key}_source"


class INPUTS:
    """segdemo.ui.inputs: a page's image inputs, after the page's key (e.g. :attr:`SEGMENT.INPUTS`)."""

    KEPT_PREFIX = "_kept_uploads_"  # + page key: {file id: InputImage}, oldest first
    HELD_PREFIX = "_uploader_held_"  # + page key: file ids the uploader widget held in the last run
    EVICTED_PREFIX = "_kept_evicted_"  # + page key: ids evicted while the uploader still holds them
    UPLOADER, FORGET, CAMERA_ON, CAMERA, SAMPLES = "_uploader", "_forget", "_camera_on", "_camera", "_samples"


class LEGEND:
    """segdemo.ui.legend: the class switches of the Segment legend."""

    RUN = "_legend_run"  # the run count of the last run that drew a legend
    GENERATION = "_legend_generation"  # bumped when a legend reappears after runs without one
    TOGGLES = "show"  # the switches' key prefix

    @staticmethod
    def toggle(prefix: str, label_set_key: str, cls: int, generation: int) -> str:
        """One class's switch; a new generation gets a fresh checkbox."""
        return f"{prefix}_{label_set_key}_{cls}" + (f"_g{generation}" if generation else "")


class EVAL_VIEWS:
    """segdemo.ui.eval_views: suffixes after the key of one result (e.g. :attr:`EVAL.ONE`)."""

    ALL, TABLE, LAST_PICK = "_all", "_table", "_last_table_pick"
    NORM, CM_ALL, CM, SCOPE = "_norm", "_cm_all", "_cm", "_scope"


class LABS:
    """segdemo.ui.labs: suffixes after a clickable picture's key."""

    CLICKED = "_yx"  # the last clicked pixel


# ---- keys of the pages, one namespace per page (widget keys unless marked otherwise)


class SEGMENT:
    """Page 1, Segment (and segdemo.ui.segment_view)."""

    INPUTS, CURRENT = "segment", "segment_current"
    VIEW, CLICK, SHOW_ALL = "segment_view", "segment_click", "segment_show_all"


class FCN:
    """Page 2, FCN-32s / 16s / 8s."""

    PAGE = "fcn"  # the image inputs and the source choice ("fcn_source")
    SEED, VAL_IMAGE, CHOICE, MASK = "fcn_seed", "fcn_val_image", "fcn_choice", "fcn_mask"
    ZOOM, ZOOM_X, ZOOM_Y, BAND = "fcn_zoom", "fcn_zoom_x", "fcn_zoom_y", "fcn_band"


class UNET:
    """Page 3, U-Net."""

    SEED, SOURCE, SLICE, PADDING = "unet_seed", "unet_source", "unet_slice", "unet_padding"
    DEPTH, BASE, SIZE, APPLY_FIX = "unet_depth", "unet_base", "unet_size", "unet_apply_fix"
    OUT_TILE, HIGHLIGHT = "unet_out_tile", "unet_highlight"
    SIGMA, GRID, ELASTIC_SEED = "unet_sigma", "unet_grid", "unet_elastic_seed"


class EVAL:
    """Page 4, Evaluate (and segdemo.ui.eval_inputs)."""

    MODE = "eval_mode"
    SINGLE, ANNOTATORS, BATCH = "eval", "eval_ann", "eval_batch"  # source choices (+ "_source", "_example")
    ONE = "eval_one"  # the single/annotator result views (+ EVAL_VIEWS suffixes)
    IMAGE, MASK = "eval_image", "eval_mask"
    ANN_IMAGE, ANN_A, ANN_B = "eval_ann_image", "eval_ann_a", "eval_ann_b"
    BATCH_FILES, BATCH_FOLDER, BATCH_BOUNDARY = "eval_batch_files", "eval_batch_folder", "eval_batch_boundary"
    BATCH_RESULT = "eval_batch_result"  # (signature, result) of the last batch scored (not a widget)
    GT_LABELS, IGNORE = "eval_gt_labels", "eval_ignore"
    ABSENT, BACKGROUND = "eval_absent", "eval_background"
    GUESSED_FOR = "eval_gt_guessed_for"  # (mode, mask digest) whose guess last set the truth's label set
    EXAMPLE = "_example"  # suffix after a source choice's key

    @staticmethod
    def mapping(gt_key: str, pred_key: str) -> str:
        """The class mapping (ids, language-free) from label set ``pred_key`` to ``gt_key``."""
        return f"eval_mapping_{gt_key}_{pred_key}"


class RF:
    """Page 5, Receptive field."""

    PAGE, CURRENT, PRESET, SHOW_PATHS = "rf", "rf_current", "rf_preset", "rf_show_paths"
    C_IN, C_OUT, KERNEL, DILATION = "rf_c_in", "rf_c_out", "rf_kernel", "rf_dilation"
    MAP, BIAS, LAB_SIZE = "rf_map", "rf_bias", "rf_lab_size"

    @staticmethod
    def editor(preset: str) -> str:
        """The layer table of one preset."""
        return f"rf_editor_{preset}"

    @staticmethod
    def click(digest: str, size: int) -> str:
        """The clickable picture of one image at one network size."""
        return f"rf_click_{digest}_{size}"

    @staticmethod
    def class_choice(digest: str, yx: tuple[int, int]) -> str:
        """The class box of one clicked pixel (it starts on that pixel's prediction)."""
        return f"rf_class_{digest}_{yx}"


class BI:
    """Page 6, Bilinear upsampling."""

    PAGE, CURRENT, PICK, CHECKER_WEIGHTS = "bi", "bi_current", "bi_pick", "bi_checker_weights"
    VALUES_1D, OUT_1D, ALIGN_1D, DST_1D = "bi_1d_values", "bi_1d_out", "bi_1d_align", "bi_1d_dst"
    GRID, PY, PX, OPACITY = "bi_grid", "bi_py", "bi_px", "bi_opacity"
    OUT_H, OUT_W, OY, OX = "bi_out_h", "bi_out_w", "bi_oy", "bi_ox"
    N_IN, N_OUT = "bi_n_in", "bi_n_out"

    @staticmethod
    def figure(align: bool) -> str:
        """The grid figure of one align_corners setting."""
        return f"bi_fig_{align}"

    @staticmethod
    def corners(align: bool) -> str:
        """The pixel-centre figure of one align_corners setting."""
        return f"bi_corners_{align}"

    @staticmethod
    def checker(pattern: str) -> str:
        """The heatmap of one checkerboard pattern."""
        return f"bi_checker_{pattern}"


class FC:
    """Page 7, FC vs 1x1 convolution."""

    PAGE, CURRENT = "fc", "fc_current"
    FCN_SIZE, FCN_CLASS = "fc_fcn_size", "fc_fcn_cls"
    VGG_SIZE, VGG_CLASS = "fc_vgg_size", "fc_vgg_class"
    RESNET_SIZE, RESNET_CLASS = "fc_resnet_size", "fc_resnet_cls"
    RESNET_CLASS_IMAGE = "fc_resnet_cls_image"  # (digest, real weights) whose best class was last chosen
    PW_N, PW_M, PW_H, PW_W = "fc_pw_n", "fc_pw_m", "fc_pw_h", "fc_pw_w"
    PW_BIAS, PW_IY, PW_IX = "fc_pw_bias", "fc_pw_iy", "fc_pw_ix"


class SEP:
    """Page 8, Depthwise separable."""

    KH, KW, C, N = "sep_kh", "sep_kw", "sep_c", "sep_n"
    MAP, BIAS, MEASURE = "sep_map", "sep_bias", "sep_measure"


class TL:
    """Page 9, Transfer learning."""

    PAGE, IMAGE = "tl", "tl_image"
    RUN_IDS, OWNER = "tl_run_ids", "tl_owner"  # this session's runs and its id in the worker (not widgets)
    STRATEGY, SIZE, LR, EPOCHS = "tl_strategy", "tl_size", "tl_lr", "tl_epochs"
    AUG, SEED, DRAW, START, STOP = "tl_aug", "tl_seed", "tl_draw", "tl_start", "tl_stop"
    SHIPPED, USE, DOWNLOAD = "tl_shipped", "tl_use", "tl_download"
    CURVE_MIOU, CURVE_LOSS = "tl_curve_miou", "tl_curve_loss"


class COMPARE:
    """Page 10, Compare."""

    PAGE = "compare"  # the image inputs and the source choice ("compare_source")
    LABEL_SET, SIZE, VAL_IMAGE, SAMPLE = "compare_label_set", "compare_size", "compare_val_image", "compare_sample"
    CHOICE, MASK = "compare_choice", "compare_mask"
    WARMUP, REPEATS, BAND = "compare_warmup", "compare_repeats", "compare_band"
    ZOOM, ZOOM_X, ZOOM_Y, SHOW_TRUTH = "compare_zoom", "compare_zoom_x", "compare_zoom_y", "compare_show_truth"
    DOWNLOAD_GRID, DOWNLOAD_CSV, PLOT = "compare_download_grid", "compare_download_csv", "compare_plot"

    @staticmethod
    def models(label_set_key: str) -> str:
        """The model choice of one label set."""
        return f"compare_models_{label_set_key}"


class INST:
    """Page 11, Semantic vs instance."""

    MODEL, SOURCE, PHOTO, UPLOAD = "inst_model", "inst_source", "inst_photo", "inst_upload"
    SCORE, MASK, TOPK, BINS, ROI = "inst_score", "inst_mask", "inst_topk", "inst_bins", "inst_roi"
    PQ_MODE, PQ_BACKGROUND, PQ_CLASS = "inst_pq_mode", "inst_pq_background", "inst_pq_class"
    PQ_GT, PQ_PRED = "inst_pq_gt", "inst_pq_pred"
    PQ_GT_PNG, PQ_GT_JSON = "inst_pq_gt_png", "inst_pq_gt_json"
    PQ_PRED_PNG, PQ_PRED_JSON = "inst_pq_pred_png", "inst_pq_pred_json"


class AUG:
    """Page 12, Augmentation."""

    PAGE, SOURCE, IMAGE, MASK = "aug", "aug_source", "aug_image", "aug_mask"
    OP, FRAME, FRAME_B, DRAW, MIX_CLASS = "aug_op", "aug_frame", "aug_frame_b", "aug_draw", "aug_mix_class"
    DRAWS = "aug_draws"  # how many random draws this session made (the next draw's seed)
    PARAMS = "aug_params"  # op -> {parameter: value}: survives a change of augmentation or language

    @staticmethod
    def control(op: str, name: str) -> str:
        """A slider's key: one widget per language (a relabelled widget would restart at its minimum)."""
        return per_language(f"aug_{op}_{name}")


class KD:
    """Page 13, Distillation."""

    RUN_IDS, OWNER = "kd_run_ids", "kd_owner"  # this session's run pairs and its id in the worker (not widgets)
    T, MIX, EPOCHS, SIZE, CONTROL = "kd_t", "kd_mix", "kd_epochs", "kd_size", "kd_control"
    START, STOP, FRAME, STUDENT, CLICK = "kd_start", "kd_stop", "kd_frame", "kd_student", "kd_click"
    SHIPPED_CURVE, SOFT_CHART = "kd_shipped_curve", "kd_soft_chart"
    CURVE_MIOU, CURVE_CE = "kd_curve_miou", "kd_curve_ce"
