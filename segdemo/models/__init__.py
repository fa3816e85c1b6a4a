"""Networks and how to get them: segdemo's own architectures (read next to the papers),
the registry of every model the app offers, weights lookup/download/loading, and
the ImageNet backbones.

* :mod:`~segdemo.models.fcn`, :mod:`~segdemo.models.unet`, :mod:`~segdemo.models.deeplab_slim`,
  :mod:`~segdemo.models.mobilenet_v2`: the network definitions;
* :mod:`~segdemo.models.builders`: the builder names model cards use;
* :mod:`~segdemo.models.registry`: one :class:`~segdemo.models.registry.ModelEntry` per model;
* :mod:`~segdemo.models.weights`: finding, downloading and loading weights;
* :mod:`~segdemo.models.backbones`: the shipped ImageNet backbones.
"""
