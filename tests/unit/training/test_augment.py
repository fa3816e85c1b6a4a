"""The paired transforms, CutMix / MixUp and the soft-label loss, against hand-worked references."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from segdemo.data.labels import CAMVID
from segdemo.training import augment, losses, mixing

VOID = CAMVID.ignore_index


def grid_pattern() -> tuple[torch.Tensor, torch.Tensor]:
    """Four quadrants with known edges (rows 30 / columns 40): classes 1, 4, 6, 9, each with its own
    colour, so the colour of a warped pixel says which label it must carry."""
    labels = torch.empty(1, 60, 80, dtype=torch.uint8)
    labels[:, :30, :40], labels[:, :30, 40:], labels[:, 30:, :40], labels[:, 30:, 40:] = 1, 4, 6, 9
    colours = {1: (250, 0, 0), 4: (0, 250, 0), 6: (0, 0, 250), 9: (250, 250, 0)}
    image = torch.zeros(1, 3, 60, 80, dtype=torch.uint8)
    for cls, rgb in colours.items():
        for ch in range(3):
            image[:, ch][labels == cls] = rgb[ch]
    return image, labels


def colour_class(image: torch.Tensor) -> torch.Tensor:
    """The class whose colour is nearest to each pixel (the reference for alignment)."""
    ref = torch.tensor([[250, 0, 0], [0, 250, 0], [0, 0, 250], [250, 250, 0]]).float()
    classes = torch.tensor([1, 4, 6, 9])
    d = ((image[0].float().permute(1, 2, 0)[:, :, None, :] - ref) ** 2).sum(-1)
    return classes[d.argmin(-1)], d.min(-1).values


def assert_aligned(out: torch.Tensor, lbl: torch.Tensor) -> None:
    assert set(lbl.unique().tolist()) <= {1, 4, 6, 9, VOID}  # nearest neighbour invents no class
    cls, dist = colour_class(out)
    inside = lbl[0] != VOID
    pure = inside & (dist < 30 ** 2)  # away from edges, where bilinear blends two colours
    assert pure.sum() > 0.6 * inside.sum()
    agree = (cls[pure] == lbl[0][pure].long()).float().mean()
    assert agree > 0.995, agree


GEOMETRIC = {
    "rotate": lambda i, l: augment.rotate_pair(i, l, 17.0, VOID),
    "affine": lambda i, l: augment.affine_pair(i, l, 12.0, (7, -5), 1.15, 9.0, VOID),
    "perspective": lambda i, l: augment.perspective_pair(i, l, [[9, 4], [75, 0], [70, 55], [3, 59]], VOID),
    "crop_scale": lambda i, l: augment.crop_scale_pair(i, l, 1.7, 0.3, 0.8),
    "elastic": lambda i, l: augment.elastic_deform(i.float(), l, 1.0, 6.0, 3, torch.Generator().manual_seed(2),
                                                   void=VOID),
    "flip": lambda i, l: (i.flip(-1), l.flip(-1)),
}


@pytest.mark.parametrize("name", sorted(GEOMETRIC))
def test_geometric_transforms_keep_image_and_labels_aligned(name: str) -> None:
    image, labels = grid_pattern()
    out, lbl = GEOMETRIC[name](image, labels)
    out = out.clamp(0, 255).round().to(torch.uint8)
    assert out.shape == image.shape and lbl.shape == labels.shape
    assert_aligned(out, lbl)


def test_warps_fill_void_where_they_leave_the_image() -> None:
    image, labels = grid_pattern()
    _, lbl = augment.affine_pair(image, labels, 0.0, (20, 0), 1.0, 0.0, VOID)
    assert torch.all(lbl[0, :, :20] == VOID) and torch.all(lbl[0, :, 20:60] == labels[0, :, :40])
    _, lbl = augment.perspective_pair(image, labels, [[20, 15], [59, 15], [59, 44], [20, 44]], VOID)
    assert lbl[0, 0, 0] == VOID and lbl[0, 30, 40] != VOID
    # an elastic field that shifts everything 10 px right samples outside on the left edge
    flow = torch.zeros(1, 2, 60, 80)
    flow[:, 0] = -10.0
    _, lbl = augment.warp(image.float(), labels, flow, VOID)
    assert torch.all(lbl[0, :, :10] == VOID) and torch.equal(lbl[0, :, 10:], labels[0, :, :70])
    _, mirrored = augment.warp(image.float(), labels, flow)  # U-Net's mode: mirrored, never void
    assert not (mirrored == VOID).any()


def test_random_training_switches_keep_alignment_and_invent_no_class() -> None:
    image, labels = grid_pattern()
    for seed in range(5):
        out, lbl = augment.augment_crop(image, labels, {"flip", "rotate", "affine", "perspective", "elastic"},
                                        torch.Generator().manual_seed(seed), VOID)
        assert_aligned(out, lbl)


def test_photometric_leaves_labels_and_matches_torchvision() -> None:
    from torchvision.transforms.v2 import functional as TF

    image, labels = grid_pattern()
    out = augment.photometric(image, 1.3, 0.8, 1.2, 0.1)
    ref = TF.adjust_hue(TF.adjust_saturation(TF.adjust_contrast(TF.adjust_brightness(image, 1.3), 0.8), 1.2), 0.1)
    assert torch.equal(out, ref) and not torch.equal(out, image)
    assert torch.equal(augment.photometric(image), image)  # neutral parameters


def test_cutmix_label_map_and_shares_are_exact() -> None:
    a, la = grid_pattern()
    b = torch.full_like(a, 17)
    lb = torch.full_like(la, 2)
    box = mixing.cutmix_box(60, 80, 0.25, 0.5, 0.5)
    assert (box.height, box.width) == (30, 40) and (box.top, box.left) == (15, 20)
    img, lbl = mixing.cutmix_pair(a, la, b, lb, box)
    pasted = (img[0] == 17).all(0)
    assert torch.equal(pasted, lbl[0] == 2)  # each pixel's label comes from the image its colour came from
    assert int(pasted.sum()) == box.area == 1200
    shares = mixing.label_shares(lbl, CAMVID.num_classes, VOID)
    assert math.isclose(float(shares[2]), 1200 / 4800)
    for cls in (1, 4, 6, 9):  # each 1200-pixel quadrant loses the 300 pixels of it under the box
        assert math.isclose(float(shares[cls]), 900 / 4800)


def test_mixup_soft_labels_are_the_mixed_one_hots() -> None:
    a, la = grid_pattern()
    lb = torch.full_like(la, 4)
    lb[0, :, :10] = VOID
    b = torch.zeros_like(a)
    img, soft = mixing.mixup_pair(a, la, b, lb, 0.7, CAMVID.num_classes, VOID)
    assert torch.equal(img, (0.7 * a.float()).round().to(torch.uint8))
    # a pixel of class 1 in a, 4 in b; a pixel of class 4 in both; a pixel void in b
    assert torch.allclose(soft[0, :, 20, 20], 0.7 * F.one_hot(torch.tensor(1), 11) + 0.3 * F.one_hot(torch.tensor(4), 11))
    assert torch.allclose(soft[0, :, 5, 50], F.one_hot(torch.tensor(4), 11).float())
    assert torch.allclose(soft[0, :, 5, 5], 0.7 * F.one_hot(torch.tensor(1), 11).float())
    # shares: class mass = alpha * count in a + (1 - alpha) * count in b, over the total mass
    counts_a = torch.bincount(la.flatten().long(), minlength=12)[:11].float()
    counts_b = torch.bincount(lb.flatten().long(), minlength=12)[:11].float()
    mass = 0.7 * counts_a + 0.3 * counts_b
    assert torch.allclose(mixing.label_shares(soft, 11, VOID), mass / mass.sum())


def test_soft_label_loss_equals_a_hand_computation() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]]).T.reshape(1, 3, 1, 2)  # two pixels, 3 classes
    target = torch.tensor([[0.7, 0.3, 0.0], [0.0, 0.0, 0.0]]).T.reshape(1, 3, 1, 2)  # pixel 2 is void
    w = torch.tensor([1.0, 2.0, 0.5])
    logp = [math.log(math.exp(v) / (math.exp(2) + 1 + math.exp(-1))) for v in (2.0, 0.0)]
    hand = (1.0 * 0.7 * -logp[0] + 2.0 * 0.3 * -logp[1]) / (1.0 * 0.7 + 2.0 * 0.3)
    assert math.isclose(float(losses.segmentation_loss(logits, target, w)), hand, rel_tol=1e-6)


def test_soft_loss_with_one_hot_targets_is_the_hard_loss() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 11, 8, 9, generator=g)
    labels = torch.randint(0, 12, (2, 8, 9), generator=g)  # 11 = void
    w = torch.rand(11, generator=g) + 0.5
    hard = F.cross_entropy(logits, labels, weight=w, ignore_index=VOID)
    soft = losses.segmentation_loss(logits, mixing.one_hot(labels, 11, VOID), w, VOID)
    assert torch.allclose(hard, soft, atol=1e-6)
    assert torch.equal(losses.SegmentationLoss(w, VOID)(logits, labels), hard)


def test_mix_batch_draws_nothing_when_off_and_mixes_when_on() -> None:
    a, la = grid_pattern()
    x, y = torch.cat([a, torch.full_like(a, 9)]), torch.cat([la, torch.full_like(la, 3)])
    g = torch.Generator().manual_seed(0)
    state = g.get_state()
    out, lbl = mixing.mix_batch(x, y, set(), g, 11, VOID)
    assert torch.equal(out, x) and torch.equal(lbl, y) and torch.equal(g.get_state(), state)
    for seed in range(4):
        out, soft = mixing.mix_batch(x, y, {"cutmix", "mixup"}, torch.Generator().manual_seed(seed), 11, VOID)
        assert soft.shape == (2, 11, 60, 80)
        assert torch.allclose(soft.sum(1), torch.ones(2, 60, 80))  # no void here: every row sums to 1
