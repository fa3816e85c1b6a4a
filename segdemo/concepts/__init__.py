"""Concept labs: the lecture's formulas next to the real operation's result.

Each module is pure logic (torch and numpy, no Streamlit) so that every number
a lab page shows can be checked in a test against the PyTorch operation:

* :mod:`segdemo.concepts.receptive_field` -- receptive fields, dilation, gridding
* :mod:`segdemo.concepts.interpolation` -- the bilinear formula vs ``F.interpolate``
* :mod:`segdemo.concepts.upsampling` -- upsampling class scores, checkerboards
* :mod:`segdemo.concepts.fc_conv` -- fully connected layers as convolutions
* :mod:`segdemo.concepts.separable` -- depthwise-separable convolution counts
"""
