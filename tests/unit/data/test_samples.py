"""The gallery offers images of the model's domain: microscope slices for the U-Net, photos otherwise."""

from __future__ import annotations

from segdemo.data import samples


def test_gallery_follows_the_models_domain(data_dir) -> None:
    everything = samples.all_samples()
    assert {s.source for s in everything} >= {"segdemo", "isbi", "camvid", "voc"}
    for photo_model in ("camvid", "voc", "person"):
        offered = samples.samples_for(photo_model)
        assert offered and all(s.source != "isbi" for s in offered)
    microscope = samples.samples_for("isbi")
    assert microscope and all(s.source == "isbi" for s in microscope)
    assert len(samples.samples_for(None)) == len(everything)
