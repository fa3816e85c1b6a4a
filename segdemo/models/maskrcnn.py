"""Mask R-CNN (He et al. 2017) on an ImageNet MobileNetV2 backbone, from torchvision's parts.

Mask R-CNN is Faster R-CNN (Ren et al. 2015) plus a third branch per region:

1. **Backbone**: torchvision's ``mobilenet_v2().features[:18]`` (the ImageNet
   network segdemo ships) at output stride 16, then a 1x1 convolution down to
   128 channels (as an FPN lateral would) so the heads stay small.
2. **RPN** (``AnchorGenerator`` + torchvision's ``RPNHead``): on every cell of the
   stride-16 map, 4 sizes x 3 aspect ratios of anchor boxes are scored
   object/not-object and regressed to proposals.
3. **RoIAlign** (``MultiScaleRoIAlign``): each proposal's features are sampled
   bilinearly — no rounding of the box to the feature grid, the fix Mask R-CNN
   made to Faster R-CNN's RoIPool — to 7x7 for the box head and 14x14 for the
   mask head.
4. **Box head** (``TwoMLPHead`` + ``FastRCNNPredictor``): class scores and a
   per-class box refinement for each RoI.
5. **Mask head** (``MaskRCNNHeads`` + ``MaskRCNNPredictor``): four 3x3 convs and a
   transposed conv give a 28x28 mask logit per class and RoI; at inference the
   mask of the predicted class is pasted back into the image box.

Choices for Penn-Fudan pedestrians on a CPU:

* **Stride 16, not 32.** The photos are resized to a shorter side of 320 px, so a
  pedestrian is roughly 40-120 px wide and 100-300 px tall. At stride 32 a
  narrow pedestrian spans 1-3 feature cells, too few for a 14x14 RoIAlign to
  give the mask head any detail, and neighbouring people share cells. The
  dilated stride-16 backbone (see :func:`mobilenet_v2_features`) doubles the
  resolution and keeps the ImageNet receptive field.
* **Tall anchors**: aspect ratios (height/width) 1, 2 and 3, sizes 32-256 px,
  since pedestrians are upright.
* **Light heads** (128 channels, a 256-d box MLP): 4.9 M parameters instead of
  the 87 M of torchvision's default heads on 1280 channels.
* **Frozen**: the stem and the first two inverted-residual stages
  (``features[:4]``, stride 4, generic edges and colour) are not trained, and
  every BatchNorm uses its ImageNet statistics (``FrozenBatchNorm2d``): batches
  of 2 images are too small to estimate them.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.misc import FrozenBatchNorm2d

from segdemo.models.mobilenet_v2 import HIGH_CHANNELS, load_imagenet_features, mobilenet_v2_features

HEAD_CHANNELS = 128
BOX_REPRESENTATION = 256
FROZEN_BLOCKS = 4  # features[:4]: stem + first two inverted-residual stages (stride 4)
ANCHOR_SIZES = (32, 64, 128, 256)
ANCHOR_ASPECT_RATIOS = (1.0, 2.0, 3.0)  # height / width: pedestrians are tall


def freeze_batch_norm(module: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm2d`` in ``module`` by a ``FrozenBatchNorm2d`` with its statistics."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            frozen.weight.copy_(child.weight.detach())
            frozen.bias.copy_(child.bias.detach())
            frozen.running_mean.copy_(child.running_mean)
            frozen.running_var.copy_(child.running_var)
            setattr(module, name, frozen)
        else:
            freeze_batch_norm(child)
    return module


class MobileNetV2Backbone(nn.Sequential):
    """MobileNetV2 ``features[:18]`` (stride 16) and a 1x1 conv to ``out_channels``.

    ``out_channels`` is the attribute torchvision's detection models read.
    """

    def __init__(self, out_channels: int = HEAD_CHANNELS, imagenet_weights: str | Path | None = None,
                 frozen_blocks: int = FROZEN_BLOCKS) -> None:
        features = mobilenet_v2_features(16)
        if imagenet_weights is not None:
            load_imagenet_features(features, imagenet_weights)
        freeze_batch_norm(features)  # after loading: FrozenBatchNorm2d takes the ImageNet statistics
        for block in features[:frozen_blocks]:
            block.requires_grad_(False)
        super().__init__(features, nn.Conv2d(HIGH_CHANNELS, out_channels, kernel_size=1))
        self.out_channels = out_channels


def maskrcnn_mobilenet_v2(num_classes: int = 2, min_size: int = 320, max_size: int = 640,
                          imagenet_weights: str | Path | bool | None = None,
                          frozen_blocks: int = FROZEN_BLOCKS) -> MaskRCNN:
    """Light Mask R-CNN on MobileNetV2 (see the module docstring); ``num_classes`` includes background.

    ``imagenet_weights``: a MobileNetV2 state dict file for the backbone, ``True``
    for the shipped ImageNet weights, or ``None`` for random initialisation (the
    shipped instance models load their full state dict over it).
    """
    if imagenet_weights is True:
        from segdemo.models.backbones import mobilenet_v2_weights_path

        imagenet_weights = mobilenet_v2_weights_path()
    backbone = MobileNetV2Backbone(HEAD_CHANNELS, imagenet_weights or None, frozen_blocks)
    anchors = AnchorGenerator(sizes=(ANCHOR_SIZES,), aspect_ratios=(ANCHOR_ASPECT_RATIOS,))
    # One feature map, named "0" as torchvision names a plain tensor backbone's output.
    box_roi_align = MultiScaleRoIAlign(featmap_names=["0"], output_size=7, sampling_ratio=2)
    mask_roi_align = MultiScaleRoIAlign(featmap_names=["0"], output_size=14, sampling_ratio=2)
    return MaskRCNN(
        backbone,
        num_classes=None,  # given by the predictors below
        min_size=min_size,
        max_size=max_size,
        rpn_anchor_generator=anchors,
        # Fewer proposals than the COCO defaults (2000/1000): a photo has at most ~8 people.
        rpn_pre_nms_top_n_train=1000, rpn_post_nms_top_n_train=500,
        rpn_pre_nms_top_n_test=500, rpn_post_nms_top_n_test=200,
        box_roi_pool=box_roi_align,
        box_head=TwoMLPHead(HEAD_CHANNELS * 7 * 7, BOX_REPRESENTATION),
        box_predictor=FastRCNNPredictor(BOX_REPRESENTATION, num_classes),
        box_batch_size_per_image=256,
        mask_roi_pool=mask_roi_align,
        mask_head=MaskRCNNHeads(HEAD_CHANNELS, (HEAD_CHANNELS,) * 4, 1),
        mask_predictor=MaskRCNNPredictor(HEAD_CHANNELS, HEAD_CHANNELS, num_classes),
    )


@torch.no_grad()
def load_instance_state(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a shipped fp16 safetensors state dict into ``model`` (strict, cast to float32)."""
    from safetensors.torch import load_file

    state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(path)).items()}
    model.load_state_dict(state, strict=True)
    return model
