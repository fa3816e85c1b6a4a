"""A slim DeepLab-style network: dilated VGG backbone + ASPP (Chen et al. 2017/2018).

The same slim VGG16 widths as segdemo's FCNs, so the two can be compared on
equal footing. Instead of adding skips, DeepLab keeps the resolution: pool4
and pool5 no longer downsample (stride 1), and conv5 uses dilation 2 so its
receptive field still grows (DeepLab-v1's "hole" algorithm); the output stride
is 8. Atrous Spatial Pyramid Pooling (DeepLab-v3) then looks at several
scales at once: a 1x1 branch, three 3x3 branches with dilation ``rates`` and
an image-level average. The stride-8 scores are upsampled bilinearly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from segdemo.models.fcn import CONVS_PER_BLOCK, WIDTHS, Width


def conv_bn_relu(in_ch: int, out_ch: int, kernel: int = 3, dilation: int = 1) -> nn.Sequential:
    """Convolution (padded to keep the size) + BatchNorm + ReLU."""
    pad = dilation * (kernel - 1) // 2
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, padding=pad, dilation=dilation, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


class ASPP(nn.Module):
    """Atrous Spatial Pyramid Pooling: parallel 1x1, dilated 3x3 and image-pooling branches."""

    def __init__(self, in_ch: int, out_ch: int, rates: tuple[int, ...]) -> None:
        super().__init__()
        self.branches = nn.ModuleList([conv_bn_relu(in_ch, out_ch, 1)])
        self.branches.extend(conv_bn_relu(in_ch, out_ch, 3, dilation=r) for r in rates)
        self.image_pool = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.ReLU(inplace=True)
        )
        self.project = conv_bn_relu(out_ch * (len(rates) + 2), out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [branch(x) for branch in self.branches]
        pooled = self.image_pool(x)
        outs.append(pooled.expand(-1, -1, x.shape[-2], x.shape[-1]))
        return self.project(torch.cat(outs, dim=1))


class DilatedSlimDeepLab(nn.Module):
    """VGG16-style backbone with dilated conv5 (output stride 8) and an ASPP head."""

    def __init__(
        self,
        num_classes: int = 11,
        width: Width = "slim",
        aspp_channels: int = 128,
        rates: tuple[int, ...] = (3, 6, 9),
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        block_widths, _ = WIDTHS[width]
        self.output_stride = 8
        blocks: list[nn.Module] = []
        c = 3
        for b, (n, w) in enumerate(zip(CONVS_PER_BLOCK, block_widths), start=1):
            dilation = 2 if b == 5 else 1  # conv5 sees stride-16 context through holes
            layers: list[nn.Module] = [conv_bn_relu(c if i == 0 else w, w, 3, dilation) for i in range(n)]
            if b <= 3:
                layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
            else:
                layers.append(nn.MaxPool2d(3, 1, padding=1))  # pool4/pool5 keep the resolution
            blocks.append(nn.Sequential(*layers))
            c = w
        self.backbone = nn.Sequential(*blocks)
        self.aspp = ASPP(c, aspp_channels, tuple(rates))
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(aspp_channels, num_classes, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def coarse_scores(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores at stride 8."""
        return self.classifier(self.dropout(self.aspp(self.backbone(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores ``[N, C, H, W]`` at the input's size (bilinear x8)."""
        return F.interpolate(self.coarse_scores(x), size=x.shape[-2:], mode="bilinear", align_corners=False)


def deeplab_slim(**kwargs: object) -> DilatedSlimDeepLab:
    """Builder used by model cards."""
    if "rates" in kwargs:
        kwargs["rates"] = tuple(kwargs["rates"])  # type: ignore[arg-type]
    return DilatedSlimDeepLab(**kwargs)  # type: ignore[arg-type]
