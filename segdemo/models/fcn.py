"""FCN-32s, FCN-16s and FCN-8s (Long, Shelhamer & Darrell, CVPR 2015 / PAMI 2017).

Read next to Figure 3 of the paper::

    image -> conv1 -> pool1 -> conv2 -> pool2 -> conv3 -> pool3 -> conv4 -> pool4
          -> conv5 -> pool5 -> fc6 -> fc7 -> score_fr                      (stride 32)

    FCN-32s: upscore(x32, fixed bilinear)(score_fr)
    FCN-16s: upscore16(x16)( upscore2(score_fr) + score_pool4(pool4) )
    FCN-8s : upscore8(x8)( upscore_pool4( upscore2(score_fr) + score_pool4(pool4) )
                           + score_pool3(pool3) )

The layer names are those of the Caffe models and of their PyTorch conversions
(``conv1_1`` .. ``conv5_3``, ``fc6``, ``fc7``, ``score_fr``, ``score_pool4``,
``score_pool3``, ``upscore``/``upscore2``/``upscore16``/``upscore_pool4``/
``upscore8``), so a published VGG16-FCN state dict loads into ``width="full"``.

Two geometries:

* ``"same"`` (segdemo's own models): every 3x3 convolution is padded, pooling
  uses ``ceil_mode`` and fc6 is padded, so the map at stride ``s`` has
  ``ceil(H/s)`` rows; a transposed convolution (kernel ``2f``, stride ``f``,
  padding ``f/2``) then lands exactly on the pixel grid, and every crop starts
  at offset 0. Works for any input size, odd or even.
* ``"caffe"`` (the published weights): conv1_1 is padded by 100 and fc6 is an
  unpadded 7x7 convolution, as in the original prototxt; the crops use the
  offsets Caffe's ``Crop`` layer computes for that net (5, 9 and 19/27/31).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

Width = Literal["full", "slim"]
Geometry = Literal["same", "caffe"]

# Channels of conv1..conv5 and of fc6/fc7.
WIDTHS: dict[str, tuple[tuple[int, int, int, int, int], int]] = {
    "full": ((64, 128, 256, 512, 512), 4096),
    "slim": ((16, 32, 64, 128, 128), 256),
}
# Long, Shelhamer & Darrell (CVPR 2015), Table 2: PASCAL VOC 2011 val subset, mean IU (%).
PAPER_TABLE2_MEAN_IU = {"FCN-32s": 59.4, "FCN-16s": 62.4, "FCN-8s": 62.7}
CONVS_PER_BLOCK = (2, 2, 3, 3, 3)  # VGG16: 13 convolutions in five blocks

# Crop offsets of the Caffe models (computed by Caffe's Crop layer for pad=100).
CAFFE_OFFSETS = {"score_pool4": 5, "score_pool3": 9, 32: 19, 16: 27, 8: 31}


def bilinear_kernel(channels: int, kernel_size: int) -> torch.Tensor:
    """Weights of a transposed convolution that upsamples each channel bilinearly.

    Shape ``[channels, channels, k, k]``: channel ``c`` maps only to channel ``c``
    (the FCN's "surgery" initialisation). For an even ``k = 2f`` and stride ``f``
    this is the tent ``(1 - |i - c|/f)`` centred at ``c = f - 0.5``.
    """
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    coords = torch.arange(kernel_size, dtype=torch.float64)
    tent = 1 - (coords - center).abs() / factor
    kernel2d = (tent[:, None] * tent[None, :]).float()
    weight = torch.zeros(channels, channels, kernel_size, kernel_size)
    idx = torch.arange(channels)
    weight[idx, idx] = kernel2d
    return weight


def make_upsampler(channels: int, factor: int, geometry: Geometry, learnable: bool) -> nn.ConvTranspose2d:
    """A bilinear-initialised transposed convolution that enlarges by ``factor``.

    In the ``"same"`` geometry the padding ``factor/2`` makes the output exactly
    ``factor`` times the input and equal to ``F.interpolate(mode="bilinear")``
    away from the borders. The paper keeps the final upsampling fixed and lets
    the intermediate ones (``upscore2``, ``upscore_pool4``) learn.
    """
    padding = factor // 2 if geometry == "same" else 0
    layer = nn.ConvTranspose2d(channels, channels, 2 * factor, stride=factor, padding=padding, bias=False)
    with torch.no_grad():
        layer.weight.copy_(bilinear_kernel(channels, 2 * factor))
    layer.weight.requires_grad_(learnable)
    return layer


def crop_to(x: torch.Tensor, height: int, width: int, offset: int = 0) -> torch.Tensor:
    """``x[..., offset:offset+height, offset:offset+width]`` (the Caffe ``Crop`` layer)."""
    if x.shape[-2] < offset + height or x.shape[-1] < offset + width:
        raise ValueError(f"cannot crop {tuple(x.shape[-2:])} to {(height, width)} at offset {offset}")
    return x[..., offset : offset + height, offset : offset + width]


class FCN(nn.Module):
    """FCN on a VGG16-style backbone with output stride 32, 16 or 8.

    Args:
        num_classes: score channels (21 for PASCAL VOC, 11 for CamVid).
        stride: 32, 16 or 8 (FCN-32s, FCN-16s, FCN-8s).
        width: ``"full"`` VGG16 widths (published weights) or ``"slim"`` (CPU training).
        batch_norm: a BatchNorm after every convolution (slim models only; the
            published models have none, so full width defaults to False).
        geometry: ``"same"`` or ``"caffe"`` (see the module docstring).
        dropout: dropout probability after fc6 and fc7 (0.5 in the paper).
    """

    def __init__(
        self,
        num_classes: int = 21,
        stride: int = 8,
        width: Width = "slim",
        batch_norm: bool = False,
        geometry: Geometry = "same",
        dropout: float = 0.5,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if stride not in (32, 16, 8):
            raise ValueError("stride must be 32, 16 or 8")
        if geometry not in ("same", "caffe"):
            raise ValueError("geometry must be 'same' or 'caffe'")
        self.num_classes = num_classes
        self.stride = stride
        self.geometry = geometry
        self.batch_norm = batch_norm
        block_widths, fc_width = WIDTHS[width]
        self.block_widths = block_widths

        # conv1 .. conv5: 3x3 convolutions (+BN) + ReLU, each block ends in a 2x2 max pool.
        # Flat attribute names (conv1_1 ... pool5) are the published Caffe models' own
        # state-dict keys, so their checkpoints load without renaming.
        channels = in_channels
        for block, (n_convs, out_ch) in enumerate(zip(CONVS_PER_BLOCK, block_widths), start=1):
            for i in range(1, n_convs + 1):
                pad = 100 if (geometry == "caffe" and block == 1 and i == 1) else 1
                setattr(self, f"conv{block}_{i}", nn.Conv2d(channels, out_ch, 3, padding=pad))
                if batch_norm:
                    setattr(self, f"bn{block}_{i}", nn.BatchNorm2d(out_ch))
                setattr(self, f"relu{block}_{i}", nn.ReLU(inplace=True))
                channels = out_ch
            setattr(self, f"pool{block}", nn.MaxPool2d(2, stride=2, ceil_mode=True))

        # fc6 / fc7: the classifier's fully connected layers, recast as convolutions.
        self.fc6 = nn.Conv2d(channels, fc_width, 7, padding=3 if geometry == "same" else 0)
        self.relu6 = nn.ReLU(inplace=True)
        self.drop6 = nn.Dropout2d(dropout)
        self.fc7 = nn.Conv2d(fc_width, fc_width, 1)
        self.relu7 = nn.ReLU(inplace=True)
        self.drop7 = nn.Dropout2d(dropout)
        self.score_fr = nn.Conv2d(fc_width, num_classes, 1)

        if stride == 32:
            self.upscore = make_upsampler(num_classes, 32, geometry, learnable=False)
        else:
            self.score_pool4 = nn.Conv2d(block_widths[3], num_classes, 1)
            self.upscore2 = make_upsampler(num_classes, 2, geometry, learnable=True)
            if stride == 16:
                self.upscore16 = make_upsampler(num_classes, 16, geometry, learnable=False)
            else:
                self.score_pool3 = nn.Conv2d(block_widths[2], num_classes, 1)
                self.upscore_pool4 = make_upsampler(num_classes, 2, geometry, learnable=True)
                self.upscore8 = make_upsampler(num_classes, 8, geometry, learnable=False)
        self._init_weights()

    # ------------------------------------------------------------------ init
    def _init_weights(self) -> None:
        for name, module in self.named_modules():
            if isinstance(module, nn.Conv2d):
                if name.startswith("score_pool"):
                    # New skip scores start at zero: the net begins with its parent's predictions.
                    nn.init.zeros_(module.weight)
                    nn.init.zeros_(module.bias)
                else:
                    nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    # --------------------------------------------------------------- forward
    def _block(self, x: torch.Tensor, block: int) -> torch.Tensor:
        for i in range(1, CONVS_PER_BLOCK[block - 1] + 1):
            x = getattr(self, f"conv{block}_{i}")(x)
            if self.batch_norm:
                x = getattr(self, f"bn{block}_{i}")(x)
            x = getattr(self, f"relu{block}_{i}")(x)
        return getattr(self, f"pool{block}")(x)

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The backbone's pool3, pool4 and the class scores at stride 32 (``score_fr``)."""
        out: dict[str, torch.Tensor] = {}
        h = x
        for block in range(1, 6):
            h = self._block(h, block)
            if block in (3, 4):
                out[f"pool{block}"] = h
        h = self.drop6(self.relu6(self.fc6(h)))
        h = self.drop7(self.relu7(self.fc7(h)))
        out["score_fr"] = self.score_fr(h)
        return out

    def coarse_scores(self, x: torch.Tensor) -> torch.Tensor:
        """The fused class scores before the final upsampling (stride 32, 16 or 8)."""
        return self._coarse(self.features(x))

    def _coarse(self, f: dict[str, torch.Tensor]) -> torch.Tensor:
        # Figure 3: score_fr at stride 32; x2 up + pool4's scores (16s); x2 up + pool3's scores (8s).
        if self.stride == 32:
            return f["score_fr"]
        fuse_pool4 = self._fuse(self.upscore2(f["score_fr"]), self.score_pool4(f["pool4"]), "score_pool4")
        if self.stride == 16:
            return fuse_pool4
        return self._fuse(self.upscore_pool4(fuse_pool4), self.score_pool3(f["pool3"]), "score_pool3")

    def _fuse(self, upsampled: torch.Tensor, skip: torch.Tensor, skip_name: str) -> torch.Tensor:
        """One skip connection: the upsampled coarser scores plus a pool layer's scores, aligned.

        "same" geometry: the upsampled map may be a pixel larger (odd sizes) and is
        cropped to the skip's size. Caffe geometry: the skip is the larger map
        (conv1_1's padding of 100) and is cropped at the offset the layers imply.
        """
        if self.geometry == "caffe":
            return upsampled + crop_to(skip, upsampled.shape[-2], upsampled.shape[-1], CAFFE_OFFSETS[skip_name])
        return crop_to(upsampled, skip.shape[-2], skip.shape[-1]) + skip

    def final_upsampler(self) -> nn.ConvTranspose2d:
        """The fixed bilinear layer that brings the fused scores to the image size."""
        name = {32: "upscore", 16: "upscore16", 8: "upscore8"}[self.stride]
        return getattr(self, name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores ``[N, num_classes, H, W]`` at the input's size."""
        height, width = x.shape[-2:]
        up = self.final_upsampler()(self.coarse_scores(x))
        offset = CAFFE_OFFSETS[self.stride] if self.geometry == "caffe" else 0
        return crop_to(up, height, width, offset).contiguous()

    # ------------------------------------------------------------ staging
    def init_from_parent(self, parent: "FCN") -> None:
        """Copy a trained coarser FCN into this one (FCN-32s -> 16s, 16s -> 8s).

        Every shared layer is copied; the new skip score (score_pool4 or score_pool3)
        stays zero, so the child starts from its parent's predictions (up to the
        difference between one x32 bilinear step and x2 followed by x16 steps).
        """
        if parent.stride <= self.stride:
            raise ValueError("the parent must be coarser (FCN-32s -> FCN-16s -> FCN-8s)")
        own = self.state_dict()
        copied = {k: v for k, v in parent.state_dict().items()
                  if k in own and own[k].shape == v.shape and not k.startswith(("upscore.", "upscore16."))}
        own.update(copied)
        self.load_state_dict(own)


def fcn32s(**kwargs: object) -> FCN:
    """FCN-32s: single-stream, scores at stride 32 upsampled x32."""
    return FCN(stride=32, **kwargs)  # type: ignore[arg-type]


def fcn16s(**kwargs: object) -> FCN:
    """FCN-16s: adds the pool4 skip."""
    return FCN(stride=16, **kwargs)  # type: ignore[arg-type]


def fcn8s(**kwargs: object) -> FCN:
    """FCN-8s: adds the pool4 and pool3 skips."""
    return FCN(stride=8, **kwargs)  # type: ignore[arg-type]


def score_grid_shape(stride: int, height: int, width: int) -> tuple[int, int]:
    """Rows and columns of the coarse score map at ``stride`` for an input in "same" geometry."""
    return -(-height // stride), -(-width // stride)


def published_state_dict(raw: dict[str, object]) -> dict[str, torch.Tensor]:
    """Map a published VGG16-FCN checkpoint onto :class:`FCN`'s keys.

    Accepts the PyTorch conversions of the Caffe models as they are stored: a bare
    state dict, or one wrapped under ``model_state_dict`` / ``state_dict``, with or
    without a ``module.`` prefix (DataParallel). Keys are otherwise identical.
    """
    for wrapper in ("model_state_dict", "state_dict"):
        if wrapper in raw and isinstance(raw[wrapper], dict):
            raw = raw[wrapper]  # type: ignore[assignment]
    out: dict[str, torch.Tensor] = {}
    for key, value in raw.items():
        if not isinstance(value, torch.Tensor):
            continue
        out[key[len("module."):] if key.startswith("module.") else key] = value
    return out


def load_published_fcn(path: str, stride: int, num_classes: int = 21, width: Width = "full") -> FCN:
    """A full-width FCN in the Caffe geometry with published weights from ``path``.

    ``.safetensors`` files are read with safetensors, anything else with
    ``torch.load(weights_only=True)``. The Caffe models expect BGR input in 0..255
    minus the mean (104.01, 116.67, 122.68); see :data:`CAFFE_BGR_MEAN`.
    """
    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file

        raw: dict[str, object] = dict(load_file(str(path)))
    else:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    model = FCN(num_classes=num_classes, stride=stride, width=width, geometry="caffe")
    model.load_state_dict(published_state_dict(raw), strict=True)
    return model.eval()


CAFFE_BGR_MEAN = (104.00698793, 116.66876762, 122.67891434)
