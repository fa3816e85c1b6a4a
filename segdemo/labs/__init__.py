"""The logic of the lab pages and of the FCN and U-Net pages (no Streamlit).

Each module is pure logic (torch and numpy) so that every number a page shows
can be checked in a test against the PyTorch operation:

* :mod:`~segdemo.labs.receptive_field` -- the receptive-field recurrence, dilation, presets
* :mod:`~segdemo.labs.rf_measure` -- receptive fields measured by autograd, dilation's cost, ASPP taps
* :mod:`~segdemo.labs.interpolation` -- the bilinear formula vs ``F.interpolate``
* :mod:`~segdemo.labs.upsampling` -- upsampling class scores, checkerboards
* :mod:`~segdemo.labs.fc_conv`, :mod:`~segdemo.labs.fc_conv_views` -- fully connected layers as convolutions
* :mod:`~segdemo.labs.separable` -- depthwise-separable convolution counts
* :mod:`~segdemo.labs.fcn_skips` -- FCN-32s/16s/8s side by side (disagreement, score grids)
* :mod:`~segdemo.labs.unet_tiles` -- U-Net's shapes, overlap-tile pictures, the elastic demo
* :mod:`~segdemo.labs.transfer` -- the transfer-learning lab (ImageNet backbone, live runs)
* :mod:`~segdemo.labs.model_inputs` -- a real model's input and picture for any lab
* :mod:`~segdemo.labs.drawing`, :mod:`~segdemo.labs.figures` -- the labs' pictures and plots
"""
