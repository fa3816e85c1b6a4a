"""The model registry and weight loading (safe formats, search order, offline behaviour)."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
import torch
from safetensors.torch import save_file
from torchvision.models import segmentation

from segdemo import config
from segdemo.models import registry
from segdemo.models import weights

TORCHVISION = {
    "fcn_resnet50": segmentation.FCN_ResNet50_Weights,
    "fcn_resnet101": segmentation.FCN_ResNet101_Weights,
    "deeplabv3_resnet50": segmentation.DeepLabV3_ResNet50_Weights,
    "deeplabv3_resnet101": segmentation.DeepLabV3_ResNet101_Weights,
    "deeplabv3_mobilenet_v3_large": segmentation.DeepLabV3_MobileNet_V3_Large_Weights,
    "lraspp_mobilenet_v3_large": segmentation.LRASPP_MobileNet_V3_Large_Weights,
}


@pytest.mark.parametrize("name,enum", TORCHVISION.items())
def test_torchvision_metadata_comes_from_the_weights_enum(name, enum):
    entry = registry.get(name)
    w = enum.COCO_WITH_VOC_LABELS_V1
    metrics = next(iter(w.meta["_metrics"].values()))
    assert entry.metrics["miou"] == pytest.approx(metrics["miou"] / 100)
    assert entry.metrics["pixel_acc"] == pytest.approx(metrics["pixel_acc"] / 100)
    assert entry.num_params == w.meta["num_params"]
    assert entry.gflops == pytest.approx(w.meta["_ops"])
    assert entry.weights.url == w.url
    assert entry.label_set.num_classes == len(w.meta["categories"]) == 21
    assert entry.preprocess.resize_size == 520


def test_ui_offers_only_valid_pairs():
    for arch in registry.architectures():
        for backbone in registry.backbones(arch):
            entry = registry.find(arch, backbone)
            assert (entry.architecture, entry.backbone) == (arch, backbone)
    assert "MobileNetV3-Large" not in registry.backbones("FCN")
    assert set(registry.backbones("DeepLabV3")) >= {"ResNet-50", "ResNet-101", "MobileNetV3-Large"}
    with pytest.raises(KeyError):
        registry.find("LR-ASPP", "ResNet-50")


def test_random_model_parameter_count_matches_metadata():
    entry = registry.get("lraspp_mobilenet_v3_large")
    model = weights.load_model(entry, allow_random=True)
    assert model.random_weights
    assert sum(p.numel() for p in model.parameters()) == entry.num_params


def test_missing_weights_raise_with_file_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGDEMO_WEIGHTS_DIR", str(tmp_path / "w"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    entry = registry.get("deeplabv3_mobilenet_v3_large")
    with pytest.raises(weights.WeightsMissingError) as info:
        weights.load_model(entry, allow_random=False)
    message = str(info.value)
    assert entry.weights.filename in message and str(tmp_path / "w") in message


def test_offline_download_fails_fast(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    entry = replace(registry.get("lraspp_mobilenet_v3_large"),
                    weights=registry.WeightsSpec(filename="x-0123abcd.pth", url="http://127.0.0.1:9/x-0123abcd.pth"))
    start = time.perf_counter()
    with pytest.raises(weights.WeightsMissingError):
        weights.download(entry)
    assert time.perf_counter() - start < 5
    assert not list((tmp_path / "torch").rglob("*.partial"))


def test_weights_folder_is_searched_and_real_file_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGDEMO_WEIGHTS_DIR", str(tmp_path))
    entry = registry.get("lraspp_mobilenet_v3_large")
    torch.manual_seed(5)
    net = entry.build()
    torch.save(net.state_dict(), tmp_path / entry.weights.filename)
    assert weights.locate(entry) == tmp_path / entry.weights.filename
    model = weights.load_model(entry, allow_random=False)
    assert not model.random_weights
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(model(x), net.eval()(x)["out"])


class _NotAWeight:
    pass


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"w": torch.zeros(2), "obj": _NotAWeight()}, path)
    with pytest.raises(Exception) as info:
        weights.read_state_dict(path)
    assert "weights_only" in str(info.value) or "Unsupported" in str(info.value) or "global" in str(info.value)


def test_user_checkpoint_registers_new_entry(tmp_path):
    base = registry.get("lraspp_mobilenet_v3_large")
    torch.manual_seed(7)
    net = base.build()
    path = tmp_path / "finetuned.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    entry = weights.register_user_checkpoint(base, path)
    assert entry.source == "user" and registry.get(entry.name) is entry
    assert entry.backbone in registry.backbones(base.architecture)
    model = weights.load_model(entry, allow_random=False)
    x = torch.randn(1, 3, 48, 48)
    with torch.inference_mode():
        torch.testing.assert_close(model(x), net.eval()(x)["out"])


def test_mismatched_checkpoint_is_rejected(tmp_path):
    path = tmp_path / "wrong.safetensors"
    save_file({"conv.weight": torch.zeros(3, 3, 3, 3)}, str(path))
    with pytest.raises(ValueError, match="does not fit"):
        weights.register_user_checkpoint(registry.get("lraspp_mobilenet_v3_large"), path)


def test_default_model_exists():
    assert registry.default_model().name in {e.name for e in registry.list_models()}
    assert config.SHIPPED_MODELS_DIR.is_dir()


@pytest.fixture
def local_http(tmp_path):
    """A static file server on 127.0.0.1 (the only network a test may use)."""
    import functools
    import http.server
    import threading

    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_download_checks_hash_reports_progress_and_loads(local_http, tmp_path, monkeypatch):
    import hashlib

    root, base_url = local_http
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("SEGDEMO_WEIGHTS_DIR", str(tmp_path / "empty"))
    base = registry.get("lraspp_mobilenet_v3_large")
    torch.manual_seed(11)
    net = base.build()
    raw = tmp_path / "w.pth"
    torch.save(net.state_dict(), raw)
    digest = hashlib.sha256(raw.read_bytes()).hexdigest()
    good_name, bad_name = f"lraspp-{digest[:8]}.pth", "lraspp-00000000.pth"
    (root / good_name).write_bytes(raw.read_bytes())
    (root / bad_name).write_bytes(raw.read_bytes())

    seen: list[tuple[int, int]] = []
    entry = replace(base, weights=registry.WeightsSpec(filename=good_name, url=f"{base_url}/{good_name}"))
    path = weights.download(entry, lambda done, total: seen.append((done, total)))
    assert path == config.torch_hub_checkpoints_dir() / good_name and path.is_file()
    assert seen and seen[-1][0] == seen[-1][1] == raw.stat().st_size
    model = weights.load_model(entry, allow_random=False)
    assert model.weights_path == path and not model.random_weights

    corrupt = replace(base, weights=registry.WeightsSpec(filename=bad_name, url=f"{base_url}/{bad_name}"))
    with pytest.raises(weights.WeightsMissingError, match="hash"):
        weights.download(corrupt)
    assert not (config.torch_hub_checkpoints_dir() / bad_name).exists()
