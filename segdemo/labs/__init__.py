"""Concept labs: the lecture's formulas next to the real operation's result.

Each module is pure logic (torch and numpy, no Streamlit) so that every number
a lab page shows can be checked in a test against the PyTorch operation:

* :mod:`segdemo.labs.receptive_field` -- receptive fields, dilation, gridding
* :mod:`segdemo.labs.interpolation` -- the bilinear formula vs ``F.interpolate``
* :mod:`segdemo.labs.upsampling` -- upsampling class scores, checkerboards
* :mod:`segdemo.labs.fc_conv` -- fully connected layers as convolutions
* :mod:`segdemo.labs.separable` -- depthwise-separable convolution counts
* :mod:`segdemo.labs.transfer` -- the transfer-learning lab (ImageNet backbone, live runs)
"""
