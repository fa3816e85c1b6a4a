"""The instance registry: torchvision's COCO Mask R-CNN beside segdemo's Penn-Fudan one, and the
COCO -> VOC class correspondence the page shows."""

from __future__ import annotations

import pytest
import torch

from segdemo.data.labels import VOC
from segdemo.labs import instances as inst
from segdemo.models import instance_registry, weights

# torchvision references/segmentation/coco_utils.py: the COCO category id kept as each VOC class
# (index = VOC label id), the rule torchvision's VOC-label models were trained with.
TORCHVISION_CAT_LIST = [0, 5, 2, 16, 9, 44, 6, 3, 17, 62, 21, 67, 18, 19, 4, 1, 64, 20, 63, 7, 72]


def coco_entry() -> instance_registry.InstanceEntry:
    return instance_registry.get_instance_entry(instance_registry.TORCHVISION_MASKRCNN)


def test_torchvision_entry_reads_the_weights_enum() -> None:
    from torchvision.models.detection import MaskRCNN_ResNet50_FPN_Weights

    entry = coco_entry()
    enum = MaskRCNN_ResNet50_FPN_Weights.COCO_V1
    assert entry.weights.url == enum.url
    assert entry.weights.filename == "maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth"
    assert entry.categories == tuple(enum.meta["categories"]) and len(entry.categories) == 91
    assert entry.num_params == enum.meta["num_params"]
    assert entry.metrics == {"box_map": pytest.approx(0.379), "mask_map": pytest.approx(0.346)}
    assert entry.source == "torchvision" and entry.weights.shipped_path is None


def test_coco_to_voc_matches_torchvisions_training_rule() -> None:
    categories = coco_entry().categories
    expected = {categories[coco_id]: VOC.classes[voc_id] for voc_id, coco_id in enumerate(TORCHVISION_CAT_LIST)
                if voc_id}
    assert inst.COCO_TO_VOC == expected
    assert inst.voc_class_of("truck") is None and inst.voc_class_of("couch") == "sofa"


def test_offline_without_weights_is_weights_missing(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No file and no download asked: WeightsMissingError naming the file, at once."""
    monkeypatch.setenv("SEGDEMO_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(weights.WeightsMissingError) as info:
        instance_registry.load_instance_model(instance_registry.TORCHVISION_MASKRCNN, allow_random=False)
    assert info.value.filename == "maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth"


@pytest.mark.slow
def test_random_weights_only_when_allowed_and_the_steps_run(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In tests (random weights allowed) the COCO model builds and the page's stage-by-stage run works on it."""
    monkeypatch.setenv("SEGDEMO_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("SEGDEMO_ALLOW_RANDOM_WEIGHTS", "1")
    loaded = inst.load_instance_model(instance_registry.TORCHVISION_MASKRCNN)
    assert loaded.random_weights and loaded.person_label == 1 and len(loaded.categories) == 91
    rgb = (torch.rand(120, 160, 3) * 255).to(torch.uint8).numpy()
    steps = inst.maskrcnn_steps(loaded.model, rgb)
    assert steps.image_hw == (120, 160)
    assert steps.features.shape[0] == 256  # FPN level "0" (stride 4)
    assert steps.spatial_scale == pytest.approx(0.25)


def test_semantic_partner() -> None:
    """Person-only instance model -> the background+person model; COCO -> a VOC-label model with weights."""
    from segdemo.models import registry

    entries = registry.list_models()
    person_only = inst.LoadedInstanceModel(None, "m", None, False)  # type: ignore[arg-type]
    coco = inst.LoadedInstanceModel(None, "c", None, False, coco_entry().categories)  # type: ignore[arg-type]
    found = inst.semantic_partner(person_only, entries, lambda e: True)
    assert found is not None and found.label_set_key == "person"
    assert inst.semantic_partner(coco, entries, lambda e: True).label_set_key == "voc"
    assert inst.semantic_partner(coco, entries, lambda e: False) is None
