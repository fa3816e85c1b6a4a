"""The Streamlit side of segdemo (the only part that imports Streamlit).

* :mod:`~segdemo.ui.state`: session keys, the current language, the per-session cache;
* :mod:`~segdemo.ui.sidebar`: page setup and the shared sidebar (:class:`~segdemo.ui.sidebar.Settings`);
* :mod:`~segdemo.ui.models`: the shared model cache, downloads, cached predictions;
* :mod:`~segdemo.ui.inputs`: uploads, camera and samples;
* :mod:`~segdemo.ui.legend`: class legends;
* :mod:`~segdemo.ui.widgets`: choices that survive a language switch;
* :mod:`~segdemo.ui.labs`, :mod:`~segdemo.ui.eval_inputs`, :mod:`~segdemo.ui.eval_views`: page widgets.
"""
