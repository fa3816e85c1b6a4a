"""segdemo: teach and demonstrate semantic segmentation.

The package holds all logic and imports without Streamlit; only
``segdemo.ui`` (shared page widgets) needs Streamlit.
"""

__version__ = "0.1.0"
