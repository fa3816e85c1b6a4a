"""Evaluating predictions against ground truth: the logic of the Evaluate page and ``segdemo eval``.

* :mod:`~segdemo.evaluate.metrics`: confusion matrix, IoU and friends, boundary F1;
* :mod:`~segdemo.evaluate.masks`: reading ground-truth files (palette, index, colour-coded);
* :mod:`~segdemo.evaluate.scoring`: per-class tables and the absent-class / background policies, and
  :func:`~segdemo.evaluate.scoring.score_predictions`, the one scoring path of training, cards and pages;
* :mod:`~segdemo.evaluate.mapping`: truth and model in different label sets;
* :mod:`~segdemo.evaluate.maps`: hatched label maps and TP/FP/FN error maps;
* :mod:`~segdemo.evaluate.batch`: pairing files, accumulating a data set, CSV/JSON export.
"""

from segdemo.evaluate.batch import (BatchAccumulator, BatchResult, ImageRecord, PairPlan, pair_by_name, pair_files,
                                    per_class_csv, per_image_csv, read_folder, read_zip, run_batch, to_json,
                                    to_json_dict)
from segdemo.evaluate.mapping import OTHER, LabelMapping, identity, mapping_by_name, mapping_from_names, preset_mapping
from segdemo.evaluate.maps import colorize_labels, error_counts, error_map, hatch
from segdemo.evaluate.masks import (GroundTruth, MaskError, Notice, decode_mask, describe_notice, encode_index_png,
                                    short_list, valid_mask)
from segdemo.evaluate.scoring import (ABSENT_POLICIES, DatasetScores, EvaluationError, PairResult, Policy, Scores,
                                      evaluate_annotators, evaluate_pair, iou_formula_values, normalise_confusion,
                                      score_confusion, score_predictions)

__all__ = [
    "ABSENT_POLICIES", "OTHER", "BatchAccumulator", "DatasetScores", "BatchResult", "EvaluationError", "GroundTruth",
    "ImageRecord", "LabelMapping", "MaskError", "Notice", "PairPlan", "PairResult", "Policy", "Scores",
    "colorize_labels", "decode_mask", "describe_notice", "encode_index_png", "error_counts", "error_map", "evaluate_annotators", "evaluate_pair",
    "hatch", "identity", "iou_formula_values", "mapping_by_name", "mapping_from_names", "normalise_confusion",
    "pair_by_name", "pair_files", "per_class_csv", "per_image_csv", "preset_mapping", "read_folder", "read_zip", "run_batch",
    "short_list",
    "score_confusion", "score_predictions", "to_json", "to_json_dict", "valid_mask",
]
